package admission

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/gitgate/gitgate/policy"
	admissionv1 "k8s.io/api/admission/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// Mutate policies for the mutating endpoint's tests: defaults added to Pods (autogen
// carries them to Deployments), a label, a rule that fails (failurePolicy Fail, the
// default, and Ignore), a mutateExisting rule, and a validate rule that requires what the
// first one adds.
const (
	addNonRootPolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: add-run-as-non-root
spec:
  rules:
    - name: run-as-non-root
      match:
        any:
          - resources:
              kinds: [Pod]
      mutate:
        patchStrategicMerge:
          spec:
            securityContext:
              +(runAsNonRoot): true
`
	addTeamPolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: add-team-label
spec:
  rules:
    - name: team
      match:
        any:
          - resources:
              kinds: [Deployment]
      mutate:
        patchStrategicMerge:
          metadata:
            labels:
              +(team): platform
`
	brokenPolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: broken-mutate
spec:
  rules:
    - name: impossible-patch
      match:
        any:
          - resources:
              kinds: [Deployment]
              names: ["broken*"]
      mutate:
        patchesJson6902: |-
          - op: test
            path: /spec/replicas
            value: 99
`
	lenientPolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: lenient-mutate
spec:
  failurePolicy: Ignore
  rules:
    - name: impossible-patch
      match:
        any:
          - resources:
              kinds: [Deployment]
              names: ["lenient*"]
      mutate:
        patchesJson6902: |-
          - op: test
            path: /spec/replicas
            value: 99
`
	existingPolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: touch-settings
spec:
  rules:
    - name: touch
      match:
        any:
          - resources:
              kinds: [Deployment]
              names: ["existing*"]
      mutate:
        targets:
          - apiVersion: v1
            kind: ConfigMap
            name: settings
            namespace: "{{ request.object.metadata.namespace }}"
        patchStrategicMerge:
          metadata:
            labels:
              touched: "yes"
`
	requireNonRootPolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-non-root
spec:
  rules:
    - name: non-root
      match:
        any:
          - resources:
              kinds: [Pod]
      validate:
        failureAction: Enforce
        message: runAsNonRoot must be true
        pattern:
          spec:
            securityContext:
              runAsNonRoot: true
`
)

// labelConfigMapsPolicy labels every ConfigMap gitgate.dev/mutated=yes (a mutate rule).
const labelConfigMapsPolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: label-configmaps
spec:
  rules:
    - name: label
      match:
        any:
          - resources:
              kinds: [ConfigMap]
      mutate:
        patchStrategicMerge:
          metadata:
            labels:
              +(gitgate.dev/mutated): "yes"
`

func mutateGate(t *testing.T) *Gate {
	t.Helper()
	return gateFrom(t, map[string]string{
		"nonroot.yaml":  addNonRootPolicy,
		"team.yaml":     addTeamPolicy,
		"broken.yaml":   brokenPolicy,
		"lenient.yaml":  lenientPolicy,
		"existing.yaml": existingPolicy,
		"require.yaml":  requireNonRootPolicy,
		"deny-cm.yaml":  denyKindPolicy("deny-cm", "ConfigMap", "no ConfigMaps"),
	})
}

// serveBoth serves h at /validate and its mutating endpoint at /mutate.
func serveBoth(t *testing.T, h *Handler) (validate, mutate string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/validate", h)
	mux.Handle("/mutate", h.Mutating())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/validate", srv.URL + "/mutate"
}

// rootDeployment lacks runAsNonRoot (pod and container) and the team label.
func rootDeployment(name string) map[string]any {
	return deployment(name, func(pod, c map[string]any) {
		delete(pod, "securityContext")
		delete(c["securityContext"].(map[string]any), "runAsNonRoot")
	})
}

// applyPatch applies a response's JSONPatch to obj and returns the result as JSON-decoded
// maps (no patch: obj itself, re-decoded).
func applyPatch(t *testing.T, obj map[string]any, resp *admissionv1.AdmissionResponse) map[string]any {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Patch) > 0 {
		if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Fatalf("patch type %v, want JSONPatch", resp.PatchType)
		}
		p, err := jsonpatch.DecodePatch(resp.Patch)
		if err != nil {
			t.Fatalf("decode patch %s: %v", resp.Patch, err)
		}
		if raw, err = p.Apply(raw); err != nil {
			t.Fatalf("apply patch %s: %v", resp.Patch, err)
		}
	}
	var out map[string]any
	if err := utiljson.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// engineMutate is Engine.Mutate on obj as a CREATE, JSON-normalised.
func engineMutate(t *testing.T, g *Gate, obj map[string]any) ([]policy.Result, map[string]any) {
	t.Helper()
	raw, _ := json.Marshal(obj)
	u, err := decodeObject(raw)
	if err != nil {
		t.Fatal(err)
	}
	results, patched, err := g.Mutate(context.Background(), policy.Resource{Object: u}, policy.Request{Operation: "CREATE"})
	if err != nil {
		t.Fatalf("Engine.Mutate: %v", err)
	}
	b, _ := json.Marshal(patched.Object)
	var out map[string]any
	if err := utiljson.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return results, out
}

func nested(obj map[string]any, path ...string) any {
	var v any = obj
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// The patch applied to the object sent is exactly Engine.Mutate's object: the mutations
// `check` and `render --mutated` apply are what the cluster stores.
func TestMutatingPatchEqualsEngineMutate(t *testing.T) {
	g := mutateGate(t)
	_, mutateURL := serveBoth(t, NewHandler(func() *Gate { return g }, DefaultHandlerOptions()))
	obj := rootDeployment("web")
	resp := post(t, mutateURL, review(t, obj, reviewOpts{}))
	if !resp.Allowed {
		t.Fatalf("denied: %+v", resp.Result)
	}
	if len(resp.Patch) == 0 {
		t.Fatalf("no patch for a Deployment lacking runAsNonRoot and the team label")
	}
	if len(resp.Warnings) != 0 {
		t.Errorf("warnings %q, want none", resp.Warnings)
	}
	got := applyPatch(t, obj, resp)
	_, want := engineMutate(t, g, obj)
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.MarshalIndent(got, "", " ")
		wb, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("patched object differs from Engine.Mutate's:\npatched: %s\nengine: %s", gb, wb)
	}
	if v := nested(got, "spec", "template", "spec", "securityContext", "runAsNonRoot"); v != true {
		t.Errorf("runAsNonRoot = %v after the patch, want true", v)
	}
	if v := nested(got, "metadata", "labels", "team"); v != "platform" {
		t.Errorf("team label = %v after the patch, want platform", v)
	}
	// The object sent had neither: the patch is what changed, nothing else.
	if nested(obj, "metadata", "labels", "team") != nil {
		t.Fatal("test object already has the team label")
	}
}

// An object the mutate rules leave as it is gets no patch (and no patch type).
func TestMutatingNoOpNoPatch(t *testing.T) {
	g := mutateGate(t)
	_, mutateURL := serveBoth(t, NewHandler(func() *Gate { return g }, DefaultHandlerOptions()))
	obj := deployment("web", nil)
	obj["metadata"].(map[string]any)["labels"].(map[string]any)["team"] = "ops" // +(team) keeps it
	if _, mutated := engineMutate(t, g, obj); !reflect.DeepEqual(mutated, applyPatch(t, obj, &admissionv1.AdmissionResponse{})) {
		t.Fatalf("the engine changes this object; the test needs one it leaves alone")
	}
	resp := post(t, mutateURL, review(t, obj, reviewOpts{}))
	if !resp.Allowed || len(resp.Patch) != 0 || resp.PatchType != nil {
		t.Fatalf("allowed=%v patch=%s type=%v; want allowed with no patch", resp.Allowed, resp.Patch, resp.PatchType)
	}
}

// A failing mutate rule denies with its message (failurePolicy Fail, the default); with
// failurePolicy Ignore it warns and the other rules' patch still applies.
func TestMutatingFailedRule(t *testing.T) {
	g := mutateGate(t)
	_, mutateURL := serveBoth(t, NewHandler(func() *Gate { return g }, DefaultHandlerOptions()))

	obj := rootDeployment("broken-web")
	results, _ := engineMutate(t, g, obj)
	var failed []policy.Result
	for _, r := range results {
		if r.Policy == "broken-mutate" && (r.Status == policy.StatusFail || r.Status == policy.StatusError) {
			failed = append(failed, r)
		}
	}
	if len(failed) != 1 {
		t.Fatalf("Engine.Mutate results %+v: want broken-mutate to fail once", results)
	}
	resp := post(t, mutateURL, review(t, obj, reviewOpts{}))
	if resp.Allowed {
		t.Fatalf("allowed (patch %s); want denied by broken-mutate", resp.Patch)
	}
	if len(resp.Patch) != 0 {
		t.Errorf("a denial carries a patch: %s", resp.Patch)
	}
	if resp.Result == nil || resp.Result.Code != http.StatusForbidden {
		t.Fatalf("result %+v, want code 403", resp.Result)
	}
	for _, want := range []string{"Deployment/shop/broken-web", "mutation failed", "broken-mutate/impossible-patch: ", strings.TrimSpace(failed[0].Message)} {
		if !strings.Contains(resp.Result.Message, want) {
			t.Errorf("denial lacks %q:\n%s", want, resp.Result.Message)
		}
	}

	lenient := rootDeployment("lenient-web")
	resp = post(t, mutateURL, review(t, lenient, reviewOpts{}))
	if !resp.Allowed {
		t.Fatalf("failurePolicy Ignore denied: %+v", resp.Result)
	}
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "lenient-mutate/impossible-patch") || !strings.Contains(resp.Warnings[0], "failurePolicy Ignore") {
		t.Errorf("warnings %q, want one for lenient-mutate saying failurePolicy Ignore", resp.Warnings)
	}
	if v := nested(applyPatch(t, lenient, resp), "spec", "template", "spec", "securityContext", "runAsNonRoot"); v != true {
		t.Errorf("runAsNonRoot = %v after the patch, want true (the other policies still apply)", v)
	}
}

// mutateExisting rules are not applied: a warning says so, the request is admitted.
func TestMutatingMutateExistingWarns(t *testing.T) {
	g := mutateGate(t)
	_, mutateURL := serveBoth(t, NewHandler(func() *Gate { return g }, DefaultHandlerOptions()))
	resp := post(t, mutateURL, review(t, deployment("existing-web", nil), reviewOpts{}))
	if !resp.Allowed {
		t.Fatalf("denied: %+v", resp.Result)
	}
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "touch-settings/touch") || !strings.Contains(resp.Warnings[0], "mutateExisting") {
		t.Errorf("warnings %q, want one saying touch-settings/touch (mutateExisting) was not applied", resp.Warnings)
	}
}

// DELETE, subresources and kinds no mutate rule matches get no patch; for the last the
// engine is not run.
func TestMutatingSkips(t *testing.T) {
	g := mutateGate(t)
	h := NewHandler(func() *Gate { return g }, DefaultHandlerOptions())
	var calls atomic.Int32
	h.evalHook = func(ctx context.Context, g *Gate, r policy.Resource, q policy.Request) []policy.Result {
		calls.Add(1)
		return nil
	}
	_, mutateURL := serveBoth(t, h)
	cm := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c", "namespace": "shop"}}
	if !g.matches("ConfigMap") {
		t.Fatal("the gate should validate ConfigMaps (deny-cm), so only the mutate index skips them")
	}
	for name, body := range map[string][]byte{
		"configmap": review(t, cm, reviewOpts{}),
		"delete":    review(t, rootDeployment("web"), reviewOpts{op: admissionv1.Delete}),
	} {
		resp := post(t, mutateURL, body)
		if !resp.Allowed || len(resp.Patch) != 0 || resp.PatchType != nil {
			t.Errorf("%s: allowed=%v patch=%s; want allowed without a patch", name, resp.Allowed, resp.Patch)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the engine ran %d times for requests no mutate rule can match", n)
	}
	req := decodeReview(t, review(t, rootDeployment("web"), reviewOpts{}))
	req.SubResource = "status"
	if resp := h.Mutating().Handle(context.Background(), req); !resp.Allowed || len(resp.Patches) != 0 {
		t.Errorf("status subresource: allowed=%v patches=%v; want allowed without a patch", resp.Allowed, resp.Patches)
	}
	// The hook does count: a Deployment goes through it.
	post(t, mutateURL, review(t, rootDeployment("web"), reviewOpts{}))
	if n := calls.Load(); n != 1 {
		t.Errorf("the engine ran %d times for one Deployment, want 1", n)
	}
}

// The validating endpoint judges the object as sent (already mutated by /mutate in the
// API server's chain); it does not mutate it again itself. Its verdict on the patched
// object is Evaluate's on Engine.Mutate's object, i.e. check's.
func TestValidatingJudgesObjectAsSent(t *testing.T) {
	g := mutateGate(t)
	validateURL, mutateURL := serveBoth(t, NewHandler(func() *Gate { return g }, DefaultHandlerOptions()))
	obj := rootDeployment("web")
	if resp := post(t, validateURL, review(t, obj, reviewOpts{})); resp.Allowed || !strings.Contains(resp.Result.Message, "require-non-root") {
		t.Fatalf("unmutated object: allowed=%v %+v; want denied by require-non-root (the validating endpoint does not mutate)", resp.Allowed, resp.Result)
	}
	patched := applyPatch(t, obj, post(t, mutateURL, review(t, obj, reviewOpts{})))
	resp := post(t, validateURL, review(t, patched, reviewOpts{}))
	_, mutated := engineMutate(t, g, obj)
	raw, _ := json.Marshal(mutated)
	u, _ := decodeObject(raw)
	blocking := 0
	for _, r := range g.Evaluate(context.Background(), policy.Resource{Object: u}, policy.Request{Operation: "CREATE"}) {
		if r.Blocking() {
			blocking++
		}
	}
	if !resp.Allowed || blocking != 0 {
		t.Fatalf("mutated object: allowed=%v (%+v), Evaluate of Engine.Mutate's object has %d blocking; want both to admit", resp.Allowed, resp.Result, blocking)
	}
}

// mutationPatch leaves out what requestObject filled in for the engine (a generateName
// object has no name at CREATE; the request names the kind and namespace).
func TestMutationPatchOmitsFilledFields(t *testing.T) {
	g := mutateGate(t)
	_, mutateURL := serveBoth(t, NewHandler(func() *Gate { return g }, DefaultHandlerOptions()))
	obj := rootDeployment("web")
	body := review(t, obj, reviewOpts{})
	meta := obj["metadata"].(map[string]any)
	delete(meta, "name")
	delete(meta, "namespace")
	var rv admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &rv); err != nil {
		t.Fatal(err)
	}
	rv.Request.Object.Raw, _ = json.Marshal(obj)
	body, _ = json.Marshal(rv)
	resp := post(t, mutateURL, body)
	if !resp.Allowed || len(resp.Patch) == 0 {
		t.Fatalf("allowed=%v patch=%s; want a patch", resp.Allowed, resp.Patch)
	}
	for _, p := range []string{`"/metadata/name"`, `"/metadata/namespace"`} {
		if strings.Contains(string(resp.Patch), p) {
			t.Errorf("patch sets %s, which the object sent did not have: %s", p, resp.Patch)
		}
	}
	if v := nested(applyPatch(t, obj, resp), "spec", "template", "spec", "securityContext", "runAsNonRoot"); v != true {
		t.Errorf("runAsNonRoot = %v after the patch, want true", v)
	}
}
