// Package repopath is the one rule for "stays inside the repository": a path a
// repository names (a kustomize resource, a Helm values file or file:// dependency, an
// Argo CD source path) must not leave the repository root, by its name (an absolute
// path, "..") or through a symbolic link that resolves outside. Rendering calls it for
// every file kustomize, Helm and Argo CD discovery read.
package repopath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// Reason is how a path leaves the repository.
type Reason int

const (
	// Parent: the path climbs out with "..".
	Parent Reason = iota + 1
	// Absolute: the path is absolute where a repository-relative one is needed.
	Absolute
	// Symlink: the path is inside by name, but a symbolic link on it resolves outside.
	Symlink
)

// EscapeError is a path that leaves the repository.
type EscapeError struct {
	// Path is the path as the repository names it (repository-relative when it is
	// inside by name).
	Path   string
	Reason Reason
	// Target is where the path resolves, for Symlink.
	Target string
}

func (e *EscapeError) Error() string {
	switch e.Reason {
	case Absolute:
		return fmt.Sprintf("%s is an absolute path; name it relative to the repository root", e.Path)
	case Symlink:
		return fmt.Sprintf("%s is a symbolic link out of the repository (to %s)", e.Path, e.Target)
	}
	return fmt.Sprintf("%s is outside the repository", e.Path)
}

// Clean cleans a repository-relative path (slash- or OS-separated) lexically, without
// reading the disk, and returns it slash-separated ("." for the root itself). An
// absolute path or one that climbs out with ".." is an *EscapeError naming p.
func Clean(p string) (string, error) {
	if filepath.IsAbs(p) || path.IsAbs(filepath.ToSlash(p)) {
		return "", &EscapeError{Path: p, Reason: Absolute}
	}
	c := path.Clean(filepath.ToSlash(p))
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", &EscapeError{Path: p, Reason: Parent}
	}
	return c, nil
}

// Root is a repository root on disk, for one run over a tree that does not change
// under it: it remembers the directories it proved to be inside (see Resolve), so open
// a new Root for a new revision or checkout.
type Root struct {
	dir  string // absolute
	real string // absolute, symbolic links resolved
	// dirs: repository-relative directory (cleaned, slash-separated) -> where it
	// resolves, a directory inside real. Only proven directories are kept; anything
	// else (a missing directory, a file, a link out, a loop) is judged afresh by
	// resolvesInside every time, so its error is exactly the uncached one.
	dirs sync.Map
}

// Open is the repository at dir, which must exist.
func Open(dir string) (*Root, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("repository root %s: %w", dir, err)
	}
	return &Root{dir: abs, real: real}, nil
}

// Dir is the root as opened, made absolute.
func (r *Root) Dir() string { return r.dir }

// Real is the root with symbolic links resolved: the prefix of every resolved path
// inside the repository.
func (r *Root) Real() string { return r.real }

// Resolve checks the repository-relative path rel (Clean's rules, then every symbolic
// link on it followed) and returns it as an OS path under Dir. A path that does not
// exist is checked as far as it does: a missing file below a link out of the
// repository is refused all the same.
func (r *Root) Resolve(rel string) (string, error) {
	c, err := Clean(rel)
	if err != nil {
		return "", err
	}
	p := filepath.Join(r.dir, filepath.FromSlash(c))
	if r.inside(c) {
		return p, nil
	}
	if target, ok := r.resolvesInside(p); !ok {
		return "", &EscapeError{Path: rel, Reason: Symlink, Target: target}
	}
	return p, nil
}

// inside is the fast half of Resolve for the clean repository-relative path c: true when
// every directory on it is one proven inside (each checked once per Root: a real
// directory, or a link that resolves to a directory inside) and its last element is not
// a symbolic link (a file, a directory, or absent). False means "not proven", never
// "outside": the caller then follows every link on the whole path, as it did before
// directories were remembered, so a refusal and its message are the uncached ones.
func (r *Root) inside(c string) bool {
	_, _, ok := r.lstat(c)
	return ok
}

// lstat is inside, with where c resolves (in a proven directory) and what the last
// element is (nil when it is absent, and for the root).
func (r *Root) lstat(c string) (string, fs.FileInfo, bool) {
	if c == "." {
		return r.real, nil, true // the root itself: proven at Open (its FileInfo by os.Stat)
	}
	dir, ok := r.dirResolved(path.Dir(c))
	if !ok {
		return "", nil, false
	}
	p := filepath.Join(dir, path.Base(c))
	fi, err := os.Lstat(p)
	if err != nil {
		return p, nil, errors.Is(err, fs.ErrNotExist) // absent in a proven directory: nothing to follow
	}
	return p, fi, fi.Mode()&fs.ModeSymlink == 0
}

// dirResolved is where the clean repository-relative directory d resolves, when it is
// proven to be a directory inside the root (remembered); false when it is anything else.
func (r *Root) dirResolved(d string) (string, bool) {
	if d == "." {
		return r.real, true
	}
	if v, ok := r.dirs.Load(d); ok {
		return v.(string), true
	}
	parent, ok := r.dirResolved(path.Dir(d))
	if !ok {
		return "", false
	}
	p := filepath.Join(parent, path.Base(d))
	fi, err := os.Lstat(p)
	if err != nil {
		return "", false
	}
	switch {
	case fi.IsDir(): // a real directory below a proven one
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := filepath.EvalSymlinks(p) // chains and loops: EvalSymlinks' own rules
		if err != nil {
			return "", false
		}
		if _, in := under(r.real, target); !in {
			return "", false
		}
		if st, err := os.Lstat(target); err != nil || !st.IsDir() {
			return "", false
		}
		p = target
	default:
		return "", false
	}
	r.dirs.Store(d, p)
	return p, true
}

// Check checks an OS path a tool computed (absolute, or relative to the working
// directory), under Dir or Real: inside the root by name, and inside once its symbolic
// links are resolved. The *EscapeError names the path repository-relative when it is
// inside by name.
func (r *Root) Check(p string) error {
	abs, err := filepath.Abs(p)
	if err != nil {
		return &EscapeError{Path: p, Reason: Parent}
	}
	rel, ok := r.Rel(abs)
	if !ok {
		return &EscapeError{Path: p, Reason: Parent}
	}
	if c, err := Clean(rel); err == nil && r.inside(c) {
		return nil
	}
	if target, ok := r.resolvesInside(abs); !ok {
		return &EscapeError{Path: rel, Reason: Symlink, Target: target}
	}
	return nil
}

// Rel is the slash-separated repository-relative name of an absolute OS path under Dir
// or Real, by name only; false when it is under neither.
func (r *Root) Rel(abs string) (string, bool) {
	for _, root := range []string{r.real, r.dir} {
		if rel, ok := under(root, abs); ok {
			return rel, true
		}
	}
	return "", false
}

// Under is p relative to root (slash-separated) when p lies under root, by name only:
// false for a path that climbs out of it. The lexical half of Check, for paths that need
// not exist.
func Under(root, p string) (string, bool) { return under(root, p) }

func under(root, p string) (string, bool) {
	rel, err := filepath.Rel(root, p)
	if err != nil || filepath.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

// resolvesInside follows the symbolic links on the absolute path p (its longest
// existing prefix when it does not exist) and reports whether the result is inside
// Real, and where it leads.
func (r *Root) resolvesInside(p string) (string, bool) {
	resolved, err := evalExisting(p)
	if err != nil {
		// A link loop or an unreadable directory: not provably inside.
		return p, false
	}
	_, ok := under(r.real, resolved)
	return resolved, ok
}

// evalExisting resolves the symbolic links of p's longest existing prefix and appends
// the rest.
func evalExisting(p string) (string, error) {
	var rest []string
	for hops := 0; ; {
		resolved, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(append([]string{resolved}, rest...)...), nil
		}
		// A missing element, or a file used as a directory (kustomize probes
		// file.yaml/kustomization.yaml): judge what exists.
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return "", err
		}
		// Only a missing final element is walked up: a dangling link is followed by
		// Lstat + Readlink so its target is still judged.
		if fi, lerr := os.Lstat(p); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			link, rerr := os.Readlink(p)
			if rerr != nil {
				return "", rerr
			}
			if !filepath.IsAbs(link) {
				link = filepath.Join(filepath.Dir(p), link)
			}
			if hops++; hops > 255 {
				return "", errors.New("too many levels of symbolic links")
			}
			p = link
			continue
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", err
		}
		rest = append([]string{filepath.Base(p)}, rest...)
		p = parent
	}
}

// FS is the repository as an fs.FS that every reader of repository files goes through:
// each name is checked with Resolve (an absolute name, "..", or a symbolic link on the
// way that resolves outside the repository is an *EscapeError naming it) before the
// file is opened, so nothing outside the repository is ever read. A symbolic link that
// stays inside is followed. It implements fs.StatFS, fs.ReadFileFS and fs.ReadDirFS.
type FS struct {
	root *Root
	err  error // the root did not open: every call fails with it
}

var (
	_ fs.StatFS     = (*FS)(nil)
	_ fs.ReadFileFS = (*FS)(nil)
	_ fs.ReadDirFS  = (*FS)(nil)
)

// FS is the repository as a confined fs.FS.
func (r *Root) FS() *FS { return &FS{root: r} }

// DirFS is the confined fs.FS of the repository at dir: os.DirFS with symbolic links
// that leave dir refused. When dir cannot be opened, every call fails with that error.
func DirFS(dir string) *FS {
	r, err := Open(dir)
	if err != nil {
		return &FS{err: err}
	}
	return r.FS()
}

// Root is the repository the FS is confined to (nil when it did not open).
func (f *FS) Root() *Root { return f.root }

// path checks name and returns its OS path.
func (f *FS) path(op, name string) (string, error) {
	if f.err != nil {
		return "", &fs.PathError{Op: op, Path: name, Err: f.err}
	}
	if !fs.ValidPath(name) {
		if _, err := Clean(name); err != nil {
			return "", err
		}
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return f.root.Resolve(name)
}

// Open opens the named file, refusing it when it resolves outside the repository.
func (f *FS) Open(name string) (fs.File, error) {
	p, err := f.path("open", name)
	if err != nil {
		return nil, err
	}
	file, err := os.Open(p)
	if err != nil {
		return nil, relPathErr(err, name)
	}
	return file, nil
}

// proven is where name resolves and what it is (nil: absent) when Root.lstat proves it
// inside; false when it is not proven (FS.path then decides).
func (f *FS) proven(name string) (string, fs.FileInfo, bool) {
	if f.err != nil || !fs.ValidPath(name) {
		return "", nil, false
	}
	return f.root.lstat(name) // a valid fs.FS name is clean
}

// ReadFile reads the named file, refusing it when it resolves outside the repository.
func (f *FS) ReadFile(name string) ([]byte, error) {
	if p, fi, ok := f.proven(name); ok && fi != nil && fi.Mode().IsRegular() {
		// A regular file in proven directories: read without following a link the
		// last element may have become since (a link is refused by the open and the
		// name judged again below).
		if data, err := readRegular(p, fi.Size()); err == nil || !errors.Is(err, errFollow) {
			return data, relPathErr(err, name)
		}
	}
	p, err := f.path("read", name)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	return data, relPathErr(err, name)
}

// Stat describes the named file (links followed), refusing it when it resolves
// outside the repository.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	if _, fi, ok := f.proven(name); ok && fi != nil {
		return fi, nil // not a link: its lstat is its stat
	}
	p, err := f.path("stat", name)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(p)
	return fi, relPathErr(err, name)
}

// ReadDir lists the named directory, refusing it when it resolves outside the
// repository. Symbolic links are listed as links (fs.WalkDir does not follow them);
// reading one goes through the same check.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := f.path("readdir", name)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(p)
	return entries, relPathErr(err, name)
}

// relPathErr names the repository-relative name in an *fs.PathError instead of the OS
// path, as os.DirFS does.
func relPathErr(err error, name string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: name, Err: pe.Err}
	}
	return err
}
