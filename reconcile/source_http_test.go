package reconcile

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
)

// gitHTTPServer serves one repository over Git's smart HTTP protocol (upload-pack only)
// on 127.0.0.1, with HTTP basic authentication: go-git's own server behind net/http.
// It does not serve shallow fetches, as some servers do not, so Fetch's fallback runs.
func gitHTTPServer(t *testing.T, dir, token string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	repo, err := git.PlainOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := transport.NewEndpoint("/gitops.git")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.NewServer(server.MapLoader{ep.String(): repo.Storer})
	var packs atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pass, ok := r.BasicAuth(); !ok || pass != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		sess, err := srv.NewUploadPackSession(ep, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer sess.Close()
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/info/refs"):
			ar, err := sess.AdvertisedReferencesContext(r.Context())
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			ar.Prefix = [][]byte{[]byte("# service=git-upload-pack"), pktline.Flush}
			w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
			_ = ar.Encode(w)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack"):
			req := packp.NewUploadPackRequest()
			if err := req.Decode(r.Body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			resp, err := sess.UploadPack(r.Context(), req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			packs.Add(1)
			w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
			_ = resp.Encode(w)
		default:
			http.NotFound(w, r)
		}
	})
	ts := httptest.NewServer(h) // 127.0.0.1
	t.Cleanup(ts.Close)
	return ts, &packs
}

// https-style sources: the token from an environment variable or a file, a missing or
// wrong token refused, the cache reused (no second pack for an unchanged revision).
func TestSourceHTTPToken(t *testing.T) {
	work := t.TempDir()
	r, err := git.PlainInit(work, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "app.yaml"), []byte("kind: ConfigMap\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wt, _ := r.Worktree()
	if _, err := wt.Add("app.yaml"); err != nil {
		t.Fatal(err)
	}
	h, err := wt.Commit("c", &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	ts, packs := gitHTTPServer(t, work, "s3cret")
	url := ts.URL + "/gitops.git"
	ctx := context.Background()

	t.Setenv("GITGATE_TEST_TOKEN", "s3cret")
	src := Source{URL: url, CacheDir: t.TempDir(), TokenEnv: "GITGATE_TEST_TOKEN"}
	co, err := src.Fetch(ctx)
	if err != nil {
		t.Fatalf("fetch with the token from the environment: %v", err)
	}
	if co.Commit != h.String() {
		t.Fatalf("commit = %s, want %s", co.Commit, h)
	}
	if b, _ := os.ReadFile(filepath.Join(co.Dir, "app.yaml")); string(b) != "kind: ConfigMap\n" {
		t.Fatalf("worktree file = %q", b)
	}
	n := packs.Load()
	if _, err := src.Fetch(ctx); err != nil || packs.Load() != n {
		t.Fatalf("a second fetch of the same revision fetched again (%d packs): %v", packs.Load()-n, err)
	}

	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (Source{URL: url, CacheDir: t.TempDir(), TokenFile: tokenFile}).Fetch(ctx); err != nil {
		t.Fatalf("fetch with the token from a file: %v", err)
	}
	for name, s := range map[string]Source{
		"no token":    {URL: url, CacheDir: t.TempDir()},
		"wrong token": {URL: url, CacheDir: t.TempDir(), TokenFile: writeTemp(t, "nope")},
	} {
		_, err := s.Fetch(ctx)
		if err == nil || !strings.Contains(err.Error(), "authentication") {
			t.Errorf("%s: err = %v, want an authentication error", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the token", name)
		}
	}
}

func writeTemp(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
