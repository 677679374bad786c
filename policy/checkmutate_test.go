package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestCheckMutatesFirst: a mutate policy that adds runAsNonRoot and a validate policy
// requiring it. Kyverno (and the cluster's admission chain) mutates first, so the
// Deployment that lacks it passes; --no-mutate judges it as written and fails; a
// Deployment that sets runAsNonRoot: false is not overridden by +() and fails either
// way. Findings point at the source file.
func TestCheckMutatesFirst(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"mutate.yaml": `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: add-non-root}
spec:
  rules:
  - name: add-run-as-non-root
    match: {any: [{resources: {kinds: [Pod]}}]}
    mutate:
      patchStrategicMerge:
        spec:
          securityContext:
            +(runAsNonRoot): true
`,
		"validate.yaml": `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: require-non-root}
spec:
  validationFailureAction: Enforce
  rules:
  - name: run-as-non-root
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: runAsNonRoot must be true
      pattern:
        spec:
          securityContext:
            runAsNonRoot: true
`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := Load(os.DirFS(dir), "mutate.yaml", "validate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := NewEngine(set, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Decode("apps/web.yaml", []byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.example.com/web:1}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: root, namespace: shop}
spec:
  selector: {matchLabels: {app: root}}
  template:
    metadata: {labels: {app: root}}
    spec:
      securityContext: {runAsNonRoot: false}
      containers: [{name: root, image: registry.example.com/root:1}]
`))
	if err != nil {
		t.Fatal(err)
	}
	blocked := func(noMutate bool) map[string]Result {
		opts := CheckOptions{Workers: 1, Schema: true, NoMutate: noMutate}
		rep := eng.CheckResources(context.Background(), rs, opts)
		out := map[string]Result{}
		for _, r := range rep.Results {
			if r.Blocking() {
				out[r.Name] = r
			}
		}
		return out
	}
	got := blocked(false)
	if _, ok := got["web"]; ok || len(got) != 1 {
		t.Fatalf("mutated first: blocking %v, want only root", got)
	}
	if r := got["root"]; r.Origin.File != "apps/web.yaml" || r.Origin.Line < 11 || !strings.Contains(r.Message, "runAsNonRoot must be true") {
		t.Errorf("root's finding: %+v", r)
	}
	if got := blocked(true); len(got) != 2 {
		t.Errorf("--no-mutate: blocking %v, want web and root", got)
	}
	// The source objects are not changed by the check.
	if _, found, _ := unstructured.NestedFieldNoCopy(rs[0].Object.Object, "spec", "template", "spec", "securityContext"); found {
		t.Error("the check mutated the caller's object")
	}
}

// TestCheckGenerated: a generate rule's data object (a NetworkPolicy per Namespace) is
// what the cluster would create: check lists it in a notice and validates it, its
// findings at the trigger's origin; --no-mutate (as written) does not generate.
func TestCheckGenerated(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"generate.yaml": `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: default-deny}
spec:
  rules:
  - name: default-deny
    match: {any: [{resources: {kinds: [Namespace]}}]}
    generate:
      apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      name: default-deny
      namespace: "{{request.object.metadata.name}}"
      synchronize: false
      data:
        spec:
          podSelector: {}
          policyTypes: [Ingress, Egress]
`,
		"validate.yaml": `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: netpol-team}
spec:
  validationFailureAction: Enforce
  rules:
  - name: team-label
    match: {any: [{resources: {kinds: [NetworkPolicy]}}]}
    validate:
      message: NetworkPolicies need a team label
      pattern:
        metadata:
          labels:
            team: "?*"
`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := Load(os.DirFS(dir), "generate.yaml", "validate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := NewEngine(set, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Decode("namespaces/shop.yaml", []byte("# the shop team\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"))
	if err != nil {
		t.Fatal(err)
	}
	rep := eng.CheckResources(context.Background(), rs, CheckOptions{Workers: 1, Schema: true})
	var found *Result
	for i, r := range rep.Results {
		if r.Kind == "NetworkPolicy" && r.Blocking() {
			found = &rep.Results[i]
		}
	}
	if found == nil || found.Namespace != "shop" || found.Name != "default-deny" || found.Origin.File != "namespaces/shop.yaml" || found.Origin.Line != 2 ||
		!strings.Contains(found.Message, "team label") {
		t.Fatalf("generated NetworkPolicy's finding: %+v\nresults %+v", found, rep.Results)
	}
	if len(rep.Notices) != 1 || !strings.Contains(rep.Notices[0], "default-deny/default-deny would generate NetworkPolicy/shop/default-deny") {
		t.Errorf("notices %q", rep.Notices)
	}
	rep = eng.CheckResources(context.Background(), rs, CheckOptions{Workers: 1, Schema: true, NoMutate: true})
	if rep.Blocking() || len(rep.Notices) != 0 {
		t.Errorf("--no-mutate generated: %+v %q", rep.Results, rep.Notices)
	}
}
