// Package reconcile keeps clusters at what a Git repository says, behind the policy gate:
// it fetches the repository with go-git, renders each Argo CD Application (or target) with
// render/, judges the rendered objects with the policy gate, and server-side applies only
// what passes, pruning only objects it applied before (an inventory per app, kept in the
// cluster). It also reports drift: desired (Git) against live, with policy results on the
// live objects.
package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	git "github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// Source is a Git repository at a revision, fetched into a cache directory that is reused
// between runs.
type Source struct {
	// URL is a local path, file://, https:// (or http://), ssh:// or scp-like git@host:org/repo.
	URL string
	// Revision is a branch, tag or commit; empty means the remote's HEAD.
	Revision string
	// CacheDir holds the fetched objects and the checked-out worktrees
	// (default: $XDG_CACHE_HOME/gitgate/sync).
	CacheDir string
	// Username for https (default "git"); the token is the password.
	Username string
	// TokenEnv names an environment variable holding an https token; TokenFile a file.
	TokenEnv  string
	TokenFile string
	// SSHKeyFile is a private key for ssh URLs; KnownHostsFile the known_hosts to check the
	// server against (default: SSH_KNOWN_HOSTS or ~/.ssh/known_hosts).
	SSHKeyFile     string
	KnownHostsFile string
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

func (s Source) String() string {
	u := s.URL
	if p, err := url.Parse(u); err == nil && p.User != nil {
		u = p.Redacted()
	}
	if s.Revision != "" {
		u += "@" + s.Revision
	}
	return u
}

// remoteURL turns a local path into a file:// URL.
func (s Source) remoteURL() (string, bool, error) {
	u := s.URL
	if strings.HasPrefix(u, "file://") {
		return u, true, nil
	}
	if strings.Contains(u, "://") || (strings.Contains(u, "@") && strings.Contains(u, ":")) {
		return u, false, nil
	}
	abs, err := filepath.Abs(u)
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", u, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return "", false, fmt.Errorf("git source %s: %w; give a repository path or URL", u, err)
	}
	return "file://" + abs, true, nil
}

func (s Source) auth(remote string) (transport.AuthMethod, error) {
	switch {
	case strings.HasPrefix(remote, "https://") || strings.HasPrefix(remote, "http://"):
		token := ""
		if s.TokenEnv != "" {
			token = os.Getenv(s.TokenEnv)
			if token == "" {
				return nil, fmt.Errorf("git source %s: environment variable %s is empty; export the token or drop --git-token-env", s, s.TokenEnv)
			}
		}
		if s.TokenFile != "" {
			b, err := os.ReadFile(s.TokenFile)
			if err != nil {
				return nil, fmt.Errorf("git source %s: read token: %w", s, err)
			}
			token = strings.TrimSpace(string(b))
		}
		if token == "" {
			return nil, nil
		}
		user := s.Username
		if user == "" {
			user = "git"
		}
		return &githttp.BasicAuth{Username: user, Password: token}, nil
	case strings.HasPrefix(remote, "ssh://") || strings.Contains(remote, "@") && !strings.Contains(remote, "://"):
		if s.SSHKeyFile == "" {
			return nil, nil // go-git falls back to the ssh agent
		}
		user := "git"
		if p, err := url.Parse(remote); err == nil && p.User != nil && p.User.Username() != "" {
			user = p.User.Username()
		} else if at := strings.Index(remote, "@"); at > 0 && !strings.Contains(remote, "://") {
			user = remote[:at]
		}
		keys, err := gitssh.NewPublicKeysFromFile(user, s.SSHKeyFile, os.Getenv("GITGATE_SSH_KEY_PASSPHRASE"))
		if err != nil {
			return nil, fmt.Errorf("git source %s: ssh key %s: %w", s, s.SSHKeyFile, err)
		}
		var files []string
		if s.KnownHostsFile != "" {
			files = []string{s.KnownHostsFile}
		}
		cb, err := gitssh.NewKnownHostsCallback(files...)
		if err != nil {
			return nil, fmt.Errorf("git source %s: known hosts: %w; give --git-known-hosts", s, err)
		}
		keys.HostKeyCallback = cb
		return keys, nil
	}
	return nil, nil
}

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

// Fetch brings the revision into the cache (shallow for branches and tags of remote
// repositories) and writes its files into a worktree directory named by the commit, reused
// when it is already there.
func (s Source) Fetch(ctx context.Context) (*Checkout, error) {
	remote, local, err := s.remoteURL()
	if err != nil {
		return nil, err
	}
	auth, err := s.auth(remote)
	if err != nil {
		return nil, err
	}
	cache, err := s.cacheDir()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(remote))
	key := hex.EncodeToString(sum[:8])
	gitDir := filepath.Join(cache, "repos", key+".git")
	repo, err := git.PlainOpen(gitDir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if repo, err = git.PlainInit(gitDir, true); err == nil {
			_, err = repo.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{remote}})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("git cache %s: %w; remove the directory to start afresh", gitDir, err)
	}
	rem, err := repo.Remote("origin")
	if err != nil {
		return nil, fmt.Errorf("git cache %s: %w", gitDir, err)
	}
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: auth})
	if err != nil {
		return nil, fmt.Errorf("git source %s: list references: %w", s, err)
	}
	name, hash, err := pickRef(refs, s.Revision)
	if err != nil {
		return nil, fmt.Errorf("git source %s: %w", s, err)
	}
	if _, err := repo.CommitObject(hash); err != nil { // not in the cache yet
		var specs []gitconfig.RefSpec
		depth := 0
		if name != "" {
			specs = []gitconfig.RefSpec{gitconfig.RefSpec("+" + string(name) + ":" + string(name))}
			if !local {
				depth = 1
			}
		} else {
			specs = []gitconfig.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"}
		}
		fetch := func(depth int) error {
			err := repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", RefSpecs: specs, Auth: auth, Depth: depth, Tags: git.NoTags, Force: true})
			if errors.Is(err, git.NoErrAlreadyUpToDate) {
				return nil
			}
			return err
		}
		err := fetch(depth)
		if err != nil && depth > 0 { // some servers cannot serve shallow fetches
			err = fetch(0)
		}
		if err != nil {
			return nil, fmt.Errorf("git source %s: fetch: %w", s, err)
		}
	}
	commit, err := repo.CommitObject(hash)
	if err != nil {
		return nil, fmt.Errorf("git source %s: commit %s not found after fetch: %w", s, hash, err)
	}
	dir := filepath.Join(cache, "worktrees", key, hash.String())
	if _, err := os.Stat(filepath.Join(dir, ".gitgate-complete")); err != nil {
		if err := writeTree(commit, dir); err != nil {
			return nil, fmt.Errorf("git source %s: check out %s: %w", s, hash, err)
		}
		pruneWorktrees(filepath.Dir(dir), hash.String())
	}
	return &Checkout{Dir: dir, Commit: hash.String(), Ref: string(name)}, nil
}

// pickRef resolves a revision against the remote's references: HEAD, a branch, a tag, a
// full reference name, or a commit hash (name empty).
func pickRef(refs []*plumbing.Reference, rev string) (plumbing.ReferenceName, plumbing.Hash, error) {
	byName := map[plumbing.ReferenceName]*plumbing.Reference{}
	for _, r := range refs {
		byName[r.Name()] = r
	}
	resolve := func(n plumbing.ReferenceName) (plumbing.ReferenceName, plumbing.Hash, bool) {
		for range 5 {
			r, ok := byName[n]
			if !ok {
				return "", plumbing.ZeroHash, false
			}
			if r.Type() == plumbing.HashReference {
				return n, r.Hash(), true
			}
			n = r.Target()
		}
		return "", plumbing.ZeroHash, false
	}
	if rev == "" || rev == "HEAD" {
		if n, h, ok := resolve(plumbing.HEAD); ok {
			if n == plumbing.HEAD { // HEAD without symref capability: find the branch
				for _, r := range refs {
					if r.Name().IsBranch() && r.Hash() == h {
						return r.Name(), h, nil
					}
				}
			}
			return n, h, nil
		}
		return "", plumbing.ZeroHash, errors.New("the remote has no HEAD; give --revision")
	}
	for _, n := range []plumbing.ReferenceName{plumbing.ReferenceName(rev), plumbing.NewBranchReferenceName(rev), plumbing.NewTagReferenceName(rev)} {
		if got, h, ok := resolve(n); ok {
			return got, h, nil
		}
	}
	if plumbing.IsHash(rev) {
		return "", plumbing.NewHash(rev), nil
	}
	return "", plumbing.ZeroHash, fmt.Errorf("revision %q is neither a branch, a tag nor a full commit hash", rev)
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
