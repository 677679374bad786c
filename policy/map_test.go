package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestCheckMAPThenVAP: a MutatingAdmissionPolicy adding the team label is applied
// before validation, so the VAP requiring it passes the Deployment; without the MAP's
// binding the MAP is not applied (a notice) and the VAP blocks it at its line;
// --no-mutate judges it as written.
func TestCheckMAPThenVAP(t *testing.T) {
	mapPolicy := `apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicy
metadata: {name: add-team}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}
  failurePolicy: Fail
  reinvocationPolicy: Never
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: >
        Object{metadata: Object.metadata{labels: {"team": "platform"}}}
`
	mapBinding := `apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicyBinding
metadata: {name: add-team}
spec:
  policyName: add-team
`
	for _, tc := range []struct {
		name     string
		bound    bool
		noMutate bool
		blocked  bool
	}{
		{name: "bound", bound: true, blocked: false},
		{name: "bound, no-mutate", bound: true, noMutate: true, blocked: true},
		{name: "unbound", bound: false, blocked: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{"vap.yaml": vapRequireTeam, "binding.yaml": vapBinding("Deny", ""), "map.yaml": mapPolicy}
			if tc.bound {
				files["map-binding.yaml"] = mapBinding
			}
			var names []string
			for n, body := range files {
				names = append(names, n)
				if err := os.WriteFile(filepath.Join(dir, n), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			set, err := Load(os.DirFS(dir), names...)
			if err != nil {
				t.Fatal(err)
			}
			eng, err := NewEngine(set, Options{})
			if err != nil {
				t.Fatal(err)
			}
			rs, err := Decode("apps/deploy.yaml", []byte(vapDeployments))
			if err != nil {
				t.Fatal(err)
			}
			rep := eng.CheckResources(context.Background(), rs[:1], CheckOptions{Workers: 1, NoMutate: tc.noMutate})
			blocked := false
			for _, r := range rep.Results {
				if r.Blocking() {
					if r.Policy != "require-team" || r.Origin.File != "apps/deploy.yaml" || r.Origin.Line != 1 {
						t.Errorf("blocking %+v", r)
					}
					blocked = true
				}
			}
			if blocked != tc.blocked {
				t.Errorf("blocked %v, want %v (results %+v)", blocked, tc.blocked, rep.Results)
			}
			notices := strings.Join(eng.Notices(), "\n")
			if want := "MutatingAdmissionPolicy/add-team is not applied"; strings.Contains(notices, want) == tc.bound {
				t.Errorf("notices %q: want %q only when unbound", notices, want)
			}
			if tc.bound && !tc.noMutate {
				_, patched, err := eng.Mutate(context.Background(), rs[0], Request{})
				if err != nil {
					t.Fatal(err)
				}
				if patched.GetLabels()["team"] != "platform" {
					t.Errorf("mutated labels %v, want team=platform", patched.GetLabels())
				}
				if rs[0].Object.GetLabels()["team"] != "" {
					t.Error("the source object was changed")
				}
			}
		})
	}
}

// TestCheckMAPOrder: in check, MutatingAdmissionPolicies run before Kyverno's mutate
// rules, as the API server runs its MutatingAdmissionPolicy plugin before the webhooks:
// a ClusterPolicy setting the same label wins. With reinvocationPolicy IfNeeded the MAP
// runs again after Kyverno changed the object, and wins, with one result, not two.
func TestCheckMAPOrder(t *testing.T) {
	mapPolicy := func(reinvoke string) string {
		return `apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicy
metadata: {name: tier-map}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}
  failurePolicy: Fail
  reinvocationPolicy: ` + reinvoke + `
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: >
        Object{metadata: Object.metadata{labels: {"tier": "map"}}}
---
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicyBinding
metadata: {name: tier-map}
spec:
  policyName: tier-map
`
	}
	const kyvernoPolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: tier-kyverno}
spec:
  rules:
  - name: tier
    match:
      any:
      - resources: {kinds: [Deployment]}
    mutate:
      patchStrategicMerge:
        metadata:
          labels:
            tier: kyverno
`
	for _, tc := range []struct{ reinvoke, want string }{{"Never", "kyverno"}, {"IfNeeded", "map"}} {
		t.Run(tc.reinvoke, func(t *testing.T) {
			dir := t.TempDir()
			for n, body := range map[string]string{"map.yaml": mapPolicy(tc.reinvoke), "cp.yaml": kyvernoPolicy} {
				if err := os.WriteFile(filepath.Join(dir, n), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			set, err := Load(os.DirFS(dir), "map.yaml", "cp.yaml")
			if err != nil {
				t.Fatal(err)
			}
			eng, err := NewEngine(set, Options{})
			if err != nil {
				t.Fatal(err)
			}
			rs, err := Decode("apps/deploy.yaml", []byte(vapDeployments))
			if err != nil {
				t.Fatal(err)
			}
			results, patched, err := eng.Mutate(context.Background(), rs[0], Request{})
			if err != nil {
				t.Fatal(err)
			}
			if got := patched.GetLabels()["tier"]; got != tc.want {
				t.Errorf("tier %q, want %q", got, tc.want)
			}
			n := 0
			for _, r := range results {
				if r.Policy == "tier-map" {
					n++
					if r.Status != StatusPass {
						t.Errorf("MAP result %+v", r)
					}
				}
			}
			if n != 1 {
				t.Errorf("%d results of the MAP, want 1: %+v", n, results)
			}
		})
	}
}

// TestCheckMAPMergesListsByKey: a MAP's applyConfiguration setting one container's
// securityContext merges the containers list by name, as the API server does with the
// kind's schema: the container keeps its image, and the other container is untouched.
func TestCheckMAPMergesListsByKey(t *testing.T) {
	const policy = `apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicy
metadata: {name: non-root}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  failurePolicy: Fail
  reinvocationPolicy: Never
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: >
        Object{spec: Object.spec{containers: [Object.spec.containers{name: "app", securityContext: Object.spec.containers.securityContext{runAsNonRoot: true}}]}}
---
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicyBinding
metadata: {name: non-root}
spec:
  policyName: non-root
`
	const pod = `apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec:
  containers:
  - {name: app, image: registry.example.com/app:1}
  - {name: sidecar, image: registry.example.com/sidecar:1}
`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "map.yaml"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := Load(os.DirFS(dir), "map.yaml")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := NewEngine(set, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Decode("apps/pod.yaml", []byte(pod))
	if err != nil {
		t.Fatal(err)
	}
	results, patched, err := eng.Mutate(context.Background(), rs[0], Request{})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].Status != StatusPass || strings.Contains(results[0].Message, "replace") {
		t.Fatalf("results %+v", results)
	}
	cs, _, _ := unstructured.NestedSlice(patched.Object, "spec", "containers")
	if len(cs) != 2 {
		t.Fatalf("containers %v", cs)
	}
	app, sidecar := cs[0].(map[string]any), cs[1].(map[string]any)
	if app["image"] != "registry.example.com/app:1" || sidecar["image"] != "registry.example.com/sidecar:1" {
		t.Errorf("images lost: %v", cs)
	}
	if nonRoot, _, _ := unstructured.NestedBool(app, "securityContext", "runAsNonRoot"); !nonRoot {
		t.Errorf("app container not patched: %v", app)
	}
	if _, ok := sidecar["securityContext"]; ok {
		t.Errorf("sidecar patched: %v", sidecar)
	}
}
