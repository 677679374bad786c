package policy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// manyDeployments is one file of n small Deployments, as a generated repository holds.
func manyDeployments(n int) []byte {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-%d
  namespace: ns-%d
spec:
  selector:
    matchLabels: {app: app-%d}
  template:
    metadata:
      labels: {app: app-%d}
    spec:
      containers:
      - name: app
        image: registry.example.com/app:1.%d
`, i, i%17, i, i, i)
	}
	return []byte(b.String())
}

// BenchmarkManyDocuments checks one file of N Deployments against the built-in bundle:
// the time per document must stay about constant from 1k to 30k documents.
//
//	go test ./policy -run - -bench ManyDocuments -benchtime 1x
func BenchmarkManyDocuments(b *testing.B) {
	set, err := LoadSources(BuiltinSource())
	if err != nil {
		b.Fatal(err)
	}
	eng, err := NewEngine(set, Options{})
	if err != nil {
		b.Fatal(err)
	}
	sizes := []int{1000, 10000, 30000}
	if s := os.Getenv("GITGATE_BENCH_DOCS"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			var n int
			fmt.Sscan(f, &n)
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		fsys := fstest.MapFS{"all.yaml": {Data: manyDeployments(n)}}
		b.Run(fmt.Sprintf("docs=%d", n), func(b *testing.B) {
			opts := DefaultCheckOptions()
			opts.MaxFileSize = 0
			for b.Loop() {
				rep := eng.Check(context.Background(), []Source{{FS: fsys, Root: "all.yaml", Display: filepath.Join("bench", "all.yaml")}}, opts)
				if len(rep.Errors) > 0 {
					b.Fatal(rep.Errors[0])
				}
				if rep.Summary.Resources != n {
					b.Fatalf("checked %d resources, want %d", rep.Summary.Resources, n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/doc")
		})
	}
}

// readJobAll reads a file job's resources at once, for tests.
func readJobAll(j fileJob, limit int64) ([]Resource, error) {
	var out []Resource
	err := readJob(j, limit, func(r Resource) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// TestCheckStreamsDocuments: a file of many documents is checked document by document,
// and an interrupted check stops between documents and says so.
func TestCheckStreamsDocuments(t *testing.T) {
	set, err := LoadSources(BuiltinSource())
	if err != nil {
		t.Fatal(err)
	}
	eng, err := NewEngine(set, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{"all.yaml": {Data: manyDeployments(50)}}
	src := []Source{{FS: fsys, Root: "all.yaml", Display: "all.yaml"}}
	rep := eng.Check(context.Background(), src, DefaultCheckOptions())
	if rep.Summary.Resources != 50 || len(rep.Errors) > 0 {
		t.Fatalf("checked %d resources with errors %v, want 50 and none", rep.Summary.Resources, rep.Errors)
	}
	lines := map[int]bool{}
	for _, r := range rep.Results {
		lines[r.Origin.Line] = true
	}
	if len(lines) < 50 {
		t.Errorf("findings on %d distinct lines, want at least one per document (50)", len(lines))
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep = eng.Check(ctx, src, DefaultCheckOptions())
	if rep.Summary.Resources != 0 {
		t.Errorf("a cancelled check evaluated %d resources", rep.Summary.Resources)
	}
	if len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0].Error(), "interrupted") {
		t.Errorf("errors %v, want one saying the check was interrupted", rep.Errors)
	}
}
