package admission

import (
	"bytes"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

// TestHandlerMutatedBodiesAreFast is FuzzHandler's question asked without coverage
// instrumentation: 20,000 bodies mutated from the fuzz seeds the way the fuzzer mutates
// (bytes flipped, cut, chunks duplicated and repeated), with a fixed random seed, each
// answered within a bound far below the request timeout. A body that makes the handler
// hang or crawl fails it; the slowest one is logged.
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
	})
	opts := DefaultHandlerOptions()
	opts.MaxRequestBytes = 1 << 20
	h := NewHandler(func() *Gate { return g }, opts)
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
		req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(in))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s := time.Now()
		h.ServeHTTP(w, req)
		if d := time.Since(s); d > worst {
			worst, worstIn = d, in
		}
	}
	t.Logf("%d bodies, slowest %v", n, worst)
	if worst > bound {
		t.Errorf("a body took %v (bound %v): %q", worst, bound, worstIn[:min(len(worstIn), 400)])
	}
}
