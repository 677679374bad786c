package render

import (
	"context"
	"os"
	"testing"
)

// BenchmarkRenderRepo renders every target of a generated corpus (no gate):
//
//	go run ../shared/bench/gencorpus/main.go -out /tmp/corpus/mono100 -apps 100 -charts 20
//	GITGATE_BENCH_REPO=/tmp/corpus/mono100 go test ./render -run '^$' -bench RenderRepo -cpuprofile cpu.prof
func BenchmarkRenderRepo(b *testing.B) {
	dir := os.Getenv("GITGATE_BENCH_REPO")
	if dir == "" {
		b.Skip("set GITGATE_BENCH_REPO to a generated corpus")
	}
	repo := Repo{FS: os.DirFS(dir), Dir: dir}
	opts := DiscoverOptions{Exclude: []string{"policies"}}
	for b.Loop() {
		d := Plan(context.Background(), repo, opts, 2)
		RenderPlan(context.Background(), repo, d, 2, nil, func(r Rendered) {
			if r.Err != nil {
				b.Error(r.Target.Name, r.Err)
			}
		})
		b.ReportMetric(float64(len(d.Targets)), "targets")
	}
}

// BenchmarkDiscover is discovery alone, the fixed cost of every merge-request check.
func BenchmarkDiscover(b *testing.B) {
	dir := os.Getenv("GITGATE_BENCH_REPO")
	if dir == "" {
		b.Skip("set GITGATE_BENCH_REPO to a generated corpus")
	}
	repo := Repo{FS: os.DirFS(dir), Dir: dir}
	for b.Loop() {
		Discover(context.Background(), repo, DiscoverOptions{Exclude: []string{"policies"}})
	}
}
