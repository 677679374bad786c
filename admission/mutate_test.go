package admission

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
)

// TestHandlerMutatedBodiesAreFast is FuzzHandler's question asked without coverage
// instrumentation: 20,000 bodies mutated from the fuzz seeds the way the fuzzer mutates
// (bytes flipped, cut, chunks duplicated and repeated), with a fixed random seed, each
// answered within a bound far below the request timeout, by the validating and the
// mutating endpoint. A body that makes the handler hang or crawl fails it; the slowest one
// is logged. Every patch the mutating endpoint answers with applies to the object sent.
func TestHandlerMutatedBodiesAreFast(t *testing.T) {
	const inputs, bound = 20000, 2 * time.Second
	seeds := [][]byte{
		review(t, deployment("web", nil), reviewOpts{}),
		review(t, deployment("bad", func(_, c map[string]any) { c["image"] = "nginx:latest" }), reviewOpts{op: admissionv1.Update, old: deployment("bad", nil), user: "u"}),
		review(t, configMap("c"), reviewOpts{op: admissionv1.Delete}),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","operation":"CREATE","object":{"kind":"Pod","spec":{"containers":[{"image":7}]}}}}`),
	}
	g := gateFrom(t, map[string]string{
		"deny.yaml":   denyKindPolicy("deny-cm", "ConfigMap", "no ConfigMaps {{ request.object.metadata.name }}"),
		"labels.yaml": fuzzPatternPolicy,
		"mutate.yaml": addNonRootPolicy,
	})
	opts := DefaultHandlerOptions()
	opts.MaxRequestBytes = 1 << 20
	h := NewHandler(func() *Gate { return g }, opts)
	m := h.Mutating()
	patches := 0
	rng := rand.New(rand.NewSource(1))
	var worst time.Duration
	var worstIn []byte
	n := 0
	for ; n < inputs; n++ {
		in := append([]byte{}, seeds[rng.Intn(len(seeds))]...)
		for k := rng.Intn(8) + 1; k > 0; k-- {
			if len(in) == 0 {
				break
			}
			i := rng.Intn(len(in))
			switch rng.Intn(5) {
			case 0:
				in[i] = byte(rng.Intn(256))
			case 1:
				j := i + rng.Intn(len(in)-i)
				in = append(in[:i], in[j:]...)
			case 2: // duplicate a chunk
				j := i + rng.Intn(min(len(in)-i, 64)+1)
				chunk := append([]byte{}, in[i:j]...)
				in = append(in[:j], append(chunk, in[j:]...)...)
			case 3:
				in[i] = "{}[]\":,0123456789e-"[rng.Intn(19)]
			case 4: // repeat a chunk many times
				j := i + rng.Intn(min(len(in)-i, 16)+1)
				chunk := bytes.Repeat(in[i:j], rng.Intn(200))
				in = append(in[:j], append(chunk, in[j:]...)...)
			}
		}
		for _, endpoint := range []http.Handler{h, m} {
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(in))
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			s := time.Now()
			endpoint.ServeHTTP(w, req)
			if d := time.Since(s); d > worst {
				worst, worstIn = d, in
			}
			if endpoint == http.Handler(m) && w.Code == http.StatusOK && patchApplies(t, in, w.Body.Bytes()) {
				patches++
			}
		}
	}
	t.Logf("%d bodies to both endpoints, slowest %v; %d patches, each applied to its object", n, worst, patches)
	if patches == 0 {
		t.Error("no body got a patch: the mutating endpoint was not exercised")
	}
	if worst > bound {
		t.Errorf("a body took %v (bound %v): %q", worst, bound, worstIn[:min(len(worstIn), 400)])
	}
}

// patchApplies reports whether the answer carries a patch, failing the test when that
// patch does not apply to the request's object.
func patchApplies(t *testing.T, body, answer []byte) bool {
	t.Helper()
	var in, out admissionv1.AdmissionReview
	if err := json.Unmarshal(answer, &out); err != nil || out.Response == nil {
		t.Fatalf("200 without an AdmissionReview response: %q", answer)
	}
	if len(out.Response.Patch) == 0 {
		return false
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Request == nil {
		t.Fatalf("a patch for a body that is not an AdmissionReview: %q", body)
	}
	p, err := jsonpatch.DecodePatch(out.Response.Patch)
	if err != nil {
		t.Fatalf("patch %s does not decode: %v", out.Response.Patch, err)
	}
	if _, err := p.Apply(in.Request.Object.Raw); err != nil {
		t.Errorf("patch %s does not apply to the object sent %s: %v", out.Response.Patch, in.Request.Object.Raw, err)
	}
	return true
}
