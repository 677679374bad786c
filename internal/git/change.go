package git

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	gogit "github.com/go-git/go-git/v5"
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
	// BaseFS is the base revision's files under the opened directory: the working tree
	// with every changed file as the merge base has it (or absent). Nothing is checked
	// out: Compare writes only the files the affected targets read (Materialize).
	BaseFS fs.FS
}

// RevisionError is a base revision that cannot be compared with: not in the clone, or
// beyond a shallow clone's history.
type RevisionError struct {
	Rev string
	Err error
}

func (e *RevisionError) Error() string {
	name := fetchName(e.Rev)
	if !validRefName(name) {
		return fmt.Sprintf("base revision %q: %v, and it is not a valid Git reference name", e.Rev, e.Err)
	}
	return fmt.Sprintf("base revision %q: %v; fetch it first, e.g. git fetch --depth=50 origin %s (or git fetch --unshallow)", e.Rev, e.Err, shellQuote(name))
}

// validRefName is Git's check-ref-format rule for the characters of a name a user typed
// (no control characters, space, ~ ^ : ? * [ \, no "..", "@{", leading "-" or trailing
// "." or "/"), so a hint never echoes a line break or an option into a CI log.
func validRefName(s string) bool {
	if s == "" || strings.HasPrefix(s, "-") || strings.HasSuffix(s, ".") || strings.HasSuffix(s, "/") ||
		strings.Contains(s, "..") || strings.Contains(s, "@{") || strings.Contains(s, "//") {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return false
		}
	}
	return true
}

// shellQuote quotes s for a POSIX shell command line unless it is plainly safe.
func shellQuote(s string) string {
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._/+-@=,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
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
	// MaxBlobSize: a changed file's base blob larger than this is not read; reading it
	// from BaseFS fails with an error naming the limit (0: no limit).
	MaxBlobSize int64
	// WorkFS, when set, is how BaseFS reads the files the change leaves alone (the
	// working tree at dir): a caller that confines reading to the repository passes its
	// confined view, so a symbolic link out of the tree is refused at base as at head.
	// Default: os.DirFS(dir).
	WorkFS fs.FS
}

// OpenChange compares dir, inside a Git working tree (a clone, a linked worktree, a
// detached HEAD or a shallow clone), with the merge base of rev and HEAD, using go-git:
// no git binary is needed. Ignored files are not part of the change.
func OpenChange(dir, rev string, opts ChangeOptions) (*Change, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	repo, err := gogit.PlainOpenWithOptions(abs, &gogit.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
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
	_, h, err := resolveLocal(repo, rev)
	if err != nil {
		return nil, &RevisionError{Rev: rev, Err: errors.New("not found in this clone")}
	}
	baseCommit, err := peel(repo, h)
	if err != nil {
		return nil, &RevisionError{Rev: rev, Err: fmt.Errorf("commit %s is not in this clone", short(h))}
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
	if wc, ok := worktreeChanges(repo, top, headTree, opts.Staged); ok {
		for p := range wc {
			changed[p] = true
		}
	} else {
		st, err := wt.Status()
		if err != nil {
			return nil, fmt.Errorf("%s: status: %w", top, err)
		}
		for p, s := range st {
			staged := s.Staging != gogit.Unmodified && s.Staging != gogit.Untracked
			if staged || !opts.Staged && s.Worktree != gogit.Unmodified {
				changed[filepath.ToSlash(p)] = true
			}
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

	work := opts.WorkFS
	if work == nil {
		work = os.DirFS(realDir)
	}
	ov := &overlayFS{dir: realDir, head: work, files: map[string]*overlayFile{}, dirs: map[string]bool{}}
	for p := range changed {
		r, ok := under(p)
		if !ok {
			continue
		}
		f, err := baseTree.File(p)
		if errors.Is(err, object.ErrFileNotFound) {
			ov.files[r] = nil // not at the base
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s at %s: %w", p, rev, err)
		}
		if f.Mode == filemode.Submodule {
			continue
		}
		if opts.MaxBlobSize > 0 && f.Size > opts.MaxBlobSize {
			ov.files[r] = &overlayFile{size: f.Size, symlink: f.Mode == filemode.Symlink,
				tooBig: fmt.Errorf("%s at the base revision is %d bytes, over the %d-byte limit; raise it with --max-file-size if the file is legitimate", p, f.Size, opts.MaxBlobSize)}
			for d := path.Dir(r); d != "."; d = path.Dir(d) {
				ov.dirs[d] = true
			}
			continue
		}
		content, err := f.Contents()
		if err != nil {
			return nil, fmt.Errorf("%s at %s: %w", p, rev, err)
		}
		ov.files[r] = &overlayFile{data: []byte(content), symlink: f.Mode == filemode.Symlink}
		for d := path.Dir(r); d != "."; d = path.Dir(d) {
			ov.dirs[d] = true
		}
	}
	c.BaseFS = ov
	return c, nil
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
