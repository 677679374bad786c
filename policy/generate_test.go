package policy

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestGenerate: a data rule creates its object with variables from the trigger; a clone
// rule copies its source from the objects given, and from nowhere else.
func TestGenerate(t *testing.T) {
	set := mustSet(t, `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: ns-defaults
spec:
  rules:
  - name: quota
    match: {any: [{resources: {kinds: [Namespace]}}]}
    generate:
      apiVersion: v1
      kind: ResourceQuota
      name: default-quota
      namespace: "{{ request.object.metadata.name }}"
      data:
        spec:
          hard: {pods: "10"}
  - name: pull-secret
    match: {any: [{resources: {kinds: [Namespace]}}]}
    generate:
      apiVersion: v1
      kind: Secret
      name: regcred
      namespace: "{{ request.object.metadata.name }}"
      clone: {namespace: default, name: regcred}
`)
	eng, err := NewEngine(set, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ns := mustResource(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n")
	source := mustResource(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: regcred, namespace: default}\ntype: Opaque\ndata: {token: c2VjcmV0}\n")
	gens, err := eng.Generate(context.Background(), ns, Request{}, []*unstructured.Unstructured{source.Object})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]any{}
	for _, g := range gens {
		if g.Result.Status != StatusPass || len(g.Objects) != 1 {
			t.Fatalf("%s: %s %q with %d objects", g.Result.Rule, g.Result.Status, g.Result.Message, len(g.Objects))
		}
		o := g.Objects[0]
		got[g.Result.Rule] = map[string]any{"id": FormatID(o.GetKind(), o.GetNamespace(), o.GetName()), "spec": o.Object["spec"], "data": o.Object["data"]}
	}
	want := map[string]map[string]any{
		"quota":       {"id": "ResourceQuota/team-a/default-quota", "spec": map[string]any{"hard": map[string]any{"pods": "10"}}, "data": nil},
		"pull-secret": {"id": "Secret/team-a/regcred", "spec": nil, "data": map[string]any{"token": "c2VjcmV0"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("generated (-want +got):\n%s", diff)
	}

	// Without the source object the clone rule cannot copy anything: not a pass with
	// an object.
	gens, err = eng.Generate(context.Background(), ns, Request{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gens {
		if g.Result.Rule == "pull-secret" && len(g.Objects) != 0 {
			t.Errorf("clone without a source generated %v", g.Objects)
		}
	}
}
