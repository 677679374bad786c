package render

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Change is what merge-request mode compares: the files that differ between the merge
// base of a revision with HEAD and the working tree (commits since the merge base,
// staged, unstaged and untracked files), and the merge base's tree on disk, so the base
// renders with the same code as the head.
type Change struct {
	// Base is the revision as given, BaseCommit the merge base it resolved to.
	Base       string
	BaseCommit string
	// Files are the changed paths relative to the directory that was opened,
	// slash-separated, sorted; files outside it are left out.
	Files []string
	// BaseDir is a temporary directory holding the base revision's files under the
	// opened directory; Close removes it.
	BaseDir string
}

// Close removes the base checkout.
func (c *Change) Close() error {
	if c == nil || c.BaseDir == "" {
		return nil
	}
	return os.RemoveAll(c.BaseDir)
}

// RevisionError is a base revision that cannot be compared with: not in the clone, or
// beyond a shallow clone's history.
type RevisionError struct {
	Rev string
	Err error
}

func (e *RevisionError) Error() string {
	return fmt.Sprintf("base revision %q: %v; fetch it first, e.g. git fetch --depth=50 origin %s (or git fetch --unshallow)", e.Rev, e.Err, fetchName(e.Rev))
}

func (e *RevisionError) Unwrap() error { return e.Err }

func fetchName(rev string) string {
	if r, ok := strings.CutPrefix(rev, "origin/"); ok {
		return r
	}
	return rev
}

// ChangeOptions configure OpenChange.
type ChangeOptions struct {
	// Staged leaves unstaged and untracked files out of the change: what a commit would
	// record (pre-commit hooks run with unstaged changes stashed).
	Staged bool
}

// OpenChange compares dir, inside a Git working tree (a clone, a linked worktree, a
// detached HEAD or a shallow clone), with the merge base of rev and HEAD, using go-git:
// no git binary is needed. The base is checked out into a temporary directory (under
// tmp, or the system's): unchanged files are hard-linked from the working tree where
// the filesystem allows (copied otherwise) and never written through; changed ones are
// written from Git's objects. Ignored files are not part of either side's change.
func OpenChange(dir, rev, tmp string, opts ChangeOptions) (*Change, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	repo, err := git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if err != nil {
		return nil, fmt.Errorf("%s: not inside a Git repository (%w); --base needs one", dir, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	top := wt.Filesystem.Root()
	if real, err := filepath.EvalSymlinks(top); err == nil {
		top = real
	}
	realDir := abs
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		realDir = r
	}
	prefix, err := filepath.Rel(top, realDir)
	if err != nil || prefix == ".." || strings.HasPrefix(prefix, "../") {
		return nil, fmt.Errorf("%s is not inside the working tree %s", dir, top)
	}
	prefix = filepath.ToSlash(prefix)

	head, err := repo.Head()
	if err != nil {
		return nil, fmt.Errorf("%s: HEAD: %w", top, err)
	}
	headCommit, err := repo.CommitObject(head.Hash())
	if err != nil {
		return nil, fmt.Errorf("%s: HEAD commit: %w", top, err)
	}
	h, err := repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, &RevisionError{Rev: rev, Err: errors.New("not found in this clone")}
	}
	baseCommit, err := repo.CommitObject(*h)
	if err != nil {
		return nil, &RevisionError{Rev: rev, Err: fmt.Errorf("commit %s is not in this clone", h.String()[:12])}
	}
	bases, err := baseCommit.MergeBase(headCommit)
	if err != nil || len(bases) == 0 {
		if err == nil {
			err = errors.New("no common history with HEAD (a shallow clone?)")
		}
		return nil, &RevisionError{Rev: rev, Err: fmt.Errorf("merge base with HEAD: %w", err)}
	}
	mergeBase := bases[0]
	baseTree, err := mergeBase.Tree()
	if err != nil {
		return nil, &RevisionError{Rev: rev, Err: err}
	}
	headTree, err := headCommit.Tree()
	if err != nil {
		return nil, fmt.Errorf("HEAD tree: %w", err)
	}

	changed := map[string]bool{} // relative to the top of the working tree
	diffs, err := object.DiffTree(baseTree, headTree)
	if err != nil {
		return nil, fmt.Errorf("diff %s..HEAD: %w", rev, err)
	}
	for _, d := range diffs {
		for _, n := range []string{d.From.Name, d.To.Name} {
			if n != "" {
				changed[n] = true
			}
		}
	}
	st, err := wt.Status()
	if err != nil {
		return nil, fmt.Errorf("%s: status: %w", top, err)
	}
	for p, s := range st {
		staged := s.Staging != git.Unmodified && s.Staging != git.Untracked
		if staged || !opts.Staged && s.Worktree != git.Unmodified {
			changed[filepath.ToSlash(p)] = true
		}
	}

	c := &Change{Base: rev, BaseCommit: mergeBase.Hash.String()}
	under := func(p string) (string, bool) {
		if prefix == "." {
			return p, true
		}
		return strings.CutPrefix(p, prefix+"/")
	}
	for p := range changed {
		if r, ok := under(p); ok {
			c.Files = append(c.Files, r)
		}
	}
	sort.Strings(c.Files)

	c.BaseDir, err = os.MkdirTemp(tmp, "gitgate-base-")
	if err != nil {
		return nil, err
	}
	if err := checkoutBase(baseTree, top, c.BaseDir, under, changed); err != nil {
		c.Close()
		return nil, fmt.Errorf("check out %s into %s: %w", rev, c.BaseDir, err)
	}
	return c, nil
}

// checkoutBase writes the base tree's files under the opened directory into dst.
func checkoutBase(tree *object.Tree, top, dst string, under func(string) (string, bool), changed map[string]bool) error {
	made := map[string]bool{}
	mkdir := func(d string) error {
		if made[d] {
			return nil
		}
		made[d] = true
		return os.MkdirAll(d, 0o755)
	}
	return tree.Files().ForEach(func(f *object.File) error {
		r, ok := under(f.Name)
		if !ok {
			return nil
		}
		out := filepath.Join(dst, filepath.FromSlash(r))
		if err := mkdir(filepath.Dir(out)); err != nil {
			return err
		}
		switch f.Mode {
		case filemode.Symlink:
			target, err := f.Contents()
			if err != nil {
				return err
			}
			return os.Symlink(target, out)
		case filemode.Submodule:
			return nil
		}
		if !changed[f.Name] {
			src := filepath.Join(top, filepath.FromSlash(f.Name))
			if os.Link(src, out) == nil {
				return nil
			}
			if copyFile(src, out) == nil {
				return nil
			}
		}
		rd, err := f.Reader()
		if err != nil {
			return err
		}
		defer rd.Close()
		return writeFile(out, rd)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeFile(dst, in)
}

func writeFile(dst string, r io.Reader) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// ChangedUnder reports whether any changed file is dir or below it (dir "." is
// everything); paths are slash-separated and relative to the same root.
func ChangedUnder(files []string, dir string) bool {
	dir = path.Clean(dir)
	for _, f := range files {
		if dir == "." || f == dir || strings.HasPrefix(f, dir+"/") {
			return true
		}
	}
	return false
}
