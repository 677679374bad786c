package remote

import (
	"fmt"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/repo"
	"sigs.k8s.io/yaml"
)

// benchRepo is a repository whose index also lists 2000 other versions and 100 other
// charts (index entries only), so reading the index costs what a real one does.
func benchRepo(b *testing.B) *helmRepo {
	h := newHelmRepo(b, chartSpec{name: "app", version: "1.0.0"}, chartSpec{name: "app", version: "1.5.0"})
	idx := repo.NewIndexFile()
	if err := yaml.Unmarshal(h.files["/index.yaml"], idx); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 2000; i++ {
		name := "app"
		if i >= 1000 {
			name = fmt.Sprintf("chart%d", i%100)
		}
		md := &chart.Metadata{APIVersion: "v2", Name: name, Version: fmt.Sprintf("0.%d.%d", i/100, i%100), Description: strings.Repeat("d", 100)}
		if err := idx.MustAdd(md, "charts/none.tgz", "", strings.Repeat("0", 64)); err != nil {
			b.Fatal(err)
		}
	}
	y, err := yaml.Marshal(idx)
	if err != nil {
		b.Fatal(err)
	}
	h.files["/index.yaml"] = y
	return h
}

func benchWarm(b *testing.B, version string, newEach bool) {
	h := benchRepo(b)
	s := testSettings(b, "")
	f := newFetcher(b, s)
	ref := ChartRef{Repo: h.srv.URL, Name: "app", Version: version}
	if _, err := f.Chart(ctx, ref); err != nil {
		b.Fatal(err)
	}
	before := h.requests.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g := f
		if newEach {
			g = newFetcher(b, s)
		}
		c, err := g.Chart(ctx, ref)
		if err != nil || c.Version != "1.5.0" && c.Version != version {
			b.Fatalf("%v %v", c, err)
		}
	}
	b.StopTimer()
	if n := h.requests.Load() - before; n != 0 {
		b.Fatalf("%d requests while warm", n)
	}
}

// BenchmarkWarmExact: an exact version recorded before; no connection (the record and
// the verified blob).
func BenchmarkWarmExact(b *testing.B) { benchWarm(b, "1.5.0", false) }

// BenchmarkWarmExactNewFetcher: the same from a new Fetcher each time (a new run).
func BenchmarkWarmExactNewFetcher(b *testing.B) { benchWarm(b, "1.5.0", true) }

// BenchmarkWarmRange: a constraint with the index reused (parsed once per Fetcher).
func BenchmarkWarmRange(b *testing.B) { benchWarm(b, "^1", false) }

// BenchmarkWarmRangeNewFetcher: a constraint from a new Fetcher each time: the index
// comes from the cache's compact copy, not the YAML.
func BenchmarkWarmRangeNewFetcher(b *testing.B) { benchWarm(b, "^1", true) }
