package policy

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const mutateNonRoot = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: default-non-root
spec:
  rules:
  - name: add-run-as-non-root
    match: {any: [{resources: {kinds: [Pod]}}]}
    mutate:
      patchStrategicMerge:
        spec:
          securityContext:
            +(runAsNonRoot): true
`

const mutateTeamLabel = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: team-label
spec:
  rules:
  - name: skip-system
    match: {any: [{resources: {kinds: [Pod]}}]}
    preconditions:
      all:
      - key: "{{ request.object.metadata.namespace }}"
        operator: Equals
        value: kube-system
    mutate:
      patchesJson6902: |-
        - op: add
          path: /metadata/labels/system
          value: "yes"
  - name: label
    match: {any: [{resources: {kinds: [Pod]}}]}
    context:
    - name: team
      variable: {value: "{{ request.object.metadata.labels.app }}-team"}
    mutate:
      foreach:
      - list: request.object.spec.containers
        patchesJson6902: |-
          - op: add
            path: /metadata/labels/team
            value: "{{ team }}"
          - op: add
            path: /spec/containers/{{ elementIndex }}/env
            value: [{name: REPLICAS, value: "3"}]
`

const mutatePod = `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  containers:
  - name: web
    image: nginx:1.27
    ports: [{containerPort: 8080}]
`

// TestMutate is the primitive check will mutate with: rules applied policy after
// policy in order, each seeing the previous one's object, preconditions skipping,
// context and foreach, results per rule, the input untouched, numbers JSON-normalised
// (the engine panics on Go int), and the mutated object validated as the cluster would.
func TestMutate(t *testing.T) {
	set := mustSet(t, mutateNonRoot, mutateTeamLabel, podRunAsNonRoot)
	eng, err := NewEngine(set, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := mustResource(t, mutatePod)
	before := r.Object.DeepCopy()
	results, patched, err := eng.Mutate(context.Background(), r, Request{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{
		"default-non-root/add-run-as-non-root=pass:Audit",
		"team-label/label=pass:Audit",
		"team-label/skip-system=skip:Audit",
	}, summarise(results)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before.Object, r.Object.Object); diff != "" {
		t.Errorf("the input was modified (-before +after):\n%s", diff)
	}
	want := mustResource(t, `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  labels: {app: web, team: web-team}
spec:
  securityContext: {runAsNonRoot: true}
  containers:
  - name: web
    image: nginx:1.27
    ports: [{containerPort: 8080}]
    env: [{name: REPLICAS, value: "3"}]
`)
	if diff := cmp.Diff(want.Object.Object, patched.Object); diff != "" {
		t.Errorf("patched object (-want +got):\n%s", diff)
	}
	if _, ok := patched.Object["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["ports"].([]any)[0].(map[string]any)["containerPort"].(int64); !ok {
		t.Errorf("containerPort is not an int64 after mutation: %#v", patched.Object["spec"])
	}

	// Validation as written blocks the pod; validation of the mutated pod, as
	// admission sees it, passes.
	if got := summarise(eng.Evaluate(context.Background(), r, Request{})); !cmp.Equal(got, []string{"non-root/check=fail:Enforce"}) {
		t.Errorf("as written: %v", got)
	}
	mr := r
	mr.Object = patched
	if got := summarise(eng.Evaluate(context.Background(), mr, Request{})); !cmp.Equal(got, []string{"non-root/check=pass:Enforce"}) {
		t.Errorf("mutated: %v", got)
	}

	// A set without mutate rules returns the object itself and no results.
	plain, err := NewEngine(mustSet(t, podRunAsNonRoot), Options{})
	if err != nil {
		t.Fatal(err)
	}
	results, same, err := plain.Mutate(context.Background(), r, Request{})
	if err != nil || len(results) != 0 || same != r.Object {
		t.Errorf("no mutate rules: results %v, same object %v, err %v", results, same == r.Object, err)
	}
}

// TestMutateExistingNotEvaluated: a mutateExisting rule changes other objects than the
// one admitted; Mutate says it did not apply it, never that it passed.
func TestMutateExistingNotEvaluated(t *testing.T) {
	set := mustSet(t, `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: touch-secrets
spec:
  rules:
  - name: touch
    match: {any: [{resources: {kinds: [ConfigMap]}}]}
    mutate:
      targets:
      - apiVersion: v1
        kind: Secret
        name: s
        namespace: "{{ request.object.metadata.namespace }}"
      patchStrategicMerge:
        metadata:
          labels: {touched: "yes"}
`)
	eng, err := NewEngine(set, Options{})
	if err != nil {
		t.Fatal(err)
	}
	results, _, err := eng.Mutate(context.Background(), mustResource(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: ns}\n"), Request{})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].Status != StatusError || results[0].Message[:len(notEvaluatedPrefix)] != notEvaluatedPrefix {
		t.Fatalf("want one not-evaluated error, got %+v", results)
	}
}
