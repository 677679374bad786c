//go:build integration && bench

package main

// gitgate report over the bench corpus's 100 apps with and without the verdict cache,
// against a real kube-apiserver + etcd, each report its own process (hack/bench/report-cache.sh
// runs this):
//
//	KUBEBUILDER_ASSETS=$(hack/envtest.sh) GITGATE_BENCH_CORPUS=/tmp/corpus/mono100 \
//	GITGATE_BIN=bin/gitgate go test -tags 'integration bench' -run TestBenchReportCache -v ./cmd/gitgate/

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/git/gittest"
)

func TestBenchReportCache(t *testing.T) {
	corpus, bin := os.Getenv("GITGATE_BENCH_CORPUS"), os.Getenv("GITGATE_BIN")
	if corpus == "" || bin == "" {
		t.Skip("GITGATE_BENCH_CORPUS and GITGATE_BIN are not set: hack/bench/report-cache.sh sets them")
	}
	kubeconfig, _ := startAPIServer(t)
	files := map[string]string{}
	err := filepath.WalkDir(corpus, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(corpus, p)
		b, err := os.ReadFile(p)
		files[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	bare := gittest.InitBare(t, filepath.Join(t.TempDir(), "gitops.git"))
	bare.CommitFiles("corpus", files)
	url := "file://" + bare.Dir
	cache := t.TempDir()
	sel := []string{"--path", "apps", "--app", "*/production"}

	type result struct {
		wall, cpu time.Duration
		rssMiB    int64
		code      int
		json      []byte
	}
	gitgate := func(what string, args ...string) result {
		t.Helper()
		out := filepath.Join(t.TempDir(), "r.json")
		full := append([]string{args[0], url, "--kubeconfig", kubeconfig, "--cache-dir", cache}, sel...)
		full = append(full, args[1:]...)
		if args[0] == "report" {
			full = append(full, "-o", "json="+out)
		}
		cmd := exec.Command(bin, full...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		err := cmd.Run()
		r := result{wall: time.Since(start), code: cmd.ProcessState.ExitCode()}
		if r.code == 2 || r.code < 0 {
			t.Fatalf("%s: %v\n%s", what, err, stderr.String())
		}
		r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		r.rssMiB = cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss / 1024
		r.json, _ = os.ReadFile(out)
		t.Logf("%-34s %8s wall, %8s CPU, peak RSS %4d MiB, exit %d", what, r.wall.Round(time.Millisecond), r.cpu.Round(time.Millisecond), r.rssMiB, r.code)
		return r
	}
	gitgate("sync (first, fills the cluster)", "sync", "--once", "--create-namespace")
	// generated is the report's clock: the one field two reports of the same state differ in.
	same := func(a, b []byte) bool {
		var x, y map[string]any
		if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
			return false
		}
		delete(x, "generated")
		delete(y, "generated")
		p, _ := json.Marshal(x)
		q, _ := json.Marshal(y)
		return bytes.Equal(p, q)
	}
	uncached := gitgate("report --no-cache", "report", "--no-cache")
	cold := gitgate("report, cold cache", "report")
	warm := gitgate("report, warm cache", "report")
	for _, r := range []result{cold, warm} {
		if !same(uncached.json, r.json) {
			t.Errorf("a cached report differs from the uncached one")
		}
	}
	t.Logf("warm/uncached wall: %.2f (%.1fx faster), CPU: %.2f", warm.wall.Seconds()/uncached.wall.Seconds(), uncached.wall.Seconds()/warm.wall.Seconds(), warm.cpu.Seconds()/uncached.cpu.Seconds())

	// One app changes in Git.
	var changedFile string
	for name := range files {
		if strings.HasPrefix(name, "apps/") && strings.Contains(name, "/production/") && strings.HasSuffix(name, "kustomization.yaml") {
			changedFile = name
			break
		}
	}
	if changedFile == "" {
		t.Fatal("no production kustomization in the corpus to change")
	}
	bare.CommitFiles("one app changes", map[string]string{changedFile: files[changedFile] + "commonAnnotations: {bench.gitgate.dev/changed: \"1\"}\n"})
	changedUncached := gitgate("report --no-cache, one app changed", "report", "--no-cache")
	changed := gitgate("report, warm, one app changed", "report")
	if !same(changedUncached.json, changed.json) {
		t.Errorf("after the change, the cached report differs from the uncached one")
	}
}
