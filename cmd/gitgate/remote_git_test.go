package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gitgate/gitgate/internal/git/gittest"
)

// gitServer is a Git repository served over smart HTTP on 127.0.0.1 (gittest.HTTPServer)
// behind a proxy that counts every request (ref advertisements too, not only packs) and
// can be made to fail every request, as a server that went away.
type gitServer struct {
	URL      string // the repository's URL
	requests atomic.Int64
	down     atomic.Bool
}

func newGitServer(t *testing.T, dir string) *gitServer {
	t.Helper()
	inner, _ := gittest.HTTPServer(t, dir, "")
	u, err := url.Parse(inner)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	s := &gitServer{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if s.down.Load() {
			http.Error(w, "server gone", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	s.URL = ts.URL + u.Path
	return s
}

// gitReport is the part of check's JSON report these tests read.
type gitReport struct {
	Results []struct {
		Origin  struct{ File string }
		Kind    string
		Name    string
		Status  string
		Message string
	}
	Errors []struct {
		Origin  struct{ File string }
		Message string
	}
	Targets []struct {
		Name     string
		Path     string
		Rendered bool
		Reason   string
		Objects  int
		Remotes  []struct{ Kind, URL, Requested, Resolved string }
	}
}

func runGitJSON(t *testing.T, args ...string) (int, gitReport, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	var rep gitReport
	if out.Len() > 0 {
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
	}
	return code, rep, errb.String()
}

// TestCheckRemoteGit is remote Git sources end to end through the CLI against a Git
// smart-HTTP server on 127.0.0.1: an Argo CD Application whose source is another
// repository at a tag renders from the tag (not from the later commit on the branch),
// its status names the tag's commit; a kustomize remote base at a commit hash renders;
// with the server failing, --offline from the same cache gives the same result and no
// request reaches it; --offline with an empty cache names the URL and the missing ref
// (exit 2); a repository whose remotes.allow does not name the server is refused with
// the entry to add and no request; `render` names the commit on stderr.
func TestCheckRemoteGit(t *testing.T) {
	t.Setenv("CI", "1")
	// The other repository: at v1.0.0 the overlay's image is from a registry the checked
	// repository does not allow (a finding that only the tag can produce); the commit
	// after it on master moves it to the allowed registry. base/ is a kustomize base whose
	// ConfigMap says which commit it came from.
	other := gittest.InitBare(t, "")
	tagCommit := other.CommitFiles("v1", map[string]string{
		"app/kustomization.yaml": "resources: [deploy.yaml]\n",
		"app/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: web}\nspec:\n" +
			"  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n" +
			"      - name: web\n        image: tagonly.example.org/web:1.0.0\n",
		"base/kustomization.yaml": "resources: [cm.yaml]\n",
		"base/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: web}\ndata: {from: tag-commit}\n",
	})
	other.Tag("v1.0.0", tagCommit, "release 1.0.0")
	mainCommit := other.CommitFiles("v2", map[string]string{
		"app/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: web}\nspec:\n" +
			"  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n" +
			"      - name: web\n        image: registry.example.com/web:2.0.0\n",
		"base/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: web}\ndata: {from: main-commit}\n",
	})
	srv := newGitServer(t, other.Dir)

	dir := t.TempDir()
	allowed := "registries: [registry.example.com]\nremotes:\n  allow: ['http://127.0.0.1']\n"
	writeFiles(t, dir, map[string]string{
		".gitgate.yaml": allowed,
		"apps/web.yaml": "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web, namespace: argocd}\nspec:\n  project: default\n" +
			"  source: {repoURL: '" + srv.URL + "', path: app, targetRevision: v1.0.0}\n" +
			"  destination: {server: https://kubernetes.default.svc, namespace: web}\n",
		"local/kustomization.yaml": "resources:\n- " + srv.URL + "//base?ref=" + mainCommit + "\n",
	})
	cache := t.TempDir()
	// From the repository, as a user runs it (findings are shown relative to where the
	// user stands).
	t.Chdir(dir)

	// what checks a report: web rendered from the tag (its finding, at url@commit:file),
	// local from the commit; it returns the first thing wrong.
	what := func(code int, rep gitReport) string {
		if code > exitViolations {
			return "exit code over 1"
		}
		var web, local bool
		for _, tg := range rep.Targets {
			switch {
			case tg.Name == "web":
				if !tg.Rendered || tg.Objects != 1 {
					return "web did not render its one object: " + tg.Reason
				}
				if len(tg.Remotes) != 1 || tg.Remotes[0].Kind != "git" || tg.Remotes[0].URL != srv.URL || tg.Remotes[0].Requested != "v1.0.0" || tg.Remotes[0].Resolved != tagCommit {
					return "web's remotes do not name the tag's commit " + tagCommit
				}
				web = true
			case tg.Path == "local":
				if !tg.Rendered || tg.Objects != 1 {
					return "local did not render its one object: " + tg.Reason
				}
				if len(tg.Remotes) != 1 || tg.Remotes[0].Kind != "git" || tg.Remotes[0].Requested != mainCommit || tg.Remotes[0].Resolved != mainCommit {
					return "local's remotes do not name the commit " + mainCommit
				}
				local = true
			}
		}
		if !web || !local {
			return "a target is missing"
		}
		// The tag's image is from a registry not allowed; the branch's is allowed. The
		// Deployment fails other built-in rules either way; those are not what this reads.
		tagFinding := false
		for _, r := range rep.Results {
			if r.Status != "fail" || !strings.Contains(r.Message, "allowed registry") {
				continue
			}
			if r.Kind != "Deployment" || r.Name != "web" {
				return "unexpected registry finding on " + r.Kind + "/" + r.Name
			}
			if want := srv.URL + "@" + tagCommit[:12] + ":app/deploy.yaml"; r.Origin.File != want {
				return "the tag's finding points at " + r.Origin.File + ", want " + want
			}
			tagFinding = true
		}
		if !tagFinding {
			return "no registry finding for the image only the tag has (rendered from the branch?)"
		}
		if code != exitViolations {
			return "exit code is not 1 with a finding"
		}
		return ""
	}

	code, rep, stderr := runGitJSON(t, "check", "--cache-dir", cache, "-o", "json", ".")
	if bad := what(code, rep); bad != "" {
		t.Fatalf("online: %s; exit %d, report %+v\nstderr:\n%s", bad, code, rep, stderr)
	}
	online := srv.requests.Load()
	if online == 0 {
		t.Fatal("no request reached the Git server")
	}

	// render names each commit on stderr and prints what the commit holds.
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"render", "--cache-dir", cache, "local"}, &out, &errb); code != exitClean ||
		!strings.Contains(out.String(), "from: main-commit") || !strings.Contains(errb.String(), "remote: git ") || !strings.Contains(errb.String(), mainCommit) {
		t.Errorf("render local: exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}

	// render of the Application builds the tag's tree, never a same-named path here.
	writeFiles(t, dir, map[string]string{"app/kustomization.yaml": "resources: [cm.yaml]\n", "app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: this-repo}\n",
		".gitgate.yaml": allowed + "repoURLs: [https://git.example.com/me.git]\n"})
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"render", "--cache-dir", cache, "web"}, &out, &errb); code != exitClean ||
		!strings.Contains(out.String(), "tagonly.example.org/web:1.0.0") || strings.Contains(out.String(), "this-repo") {
		t.Errorf("render web: exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	if err := os.RemoveAll(filepath.Join(dir, "app")); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{".gitgate.yaml": allowed})

	// The server fails every request from now on: --offline reads the same from the cache.
	srv.down.Store(true)
	before := srv.requests.Load()
	code, rep, stderr = runGitJSON(t, "check", "--offline", "--cache-dir", cache, "-o", "json", ".")
	if bad := what(code, rep); bad != "" {
		t.Fatalf("offline from the cache: %s; exit %d, report %+v\nstderr:\n%s", bad, code, rep, stderr)
	}
	if n := srv.requests.Load(); n != before {
		t.Errorf("--offline made %d requests", n-before)
	}

	// --offline with an empty cache: exit 2, naming the URL and the ref missing.
	code, rep, stderr = runGitJSON(t, "check", "--offline", "--cache-dir", t.TempDir(), "-o", "json", ".")
	if code != exitError || !strings.Contains(stderr, srv.URL+": ref v1.0.0 is not in the cache and --offline never connects") ||
		!strings.Contains(stderr, srv.URL+": ref "+mainCommit+" is not in the cache") {
		t.Errorf("offline, empty cache: exit %d; stderr:\n%s", code, stderr)
	}
	for _, tg := range rep.Targets {
		if (tg.Name == "web" || tg.Path == "local") && (tg.Rendered || tg.Reason == "") {
			t.Errorf("offline, empty cache: target %s rendered %v, reason %q", tg.Name, tg.Rendered, tg.Reason)
		}
	}
	if n := srv.requests.Load(); n != before {
		t.Errorf("--offline with an empty cache made %d requests", n-before)
	}

	// Not in remotes.allow: refused before any connection, naming the entry to add.
	srv.down.Store(false)
	fresh := newGitServer(t, other.Dir)
	writeFiles(t, dir, map[string]string{
		".gitgate.yaml":            "registries: [registry.example.com]\nremotes:\n  allow: [git.example.com]\n",
		"apps/web.yaml":            strings.ReplaceAll(mustRead(t, filepath.Join(dir, "apps/web.yaml")), srv.URL, fresh.URL),
		"local/kustomization.yaml": strings.ReplaceAll(mustRead(t, filepath.Join(dir, "local/kustomization.yaml")), srv.URL, fresh.URL),
	})
	code, rep, stderr = runGitJSON(t, "check", "--cache-dir", t.TempDir(), "-o", "json", ".")
	entry := `"` + strings.TrimSuffix(fresh.URL, "/repo.git") + `"`
	if code != exitError || !strings.Contains(stderr, entry) || !strings.Contains(stderr, "remotes.allow") {
		t.Errorf("not allowed: exit %d, want the entry %s named; stderr:\n%s", code, entry, stderr)
	}
	for _, tg := range rep.Targets {
		if (tg.Name == "web" || tg.Path == "local") && tg.Rendered {
			t.Errorf("not allowed: target %s rendered", tg.Name)
		}
	}
	if n := fresh.requests.Load(); n != 0 {
		t.Errorf("a server not in remotes.allow got %d requests", n)
	}
}

func mustRead(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCheckRemoteGitCacheChanged: a file of a Git commit written out in the cache and
// changed afterwards (by hand, a tool, a broken disk) is never checked as the commit:
// --offline refuses it, naming what to do (exit 2), and online it is written out again
// from the repository.
func TestCheckRemoteGitCacheChanged(t *testing.T) {
	t.Setenv("CI", "1")
	other := gittest.InitBare(t, "")
	deploy := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: web}\nspec:\n" +
		"  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n" +
		"      - name: web\n        image: IMAGE\n"
	commit := other.CommitFiles("v1", map[string]string{
		"app/kustomization.yaml": "resources: [deploy.yaml]\n",
		"app/deploy.yaml":        strings.ReplaceAll(deploy, "IMAGE", "unlisted.example.org/web:1.0.0"),
	})
	other.Tag("v1.0.0", commit, "")
	srv := newGitServer(t, other.Dir)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		".gitgate.yaml": "registries: [registry.example.com]\nremotes:\n  allow: ['http://127.0.0.1']\n",
		"apps/web.yaml": "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web, namespace: argocd}\nspec:\n  project: default\n" +
			"  source: {repoURL: '" + srv.URL + "', path: app, targetRevision: v1.0.0}\n" +
			"  destination: {server: https://kubernetes.default.svc, namespace: web}\n",
	})
	cache := t.TempDir()
	t.Chdir(dir)
	registryFinding := func(rep gitReport) bool {
		for _, r := range rep.Results {
			if r.Status == "fail" && r.Kind == "Deployment" && strings.Contains(r.Message, "allowed registry") {
				return true
			}
		}
		return false
	}

	code, rep, stderr := runGitJSON(t, "check", "--cache-dir", cache, "-o", "json", ".")
	if code != exitViolations || !registryFinding(rep) {
		t.Fatalf("online: exit %d, registry finding %v; stderr:\n%s", code, registryFinding(rep), stderr)
	}

	// The commit's deploy.yaml in the cache, changed to hide the finding.
	var cached []string
	filepath.WalkDir(cache, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(filepath.ToSlash(p), "/"+commit+"/app/deploy.yaml") {
			cached = append(cached, p)
		}
		return nil
	})
	if len(cached) != 1 {
		t.Fatalf("the commit's deploy.yaml in the cache: %q, want one", cached)
	}
	if err := os.Chmod(cached[0], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cached[0], []byte(strings.ReplaceAll(deploy, "IMAGE", "registry.example.com/web:1.0.0")), 0o644); err != nil {
		t.Fatal(err)
	}

	before := srv.requests.Load()
	code, rep, stderr = runGitJSON(t, "check", "--offline", "--cache-dir", cache, "-o", "json", ".")
	if code != exitError || registryFinding(rep) || !strings.Contains(stderr, srv.URL) || !strings.Contains(stderr, "changed") {
		t.Errorf("offline, changed cache: exit %d, registry finding %v; stderr:\n%s", code, registryFinding(rep), stderr)
	}
	for _, tg := range rep.Targets {
		if tg.Name == "web" && tg.Rendered {
			t.Errorf("offline, changed cache: web rendered from the changed files")
		}
	}
	if n := srv.requests.Load(); n != before {
		t.Errorf("--offline made %d requests", n-before)
	}

	code, rep, stderr = runGitJSON(t, "check", "--cache-dir", cache, "-o", "json", ".")
	if code != exitViolations || !registryFinding(rep) {
		t.Errorf("online after the change: exit %d, registry finding %v (the changed files were used); stderr:\n%s", code, registryFinding(rep), stderr)
	}
	if got := mustRead(t, cached[0]); !strings.Contains(got, "unlisted.example.org/web:1.0.0") {
		t.Errorf("the cached file was not written out again:\n%s", got)
	}
}

// TestCheckRemoteGitBranch: kustomize remote bases at a branch and at a lightweight tag.
// Online, a branch is resolved again on every run (it moved: the new commit renders);
// --offline, it is the commit it had at the last online run; a ref the repository does
// not have is an error naming it, and the other targets still render.
func TestCheckRemoteGitBranch(t *testing.T) {
	t.Setenv("CI", "1")
	cm := func(v string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: web}\ndata: {from: " + v + "}\n"
	}
	other := gittest.InitBare(t, "")
	first := other.CommitFiles("one", map[string]string{"base/kustomization.yaml": "resources: [cm.yaml]\n", "base/cm.yaml": cm("first-commit")})
	other.Branch("release", first)
	other.Tag("v1", first, "")
	srv := newGitServer(t, other.Dir)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		".gitgate.yaml":             "remotes:\n  allow: ['http://127.0.0.1']\n",
		"branch/kustomization.yaml": "resources:\n- " + srv.URL + "//base?ref=release\n",
		"tag/kustomization.yaml":    "resources:\n- " + srv.URL + "//base?ref=v1\n",
	})
	cache := t.TempDir()
	t.Chdir(dir)
	resolved := func(rep gitReport) map[string]string {
		m := map[string]string{}
		for _, tg := range rep.Targets {
			if tg.Rendered && tg.Objects == 1 && len(tg.Remotes) == 1 && tg.Remotes[0].Kind == "git" {
				m[tg.Path] = tg.Remotes[0].Requested + "=" + tg.Remotes[0].Resolved
			} else {
				m[tg.Path] = "not rendered: " + tg.Reason
			}
		}
		return m
	}
	renderOut := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(context.Background(), append([]string{"render", "--cache-dir", cache}, args...), &out, &errb); code != exitClean {
			t.Errorf("render %v: exit %d; stderr:\n%s", args, code, errb.String())
		}
		return out.String()
	}

	code, rep, stderr := runGitJSON(t, "check", "--cache-dir", cache, "-o", "json", ".")
	if got := resolved(rep); code != exitClean || got["branch"] != "release="+first || got["tag"] != "v1="+first {
		t.Fatalf("online: exit %d, resolved %v, want both at %s; stderr:\n%s", code, got, first, stderr)
	}

	// The branch moves on; the tag does not.
	second := other.CommitFiles("two", map[string]string{"base/cm.yaml": cm("second-commit")})
	other.Branch("release", second)
	code, rep, stderr = runGitJSON(t, "check", "--cache-dir", cache, "-o", "json", ".")
	if got := resolved(rep); code != exitClean || got["branch"] != "release="+second || got["tag"] != "v1="+first {
		t.Fatalf("online after the branch moved: exit %d, resolved %v, want release at %s; stderr:\n%s", code, got, second, stderr)
	}
	if out := renderOut("branch"); !strings.Contains(out, "from: second-commit") {
		t.Errorf("render branch after it moved:\n%s", out)
	}
	if out := renderOut("tag"); !strings.Contains(out, "from: first-commit") {
		t.Errorf("render tag:\n%s", out)
	}

	// --offline: the branch is where it was at the last online run, though it moved again.
	other.Branch("release", first)
	before := srv.requests.Load()
	code, rep, stderr = runGitJSON(t, "check", "--offline", "--cache-dir", cache, "-o", "json", ".")
	if got := resolved(rep); code != exitClean || got["branch"] != "release="+second || got["tag"] != "v1="+first {
		t.Errorf("offline: exit %d, resolved %v, want release at %s; stderr:\n%s", code, got, second, stderr)
	}
	if n := srv.requests.Load(); n != before {
		t.Errorf("--offline made %d requests", n-before)
	}

	// A ref the repository does not have: named, and the other targets still render.
	writeFiles(t, dir, map[string]string{"missing/kustomization.yaml": "resources:\n- " + srv.URL + "//base?ref=no-such-ref\n"})
	code, rep, stderr = runGitJSON(t, "check", "--cache-dir", cache, "-o", "json", ".")
	got := resolved(rep)
	if code != exitError || !strings.Contains(stderr, "no-such-ref") || !strings.Contains(stderr, "missing/kustomization.yaml:2: resources[0]: ") || !strings.HasPrefix(got["missing"], "not rendered") ||
		got["branch"] != "release="+first || got["tag"] != "v1="+first {
		t.Errorf("missing ref: exit %d, resolved %v; stderr:\n%s", code, got, stderr)
	}
}

// TestFetchRemoteGit: `gitgate fetch` fills a cache with another repository's tag and a
// remote base's commit (naming each), and with the server failing, check and targets
// --offline read them from it.
func TestFetchRemoteGit(t *testing.T) {
	t.Setenv("CI", "1")
	other := gittest.InitBare(t, "")
	tagCommit := other.CommitFiles("v1", map[string]string{
		"app/kustomization.yaml":  "resources: [cm.yaml]\n",
		"app/cm.yaml":             "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: web}\ndata: {from: tag}\n",
		"base/kustomization.yaml": "resources: [cm.yaml]\n",
		"base/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base, namespace: web}\ndata: {from: tag}\n",
	})
	other.Tag("v1.0.0", tagCommit, "release")
	srv := newGitServer(t, other.Dir)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		".gitgate.yaml": "remotes:\n  allow: ['http://127.0.0.1']\n",
		"apps/web.yaml": "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web, namespace: argocd}\nspec:\n  project: default\n" +
			"  source: {repoURL: '" + srv.URL + "', path: app, targetRevision: v1.0.0}\n" +
			"  destination: {server: https://kubernetes.default.svc, namespace: web}\n",
		"local/kustomization.yaml": "resources:\n- " + srv.URL + "//base?ref=" + tagCommit + "\n",
	})
	t.Chdir(dir)
	warm := t.TempDir()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"fetch", "--cache-dir", warm, "."}, &out, &errb)
	if code != exitClean || !strings.Contains(out.String(), "git v1.0.0 = "+tagCommit+" from "+srv.URL) ||
		!strings.Contains(out.String(), "git "+tagCommit+" from "+srv.URL) {
		t.Fatalf("fetch: exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}

	srv.down.Store(true)
	before := srv.requests.Load()
	code, rep, stderr := runGitJSON(t, "check", "--offline", "--cache-dir", warm, "-o", "json", ".")
	n := 0
	for _, tg := range rep.Targets {
		if (tg.Name == "web" || tg.Path == "local") && tg.Rendered && tg.Objects == 1 && len(tg.Remotes) == 1 && tg.Remotes[0].Resolved == tagCommit {
			n++
		}
	}
	if code != exitClean || n != 2 {
		t.Errorf("check --offline after fetch: exit %d, %d of 2 targets rendered at %s; report %+v\nstderr:\n%s", code, n, tagCommit, rep, stderr)
	}
	out.Reset()
	errb.Reset()
	code = run(context.Background(), []string{"targets", "--offline", "--cache-dir", warm, "."}, &out, &errb)
	if code != exitClean || !strings.Contains(out.String(), "web ") || !strings.Contains(errb.String(), "remote: git v1.0.0 = "+tagCommit+" from "+srv.URL) {
		t.Errorf("targets --offline after fetch: exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	// Each target lists its remote sources as resolved: the Application's repository
	// and the kustomization's remote base alike.
	at := srv.URL + "@" + tagCommit[:12]
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "web" || f[0] == "local") && !strings.HasSuffix(line, at) {
			t.Errorf("targets: %q does not end with its remote source %s", line, at)
		}
	}
	if n := srv.requests.Load(); n != before {
		t.Errorf("--offline made %d requests", n-before)
	}
}

// TestCheckRemoteGitHelmValuesRef: a multi-source Application, a Helm chart in another
// repository at a tag with a values file of this repository ($values): the chart renders
// from the tag with this repository's values applied.
func TestCheckRemoteGitHelmValuesRef(t *testing.T) {
	t.Setenv("CI", "1")
	other := gittest.InitBare(t, "")
	tagCommit := other.CommitFiles("v1", map[string]string{
		"chart/Chart.yaml":  "apiVersion: v2\nname: web\nversion: 1.0.0\n",
		"chart/values.yaml": "image: registry.example.com/web:1.0.0\n",
		"chart/templates/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: web}\nspec:\n" +
			"  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n" +
			"      - name: web\n        image: {{ .Values.image }}\n",
	})
	other.Tag("v1.0.0", tagCommit, "")
	other.CommitFiles("v2", map[string]string{"chart/templates/deploy.yaml": ""})
	srv := newGitServer(t, other.Dir)
	dir := t.TempDir()
	const self = "https://git.example.com/platform/gitops.git"
	writeFiles(t, dir, map[string]string{
		".gitgate.yaml":    "registries: [registry.example.com]\nrepoURLs: ['" + self + "']\nremotes:\n  allow: ['http://127.0.0.1']\n",
		"values/prod.yaml": "image: unlisted.example.org/web:prod\n",
		"apps/web.yaml": "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web, namespace: argocd}\nspec:\n  project: default\n  sources:\n" +
			"  - {repoURL: '" + srv.URL + "', path: chart, targetRevision: v1.0.0, helm: {valueFiles: [$values/values/prod.yaml]}}\n" +
			"  - {repoURL: '" + self + "', targetRevision: HEAD, ref: values}\n" +
			"  destination: {server: https://kubernetes.default.svc, namespace: web}\n",
	})
	t.Chdir(dir)
	code, rep, stderr := runGitJSON(t, "check", "--cache-dir", t.TempDir(), "-o", "json", ".")
	rendered, finding := false, ""
	for _, tg := range rep.Targets {
		if tg.Name == "web" && tg.Rendered && tg.Objects == 1 && len(tg.Remotes) == 1 && tg.Remotes[0].Resolved == tagCommit {
			rendered = true
		}
	}
	for _, r := range rep.Results {
		if r.Status == "fail" && r.Kind == "Deployment" && strings.Contains(r.Message, "allowed registry") {
			finding = r.Origin.File
		}
	}
	if code != exitViolations || !rendered || finding == "" {
		t.Fatalf("exit %d, web rendered at the tag %v, registry finding (this repository's values) at %q; report %+v\nstderr:\n%s", code, rendered, finding, rep, stderr)
	}
	if want := srv.URL + "@" + tagCommit[:12] + ":chart/templates/deploy.yaml"; finding != want {
		t.Errorf("registry finding at %s, want %s", finding, want)
	}
}

// TestCheckRemoteGitToken: a Git server that wants credentials (HTTP basic, as Git hosts
// take a token): with GITGATE_REMOTE_TOKEN right the base renders; wrong, it is exit 2
// naming the repository; the token never appears in the output.
func TestCheckRemoteGitToken(t *testing.T) {
	t.Setenv("CI", "1")
	t.Setenv("HELM_REPOSITORY_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	t.Setenv("HELM_REGISTRY_CONFIG", filepath.Join(t.TempDir(), "none.json"))
	other := gittest.InitBare(t, "")
	c := other.CommitFiles("v1", map[string]string{
		"base/kustomization.yaml": "resources: [cm.yaml]\n",
		"base/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base, namespace: web}\ndata: {from: tag}\n",
	})
	inner, _ := gittest.HTTPServer(t, other.Dir, "right-token-5e1a")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		".gitgate.yaml":            "remotes:\n  allow: ['http://127.0.0.1']\n",
		"local/kustomization.yaml": "resources:\n- " + inner + "//base?ref=" + c + "\n",
	})
	t.Chdir(dir)
	for _, tok := range []string{"wrong-token-77c2", "right-token-5e1a"} {
		t.Setenv("GITGATE_REMOTE_TOKEN", tok)
		code, rep, stderr := runGitJSON(t, "check", "--cache-dir", t.TempDir(), "-o", "json", ".")
		rendered := false
		for _, tg := range rep.Targets {
			rendered = rendered || tg.Path == "local" && tg.Rendered && tg.Objects == 1 && len(tg.Remotes) == 1 && tg.Remotes[0].Resolved == c
		}
		if tok == "right-token-5e1a" && (code != exitClean || !rendered) {
			t.Errorf("right token: exit %d, rendered %v; stderr:\n%s", code, rendered, stderr)
		}
		if tok == "wrong-token-77c2" && (code != exitError || rendered || !strings.Contains(stderr, inner) || !strings.Contains(stderr, "authentication required")) {
			t.Errorf("wrong token: exit %d, rendered %v; stderr:\n%s", code, rendered, stderr)
		}
		if b, _ := json.Marshal(rep); strings.Contains(string(b)+stderr, tok) {
			t.Errorf("%s: the token is in the output", tok)
		}
	}
}

// TestCheckRemoteGitValuesRefOtherRepo: a multi-source Application whose chart is in
// this repository and whose $ref values file is in another repository (Argo CD's
// shared-values pattern): the values are read from that repository at the ref's
// targetRevision through the cache, its commit is listed among the target's remotes,
// and the finding names the line of that file; without the allow entry the target is
// refused naming it, with no request.
func TestCheckRemoteGitValuesRefOtherRepo(t *testing.T) {
	t.Setenv("CI", "1")
	other := gittest.InitBare(t, "")
	tagCommit := other.CommitFiles("v1", map[string]string{"env/prod.yaml": "# shared\nimage: unlisted.example.org/web:prod\n"})
	other.Tag("v1.0.0", tagCommit, "")
	other.CommitFiles("v2", map[string]string{"env/prod.yaml": "image: registry.example.com/web:2\n"})
	srv := newGitServer(t, other.Dir)
	dir := t.TempDir()
	const self = "https://git.example.com/platform/gitops.git"
	app := "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web, namespace: argocd}\nspec:\n  project: default\n  sources:\n" +
		"  - {repoURL: '" + self + "', path: chart, targetRevision: HEAD, helm: {valueFiles: [$env/env/prod.yaml]}}\n" +
		"  - {repoURL: '" + srv.URL + "', targetRevision: v1.0.0, ref: env}\n" +
		"  destination: {server: https://kubernetes.default.svc, namespace: web}\n"
	writeFiles(t, dir, map[string]string{
		".gitgate.yaml":     "registries: [registry.example.com]\nrepoURLs: ['" + self + "']\nremotes:\n  allow: ['http://127.0.0.1']\n",
		"chart/Chart.yaml":  "apiVersion: v2\nname: web\nversion: 1.0.0\n",
		"chart/values.yaml": "image: registry.example.com/web:1.0.0\n",
		"chart/templates/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: web}\nspec:\n" +
			"  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n" +
			"      - name: web\n        image: {{ .Values.image }}\n",
		"apps/web.yaml": app,
	})
	t.Chdir(dir)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"check", "--cache-dir", t.TempDir(), "."}, &out, &errb)
	want := srv.URL + "@" + tagCommit[:12] + ":env/prod.yaml:2:8 (image)"
	if code != exitViolations || !strings.Contains(out.String(), "chart/templates/deploy.yaml") || !strings.Contains(out.String(), "value from "+want) {
		t.Fatalf("exit %d, want the registry finding in chart/templates/deploy.yaml with its value from %s\nstdout:\n%s\nstderr:\n%s", code, want, out.String(), errb.String())
	}
	code, rep, stderr := runGitJSON(t, "check", "--cache-dir", t.TempDir(), "-o", "json", ".")
	listed := false
	for _, tg := range rep.Targets {
		if tg.Name == "web" && tg.Rendered && len(tg.Remotes) == 1 && tg.Remotes[0].Resolved == tagCommit && tg.Remotes[0].Requested == "v1.0.0" {
			listed = true
		}
	}
	if !listed {
		t.Errorf("exit %d: the values repository's commit is not among web's remotes: %+v\n%s", code, rep.Targets, stderr)
	}

	before := srv.requests.Load()
	writeFiles(t, dir, map[string]string{".gitgate.yaml": "registries: [registry.example.com]\nrepoURLs: ['" + self + "']\n"})
	code, rep, stderr = runGitJSON(t, "check", "--cache-dir", t.TempDir(), "-o", "json", ".")
	if code != exitError || !strings.Contains(stderr, "$env/env/prod.yaml") || !strings.Contains(stderr, "http://127.0.0.1") {
		t.Errorf("not allowed: exit %d, want 2 naming the values file and the entry to add\n%s", code, stderr)
	}
	if n := srv.requests.Load() - before; n != 0 {
		t.Errorf("a repository not in remotes.allow got %d requests", n)
	}
}
