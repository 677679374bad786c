package render

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/remote"
	"github.com/gitgate/gitgate/internal/repopath"
	"github.com/gitgate/gitgate/internal/verdictcache"
)

// testPlanMemo is cmd/gitgate's plan memo: the verdict cache's store, the run's digests
// through the stat memo.
type testPlanMemo struct {
	vc    *verdictcache.Cache
	files *verdictcache.Files
	stat  *verdictcache.StatMemo
	saves int
}

func (m *testPlanMemo) Load() ([]byte, bool) { return m.vc.Memo("plan", "test") }
func (m *testPlanMemo) Save(b []byte)        { m.saves++; m.vc.PutMemo("plan", "test", b) }
func (m *testPlanMemo) Digest(name string, fi fs.FileInfo) (string, error) {
	return m.files.FileDigest(name, fi)
}
func (m *testPlanMemo) Listed(dir string, names map[string]bool) { m.files.Listed(dir, names) }
func (m *testPlanMemo) Seen(name string, fi fs.FileInfo, data []byte) string {
	return m.files.Seen(name, fi, data)
}

// memoPlan is one run's plan through the memo in cacheDir: a fresh Root (a run), the
// stat memo opened at the run's start and saved at its end.
func memoPlan(t testing.TB, cacheDir, dir string, opts DiscoverOptions) (*Discovery, PlanStats, Repo) {
	t.Helper()
	vc, err := verdictcache.Open(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	fsys := repopath.DirFS(dir)
	stat := vc.OpenStatMemo(fsys.Root().Real(), time.Now())
	m := &testPlanMemo{vc: vc, files: verdictcache.NewFiles(fsys, 0).Trust(stat), stat: stat}
	repo := Repo{Dir: dir, FS: fsys}
	d, stats := PlanWithMemo(context.Background(), repo, opts, 2, m)
	stat.Save()
	return d, stats, repo
}

// samePlan fails unless got is the plan fresh is: targets, notices, errors, whether it
// renders, and every target's dependencies.
func samePlan(t testing.TB, what string, fresh, got *Discovery, repo Repo) {
	t.Helper()
	if !reflect.DeepEqual(fresh.Targets, got.Targets) && !(len(fresh.Targets) == 0 && len(got.Targets) == 0) {
		t.Errorf("%s: targets differ:\nfresh %+v\ngot   %+v", what, fresh.Targets, got.Targets)
	}
	// A plan from the memo keeps no Application objects (PlanMemo); a fresh one has them.
	if !reflect.DeepEqual(fresh.Notices, got.Notices) || fresh.NeedsRendering != got.NeedsRendering || len(got.Apps) != 0 && len(fresh.Apps) != len(got.Apps) {
		t.Errorf("%s: notices %q / %q, needs rendering %v / %v, apps %d / %d", what, fresh.Notices, got.Notices, fresh.NeedsRendering, got.NeedsRendering, len(fresh.Apps), len(got.Apps))
	}
	if fmt.Sprint(fresh.Errors) != fmt.Sprint(got.Errors) {
		t.Errorf("%s: errors %v / %v", what, fresh.Errors, got.Errors)
	}
	if a, b := DepsOf(repo, fresh, fresh.Targets), DepsOf(repo, got, got.Targets); !reflect.DeepEqual(a, b) {
		t.Errorf("%s: dependencies differ:\nfresh %v\ngot   %v", what, a, b)
	}
}

// copyTree copies a test repository (symbolic links as links).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, out)
		case d.IsDir():
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPlanMemoSame: over the test repositories, the plan from the memo is the plan Plan
// makes, and one that is stored is used by the next run; one whose Argo CD Applications
// discovery found in its files is stored too, one with app-of-apps (Applications a
// render makes) is planned afresh every run.
func TestPlanMemoSame(t *testing.T) {
	repos := []string{"../testdata/shapes/catalog", "../testdata/shapes/app-of-apps", "../testdata/shapes/leaf-overlay-app", "../testdata/shapes/plugin-app",
		"../testdata/gitops", "../testdata/seed/repo", "testdata/helm", "testdata/argocd/repo", "testdata/jsonnet/repo"}
	stored, storedApps := 0, 0
	for _, src := range repos {
		t.Run(strings.ReplaceAll(strings.TrimPrefix(src, "../"), "/", "_"), func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, src, dir)
			cache := t.TempDir()
			fresh := Plan(context.Background(), Repo{Dir: dir}, DiscoverOptions{}, 2)
			d1, s1, repo := memoPlan(t, cache, dir, DiscoverOptions{})
			samePlan(t, "first run", fresh, d1, repo)
			if s1.Reused {
				t.Fatal("first run: a plan reused from an empty cache")
			}
			d2, s2, repo := memoPlan(t, cache, dir, DiscoverOptions{})
			samePlan(t, "second run", fresh, d2, repo)
			if s1.Stored != s2.Reused {
				t.Errorf("stored %v (%s), then reused %v (%s)", s1.Stored, s1.Why, s2.Reused, s2.Why)
			}
			if fresh.opaqueRender && s1.Stored {
				t.Errorf("a plan that rendered a kustomization or chart to find Applications stored")
			}
			if s1.Stored {
				stored++
				if len(fresh.Apps) > 0 {
					storedApps++
				}
			}
		})
	}
	if stored < 3 || storedApps < 1 {
		t.Errorf("%d of the test repositories' plans stored, %d with Applications: the memo is not exercised", stored, storedApps)
	}
}

// TestPlanMemoChanges: an app added, an app removed, a kustomization edited (same size),
// a values file for a chart added, a directory emptied: each run after a change plans
// afresh and gets Plan's plan; the run after that reuses it.
func TestPlanMemoChanges(t *testing.T) {
	dir := t.TempDir()
	app := func(name string) map[string]string {
		return map[string]string{
			"apps/" + name + "/base/kustomization.yaml":          "resources:\n- deployment.yaml\n",
			"apps/" + name + "/base/deployment.yaml":             "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + name + "\n",
			"apps/" + name + "/overlays/prod/kustomization.yaml": "resources:\n- ../../base\n",
			"apps/" + name + "/overlays/dev/kustomization.yaml":  "resources:\n- ../../base\n",
		}
	}
	writeFiles(t, dir, app("web"))
	writeFiles(t, dir, app("api"))
	writeFiles(t, dir, map[string]string{
		"charts/db/Chart.yaml":                 "apiVersion: v2\nname: db\nversion: 0.1.0\n",
		"charts/db/values.yaml":                "replicas: 1\n",
		"charts/db/templates/cm.yaml":          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: db\n",
		"plain/cm.yaml":                        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n",
		"components/probes/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n",
	})
	cache := t.TempDir()
	run := func(what string, wantReused bool) {
		t.Helper()
		fresh := Plan(context.Background(), Repo{Dir: dir}, DiscoverOptions{}, 2)
		d, s, repo := memoPlan(t, cache, dir, DiscoverOptions{})
		samePlan(t, what, fresh, d, repo)
		if s.Reused != wantReused {
			t.Errorf("%s: reused %v, want %v (%s)", what, s.Reused, wantReused, s.Why)
		}
		if !s.Reused && !s.Stored {
			t.Errorf("%s: not stored: %s", what, s.Why)
		}
	}
	run("first", false)
	run("unchanged", true)

	writeFiles(t, dir, app("cart"))
	run("an app added", false)
	run("after an app added", true)

	if err := os.RemoveAll(filepath.Join(dir, "apps/api")); err != nil {
		t.Fatal(err)
	}
	run("an app removed", false)
	run("after an app removed", true)

	// Same size: the overlay now builds on a component instead of nothing new.
	p := filepath.Join(dir, "apps/web/overlays/prod/kustomization.yaml")
	writeFiles(t, dir, map[string]string{"apps/web/overlays/prod/kustomization.yaml": "resources:\n- ../../bas/\n"})
	if st, _ := os.Stat(p); st.Size() != int64(len("resources:\n- ../../base\n")) {
		t.Fatalf("the edit changed the size")
	}
	run("a kustomization edited", false)
	run("after a kustomization edited", true)

	writeFiles(t, dir, map[string]string{"charts/db/values-prod.yaml": "replicas: 3\n"})
	run("a values file added", false)
	run("after a values file added", true)

	// A plain manifest that becomes an Application: planned afresh, its target now the
	// Application's; stored, and the next run reuses it.
	writeFiles(t, dir, map[string]string{"plain/cm.yaml": "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: x\nspec:\n  source:\n    repoURL: https://git.example.com/this.git\n    path: apps/web/overlays/dev\n"})
	fresh := Plan(context.Background(), Repo{Dir: dir}, DiscoverOptions{}, 2)
	if len(fresh.Apps) != 1 {
		t.Fatalf("the Application added: %d Applications found, want 1", len(fresh.Apps))
	}
	d, s, repo := memoPlan(t, cache, dir, DiscoverOptions{})
	samePlan(t, "an Application added", fresh, d, repo)
	if s.Reused || !s.Stored {
		t.Errorf("an Application added: reused %v, stored %v (%s)", s.Reused, s.Stored, s.Why)
	}
	run("after an Application added", true)
	// Its source path edited: planned afresh.
	writeFiles(t, dir, map[string]string{"plain/cm.yaml": "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: x\nspec:\n  source:\n    repoURL: https://git.example.com/this.git\n    path: apps/web/overlays/prod\n"})
	run("an Application's path edited", false)
	run("after an Application's path edited", true)
}

// BenchmarkPlanWarm: planning an unchanged repository of 300 kustomize apps (three
// overlays each) and 30 charts, afresh (Plan: every file read) and from the memo
// (PlanWithMemo after a run that stored it: listings and stats, no file read).
func BenchmarkPlanWarm(b *testing.B) {
	dir := b.TempDir()
	files := map[string]string{}
	for i := 0; i < 300; i++ {
		a := fmt.Sprintf("apps/app-%03d", i)
		files[a+"/base/kustomization.yaml"] = "resources:\n- deployment.yaml\n- service.yaml\n"
		files[a+"/base/deployment.yaml"] = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 2\n"
		files[a+"/base/service.yaml"] = "apiVersion: v1\nkind: Service\nmetadata:\n  name: app\n"
		for _, env := range []string{"dev", "staging", "prod"} {
			files[a+"/overlays/"+env+"/kustomization.yaml"] = "resources:\n- ../../base\npatches:\n- path: patch.yaml\n"
			files[a+"/overlays/"+env+"/patch.yaml"] = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 3\n"
		}
	}
	for i := 0; i < 30; i++ {
		c := fmt.Sprintf("charts/chart-%02d", i)
		files[c+"/Chart.yaml"] = "apiVersion: v2\nname: c\nversion: 0.1.0\n"
		files[c+"/values.yaml"] = "replicas: 1\n"
		files[c+"/values-prod.yaml"] = "replicas: 3\n"
		files[c+"/templates/deployment.yaml"] = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n"
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	// Files older than the runs that hash them: trusted by the stat memo.
	past := time.Now().Add(-time.Hour)
	for name := range files {
		_ = os.Chtimes(filepath.Join(dir, filepath.FromSlash(name)), past, past)
	}
	b.Run("fresh", func(b *testing.B) {
		for b.Loop() {
			Plan(context.Background(), Repo{Dir: dir}, DiscoverOptions{}, 2)
		}
	})
	cache := b.TempDir()
	memoPlan(b, cache, dir, DiscoverOptions{})
	time.Sleep(1100 * time.Millisecond) // the memo's run start past the files' change times
	memoPlan(b, cache, dir, DiscoverOptions{})
	b.Run("memo", func(b *testing.B) {
		for b.Loop() {
			if _, s, _ := memoPlan(b, cache, dir, DiscoverOptions{}); !s.Reused {
				b.Fatalf("not reused: %s", s.Why)
			}
		}
	})
}

// gitRemotes answers every Git fetch with an error and counts them; Check allows all.
type gitRemotes struct {
	Remotes
	fetched int
}

func (g *gitRemotes) Check(string) error { return nil }
func (g *gitRemotes) Git(context.Context, string, string) (*remote.GitTree, error) {
	g.fetched++
	return nil, errors.New("no network in this test")
}

// TestPlanMemoRemoteSource: an Application whose source is another repository makes Plan
// consult Repo.Remotes (to tell the source's kind); what it learns there is not observed,
// so that plan is not stored, while the same repository without the remote source is.
func TestPlanMemoRemoteSource(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"apps/web/kustomization.yaml": "resources:\n- cm.yaml\n",
		"apps/web/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n",
		"argocd/other.yaml":           "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: other\nspec:\n  source:\n    repoURL: https://git.example.com/other.git\n    path: deploy\n",
	})
	rem := &gitRemotes{}
	cache := t.TempDir()
	plan := func() PlanStats {
		t.Helper()
		vc, err := verdictcache.Open(cache)
		if err != nil {
			t.Fatal(err)
		}
		fsys := repopath.DirFS(dir)
		stat := vc.OpenStatMemo(fsys.Root().Real(), time.Now())
		m := &testPlanMemo{vc: vc, files: verdictcache.NewFiles(fsys, 0).Trust(stat), stat: stat}
		_, s := PlanWithMemo(context.Background(), Repo{Dir: dir, FS: fsys, Remotes: rem}, DiscoverOptions{RepoURLs: []string{"https://git.example.com/this.git"}}, 2, m)
		stat.Save()
		return s
	}
	if s := plan(); s.Stored || s.Reused || rem.fetched == 0 || !strings.Contains(s.Why, "remote repository consulted") {
		t.Fatalf("an Application of another repository: stored %v, reused %v, %d fetches (%s); want not stored, the remote consulted", s.Stored, s.Reused, rem.fetched, s.Why)
	}
	if s := plan(); s.Reused {
		t.Errorf("the next run reused a plan that was not stored (%s)", s.Why)
	}
	if err := os.Remove(filepath.Join(dir, "argocd/other.yaml")); err != nil {
		t.Fatal(err)
	}
	if s := plan(); !s.Stored {
		t.Errorf("without the remote source: not stored (%s)", s.Why)
	}
}
