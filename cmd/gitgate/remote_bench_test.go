package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkCheckRemoteCharts is issue 14's measure: a repository of 50 Argo CD
// Applications, each on its own chart from a Helm repository on 127.0.0.1 at a version
// range (1.*, resolved against the index). Sub-benchmarks: cold (an empty cache each
// run: resolve, fetch, verify, render, check), warm (the cache filled, the server up)
// and offline (--offline on the filled cache). The cache's size is reported.
//
// With GITGATE_BENCH_HELM=/path/to/helm (hack/bench/tools.sh helm), the peer loop runs in
// the same process: `helm template APP CHART --repo URL --version 1.*` for the 50
// Applications with an empty Helm cache (helm fetches the index and the chart each time),
// as the helm-loop sub-benchmark beside gitgate's.
//
//	go test -run '^$' -bench CheckRemoteCharts -benchtime 5x ./cmd/gitgate
func BenchmarkCheckRemoteCharts(b *testing.B) {
	const apps = 50
	names := make([]string, apps)
	for i := range names {
		names[i] = fmt.Sprintf("app%02d", i)
	}
	srv := newChartServerOf(b, names, "1.0.0", "1.1.0")
	dir := b.TempDir()
	files := map[string]string{".gitgate.yaml": "registries: [registry.example.com]\nremotes:\n  allow: ['http://127.0.0.1']\n"}
	for _, n := range names {
		files["apps/"+n+".yaml"] = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: " + n + ", namespace: argocd}\nspec:\n  project: default\n" +
			"  source: {repoURL: '" + srv.URL + "', chart: " + n + ", targetRevision: '1.*'}\n  destination: {server: https://kubernetes.default.svc, namespace: " + n + "}\n"
	}
	writeFiles(b, dir, files)
	b.Setenv("CI", "1")
	b.Setenv("HELM_REPOSITORY_CONFIG", filepath.Join(b.TempDir(), "none.yaml"))
	check := func(b *testing.B, args ...string) {
		var out, errb bytes.Buffer
		if code := run(context.Background(), append(append([]string{"check"}, args...), dir), &out, &errb); code > 1 {
			b.Fatalf("exit %d\n%s", code, errb.String())
		}
		if !strings.Contains(out.String(), fmt.Sprintf("from %d targets", apps+1)) {
			b.Fatalf("not every target checked:\n%s", out.String())
		}
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			check(b, "--cache-dir", b.TempDir())
		}
	})
	cache := b.TempDir()
	check(b, "--cache-dir", cache)
	b.Run("warm", func(b *testing.B) {
		for b.Loop() {
			check(b, "--cache-dir", cache)
		}
	})
	b.Run("offline", func(b *testing.B) {
		for b.Loop() {
			check(b, "--offline", "--cache-dir", cache)
		}
		b.ReportMetric(float64(dirSize(cache))/(1<<10), "cache-KiB")
	})
	if helm := os.Getenv("GITGATE_BENCH_HELM"); helm != "" {
		b.Run("helm-loop", func(b *testing.B) {
			for b.Loop() {
				home := b.TempDir()
				for _, n := range names {
					cmd := exec.Command(helm, "template", n, n, "--repo", srv.URL, "--version", "1.*")
					cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
					if out, err := cmd.CombinedOutput(); err != nil {
						b.Fatalf("helm template %s: %v\n%s", n, err, out)
					}
				}
			}
		})
	}
}

// newChartServerOf is a chart server holding every name at every version.
func newChartServerOf(t testing.TB, names []string, versions ...string) *chartServer {
	t.Helper()
	var specs []chartSpecOf
	for _, n := range names {
		for _, v := range versions {
			specs = append(specs, chartSpecOf{n, v})
		}
	}
	return serveCharts(t, specs)
}
