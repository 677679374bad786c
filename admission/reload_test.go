package admission

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/git/gittest"
	"github.com/gitgate/gitgate/policy"
)

// denyKindPolicy denies every object of kind with message msg.
func denyKindPolicy(name, kind, msg string) string {
	return fmt.Sprintf(`apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: %s
spec:
  rules:
    - name: deny
      match:
        any:
          - resources:
              kinds: [%s]
      validate:
        failureAction: Enforce
        message: %q
        deny: {}
`, name, kind, msg)
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func configMap(name string) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": name, "namespace": "ns"}}
}

// judge asks the reloader's current gate about a ConfigMap, through the handler.
func judge(t *testing.T, r *Reloader) (bool, string) {
	t.Helper()
	h := NewHandler(r.Gate, DefaultHandlerOptions())
	var req = decodeReview(t, review(t, configMap("c"), reviewOpts{}))
	resp := h.Handle(context.Background(), req)
	if resp.Result != nil {
		return resp.Allowed, resp.Result.Message
	}
	return resp.Allowed, ""
}

func TestReloadDirectory(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), denyKindPolicy("deny-cm", "ConfigMap", "first version"))
	r := NewReloader(ReloaderOptions{Gate: policy.GateOptions{NoBuiltin: true}, Sources: []Source{DirSource{Path: dir}}})
	ctx := context.Background()
	changed, err := r.Reload(ctx)
	if err != nil || !changed {
		t.Fatalf("first load: changed=%v err=%v", changed, err)
	}
	if ok, msg := judge(t, r); ok || !strings.Contains(msg, "first version") {
		t.Fatalf("first version: allowed=%v msg=%q", ok, msg)
	}
	first := r.Gate()
	if changed, err := r.Reload(ctx); err != nil || changed || r.Gate() != first {
		t.Fatalf("reload of unchanged files: changed=%v err=%v, gate replaced=%v", changed, err, r.Gate() != first)
	}

	writeFile(t, filepath.Join(dir, "a.yaml"), denyKindPolicy("deny-cm", "ConfigMap", "second version"))
	if changed, err := r.Reload(ctx); err != nil || !changed {
		t.Fatalf("reload after edit: changed=%v err=%v", changed, err)
	}
	if ok, msg := judge(t, r); ok || !strings.Contains(msg, "second version") {
		t.Fatalf("second version: allowed=%v msg=%q", ok, msg)
	}

	// A broken update keeps the last good set serving and says so.
	good := r.Gate()
	writeFile(t, filepath.Join(dir, "a.yaml"), "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: broken\nspec: [\n")
	if _, err := r.Reload(ctx); err == nil {
		t.Fatal("a broken policy loaded without error")
	}
	if r.Gate() != good {
		t.Fatal("a broken update replaced the serving gate")
	}
	if ok, msg := judge(t, r); ok || !strings.Contains(msg, "second version") {
		t.Fatalf("after the broken update: allowed=%v msg=%q, want the second version still serving", ok, msg)
	}
	st := r.Status()
	if st.Failures != 1 || st.LastError == "" || !strings.Contains(r.Detail(), "last good set keeps serving") {
		t.Fatalf("status after a broken update: %+v; detail %q", st, r.Detail())
	}
	if err := r.Check(nil); err != nil {
		t.Fatalf("not ready with a good set serving: %v", err)
	}

	// Fixing it clears the error.
	writeFile(t, filepath.Join(dir, "a.yaml"), denyKindPolicy("deny-cm", "ConfigMap", "third version"))
	if changed, err := r.Reload(ctx); err != nil || !changed {
		t.Fatalf("reload after fix: changed=%v err=%v", changed, err)
	}
	if st := r.Status(); st.LastError != "" {
		t.Fatalf("error kept after a good reload: %q", st.LastError)
	}
}

func TestReloadNeverLoaded(t *testing.T) {
	r := NewReloader(ReloaderOptions{Sources: []Source{DirSource{Path: filepath.Join(t.TempDir(), "missing")}}})
	if _, err := r.Reload(context.Background()); err == nil {
		t.Fatal("a missing directory loaded")
	}
	if err := r.Check(nil); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("Check = %v, want not ready naming the directory", err)
	}
	if ok, msg := judge(t, r); ok || !strings.Contains(msg, "no policies loaded") {
		t.Fatalf("with no policies: allowed=%v msg=%q, want fail closed", ok, msg)
	}
}

// A ConfigMap volume: files are symlinks into ..data, itself a symlink to a timestamped
// directory that the kubelet replaces with one rename. The watch sees it at once.
func TestReloadConfigMapSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(n int, content string) {
		ts := fmt.Sprintf("..2026_11_30_%02d", n)
		writeFile(t, filepath.Join(dir, ts, "policy.yaml"), content)
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(ts, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version(1, denyKindPolicy("deny-cm", "ConfigMap", "configmap v1"))
	if err := os.Symlink("..data/policy.yaml", filepath.Join(dir, "policy.yaml")); err != nil {
		t.Fatal(err)
	}
	r := NewReloader(ReloaderOptions{Gate: policy.GateOptions{NoBuiltin: true}, Sources: []Source{DirSource{Path: dir}}, Interval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.Gate().Policies(); n != 1 {
		t.Fatalf("%d policies loaded, want 1 (the ..data and ..timestamp directories must not be read again)", n)
	}
	go func() { _ = r.Start(ctx) }()
	time.Sleep(200 * time.Millisecond) // the watch is in place
	version(2, denyKindPolicy("deny-cm", "ConfigMap", "configmap v2"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, msg := judge(t, r)
		if strings.Contains(msg, "configmap v2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the symlink swap was not picked up within 10s (the poll interval is an hour); message %q", msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testRepo is a bare Git repository on disk, committed to through internal/git/gittest
// (no git binary), with each commit published as main as well.
type testRepo struct {
	dir  string
	repo *gittest.Repo
}

func newTestRepo(t *testing.T) *testRepo {
	t.Helper()
	r := gittest.InitBare(t, "")
	return &testRepo{dir: r.Dir, repo: r}
}

// commit writes files (an empty content removes the file) and commits them on main.
func (r *testRepo) commit(files map[string]string) string {
	h := r.repo.CommitFiles("update", files)
	r.repo.Branch("main", h)
	return h
}

func TestReloadGit(t *testing.T) {
	repo := newTestRepo(t)
	first := repo.commit(map[string]string{
		".gitgate.yaml":         "registries: [registry.example.com]\npolicies: [guard]\n",
		"guard/deny-cm.yaml":    denyKindPolicy("deny-cm", "ConfigMap", "git v1"),
		"guard/.hidden/x.yaml":  denyKindPolicy("hidden", "Secret", "must not load"),
		"apps/web/service.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n",
	})
	for _, url := range []string{repo.dir, "file://" + repo.dir} {
		t.Run(url, func(t *testing.T) {
			src := &GitSource{URL: url, Ref: "main"}
			snap, err := src.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(snap.Version, first) {
				t.Errorf("version %q, want the commit %s", snap.Version, first)
			}
			if snap.Config == nil || len(snap.Config.Registries) != 1 {
				t.Errorf(".gitgate.yaml not read: %+v", snap.Config)
			}
		})
	}

	src := &GitSource{URL: repo.dir, Ref: "main"}
	r := NewReloader(ReloaderOptions{Sources: []Source{src}})
	ctx := context.Background()
	if _, err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	// .gitgate.yaml's registries reach the built-in registry policy; its policies: names guard/.
	names := strings.Join(r.Gate().Set.Names(), ",")
	for _, want := range []string{"deny-cm", "restrict-image-registries", "require-probes"} {
		if !strings.Contains(names, want) {
			t.Errorf("policies %s lack %s", names, want)
		}
	}
	if strings.Contains(names, "hidden") {
		t.Errorf("a policy in a hidden directory loaded: %s", names)
	}
	if ok, msg := judge(t, r); ok || !strings.Contains(msg, "git v1") {
		t.Fatalf("git v1: allowed=%v msg=%q", ok, msg)
	}

	repo.commit(map[string]string{"guard/deny-cm.yaml": denyKindPolicy("deny-cm", "ConfigMap", "git v2")})
	if changed, err := r.Reload(ctx); err != nil || !changed {
		t.Fatalf("reload after a commit: changed=%v err=%v", changed, err)
	}
	if ok, msg := judge(t, r); ok || !strings.Contains(msg, "git v2") {
		t.Fatalf("git v2: allowed=%v msg=%q", ok, msg)
	}

	// a broken commit: the last good set keeps serving
	repo.commit(map[string]string{".gitgate.yaml": "registries: [a]\nunknownKey: 1\n"})
	if _, err := r.Reload(ctx); err == nil || !strings.Contains(err.Error(), "unknownKey") {
		t.Fatalf("a broken .gitgate.yaml: err = %v", err)
	}
	if ok, msg := judge(t, r); ok || !strings.Contains(msg, "git v2") {
		t.Fatalf("after a broken commit: allowed=%v msg=%q, want git v2 serving", ok, msg)
	}

	// removing the policy admits ConfigMaps again
	repo.commit(map[string]string{".gitgate.yaml": "policies: [guard]\n", "guard/deny-cm.yaml": ""})
	if changed, err := r.Reload(ctx); err != nil || !changed {
		t.Fatalf("reload after removing the policy: changed=%v err=%v", changed, err)
	}
	if ok, msg := judge(t, r); !ok {
		t.Fatalf("after removing the policy: denied %q", msg)
	}

	if _, err := (&GitSource{URL: repo.dir, Ref: "no-such-branch"}).Snapshot(ctx); err == nil || !strings.Contains(err.Error(), "no-such-branch") {
		t.Fatalf("a missing ref: err = %v", err)
	}
}

// A remote URL is listed and cloned into memory. The test serves the bare repository
// over smart HTTP on 127.0.0.1 (gittest), so no git binary is involved.
func TestReloadGitRemote(t *testing.T) {
	repo := newTestRepo(t)
	c1 := repo.commit(map[string]string{"policies/deny.yaml": denyKindPolicy("deny-cm", "ConfigMap", "remote v1")})
	url, _ := gittest.HTTPServer(t, repo.dir, "")
	src := &GitSource{URL: url, Ref: "main"}
	ctx := context.Background()
	snap, err := src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(snap.Version, c1) {
		t.Fatalf("version %s, want commit %s", snap.Version, c1)
	}
	again, err := src.Snapshot(ctx)
	if err != nil || again != snap {
		t.Fatalf("an unchanged remote was cloned again (err %v)", err)
	}
	c2 := repo.commit(map[string]string{"policies/deny.yaml": denyKindPolicy("deny-cm", "ConfigMap", "remote v2")})
	snap, err = src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(snap.Version, c2) {
		t.Fatalf("version %s, want commit %s", snap.Version, c2)
	}
	data, err := snap.Policies.(interface{ ReadFile(string) ([]byte, error) }).ReadFile("policies/deny.yaml")
	if err != nil || !strings.Contains(string(data), "remote v2") {
		t.Fatalf("policy file at the new commit: %q, %v", data, err)
	}
}

// A repository on disk is read as check reads it: .gitgate.yaml's registries and
// policies: directories; editing .gitgate.yaml is a reload like editing a policy.
func TestReloadRepoDirectory(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, ".gitgate.yaml"), "registries: [registry.example.com]\npolicies: [guard]\n")
	writeFile(t, filepath.Join(root, "guard", "deny.yaml"), denyKindPolicy("deny-cm", "ConfigMap", "repo v1"))
	writeFile(t, filepath.Join(root, "policies", "ignored.yaml"), denyKindPolicy("ignored", "Secret", "not named by .gitgate.yaml"))
	r := NewReloader(ReloaderOptions{Sources: []Source{RepoSource{Root: root}}})
	ctx := context.Background()
	if _, err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	names := strings.Join(r.Gate().Set.Names(), ",")
	for _, want := range []string{"deny-cm", "restrict-image-registries"} {
		if !strings.Contains(names, want) {
			t.Errorf("policies %s lack %s", names, want)
		}
	}
	if strings.Contains(names, "ignored") {
		t.Errorf("policies/ was read although .gitgate.yaml names guard/: %s", names)
	}
	if ok, msg := judge(t, r); ok || !strings.Contains(msg, "repo v1") {
		t.Fatalf("repo v1: allowed=%v msg=%q", ok, msg)
	}
	writeFile(t, filepath.Join(root, ".gitgate.yaml"), "policies: [guard]\n")
	if changed, err := r.Reload(ctx); err != nil || !changed {
		t.Fatalf("reload after editing .gitgate.yaml: changed=%v err=%v", changed, err)
	}
	if names := strings.Join(r.Gate().Set.Names(), ","); strings.Contains(names, "restrict-image-registries") {
		t.Errorf("with no registries the registry policy should be inactive: %s", names)
	}
	writeFile(t, filepath.Join(root, ".gitgate.yaml"), "policies: [guard]\nbogus: true\n")
	if _, err := r.Reload(ctx); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("a broken .gitgate.yaml: err = %v", err)
	}
	if ok, msg := judge(t, r); ok || !strings.Contains(msg, "repo v1") {
		t.Fatalf("after a broken .gitgate.yaml: allowed=%v msg=%q, want the last good set", ok, msg)
	}
}

// serve --git-ref COMMIT on a remote: the commit (full or short) is fetched, then read;
// it never moves, so a second snapshot contacts nobody.
func TestReloadGitRemoteCommit(t *testing.T) {
	repo := gittest.Init(t, "")
	c1 := repo.CommitFiles("one", map[string]string{"policies/deny.yaml": denyKindPolicy("deny-cm", "ConfigMap", "commit one")})
	repo.CommitFiles("two", map[string]string{"policies/deny.yaml": denyKindPolicy("deny-cm", "ConfigMap", "commit two")})
	url, packs := gittest.HTTPServer(t, repo.Dir, "")
	for _, ref := range []string{c1, c1[:8]} {
		src := &GitSource{URL: url, Ref: ref}
		snap, err := src.Snapshot(context.Background())
		if err != nil {
			t.Fatalf("ref %s: %v", ref, err)
		}
		if !strings.HasPrefix(snap.Version, c1) {
			t.Fatalf("ref %s: version %s, want commit %s", ref, snap.Version, c1)
		}
		n := packs.Load()
		if again, err := src.Snapshot(context.Background()); err != nil || again != snap || packs.Load() != n {
			t.Fatalf("ref %s: a commit was fetched again (%v)", ref, err)
		}
	}
}
