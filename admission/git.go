package admission

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"testing/fstest"

	"github.com/gitgate/gitgate/internal/git"
	"github.com/gitgate/gitgate/policy"
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
	// Auth authenticates remote URLs (zero: anonymous).
	Auth git.Auth

	tree   *git.Tree // the last tree read, reused while the ref does not move
	cached *Snapshot // the snapshot of tree
}

func (g *GitSource) String() string {
	s := "git:" + git.Redact(g.URL)
	if g.Ref != "" {
		s += "@" + g.Ref
	}
	if g.Path != "" {
		s += ":" + g.Path
	}
	return s
}

// Snapshot resolves the ref and reads the policy files of that commit.
func (g *GitSource) Snapshot(ctx context.Context) (*Snapshot, error) {
	tree, err := git.Source{URL: g.URL, Ref: g.Ref, Auth: g.Auth}.Read(ctx, g.tree)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g, err)
	}
	if tree == g.tree && g.cached != nil {
		return g.cached, nil
	}
	snap, err := g.read(tree)
	if err != nil {
		return nil, err
	}
	g.tree, g.cached = tree, snap
	return snap, nil
}

// read loads .gitgate.yaml and the policy files of one commit.
func (g *GitSource) read(t *git.Tree) (*Snapshot, error) {
	root := t.FS
	commit := git.ShortRev(t.Commit)
	cfgFS := fstest.MapFS{}
	if _, err := fs.Stat(root, policy.ConfigFile); err == nil {
		data, err := readTreeFile(root, policy.ConfigFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", g, policy.ConfigFile, err)
		}
		cfgFS[policy.ConfigFile] = &fstest.MapFile{Data: data}
	}
	cfg, err := policy.LoadConfig(cfgFS)
	if err != nil {
		return nil, fmt.Errorf("%s@%s: %w", g, commit, err)
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
		if d == "" {
			d = "."
		}
		if st, err := fs.Stat(root, d); err != nil || !st.IsDir() {
			if err == nil {
				err = fs.ErrNotExist
			}
			if g.Path == "" && len(cfg.Policies) == 0 && errors.Is(err, fs.ErrNotExist) {
				continue // no policies/ in the repository: the built-in bundle alone
			}
			return nil, fmt.Errorf("%s@%s: policy directory %s: %w", g, commit, d, err)
		}
		err := fs.WalkDir(root, d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() || !e.Type().IsRegular() {
				return nil // symlinks and submodules are not followed
			}
			name := p
			if d != "." {
				name = strings.TrimPrefix(p, d+"/")
			}
			if !policyFile(name) || hiddenPath(name) {
				return nil
			}
			if len(files) >= maxPolicyFiles {
				return fmt.Errorf("policy directory %s: more than %d policy files", d, maxPolicyFiles)
			}
			info, err := e.Info()
			if err != nil {
				return err
			}
			if info.Size() > maxPolicyFileBytes {
				return fmt.Errorf("policy file %s: larger than %d bytes; is it a policy?", p, maxPolicyFileBytes)
			}
			total += info.Size()
			if total > maxPolicySourceSize {
				return fmt.Errorf("policy directory %s: more than %d bytes of policy files", d, maxPolicySourceSize)
			}
			data, err := readTreeFile(root, p)
			if err != nil {
				return fmt.Errorf("policy file %s: %w", p, err)
			}
			files[p] = &fstest.MapFile{Data: data, Mode: 0o644}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s@%s: %w", g, commit, err)
		}
	}
	snap := &Snapshot{
		Version:  t.Commit + ":" + strings.Join(dirs, ","),
		Display:  g.String() + "@" + commit,
		Policies: files,
		Config:   cfg,
	}
	if cfg.Values != "" {
		data, err := readTreeFile(root, strings.Trim(path.Clean("/"+cfg.Values), "/"))
		if err != nil {
			return nil, fmt.Errorf("%s@%s: values file %s: %w", g, commit, cfg.Values, err)
		}
		v, err := policy.LoadValues(fstest.MapFS{"values.yaml": {Data: data}}, "values.yaml")
		if err != nil {
			return nil, fmt.Errorf("%s@%s: values file %s: %w", g, commit, cfg.Values, err)
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

func readTreeFile(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxPolicyFileBytes+1))
}
