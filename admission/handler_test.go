package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gitgate/gitgate/policy"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrladmission "sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// builtinGate is the built-in bundle, opened once per test binary (it takes a moment).
var builtinGate = sync.OnceValues(func() (*Gate, error) {
	g, err := policy.OpenGate(policy.GateOptions{})
	if err != nil {
		return nil, err
	}
	return NewGate(g, "builtin", time.Now()), nil
})

func mustBuiltin(t testing.TB) *Gate {
	t.Helper()
	g, err := builtinGate()
	if err != nil {
		t.Fatalf("open built-in gate: %v", err)
	}
	return g
}

// gateFrom builds a gate from policy YAML files alone (no built-in bundle).
func gateFrom(t testing.TB, files map[string]string) *Gate {
	t.Helper()
	fsys := fstest.MapFS{}
	for n, c := range files {
		fsys[n] = &fstest.MapFile{Data: []byte(c)}
	}
	g, err := policy.OpenGate(policy.GateOptions{NoBuiltin: true, PolicyDirs: []policy.Source{{FS: fsys, Root: ".", Display: "test"}}})
	if err != nil {
		t.Fatalf("open gate: %v", err)
	}
	return NewGate(g, "test", time.Now())
}

// deployment returns a Deployment that passes every built-in policy; mutate changes it.
func deployment(name string, mutate func(pod, container map[string]any)) map[string]any {
	container := map[string]any{
		"name":  "web",
		"image": "nginx:1.27.0",
		"resources": map[string]any{
			"requests": map[string]any{"cpu": "100m", "memory": "64Mi"},
			"limits":   map[string]any{"cpu": "500m", "memory": "128Mi"},
		},
		"securityContext": map[string]any{"allowPrivilegeEscalation": false, "runAsNonRoot": true},
		"livenessProbe":   map[string]any{"httpGet": map[string]any{"path": "/healthz", "port": 8080}},
		"readinessProbe":  map[string]any{"httpGet": map[string]any{"path": "/readyz", "port": 8080}},
	}
	pod := map[string]any{
		"securityContext": map[string]any{"runAsNonRoot": true, "runAsUser": 1000},
		"containers":      []any{container},
	}
	if mutate != nil {
		mutate(pod, container)
	}
	return map[string]any{
		"apiVersion": "apps/v1",
		"kind":       "Deployment",
		"metadata":   map[string]any{"name": name, "namespace": "shop", "labels": map[string]any{"app.kubernetes.io/name": name}},
		"spec": map[string]any{
			"replicas": 2,
			"selector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": name}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app.kubernetes.io/name": name}},
				"spec":     pod,
			},
		},
	}
}

type reviewOpts struct {
	op     admissionv1.Operation
	user   string
	old    map[string]any
	dryRun bool
}

func review(t testing.TB, obj map[string]any, o reviewOpts) []byte {
	t.Helper()
	if o.op == "" {
		o.op = admissionv1.Create
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	meta := obj["metadata"].(map[string]any)
	ns, _ := meta["namespace"].(string)
	name, _ := meta["name"].(string)
	gv := strings.SplitN(obj["apiVersion"].(string), "/", 2)
	gvk := metav1.GroupVersionKind{Version: gv[0], Kind: obj["kind"].(string)}
	if len(gv) == 2 {
		gvk = metav1.GroupVersionKind{Group: gv[0], Version: gv[1], Kind: obj["kind"].(string)}
	}
	req := &admissionv1.AdmissionRequest{
		UID: types.UID("uid-" + name), Kind: gvk, Namespace: ns, Name: name, Operation: o.op,
		UserInfo: authenticationv1.UserInfo{Username: o.user, Groups: []string{"system:authenticated"}},
		Object:   runtime.RawExtension{Raw: raw}, DryRun: &o.dryRun,
	}
	if o.op == admissionv1.Delete {
		req.Object = runtime.RawExtension{}
		req.OldObject = runtime.RawExtension{Raw: raw}
	}
	if o.old != nil {
		oldRaw, err := json.Marshal(o.old)
		if err != nil {
			t.Fatal(err)
		}
		req.OldObject = runtime.RawExtension{Raw: oldRaw}
	}
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  req,
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// post sends body to the handler over HTTP and decodes the AdmissionReview answer.
func post(t testing.TB, url string, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, data)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("decode answer %s: %v", data, err)
	}
	if out.Response == nil {
		t.Fatalf("answer has no response: %s", data)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" {
		t.Errorf("answer is %s %s, want admission.k8s.io/v1 AdmissionReview", out.APIVersion, out.Kind)
	}
	return out.Response
}

func serve(t testing.TB, g *Gate, opts HandlerOptions) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewHandler(func() *Gate { return g }, opts))
	t.Cleanup(srv.Close)
	return srv
}

func TestHandlerVerdicts(t *testing.T) {
	srv := serve(t, mustBuiltin(t), DefaultHandlerOptions())
	tests := []struct {
		name         string
		obj          map[string]any
		opts         reviewOpts
		allowed      bool
		wantMessage  []string // substrings of the denial message
		wantWarnings []string // substrings, one warning each
	}{
		{name: "compliant deployment", obj: deployment("web", nil), allowed: true},
		{
			name: "latest tag and root: denied naming every rule",
			obj: deployment("bad", func(pod, c map[string]any) {
				c["image"] = "nginx:latest"
				pod["securityContext"] = map[string]any{"runAsNonRoot": false}
				c["securityContext"] = map[string]any{"allowPrivilegeEscalation": false}
			}),
			allowed: false,
			wantMessage: []string{
				"Deployment/shop/bad blocked by policy",
				"disallow-latest-tag/autogen-image-tag:", "uses the mutable :latest tag",
				"require-run-as-non-root/autogen-run-as-non-root:",
			},
		},
		{
			name:         "audit only: allowed with a warning",
			obj:          deployment("noprobes", func(_, c map[string]any) { delete(c, "livenessProbe"); delete(c, "readinessProbe") }),
			allowed:      true,
			wantWarnings: []string{"require-probes/autogen-liveness", "require-probes/autogen-readiness"},
		},
		{
			name: "dry run judged like a real request",
			obj: deployment("dry", func(_, c map[string]any) {
				c["image"] = "nginx"
			}),
			opts:        reviewOpts{dryRun: true},
			allowed:     false,
			wantMessage: []string{"has neither a tag nor a digest"},
		},
		{
			name: "delete is judged on the old object",
			obj: deployment("gone", func(_, c map[string]any) {
				c["image"] = "nginx:latest"
			}),
			opts:    reviewOpts{op: admissionv1.Delete},
			allowed: true, // the built-in rules match CREATE and UPDATE only
		},
		{
			name:    "kind no policy matches",
			obj:     map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c", "namespace": "shop"}, "data": map[string]any{"a": "b"}},
			allowed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, srv.URL, review(t, tt.obj, tt.opts))
			if resp.Allowed != tt.allowed {
				t.Fatalf("allowed = %v, want %v; result %+v, warnings %q", resp.Allowed, tt.allowed, resp.Result, resp.Warnings)
			}
			if !tt.allowed {
				if resp.Result == nil || resp.Result.Code != http.StatusForbidden {
					t.Fatalf("denial result %+v, want code 403", resp.Result)
				}
				for _, w := range tt.wantMessage {
					if !strings.Contains(resp.Result.Message, w) {
						t.Errorf("denial message lacks %q:\n%s", w, resp.Result.Message)
					}
				}
			}
			if len(resp.Warnings) != len(tt.wantWarnings) {
				t.Fatalf("warnings %q, want %d matching %q", resp.Warnings, len(tt.wantWarnings), tt.wantWarnings)
			}
			for i, w := range tt.wantWarnings {
				if !strings.Contains(resp.Warnings[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, resp.Warnings[i], w)
				}
			}
		})
	}
}

// The verdict is exactly what `gitgate check` decides for the same object: the same
// Evaluate, so Blocking() results and the denial agree one to one.
func TestHandlerAgreesWithEvaluate(t *testing.T) {
	g := mustBuiltin(t)
	srv := serve(t, g, DefaultHandlerOptions())
	objs := []map[string]any{
		deployment("a", nil),
		deployment("b", func(_, c map[string]any) { c["image"] = "busybox" }),
		deployment("c", func(pod, _ map[string]any) { pod["hostPID"] = true; delete(pod, "securityContext") }),
		deployment("d", func(_, c map[string]any) { delete(c, "resources") }),
	}
	for _, obj := range objs {
		raw, _ := json.Marshal(obj)
		u, err := decodeObject(raw)
		if err != nil {
			t.Fatal(err)
		}
		results := g.Evaluate(context.Background(), policy.Resource{Object: u}, policy.Request{})
		var blocking, findings int
		for _, r := range results {
			if r.Blocking() {
				blocking++
			} else if r.Finding() {
				findings++
			}
		}
		resp := post(t, srv.URL, review(t, obj, reviewOpts{}))
		if resp.Allowed != (blocking == 0) {
			t.Errorf("%s: allowed=%v but Evaluate has %d blocking results", u.GetName(), resp.Allowed, blocking)
		}
		if !resp.Allowed && strings.Count(resp.Result.Message, "\n") != blocking {
			t.Errorf("%s: denial names %d rules, Evaluate has %d blocking:\n%s", u.GetName(), strings.Count(resp.Result.Message, "\n"), blocking, resp.Result.Message)
		}
		if len(resp.Warnings) != findings {
			t.Errorf("%s: %d warnings, Evaluate has %d non-blocking findings: %q", u.GetName(), len(resp.Warnings), findings, resp.Warnings)
		}
	}
}

const malloryPolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: no-mallory-updates
spec:
  background: false
  rules:
    - name: block
      match:
        any:
          - resources:
              kinds: [ConfigMap]
              operations: [UPDATE]
            subjects:
              - kind: User
                name: mallory
      validate:
        failureAction: Enforce
        message: "mallory may not change v from {{ request.oldObject.data.v }} to {{ request.object.data.v }}"
        deny:
          conditions:
            any:
              - key: "{{ request.operation }}"
                operator: Equals
                value: UPDATE
`

// Operation, userInfo, the old object and dry-run reach Kyverno's match and context.
func TestHandlerPassesRequestThrough(t *testing.T) {
	srv := serve(t, gateFrom(t, map[string]string{"p.yaml": malloryPolicy}), DefaultHandlerOptions())
	cm := func(v string) map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c", "namespace": "ns"}, "data": map[string]any{"v": v}}
	}
	tests := []struct {
		name    string
		opts    reviewOpts
		allowed bool
		message string
	}{
		{"mallory update", reviewOpts{op: admissionv1.Update, user: "mallory", old: cm("1")}, false, "mallory may not change v from 1 to 2"},
		{"mallory update dry run", reviewOpts{op: admissionv1.Update, user: "mallory", old: cm("1"), dryRun: true}, false, "mallory may not change v from 1 to 2"},
		{"mallory create", reviewOpts{op: admissionv1.Create, user: "mallory"}, true, ""},
		{"alice update", reviewOpts{op: admissionv1.Update, user: "alice", old: cm("1")}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, srv.URL, review(t, cm("2"), tt.opts))
			if resp.Allowed != tt.allowed {
				t.Fatalf("allowed = %v, want %v (%+v)", resp.Allowed, tt.allowed, resp.Result)
			}
			if tt.message != "" && !strings.Contains(resp.Result.Message, tt.message) {
				t.Errorf("message %q lacks %q", resp.Result.Message, tt.message)
			}
		})
	}
}

func TestHandlerFailureMode(t *testing.T) {
	broken := func(context.Context, string) (map[string]string, error) { return nil, errors.New("cache not synced") }
	tests := []struct {
		name     string
		gate     *Gate
		failOpen bool
		labels   func(context.Context, string) (map[string]string, error)
		allowed  bool
		text     string
	}{
		{"no gate, fail closed", nil, false, nil, false, "no policies loaded yet"},
		{"no gate, fail open", nil, true, nil, true, "no policies loaded yet"},
		{"namespace lookup fails, fail closed", mustBuiltin(t), false, broken, false, "cache not synced"},
		{"namespace lookup fails, fail open", mustBuiltin(t), true, broken, true, "cache not synced"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := DefaultHandlerOptions()
			opts.FailOpen = tt.failOpen
			opts.NamespaceLabels = tt.labels
			srv := serve(t, tt.gate, opts)
			resp := post(t, srv.URL, review(t, deployment("web", nil), reviewOpts{}))
			if resp.Allowed != tt.allowed {
				t.Fatalf("allowed = %v, want %v (%+v)", resp.Allowed, tt.allowed, resp.Result)
			}
			text := strings.Join(resp.Warnings, "\n")
			if !tt.allowed {
				text = resp.Result.Message
				if resp.Result.Code != http.StatusInternalServerError {
					t.Errorf("code %d, want 500", resp.Result.Code)
				}
			}
			if !strings.Contains(text, tt.text) {
				t.Errorf("answer %q lacks %q", text, tt.text)
			}
		})
	}
}

// A slow evaluation gets the failure mode within the timeout instead of hanging.
func TestHandlerTimeout(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	opts := DefaultHandlerOptions()
	opts.Timeout = 50 * time.Millisecond
	h := NewHandler(func() *Gate { return mustBuiltin(t) }, opts)
	start := time.Now()
	// evaluate is what applies the timeout; a gate whose engine blocks is simulated
	// by calling it with a context that a stuck engine would ignore.
	_, err := h.evaluateFunc(context.Background(), func() {}, func(context.Context) []policy.Result { <-block; return nil })
	if err == nil || !strings.Contains(err.Error(), "did not finish within 50ms") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %s, want about 50ms", d)
	}
	_, err = h.evaluateFunc(context.Background(), func() {}, func(context.Context) []policy.Result { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "panicked: boom") {
		t.Fatalf("err = %v, want the panic as an error", err)
	}
}

// Evaluations beyond MaxConcurrent wait for a slot, within the same timeout.
func TestHandlerConcurrencyLimit(t *testing.T) {
	opts := DefaultHandlerOptions()
	opts.Timeout = 100 * time.Millisecond
	opts.MaxConcurrent = 1
	h := NewHandler(func() *Gate { return mustBuiltin(t) }, opts)
	// The overdue quota is full, so the evaluation below keeps its slot past its deadline
	// however slow this machine is (else it would hand the slot on after 100ms, which
	// TestOverdueBound covers).
	h.mu.Lock()
	h.overdue = h.opts.MaxOverdue
	h.mu.Unlock()
	release := make(chan struct{})
	running := make(chan struct{})
	go func() {
		_, _ = h.evaluateFunc(context.Background(), func() {}, func(context.Context) []policy.Result { close(running); <-release; return nil })
	}()
	<-running
	_, err := h.evaluateFunc(context.Background(), func() {}, func(context.Context) []policy.Result { return nil })
	if err == nil || !strings.Contains(err.Error(), "no evaluation slot") {
		t.Fatalf("err = %v, want no slot while the only one is taken", err)
	}
	close(release)
	h.mu.Lock()
	h.overdue = 0
	h.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := h.evaluateFunc(context.Background(), func() {}, func(context.Context) []policy.Result { return nil }); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slot was not released after the evaluation returned")
		}
	}
}

func TestHandlerRejectsBadRequests(t *testing.T) {
	opts := DefaultHandlerOptions()
	opts.MaxRequestBytes = 4096
	srv := serve(t, mustBuiltin(t), opts)
	valid := review(t, deployment("web", nil), reviewOpts{})
	tests := []struct {
		name        string
		method      string
		contentType string
		body        string
		code        int
		reason      string
	}{
		{"GET", http.MethodGet, "", "", http.StatusMethodNotAllowed, "method GET not allowed"},
		{"empty body", http.MethodPost, "application/json", "", http.StatusBadRequest, "empty body"},
		{"not JSON", http.MethodPost, "application/json", "{nope", http.StatusBadRequest, "not an AdmissionReview"},
		{"JSON array", http.MethodPost, "application/json", "[1,2]", http.StatusBadRequest, "not an AdmissionReview"},
		{"wrong kind", http.MethodPost, "application/json", `{"apiVersion":"v1","kind":"Pod"}`, http.StatusBadRequest, `kind "Pod"`},
		{"v1beta1 review", http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}`, http.StatusBadRequest, "admissionReviewVersions"},
		{"no request", http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, http.StatusBadRequest, "has no request"},
		{"no uid", http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`, http.StatusBadRequest, "no uid"},
		{"yaml content type", http.MethodPost, "application/yaml", string(valid), http.StatusUnsupportedMediaType, "content type"},
		{"too large", http.MethodPost, "application/json", string(valid) + strings.Repeat(" ", 5000), http.StatusRequestEntityTooLarge, "larger than 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL, strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, tt.code, data)
			}
			if !strings.Contains(string(data), tt.reason) {
				t.Errorf("body %q lacks %q", data, tt.reason)
			}
		})
	}
	// an object the API server would never send: answered as an error, not a panic
	bad := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"apps","version":"v1","kind":"Deployment"},` +
		`"operation":"CREATE","object":{"apiVersion":"apps/v1","kind":"Deployment","metadata":7}}}`
	resp := post(t, srv.URL, []byte(bad))
	if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusBadRequest || !strings.Contains(resp.Result.Message, "metadata is a int64") {
		t.Errorf("a review whose object has metadata: 7: allowed=%v result=%+v, want a 400 naming metadata", resp.Allowed, resp.Result)
	}
}

func TestKindIndex(t *testing.T) {
	g := mustBuiltin(t)
	for _, k := range []string{"Pod", "Deployment", "StatefulSet", "CronJob", "Rollout", "Task", "Pipeline"} {
		if !g.matches(k) {
			t.Errorf("the built-in bundle should match %s", k)
		}
	}
	for _, k := range []string{"ConfigMap", "Secret", "Namespace", "Service"} {
		if g.matches(k) {
			t.Errorf("the built-in bundle should not match %s", k)
		}
	}
	for in, want := range map[string]string{"Deployment": "Deployment", "apps/v1/Deployment": "Deployment", "Pod/exec": "Pod", "v1/Pod.status": "Pod", "argoproj.io/v1alpha1/Rollout": "Rollout"} {
		if got, ok := kindOf(in); !ok || got != want {
			t.Errorf("kindOf(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := kindOf("*"); ok {
		t.Errorf("kindOf(*) should be a wildcard")
	}
}

func decodeReview(t testing.TB, body []byte) ctrladmission.Request {
	t.Helper()
	var r admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &r); err != nil || r.Request == nil {
		t.Fatalf("decode review: %v", err)
	}
	return ctrladmission.Request{AdmissionRequest: *r.Request}
}
