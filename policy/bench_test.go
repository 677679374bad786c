package policy

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkCheckCorpus checks a corpus written by ../shared/bench/gencorpus -flat N:
//
//	GITGATE_BENCH_CORPUS=/tmp/corpus/flat1000 go test ./policy -run - -bench CheckCorpus
//
// hack/bench/check.sh runs the whole comparison with Kyverno's CLI.
func BenchmarkCheckCorpus(b *testing.B) {
	dir := os.Getenv("GITGATE_BENCH_CORPUS")
	if dir == "" {
		b.Skip("set GITGATE_BENCH_CORPUS to a gencorpus -flat directory")
	}
	policies := os.Getenv("GITGATE_BENCH_POLICIES")
	if policies == "" {
		policies = "policies"
	}
	set, err := Load(os.DirFS(dir), policies)
	if err != nil {
		b.Fatal(err)
	}
	eng, err := NewEngine(set, Options{})
	if err != nil {
		b.Fatal(err)
	}
	src := Source{FS: os.DirFS(dir), Root: "deployments", Display: filepath.Join(dir, "deployments")}
	b.ResetTimer()
	for b.Loop() {
		rep := eng.Check(context.Background(), []Source{src}, DefaultCheckOptions())
		if len(rep.Errors) > 0 {
			b.Fatal(rep.Errors[0])
		}
		b.ReportMetric(float64(rep.Summary.Resources), "resources/op")
	}
}
