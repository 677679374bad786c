package admission

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
)

// FuzzHandler sends arbitrary bodies to the handler's validating and mutating endpoints:
// they never panic, answer 200 with an AdmissionReview for the same uid (a patch that
// applies to the object sent), or a 4xx with a reason.
//
//	go test ./admission -run '^$' -fuzz '^FuzzHandler$' -fuzztime 30s
func FuzzHandler(f *testing.F) {
	f.Add(review(f, deployment("web", nil), reviewOpts{}))
	f.Add(review(f, deployment("bad", func(_, c map[string]any) { c["image"] = "nginx:latest" }), reviewOpts{op: admissionv1.Update, old: deployment("bad", nil), user: "u"}))
	f.Add(review(f, configMap("c"), reviewOpts{op: admissionv1.Delete}))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","operation":"CREATE","object":{"kind":"Pod","spec":{"containers":[{"image":7}]}}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","object":null,"oldObject":[]}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","kind":{"kind":"Deployment"},"object":{"metadata":{"name":1e400}}}}`))
	f.Add([]byte(`not json`))
	f.Add([]byte(``))
	// A small gate keeps each execution cheap (the built-in bundle costs milliseconds per
	// Deployment under coverage instrumentation); the handler's paths are the same.
	g := gateFrom(f, map[string]string{
		"deny.yaml":   denyKindPolicy("deny-cm", "ConfigMap", "no ConfigMaps {{ request.object.metadata.name }}"),
		"labels.yaml": fuzzPatternPolicy,
		"mutate.yaml": addNonRootPolicy,
	})
	opts := DefaultHandlerOptions()
	opts.MaxRequestBytes = 1 << 20
	h := NewHandler(func() *Gate { return g }, opts)
	m := h.Mutating()
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzOne(t, h, body)
		fuzzOne(t, m, body)
	})
}

func fuzzOne(t *testing.T, endpoint http.Handler, body []byte) {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	endpoint.ServeHTTP(w, req)
	switch w.Code {
	case http.StatusOK:
		var in, out admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &in); err != nil || in.Request == nil {
			t.Fatalf("200 for a body that is not an AdmissionReview: %q", body)
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Response == nil {
			t.Fatalf("200 without an AdmissionReview response: %q (%v)", w.Body.Bytes(), err)
		}
		if out.Response.UID != in.Request.UID {
			t.Fatalf("response uid %q, request uid %q", out.Response.UID, in.Request.UID)
		}
		patchApplies(t, body, w.Body.Bytes())
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		if !bytes.HasPrefix(w.Body.Bytes(), []byte("gitgate admission: ")) || w.Body.Len() < len("gitgate admission: x") {
			t.Fatalf("HTTP %d without a reason: %q", w.Code, w.Body.Bytes())
		}
	default:
		t.Fatalf("HTTP %d for %q: %s", w.Code, body, w.Body.Bytes())
	}
}

const fuzzPatternPolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-name-label
spec:
  rules:
    - name: name-label
      match:
        any:
          - resources:
              kinds: [Pod]
      validate:
        failureAction: Audit
        message: "label app.kubernetes.io/name is required"
        pattern:
          metadata:
            labels:
              app.kubernetes.io/name: "?*"
`
