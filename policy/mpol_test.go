package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func loadEngine(t *testing.T, files map[string]string) *Engine {
	t.Helper()
	dir := writeFiles(t, files)
	var names []string
	for n := range files {
		names = append(names, n)
	}
	set, err := Load(os.DirFS(dir), names...)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := NewEngine(set, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

const deploymentsMatch = `
  matchConstraints:
    resourceRules:
    - apiGroups: [apps]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [deployments]`

// A MutatingPolicy that adds runAsNonRoot to the pod template (an applyConfiguration)
// and a securityContext to the container named web (merged into the container by its
// name, as the API server's schema for Deployments says: the image stays).
const mpolNonRoot = `apiVersion: policies.kyverno.io/v1beta1
kind: MutatingPolicy
metadata: {name: add-non-root}
spec:` + deploymentsMatch + `
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: >
        Object{
          spec: Object.spec{
            template: Object.spec.template{
              spec: Object.spec.template.spec{
                securityContext: Object.spec.template.spec.securityContext{runAsNonRoot: true},
                containers: [Object.spec.template.spec.containers{
                  name: "web",
                  securityContext: Object.spec.template.spec.containers.securityContext{allowPrivilegeEscalation: false}
                }]
              }
            }
          }
        }
`

const vpolNonRoot = `apiVersion: policies.kyverno.io/v1beta1
kind: ValidatingPolicy
metadata: {name: require-non-root}
spec:
  validationActions: [Deny]` + deploymentsMatch + `
  validations:
  - expression: >
      has(object.spec.template.spec.securityContext) &&
      has(object.spec.template.spec.securityContext.runAsNonRoot) &&
      object.spec.template.spec.securityContext.runAsNonRoot == true
    message: runAsNonRoot must be true
`

const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.example.com/web:1
        ports: [{containerPort: 8080}]
`

// TestCheckMutatingPolicyFirst: with a MutatingPolicy adding runAsNonRoot and a
// ValidatingPolicy requiring it, check judges the Deployment as the cluster would store
// it and passes; --no-mutate judges it as written and blocks, at the source file.
func TestCheckMutatingPolicyFirst(t *testing.T) {
	eng := loadEngine(t, map[string]string{"mpol.yaml": mpolNonRoot, "vpol.yaml": vpolNonRoot})
	rs, err := Decode("apps/web.yaml", []byte(webDeployment))
	if err != nil {
		t.Fatal(err)
	}
	rep := eng.CheckResources(context.Background(), rs, CheckOptions{Workers: 1, Schema: true})
	if rep.Blocking() {
		t.Fatalf("mutated first, yet blocked: %+v", rep.Results)
	}
	rep = eng.CheckResources(context.Background(), rs, CheckOptions{Workers: 1, Schema: true, NoMutate: true})
	var found *Result
	for i, r := range rep.Results {
		if r.Blocking() {
			found = &rep.Results[i]
		}
	}
	if found == nil || found.Policy != "require-non-root" || found.Origin.File != "apps/web.yaml" || !strings.Contains(found.Message, "runAsNonRoot must be true") {
		t.Fatalf("--no-mutate: blocking finding %+v, results %+v", found, rep.Results)
	}
	if _, ok, _ := unstructured.NestedFieldNoCopy(rs[0].Object.Object, "spec", "template", "spec", "securityContext"); ok {
		t.Error("the check mutated the caller's object")
	}
}

// TestMutatingPolicyMergesByKey: the applyConfiguration is merged with the built-in
// kind's own schema: the container named web keeps its image and ports and gains the
// securityContext; the result is a pass named after the policy.
func TestMutatingPolicyMergesByKey(t *testing.T) {
	eng := loadEngine(t, map[string]string{"mpol.yaml": mpolNonRoot})
	rs, err := Decode("apps/web.yaml", []byte(webDeployment))
	if err != nil {
		t.Fatal(err)
	}
	res, patched, err := eng.Mutate(context.Background(), rs[0], Request{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Policy != "add-non-root" || res[0].Rule != "add-non-root" || res[0].Status != StatusPass {
		t.Fatalf("results %+v", res)
	}
	if strings.Contains(res[0].Message, "no schema known") {
		t.Errorf("a built-in kind was merged with a deduced schema: %s", res[0].Message)
	}
	containers, _, _ := unstructured.NestedSlice(patched.Object, "spec", "template", "spec", "containers")
	if len(containers) != 1 {
		t.Fatalf("containers %v", containers)
	}
	c := containers[0].(map[string]any)
	if c["image"] != "registry.example.com/web:1" || c["ports"] == nil {
		t.Errorf("the container lost its fields: %v", c)
	}
	if v, _, _ := unstructured.NestedBool(c, "securityContext", "allowPrivilegeEscalation"); v || c["securityContext"] == nil {
		t.Errorf("container securityContext not set: %v", c)
	}
	if v, _, _ := unstructured.NestedBool(patched.Object, "spec", "template", "spec", "securityContext", "runAsNonRoot"); !v {
		t.Errorf("runAsNonRoot not set: %v", patched.Object)
	}
}

// TestMutatingPolicyOrder: Kyverno's webhooks run by name: MutatingPolicies ("mpol."),
// then ClusterPolicy mutate rules ("mutate."), then NamespacedMutatingPolicies
// ("nmpol."). Each sets the same annotation: the last one's value stays, and each
// policy's result is reported.
func TestMutatingPolicyOrder(t *testing.T) {
	annotate := func(kind, name, ns, value string) string {
		meta := "{name: " + name + "}"
		if ns != "" {
			meta = "{name: " + name + ", namespace: " + ns + "}"
		}
		return `apiVersion: policies.kyverno.io/v1beta1
kind: ` + kind + `
metadata: ` + meta + `
spec:` + deploymentsMatch + `
  mutations:
  - patchType: JSONPatch
    jsonPatch:
      expression: >
        [JSONPatch{op: "add", path: "/metadata/annotations", value: {"order": "` + value + `"}}]
`
	}
	cpol := `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: cpol-annotate}
spec:
  rules:
  - name: annotate
    match: {any: [{resources: {kinds: [Deployment]}}]}
    mutate:
      patchStrategicMerge:
        metadata:
          annotations:
            order: cpol
`
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"mpol then cpol", map[string]string{"m.yaml": annotate("MutatingPolicy", "m", "", "mpol"), "c.yaml": cpol}, "cpol"},
		{"cpol then nmpol", map[string]string{"n.yaml": annotate("NamespacedMutatingPolicy", "n", "shop", "nmpol"), "c.yaml": cpol}, "nmpol"},
		{"nmpol of another namespace", map[string]string{"n.yaml": annotate("NamespacedMutatingPolicy", "n", "other", "nmpol"), "c.yaml": cpol}, "cpol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := loadEngine(t, tc.files)
			rs, err := Decode("apps/web.yaml", []byte(webDeployment))
			if err != nil {
				t.Fatal(err)
			}
			res, patched, err := eng.Mutate(context.Background(), rs[0], Request{})
			if err != nil {
				t.Fatal(err)
			}
			if got := patched.GetAnnotations()["order"]; got != tc.want {
				t.Errorf("annotation order=%q, want %q; results %+v", got, tc.want, res)
			}
			for _, r := range res {
				if r.Status != StatusPass {
					t.Errorf("result %+v", r)
				}
			}
		})
	}
}

// TestMutatingPolicyFailureAction: a MutatingPolicy whose expression fails is an error
// result that blocks (failurePolicy Fail, the default) or is Audit (Ignore), never a
// pass; a mutateExisting policy (targetMatchConstraints) is said not evaluated.
func TestMutatingPolicyFailureAction(t *testing.T) {
	broken := func(name, failure string) string {
		return `apiVersion: policies.kyverno.io/v1beta1
kind: MutatingPolicy
metadata: {name: ` + name + `}
spec:
  failurePolicy: ` + failure + deploymentsMatch + `
  mutations:
  - patchType: JSONPatch
    jsonPatch:
      expression: >
        [JSONPatch{op: "replace", path: "/spec/replicas", value: int(object.metadata.labels["missing"])}]
`
	}
	existing := `apiVersion: policies.kyverno.io/v1beta1
kind: MutatingPolicy
metadata: {name: touch-configmaps}
spec:` + deploymentsMatch + `
  evaluation:
    mutateExisting: {enabled: true}
  targetMatchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [configmaps]
  mutations:
  - patchType: JSONPatch
    jsonPatch:
      expression: >
        [JSONPatch{op: "add", path: "/metadata/labels", value: {"touched": "yes"}}]
`
	eng := loadEngine(t, map[string]string{"fail.yaml": broken("fails", "Fail"), "ignore.yaml": broken("ignores", "Ignore"), "existing.yaml": existing})
	rs, err := Decode("apps/web.yaml", []byte(webDeployment))
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := eng.Mutate(context.Background(), rs[0], Request{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Result{}
	for _, r := range res {
		got[r.Policy] = r
	}
	if r := got["fails"]; r.Status != StatusError || r.Action != Enforce {
		t.Errorf("fails: %+v", r)
	}
	if r := got["ignores"]; r.Status != StatusError || r.Action != Audit {
		t.Errorf("ignores: %+v", r)
	}
	if r := got["touch-configmaps"]; r.Status != StatusError || !strings.HasPrefix(r.Message, notEvaluatedPrefix) {
		t.Errorf("mutateExisting: %+v", r)
	}
	rep := eng.CheckResources(context.Background(), rs, CheckOptions{Workers: 1})
	blocking := 0
	for _, r := range rep.Results {
		if r.Blocking() {
			blocking++
			if r.Policy != "fails" {
				t.Errorf("blocking %+v", r)
			}
		}
	}
	if blocking != 1 {
		t.Errorf("blocking %d, want 1 (fails): %+v", blocking, rep.Results)
	}
}

// TestTypeConverterCRD: a custom resource is merged with its CRD's structural schema
// (a list of x-kubernetes-list-type map merges by key); a kind with no known schema gets
// a deduced converter, and says so.
func TestTypeConverterCRD(t *testing.T) {
	crds := NewCRDSet()
	if err := crds.Add("crds/widget.yaml", []byte(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              parts:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items:
                  type: object
                  required: [name]
                  properties:
                    name: {type: string}
                    size: {type: integer}
                    color: {type: string}
`)); err != nil {
		t.Fatal(err)
	}
	tcs := newTypeConverters(crds.lookup)
	gvk := schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}
	if e := tcs.entry(gvk); e.kind != convCRD {
		t.Fatalf("Widget: converter %v (%s), want the CRD's", e.kind, e.note)
	}
	live := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w", "namespace": "shop", "labels": map[string]any{"a": "1"}},
		"spec":     map[string]any{"parts": []any{map[string]any{"name": "bolt", "size": int64(3)}, map[string]any{"name": "nut", "size": int64(1)}}}}}
	patch := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"labels": map[string]any{"b": "2"}},
		"spec":     map[string]any{"parts": []any{map[string]any{"name": "bolt", "color": "red"}}}}}
	tc := tcs.GetTypeConverter(gvk)
	lt, err := tc.ObjectToTyped(live)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := tc.ObjectToTyped(patch)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := lt.Merge(pt)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := tc.TypedToObject(merged)
	if err != nil {
		t.Fatal(err)
	}
	u := obj.(*unstructured.Unstructured)
	parts, _, _ := unstructured.NestedSlice(u.Object, "spec", "parts")
	if len(parts) != 2 || parts[0].(map[string]any)["color"] != "red" || parts[0].(map[string]any)["size"] == nil {
		t.Errorf("parts not merged by name: %v", parts)
	}
	if l := u.GetLabels(); l["a"] != "1" || l["b"] != "2" {
		t.Errorf("labels not merged: %v", l)
	}
	unknown := schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Gadget"}
	if e := tcs.entry(unknown); e.kind != convDeduced || !strings.Contains(e.note, "no schema known") {
		t.Errorf("Gadget: %v %q", e.kind, e.note)
	}
	if e := tcs.entry(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}); e.kind != convBuiltin {
		t.Errorf("Deployment: %v", e.kind)
	}
}
