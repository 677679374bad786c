// Package gittest makes Git repositories for tests (with go-git: no git binary), and
// serves them over Git's smart HTTP protocol, so that tests outside internal/git need not
// import go-git.
package gittest

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-billy/v5/osfs"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Repo is a repository under test: a working tree on disk (Init), or a bare repository
// on disk committed to through a worktree in memory (InitBare). Commits are on master
// (HEAD), authored at a fixed time one second apart, so hashes are reproducible.
type Repo struct {
	// Dir is the working tree (Init) or the bare repository (InitBare).
	Dir  string
	t    testing.TB
	repo *gogit.Repository
	wt   *gogit.Worktree
	n    int
}

// Init makes a repository with a working tree in dir (a new temporary one if "").
func Init(t testing.TB, dir string) *Repo {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	repo, err := gogit.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return newRepo(t, dir, repo)
}

// InitBare makes a bare repository in dir (a new temporary one if "").
func InitBare(t testing.TB, dir string) *Repo {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if _, err := gogit.PlainInit(dir, true); err != nil {
		t.Fatal(err)
	}
	st := filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
	repo, err := gogit.Open(st, memfs.New())
	if err != nil {
		t.Fatal(err)
	}
	return newRepo(t, dir, repo)
}

func newRepo(t testing.TB, dir string, repo *gogit.Repository) *Repo {
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	return &Repo{Dir: dir, t: t, repo: repo, wt: wt}
}

// Write writes files into the working tree: content "" removes the file, "->TARGET"
// makes a symbolic link to TARGET.
func (r *Repo) Write(files map[string]string) {
	r.t.Helper()
	fs := r.wt.Filesystem
	for name, content := range files {
		if content == "" {
			if err := fs.Remove(name); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := fs.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			r.t.Fatal(err)
		}
		_ = fs.Remove(name)
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := fs.Symlink(target, name); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		f, err := fs.Create(name)
		if err != nil {
			r.t.Fatal(err)
		}
		if _, err := f.Write([]byte(content)); err != nil {
			r.t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			r.t.Fatal(err)
		}
	}
}

// ReadFile reads a file of the working tree.
func (r *Repo) ReadFile(name string) string {
	r.t.Helper()
	f, err := r.wt.Filesystem.Open(name)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := f.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

// Stage stages paths as they are in the working tree (a removed file as removed).
func (r *Repo) Stage(paths ...string) {
	r.t.Helper()
	for _, p := range paths {
		if _, err := r.wt.Filesystem.Lstat(p); err != nil {
			if _, err := r.wt.Remove(p); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if _, err := r.wt.Add(p); err != nil {
			r.t.Fatal(err)
		}
	}
}

// Commit stages every change of the working tree (new, changed and removed files) and
// commits on HEAD; it returns the commit's hash.
func (r *Repo) Commit(msg string) string {
	r.t.Helper()
	if err := r.wt.AddWithOptions(&gogit.AddOptions{All: true}); err != nil {
		r.t.Fatal(err)
	}
	st, err := r.wt.Status()
	if err != nil {
		r.t.Fatal(err)
	}
	for p, s := range st {
		if s.Worktree == gogit.Deleted {
			if _, err := r.wt.Remove(p); err != nil {
				r.t.Fatal(err)
			}
		}
	}
	r.n++
	when := time.Unix(1700000000+int64(r.n), 0)
	h, err := r.wt.Commit(msg, &gogit.CommitOptions{AllowEmptyCommits: true, Author: &object.Signature{Name: "t", Email: "t@example.com", When: when}})
	if err != nil {
		r.t.Fatal(err)
	}
	return h.String()
}

// CommitFiles writes files (see Write) and commits everything.
func (r *Repo) CommitFiles(msg string, files map[string]string) string {
	r.t.Helper()
	r.Write(files)
	return r.Commit(msg)
}

// Branch points branch name at commit.
func (r *Repo) Branch(name, commit string) {
	r.t.Helper()
	if err := r.repo.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName(name), plumbing.NewHash(commit))); err != nil {
		r.t.Fatal(err)
	}
}

// Tag tags commit: a lightweight tag when message is "", else an annotated one.
func (r *Repo) Tag(name, commit, message string) {
	r.t.Helper()
	var opts *gogit.CreateTagOptions
	if message != "" {
		opts = &gogit.CreateTagOptions{Message: message, Tagger: &object.Signature{Name: "t", Email: "t@example.com", When: time.Unix(1700000000, 0)}}
	}
	if _, err := r.repo.CreateTag(name, plumbing.NewHash(commit), opts); err != nil {
		r.t.Fatal(err)
	}
}

// DetachHead points HEAD at commit directly (no branch).
func (r *Repo) DetachHead(commit string) {
	r.t.Helper()
	if err := r.repo.Storer.SetReference(plumbing.NewHashReference(plumbing.HEAD, plumbing.NewHash(commit))); err != nil {
		r.t.Fatal(err)
	}
}

// HTTPServer serves the repository in dir over Git's smart HTTP protocol (upload-pack
// only; go-git's own server behind net/http) on 127.0.0.1 at URL/repo.git. With a token,
// requests need HTTP basic authentication with that password. It does not serve shallow
// fetches, as some servers do not, so fetchers' fallbacks run. packs counts the packs
// sent.
func HTTPServer(t testing.TB, dir, token string) (url string, packs *atomic.Int64) {
	t.Helper()
	srv, ep := uploadPackServer(t, dir)
	packs = &atomic.Int64{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pass, ok := r.BasicAuth(); token != "" && (!ok || pass != token) {
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
	return ts.URL + "/repo.git", packs
}

// uploadPackServer is go-git's own Git server for the repository in dir, at the
// endpoint /repo.git: what HTTPServer and SSHServer serve.
func uploadPackServer(t testing.TB, dir string) (transport.Transport, *transport.Endpoint) {
	t.Helper()
	repo, err := gogit.PlainOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := transport.NewEndpoint("/repo.git")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.NewServer(server.MapLoader{ep.String(): repo.Storer})
	return srv, ep
}
