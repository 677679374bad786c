package git

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	gogit "github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Source is a Git repository at a revision: what sync and report reconcile from, what
// serve takes policies from, and later a remote kustomize base or another repository's
// Argo CD source.
type Source struct {
	// URL is a local path, file://, https:// (or http://), ssh:// or scp-like
	// git@host:org/repo (see ParseURL).
	URL string
	// Ref is a branch, a tag (lightweight or annotated), a full reference name, a full or
	// short commit hash, or HEAD; empty means HEAD (the remote's default branch).
	Ref string
	// Auth authenticates to a remote.
	Auth Auth
	// CacheDir holds Fetch's objects and worktrees between runs
	// (default: $XDG_CACHE_HOME/gitgate/sync).
	CacheDir string
	// KeepWorktrees keeps every commit Fetch wrote out (a run may use several commits
	// of one repository at once); by default only the newest two are kept.
	KeepWorktrees bool
}

// String is the URL, credentials redacted, and the revision.
func (s Source) String() string {
	u := Redact(s.URL)
	if s.Ref != "" {
		u += "@" + s.Ref
	}
	return u
}

// Checkout is a revision written out as plain files.
type Checkout struct {
	// Dir is the worktree: the commit's files, nothing else (no .git).
	Dir string
	// Commit is the full hash.
	Commit string
	// Ref is the reference the revision resolved through (refs/heads/main), if any.
	Ref string
}

// FS is the worktree as a filesystem.
func (c *Checkout) FS() fs.FS { return os.DirFS(c.Dir) }

func (s Source) cacheDir() (string, error) {
	if s.CacheDir != "" {
		return s.CacheDir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: %w; give --cache-dir", err)
	}
	return filepath.Join(base, "gitgate", "sync"), nil
}

// endpoint classifies the URL and builds its authentication; a local path must exist.
func (s Source) endpoint() (Endpoint, *fetcher, []string, error) {
	ep, err := ParseURL(s.URL)
	if err != nil {
		return Endpoint{}, nil, nil, fmt.Errorf("git source %s: %w", s, err)
	}
	if ep.Kind == Local || ep.Kind == File {
		if _, err := os.Stat(ep.Dir); err != nil {
			return Endpoint{}, nil, nil, fmt.Errorf("git source %s: %w; give a repository path or URL", s, err)
		}
	}
	auth, secrets, err := s.Auth.method(ep)
	if err != nil {
		return Endpoint{}, nil, nil, redact(fmt.Errorf("git source %s: %w", s, err), secrets...)
	}
	return ep, &fetcher{auth: auth, shallow: ep.Kind != Local && ep.Kind != File}, secrets, nil
}

// Fetch brings the revision into the cache (shallow for branches and tags of remote
// repositories; nothing is fetched when the commit is there already) and writes its
// files into a worktree directory named by the commit, reused when it is there.
func (s Source) Fetch(ctx context.Context) (*Checkout, error) {
	ep, f, secrets, err := s.endpoint()
	if err != nil {
		return nil, err
	}
	cache, err := s.cacheDir()
	if err != nil {
		return nil, err
	}
	remote := ep.remote()
	sum := sha256.Sum256([]byte(remote))
	key := hex.EncodeToString(sum[:8])
	gitDir := filepath.Join(cache, "repos", key+".git")
	repo, err := gogit.PlainOpen(gitDir)
	if errors.Is(err, gogit.ErrRepositoryNotExists) {
		if repo, err = gogit.PlainInit(gitDir, true); err == nil {
			_, err = repo.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{remote}})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("git cache %s: %w; remove the directory to start afresh", gitDir, err)
	}
	f.repo = repo
	defer f.useSSHDialer(ctx, ep)()
	refs, err := f.list(ctx)
	if err != nil {
		return nil, redact(fmt.Errorf("git source %s: %w", s, s.Auth.explain(ep, err)), secrets...)
	}
	name, commit, err := f.resolve(ctx, refs, s.Ref)
	if err != nil {
		return nil, redact(fmt.Errorf("git source %s: %w", s, s.Auth.explain(ep, err)), secrets...)
	}
	hash := commit.Hash.String()
	dir := filepath.Join(cache, "worktrees", key, hash)
	if _, err := os.Stat(filepath.Join(dir, ".gitgate-complete")); err != nil {
		if err := writeTree(commit, dir); err != nil {
			return nil, fmt.Errorf("git source %s: check out %s: %w", s, hash, err)
		}
		if !s.KeepWorktrees {
			pruneWorktrees(filepath.Dir(dir), hash)
		}
	}
	return &Checkout{Dir: dir, Commit: hash, Ref: string(name)}, nil
}

// Tree is a commit's files read without a checkout.
type Tree struct {
	// Commit is the full hash.
	Commit string
	// Ref is the reference the revision resolved through, if any.
	Ref string
	// FS reads the commit's files from the object store: regular files, directories,
	// symbolic links as fs.ModeSymlink entries (never followed); no submodules.
	FS fs.FS
	// tip is what the revision pointed at (an annotated tag's object, for a tag).
	tip plumbing.Hash
}

// Read resolves the revision and returns the commit's tree, or last when the revision
// still points where it did (a poller asks "has it moved?" cheaply): a local path or
// file:// URL is opened in place (a working tree's repository or a bare one); any other
// URL is listed (ls-remote) and, when the commit changed, fetched into memory (shallow
// where the server allows), never onto disk. A commit hash on a remote is fetched with
// every branch and tag, then looked up; it never moves, so last is returned without
// contacting the remote.
func (s Source) Read(ctx context.Context, last *Tree) (*Tree, error) {
	ep, f, secrets, err := s.endpoint()
	if err != nil {
		return nil, err
	}
	if ep.Kind == Local || ep.Kind == File {
		repo, err := gogit.PlainOpen(ep.Dir)
		if err != nil {
			return nil, fmt.Errorf("git source %s: open repository: %w", s, err)
		}
		name, tip, err := resolveLocal(repo, s.Ref)
		if err != nil {
			return nil, fmt.Errorf("git source %s: %w", s, err)
		}
		if last != nil && last.tip == tip {
			return last, nil
		}
		commit, err := peel(repo, tip)
		if err != nil {
			return nil, fmt.Errorf("git source %s: %w", s, err)
		}
		return newTree(name, tip, commit)
	}
	if last != nil && commitish(s.Ref) && strings.HasPrefix(last.Commit, strings.ToLower(s.Ref)) {
		return last, nil
	}
	repo, err := gogit.Init(memory.NewStorage(), nil)
	if err == nil {
		_, err = repo.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{ep.remote()}})
	}
	if err != nil {
		return nil, err
	}
	f.repo = repo
	defer f.useSSHDialer(ctx, ep)()
	refs, err := f.list(ctx)
	if err != nil {
		return nil, redact(fmt.Errorf("git source %s: %w", s, s.Auth.explain(ep, err)), secrets...)
	}
	if _, tip, ok := resolveName(refs, s.Ref); ok && last != nil && last.tip == tip {
		return last, nil
	}
	name, commit, err := f.resolve(ctx, refs, s.Ref)
	if err != nil {
		return nil, redact(fmt.Errorf("git source %s: %w", s, s.Auth.explain(ep, err)), secrets...)
	}
	tip := commit.Hash
	if _, t, ok := resolveName(refs, s.Ref); ok {
		tip = t
	}
	return newTree(name, tip, commit)
}

func newTree(name plumbing.ReferenceName, tip plumbing.Hash, commit *object.Commit) (*Tree, error) {
	root, err := commit.Tree()
	if err != nil {
		return nil, fmt.Errorf("tree of %s: %w", short(commit.Hash), err)
	}
	return &Tree{Commit: commit.Hash.String(), Ref: string(name), FS: &treeFS{root: root}, tip: tip}, nil
}

// writeTree writes a commit's files (no symlinks, no submodules) into dir.
func writeTree(commit *object.Commit, dir string) error {
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	tree, err := commit.Tree()
	if err != nil {
		return err
	}
	err = tree.Files().ForEach(func(f *object.File) error {
		if f.Mode == filemode.Symlink || f.Mode == filemode.Submodule {
			return nil
		}
		p := filepath.Join(tmp, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		r, err := f.Reader()
		if err != nil {
			return err
		}
		defer r.Close()
		mode := os.FileMode(0o644)
		if f.Mode == filemode.Executable {
			mode = 0o755
		}
		w, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, r); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".gitgate-complete"), nil, 0o644); err != nil {
		return err
	}
	_ = os.RemoveAll(dir)
	return os.Rename(tmp, dir)
}

// pruneWorktrees keeps the newest worktree and one before it.
func pruneWorktrees(parent, keep string) {
	entries, err := os.ReadDir(parent)
	if err != nil || len(entries) <= 2 {
		return
	}
	type wt struct {
		name string
		mod  int64
	}
	var list []wt
	for _, e := range entries {
		if info, err := e.Info(); err == nil && e.Name() != keep {
			list = append(list, wt{e.Name(), info.ModTime().UnixNano()})
		}
	}
	newest := -1
	for i, w := range list {
		if newest < 0 || w.mod > list[newest].mod {
			newest = i
		}
	}
	for i, w := range list {
		if i != newest {
			_ = os.RemoveAll(filepath.Join(parent, w.name))
		}
	}
}
