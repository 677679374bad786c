package git

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// overlayFS is a revision of a working tree without a checkout: the working tree's
// files, except the changed ones, which are as the revision has them (or absent).
type overlayFS struct {
	dir   string                  // the working tree on disk
	head  fs.FS                   // os.DirFS(dir)
	files map[string]*overlayFile // changed paths; nil: absent in the revision
	dirs  map[string]bool         // directories holding a changed file of the revision
}

type overlayFile struct {
	data    []byte
	symlink bool // data is the link's target
	// tooBig is set for a blob over ChangeOptions.MaxBlobSize: it was not read, Stat
	// reports its size and reading it fails with this error.
	tooBig error
	size   int64
}

func (f *overlayFile) length() int64 {
	if f.tooBig != nil {
		return f.size
	}
	return int64(len(f.data))
}

var (
	_ fs.ReadDirFS  = (*overlayFS)(nil)
	_ fs.ReadFileFS = (*overlayFS)(nil)
	_ fs.StatFS     = (*overlayFS)(nil)
)

func (o *overlayFS) changed(name string) (*overlayFile, bool) {
	f, ok := o.files[name]
	return f, ok
}

func (o *overlayFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if f, ok := o.changed(name); ok {
		if f == nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		if f.tooBig != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: f.tooBig}
		}
		return &memFile{name: path.Base(name), r: bytes.NewReader(f.data), size: int64(len(f.data))}, nil
	}
	st, err := o.Stat(name)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		entries, err := o.ReadDir(name)
		if err != nil {
			return nil, err
		}
		return &memDir{info: st, entries: entries}, nil
	}
	return o.head.Open(name)
}

func (o *overlayFS) ReadFile(name string) ([]byte, error) {
	if f, ok := o.changed(name); ok {
		if f == nil {
			return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
		}
		if f.tooBig != nil {
			return nil, &fs.PathError{Op: "read", Path: name, Err: f.tooBig}
		}
		return bytes.Clone(f.data), nil
	}
	return fs.ReadFile(o.head, name)
}

func (o *overlayFS) Stat(name string) (fs.FileInfo, error) {
	if f, ok := o.changed(name); ok {
		if f == nil {
			return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
		}
		return memInfo{name: path.Base(name), size: f.length()}, nil
	}
	st, err := fs.Stat(o.head, name)
	if err != nil && o.dirs[name] {
		return memInfo{name: path.Base(name), dir: true}, nil
	}
	return st, err
}

func (o *overlayFS) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := fs.ReadDir(o.head, name)
	if err != nil && !(errors.Is(err, fs.ErrNotExist) && (o.dirs[name] || name == ".")) {
		return nil, err
	}
	byName := map[string]fs.DirEntry{}
	for _, e := range entries {
		byName[e.Name()] = e
	}
	for p, f := range o.files {
		if path.Dir(p) != name && !(name == "." && !strings.Contains(p, "/")) {
			continue
		}
		base := path.Base(p)
		if f == nil {
			delete(byName, base)
			continue
		}
		byName[base] = fs.FileInfoToDirEntry(memInfo{name: base, size: f.length()})
	}
	for d := range o.dirs {
		if path.Dir(d) == name || name == "." && !strings.Contains(d, "/") {
			if _, ok := byName[path.Base(d)]; !ok {
				byName[path.Base(d)] = fs.FileInfoToDirEntry(memInfo{name: path.Base(d), dir: true})
			}
		}
	}
	out := make([]fs.DirEntry, 0, len(byName))
	for _, e := range byName {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// Materialize writes the files of fsys that deps name (a path ending in "/" names every
// file below it) into dst, so that kustomize and Helm, which read the disk, can render
// the targets those dependencies belong to. Unchanged files of an overlay are hard links
// to the working tree where the filesystem allows (copies otherwise), never written
// through; symbolic links stay links, so a link leaving the repository is refused at the
// base as it is at head.
func Materialize(fsys fs.FS, deps []string, dst string) error {
	ov, _ := fsys.(*overlayFS)
	done := map[string]bool{}
	var errs []error
	put := func(p string) {
		if done[p] {
			return
		}
		done[p] = true
		if err := materializeFile(fsys, ov, p, dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, d := range deps {
		if dir, ok := strings.CutSuffix(d, "/"); ok {
			_ = fs.WalkDir(fsys, dir, func(p string, e fs.DirEntry, err error) error {
				if err == nil && !e.IsDir() {
					put(p)
				}
				return nil
			})
			continue
		}
		put(d)
	}
	return errors.Join(errs...)
}

func materializeFile(fsys fs.FS, ov *overlayFS, p, dst string) error {
	out := filepath.Join(dst, filepath.FromSlash(p))
	var src string // the working tree's file, for an unchanged file of an overlay
	if ov != nil {
		if f, ok := ov.changed(p); ok {
			if f == nil {
				return fs.ErrNotExist
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
			if f.symlink {
				return os.Symlink(string(f.data), out)
			}
			return os.WriteFile(out, f.data, 0o644)
		}
		src = filepath.Join(ov.dir, filepath.FromSlash(p))
	} else if d, ok := fsys.(interface{ Dir() string }); ok {
		src = filepath.Join(d.Dir(), filepath.FromSlash(p))
	}
	if src != "" {
		st, err := os.Lstat(src)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(src)
			if err != nil {
				return err
			}
			return os.Symlink(target, out)
		}
		if os.Link(src, out) == nil {
			return nil
		}
	}
	data, err := fs.ReadFile(fsys, p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, data, 0o644)
}

type memInfo struct {
	name string
	size int64
	dir  bool
}

func (i memInfo) Name() string { return i.name }
func (i memInfo) Size() int64  { return i.size }
func (i memInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }

type memFile struct {
	name string
	r    *bytes.Reader
	size int64
}

func (f *memFile) Stat() (fs.FileInfo, error) { return memInfo{name: f.name, size: f.size}, nil }
func (f *memFile) Read(b []byte) (int, error) { return f.r.Read(b) }
func (f *memFile) Close() error               { return nil }

type memDir struct {
	info    fs.FileInfo
	entries []fs.DirEntry
	off     int
}

func (d *memDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *memDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.Name(), Err: errors.New("is a directory")}
}
func (d *memDir) Close() error { return nil }
func (d *memDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.off += n
	return rest[:n], nil
}
