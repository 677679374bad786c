package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"

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

// BenchmarkServeHTTPEndpoints compares the validating and the mutating endpoint on the
// same gate (the built-in bundle plus two mutate policies) and the same Deployment, one
// the mutate rules change (runAsNonRoot, a label): the mutating answer carries a patch.
// "big" is a Pod of 300 containers (about 100 KiB) for the allocation per request byte.
//
//	go test ./admission -run '^$' -bench Endpoints -benchmem
func BenchmarkServeHTTPEndpoints(b *testing.B) {
	fsys := fstest.MapFS{"nonroot.yaml": {Data: []byte(addNonRootPolicy)}, "team.yaml": {Data: []byte(addTeamPolicy)}}
	pg, err := policy.OpenGate(policy.GateOptions{PolicyDirs: []policy.Source{{FS: fsys, Root: ".", Display: "bench"}}})
	if err != nil {
		b.Fatal(err)
	}
	g := NewGate(pg, "bench", time.Now())
	h := NewHandler(func() *Gate { return g }, DefaultHandlerOptions())
	containers := make([]any, 300)
	for i := range containers {
		containers[i] = map[string]any{"name": fmt.Sprintf("c%d", i), "image": "nginx:1.27.0",
			"env": []any{map[string]any{"name": "A", "value": strings.Repeat("x", 200)}}}
	}
	big := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "big", "namespace": "shop"},
		"spec": map[string]any{"containers": containers}}
	for _, obj := range []struct {
		name string
		body []byte
	}{{"deployment", review(b, rootDeployment("web"), reviewOpts{})}, {"big", review(b, big, reviewOpts{})}} {
		for _, ep := range []struct {
			name string
			h    http.Handler
		}{{"validate", h}, {"mutate", h.Mutating()}} {
			b.Run(obj.name+"/"+ep.name, func(b *testing.B) {
				b.ReportAllocs()
				var ms0, ms1 runtime.MemStats
				runtime.ReadMemStats(&ms0)
				n := 0
				for b.Loop() {
					req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(obj.body))
					req.Header.Set("Content-Type", "application/json")
					w := httptest.NewRecorder()
					ep.h.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Fatal(w.Body.String())
					}
					n++
				}
				runtime.ReadMemStats(&ms1)
				b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(n)/float64(len(obj.body)), "allocB/reqB")
			})
		}
	}
}
