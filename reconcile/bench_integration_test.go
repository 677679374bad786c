//go:build integration && bench

package reconcile

// The sync and report measurements over the bench corpus (hack/bench/sync.sh runs this):
//
//	KUBEBUILDER_ASSETS=$(hack/envtest.sh) GITGATE_BENCH_CORPUS=/tmp/corpus/mono100 \
//	GITGATE_BIN=bin/gitgate go test -tags 'integration bench' -run TestBenchCorpus -v ./reconcile/

import (
	"context"
	"fmt"
	gitsrc "github.com/gitgate/gitgate/internal/git"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func TestBenchCorpus(t *testing.T) {
	corpus := os.Getenv("GITGATE_BENCH_CORPUS")
	if corpus == "" {
		t.Skip("GITGATE_BENCH_CORPUS is not set: hack/bench/sync.sh sets it")
	}
	e := startEnv(t)
	ctx := context.Background()

	// The corpus, committed to a bare repository.
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
	g := newGitRepo(t, files)
	src := gitsrc.Source{URL: "file://" + g.bare, CacheDir: t.TempDir()}

	fetchStart := time.Now()
	co, err := src.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fetch := time.Since(fetchStart)
	gate, err := policy.OpenGate(policy.GateOptions{PolicyDirs: []policy.Source{{FS: os.DirFS(co.Dir), Root: "policies", Display: "policies"}}})
	if err != nil {
		t.Fatal(err)
	}
	repo := render.Repo{FS: os.DirFS(co.Dir), Dir: co.Dir}
	apps, _, err := Apps(ctx, repo, AppsOptions{Discover: render.DiscoverOptions{Exclude: []string{"policies"}}, Path: "apps", Select: []string{"*/production"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 100 {
		t.Fatalf("%d apps, want 100", len(apps))
	}
	opts := DefaultOptions()
	opts.CreateNamespace = true
	s := &Syncer{Client: e.client, Gate: gate, Opts: opts}

	w0 := e.counter.writes.Load()
	start := time.Now()
	res := s.Sync(ctx, repo, co.Commit, apps)
	first := time.Since(start)
	writes := e.counter.writes.Load() - w0
	phases := map[Phase]int{}
	objects := 0
	for _, a := range res.Apps {
		phases[a.Phase]++
		objects += a.Count(Created) + a.Count(Configured)
		if a.Phase == Failed {
			t.Errorf("%s: %s", a.App, a.Error)
		}
	}
	t.Logf("fetch+checkout: %s", fetch.Round(time.Millisecond))
	t.Logf("first sync, summed over apps (4 in parallel): %s", split(res))
	t.Logf("first sync of %d apps: %s, %d objects applied, %d API writes (%d by the syncer's own count), phases %v",
		len(apps), first.Round(time.Millisecond), objects, writes, sumWrites(res), phases)

	opts.Resync = true
	s.Opts = opts
	w0 = e.counter.writes.Load()
	start = time.Now()
	res = s.Sync(ctx, repo, co.Commit, apps)
	resync := time.Since(start)
	writes = e.counter.writes.Load() - w0
	t.Logf("no-change resync of %d apps: %s, %d API writes; summed over apps: %s", len(apps), resync.Round(time.Millisecond), writes, split(res))
	if writes != 0 {
		t.Errorf("no-change resync wrote %d times", writes)
	}

	// The report as the CLI runs it, in its own process for its peak RSS.
	bin := os.Getenv("GITGATE_BIN")
	if bin == "" {
		return
	}
	user, err := e.env.AddUser(envtest.User{Name: "bench", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kcFile := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kcFile, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "report", "file://"+g.bare, "--kubeconfig", kcFile, "--cache-dir", t.TempDir(), "--path", "apps", "--app", "*/production", "-o", "json="+filepath.Join(t.TempDir(), "r.json"), "-o", "html="+os.Getenv("GITGATE_BENCH_HTML"))
	if os.Getenv("GITGATE_BENCH_HTML") == "" {
		cmd.Args = cmd.Args[:len(cmd.Args)-2]
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start = time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	code := cmd.ProcessState.ExitCode()
	if code == 2 || code < 0 {
		t.Fatalf("gitgate report: %v\n%s", err, stderr.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	t.Logf("gitgate report over %d apps (own process, cold cache): %s wall, %s CPU, peak RSS %d MiB, exit %d",
		len(apps), wall.Round(time.Millisecond), (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Round(time.Millisecond), ru.Maxrss/1024, code)
}

func split(r *SyncResult) string {
	var rd, g, a time.Duration
	for _, x := range r.Apps {
		rd, g, a = rd+x.Render, g+x.Gate, a+x.Apply
	}
	return fmt.Sprintf("render %s, gate %s, compare+apply %s", rd.Round(time.Millisecond), g.Round(time.Millisecond), a.Round(time.Millisecond))
}

func sumWrites(r *SyncResult) int {
	n := 0
	for _, a := range r.Apps {
		n += a.Writes
	}
	return n
}
