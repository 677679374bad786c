package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gitgate/gitgate/policy"
)

// BenchmarkEvaluate is the in-process cost of judging the benchmark Deployment;
// BenchmarkServeHTTP the handler's cost for the same object, AdmissionReview in and out.
//
//	go test ./admission -run '^$' -bench . -benchmem
func BenchmarkEvaluate(b *testing.B) {
	g := mustBuiltin(b)
	raw, _ := json.Marshal(deployment("web", nil))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		obj, err := decodeObject(raw)
		if err != nil {
			b.Fatal(err)
		}
		if rs := g.Evaluate(ctx, policy.Resource{Object: obj}, policy.Request{}); len(rs) == 0 {
			b.Fatal("no results")
		}
	}
}

func BenchmarkServeHTTP(b *testing.B) {
	g := mustBuiltin(b)
	h := NewHandler(func() *Gate { return g }, DefaultHandlerOptions())
	body := review(b, deployment("web", nil), reviewOpts{})
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Body.String())
		}
	}
}
