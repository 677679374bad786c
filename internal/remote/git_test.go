package remote

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/internal/git/gittest"
)

func TestGit(t *testing.T) {
	work := gittest.Init(t, "")
	c1 := work.CommitFiles("one", map[string]string{"base/kustomization.yaml": "resources: [cm.yaml]\n", "base/cm.yaml": "v: 1\n"})
	work.Tag("v1.0", c1, "")
	c2 := work.CommitFiles("two", map[string]string{"base/cm.yaml": "v: 2\n"})
	c3 := work.CommitFiles("three", map[string]string{"base/cm.yaml": "v: 3\n"})
	url, packs := gittest.HTTPServer(t, work.Dir, "")

	s := testSettings(t, "")
	f := newFetcher(t, s)
	var trees []*GitTree
	for _, tc := range []struct{ ref, commit, content string }{
		{"v1.0", c1, "v: 1\n"},
		{c2, c2, "v: 2\n"},
		{"master", c3, "v: 3\n"},
		{"", c3, "v: 3\n"},
	} {
		tree, err := f.Git(ctx, url, tc.ref)
		if err != nil {
			t.Fatalf("%q: %v", tc.ref, err)
		}
		if tree.Commit != tc.commit {
			t.Errorf("%q: commit %s, want %s", tc.ref, tree.Commit, tc.commit)
		}
		p := filepath.Join(tree.Dir, "base", "cm.yaml")
		if b, err := os.ReadFile(p); err != nil || string(b) != tc.content {
			t.Errorf("%q: cm.yaml = %q, %v", tc.ref, b, err)
		}
		if info, err := os.Stat(p); err != nil || info.Mode().Perm()&0o222 != 0 {
			t.Errorf("%q: the written-out file is writable: %v", tc.ref, info.Mode())
		}
		trees = append(trees, tree)
	}
	// Every tree of the run is still there (several commits of one repository at once).
	for _, tree := range trees {
		if _, err := os.Stat(filepath.Join(tree.Dir, "base", "kustomization.yaml")); err != nil {
			t.Errorf("%s at %s: %v", tree.Ref, tree.Commit, err)
		}
	}
	if res := f.Resolved(); len(res) != 4 || res[0].Commit == "" {
		t.Errorf("Resolved: %+v", res)
	}

	// Offline: the refs resolved before, with no connection; an unknown ref is named.
	n := packs.Load()
	s.Offline = true
	g := newFetcher(t, s)
	tree, err := g.Git(ctx, url, "v1.0")
	if err != nil || tree.Commit != c1 {
		t.Fatalf("offline v1.0: %+v %v", tree, err)
	}
	if _, err := g.Git(ctx, url, "other"); !errors.As(err, new(*OfflineError)) || !strings.Contains(err.Error(), "ref other") {
		t.Errorf("offline unknown ref: %v", err)
	}
	if packs.Load() != n {
		t.Error("offline fetched a pack")
	}

	// Not allowed: refused before any connection.
	s.Offline = false
	s.Allow = []string{"github.com"}
	s.CacheDir = t.TempDir()
	if _, err := newFetcher(t, s).Git(ctx, url, "v1.0"); !errors.As(err, new(*RefusedError)) {
		t.Errorf("not allowed: %v", err)
	}
	// The host allowed by name but the address private: refused at dial time.
	s.Allow = []string{"http://localhost"}
	if _, err := newFetcher(t, s).Git(ctx, strings.Replace(url, "127.0.0.1", "localhost", 1), "v1.0"); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("loopback by name: %v", err)
	}
	// A pack over the download limit.
	s.Allow = []string{"http://127.0.0.1"}
	s.MaxDownloadBytes = 64
	if _, err := newFetcher(t, s).Git(ctx, url, "v1.0"); err == nil || !strings.Contains(err.Error(), "download limit") {
		t.Errorf("over the limit: %v", err)
	}
	// A redirect to a host not in the list.
	s.MaxDownloadBytes = 0
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(url, "127.0.0.1", "localhost", 1)+strings.TrimPrefix(r.URL.Path, "/repo.git")+"?"+r.URL.RawQuery, http.StatusFound)
	}))
	defer redirect.Close()
	if _, err := newFetcher(t, s).Git(ctx, redirect.URL+"/repo.git", "v1.0"); err == nil || !strings.Contains(err.Error(), "redirected") {
		t.Errorf("redirect to localhost: %v", err)
	}
	if packs.Load() != n {
		t.Errorf("%d packs served to refused fetches", packs.Load()-n)
	}
}
