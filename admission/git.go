package admission

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
	"testing/fstest"

	"github.com/gitgate/gitgate/policy"
	git "github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// GitSource is a policy directory in a Git repository: the same commit the merge-request
// check judged with, one source of truth. The repository's .gitgate.yaml (registries,
// noBuiltin, values, policies) is read from the same commit.
//
// A local path or file:// URL is opened in place (no git binary, no copy); any other URL
// is polled with `ls-remote` and cloned into memory only when its commit changes.
type GitSource struct {
	// URL is a local path, file://, https:// or ssh:// URL.
	URL string
	// Ref is a branch, tag or commit; empty means the remote's HEAD.
	Ref string
	// Path is the policy directory inside the repository; empty means the policies:
	// of .gitgate.yaml, else policies/.
	Path string
	// Auth authenticates remote URLs (nil: anonymous).
	Auth transport.AuthMethod

	cached *Snapshot // the last snapshot of a remote, reused while its commit is unchanged
}

func (g *GitSource) String() string {
	s := "git:" + redactURL(g.URL)
	if g.Ref != "" {
		s += "@" + g.Ref
	}
	if g.Path != "" {
		s += ":" + g.Path
	}
	return s
}

// redactURL drops a password from a URL before it is shown.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

func (g *GitSource) local() (string, bool) {
	if strings.HasPrefix(g.URL, "file://") {
		return strings.TrimPrefix(g.URL, "file://"), true
	}
	if !strings.Contains(g.URL, "://") && !strings.Contains(g.URL, "@") {
		return g.URL, true
	}
	return "", false
}

// Snapshot resolves the ref and reads the policy files of that commit.
func (g *GitSource) Snapshot(ctx context.Context) (*Snapshot, error) {
	if dir, ok := g.local(); ok {
		repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{}) // the root of a working tree, or a bare repository
		if err != nil {
			return nil, fmt.Errorf("%s: open repository: %w", g, err)
		}
		rev := g.Ref
		if rev == "" {
			rev = "HEAD"
		}
		h, err := repo.ResolveRevision(plumbing.Revision(rev))
		if err != nil {
			return nil, fmt.Errorf("%s: resolve %s: %w; name a branch, tag or commit with --git-ref", g, rev, err)
		}
		return g.read(repo, *h)
	}
	return g.remote(ctx)
}

func (g *GitSource) remote(ctx context.Context) (*Snapshot, error) {
	rem := git.NewRemote(memory.NewStorage(), &gitconfig.RemoteConfig{Name: "origin", URLs: []string{g.URL}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: g.Auth})
	if err != nil {
		return nil, fmt.Errorf("%s: list remote references: %w", g, err)
	}
	name, hash, err := pickRef(refs, g.Ref)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g, err)
	}
	if g.cached != nil && strings.HasPrefix(g.cached.Version, hash.String()) {
		return g.cached, nil
	}
	clone := func(depth int) (*git.Repository, error) {
		return git.CloneContext(ctx, memory.NewStorage(), nil, &git.CloneOptions{
			URL: g.URL, Auth: g.Auth, ReferenceName: name, SingleBranch: true, Depth: depth,
			NoCheckout: true, Tags: git.NoTags,
		})
	}
	repo, err := clone(1)
	if err != nil { // some servers cannot serve shallow clones
		repo, err = clone(0)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: clone %s: %w", g, name, err)
	}
	ref, err := repo.Reference(name, true)
	if err != nil {
		return nil, fmt.Errorf("%s: clone %s: %w", g, name, err)
	}
	snap, err := g.read(repo, ref.Hash())
	if err != nil {
		return nil, err
	}
	g.cached = snap
	return snap, nil
}

// pickRef finds the reference to follow among a remote's: Ref as a branch, then as a
// tag, or HEAD.
func pickRef(refs []*plumbing.Reference, want string) (plumbing.ReferenceName, plumbing.Hash, error) {
	byName := map[plumbing.ReferenceName]*plumbing.Reference{}
	for _, r := range refs {
		byName[r.Name()] = r
	}
	var candidates []plumbing.ReferenceName
	switch {
	case want == "" || want == "HEAD":
		head, ok := byName[plumbing.HEAD]
		if !ok {
			return "", plumbing.ZeroHash, errors.New("the remote has no HEAD; pass --git-ref BRANCH")
		}
		if head.Type() == plumbing.SymbolicReference {
			candidates = []plumbing.ReferenceName{head.Target()}
		} else {
			for _, r := range refs { // a hash HEAD: the branch that points there
				if r.Name().IsBranch() && r.Hash() == head.Hash() {
					candidates = append(candidates, r.Name())
				}
			}
		}
	case strings.HasPrefix(want, "refs/"):
		candidates = []plumbing.ReferenceName{plumbing.ReferenceName(want)}
	default:
		candidates = []plumbing.ReferenceName{plumbing.NewBranchReferenceName(want), plumbing.NewTagReferenceName(want)}
	}
	for _, c := range candidates {
		if r, ok := byName[c]; ok && r.Type() == plumbing.HashReference {
			return c, r.Hash(), nil
		}
	}
	return "", plumbing.ZeroHash, fmt.Errorf("no branch or tag %q on the remote; pass --git-ref BRANCH|TAG", want)
}

// read loads .gitgate.yaml and the policy files of one commit (or annotated tag).
func (g *GitSource) read(repo *git.Repository, h plumbing.Hash) (*Snapshot, error) {
	commit, err := repo.CommitObject(h)
	if err != nil {
		tag, terr := repo.TagObject(h)
		if terr != nil {
			return nil, fmt.Errorf("%s: read commit %s: %w", g, h, err)
		}
		if commit, err = tag.Commit(); err != nil {
			return nil, fmt.Errorf("%s: read tag %s: %w", g, h, err)
		}
	}
	root, err := commit.Tree()
	if err != nil {
		return nil, fmt.Errorf("%s: read tree of %s: %w", g, commit.Hash, err)
	}
	cfgFS := fstest.MapFS{}
	if f, err := root.File(policy.ConfigFile); err == nil {
		data, err := fileData(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", g, policy.ConfigFile, err)
		}
		cfgFS[policy.ConfigFile] = &fstest.MapFile{Data: data}
	}
	cfg, err := policy.LoadConfig(cfgFS)
	if err != nil {
		return nil, fmt.Errorf("%s@%s: %w", g, short(commit.Hash), err)
	}
	dirs := []string{g.Path}
	if g.Path == "" {
		dirs = cfg.Policies
		if len(dirs) == 0 {
			dirs = []string{"policies"}
		}
	}
	files := fstest.MapFS{}
	var total int64
	for _, d := range dirs {
		d = strings.Trim(path.Clean("/"+d), "/")
		var tree *object.Tree
		if d == "" {
			tree = root
		} else if tree, err = root.Tree(d); err != nil {
			if g.Path == "" && len(cfg.Policies) == 0 && errors.Is(err, object.ErrDirectoryNotFound) {
				continue // no policies/ in the repository: the built-in bundle alone
			}
			return nil, fmt.Errorf("%s@%s: policy directory %s: %w", g, short(commit.Hash), d, err)
		}
		err := tree.Files().ForEach(func(f *object.File) error {
			if f.Mode != filemode.Regular && f.Mode != filemode.Executable {
				return nil // symlinks and submodules are not followed
			}
			if !policyFile(f.Name) || hiddenPath(f.Name) {
				return nil
			}
			if len(files) >= maxPolicyFiles {
				return fmt.Errorf("policy directory %s: more than %d policy files", d, maxPolicyFiles)
			}
			if f.Size > maxPolicyFileBytes {
				return fmt.Errorf("policy file %s: larger than %d bytes; is it a policy?", path.Join(d, f.Name), maxPolicyFileBytes)
			}
			total += f.Size
			if total > maxPolicySourceSize {
				return fmt.Errorf("policy directory %s: more than %d bytes of policy files", d, maxPolicySourceSize)
			}
			data, err := fileData(f)
			if err != nil {
				return fmt.Errorf("policy file %s: %w", path.Join(d, f.Name), err)
			}
			files[path.Join(d, f.Name)] = &fstest.MapFile{Data: data, Mode: 0o644}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s@%s: %w", g, short(commit.Hash), err)
		}
	}
	snap := &Snapshot{
		Version:  commit.Hash.String() + ":" + strings.Join(dirs, ","),
		Display:  g.String() + "@" + short(commit.Hash),
		Policies: files,
		Config:   cfg,
	}
	if cfg.Values != "" {
		f, err := root.File(strings.Trim(path.Clean("/"+cfg.Values), "/"))
		if err != nil {
			return nil, fmt.Errorf("%s@%s: values file %s: %w", g, short(commit.Hash), cfg.Values, err)
		}
		data, err := fileData(f)
		if err != nil {
			return nil, fmt.Errorf("%s@%s: values file %s: %w", g, short(commit.Hash), cfg.Values, err)
		}
		v, err := policy.LoadValues(fstest.MapFS{"values.yaml": {Data: data}}, "values.yaml")
		if err != nil {
			return nil, fmt.Errorf("%s@%s: values file %s: %w", g, short(commit.Hash), cfg.Values, err)
		}
		snap.Values = v
	}
	return snap, nil
}

func hiddenPath(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if strings.HasPrefix(seg, ".") {
			return true
		}
	}
	return false
}

func fileData(f *object.File) ([]byte, error) {
	r, err := f.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, maxPolicyFileBytes+1))
}

func short(h plumbing.Hash) string { return h.String()[:12] }
