package git

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path"
	"sort"
	"time"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// treeFS is a commit's tree as an fs.FS, reading blobs from the object store on demand.
type treeFS struct {
	root *object.Tree
}

var (
	_ fs.ReadDirFS  = (*treeFS)(nil)
	_ fs.ReadFileFS = (*treeFS)(nil)
	_ fs.StatFS     = (*treeFS)(nil)
)

// treeInfo describes a tree entry; a file's size is read from its blob on first use.
type treeInfo struct {
	t     *treeFS
	name  string // base name
	entry object.TreeEntry
	size  int64
	sized bool
}

func (i *treeInfo) Name() string { return i.name }
func (i *treeInfo) Size() int64 {
	if !i.sized && i.entry.Mode != filemode.Dir {
		i.sized = true
		if f, err := i.t.root.TreeEntryFile(&i.entry); err == nil {
			i.size = f.Size
		}
	}
	return i.size
}
func (i *treeInfo) Mode() fs.FileMode {
	switch i.entry.Mode {
	case filemode.Dir:
		return fs.ModeDir | 0o755
	case filemode.Symlink:
		return fs.ModeSymlink | 0o777
	case filemode.Executable:
		return 0o755
	}
	return 0o644
}
func (i *treeInfo) ModTime() time.Time { return time.Time{} }
func (i *treeInfo) IsDir() bool        { return i.entry.Mode == filemode.Dir }
func (i *treeInfo) Sys() any           { return nil }

func (t *treeFS) info(name string) (*treeInfo, error) {
	if name == "." {
		return &treeInfo{t: t, name: ".", entry: object.TreeEntry{Name: ".", Mode: filemode.Dir}}, nil
	}
	e, err := t.root.FindEntry(name)
	if err != nil || e.Mode == filemode.Submodule {
		return nil, fs.ErrNotExist
	}
	return &treeInfo{t: t, name: path.Base(name), entry: *e}, nil
}

func (t *treeFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	i, err := t.info(name)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return i, nil
}

func (t *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	tree := t.root
	if name != "." {
		var err error
		if tree, err = t.root.Tree(name); err != nil {
			return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
		}
	}
	out := make([]fs.DirEntry, 0, len(tree.Entries))
	for _, e := range tree.Entries {
		if e.Mode == filemode.Submodule {
			continue
		}
		out = append(out, fs.FileInfoToDirEntry(&treeInfo{t: t, name: e.Name, entry: e}))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

func (t *treeFS) ReadFile(name string) ([]byte, error) {
	f, err := t.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, ok := f.(*memDir); ok {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	return io.ReadAll(f)
}

func (t *treeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	i, err := t.info(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if i.IsDir() {
		entries, err := t.ReadDir(name)
		if err != nil {
			return nil, err
		}
		return &memDir{info: i, entries: entries}, nil
	}
	f, err := t.root.TreeEntryFile(&i.entry)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	r, err := f.Reader()
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	i.size, i.sized = int64(len(data)), true
	return &treeFile{info: i, r: bytes.NewReader(data)}, nil
}

type treeFile struct {
	info *treeInfo
	r    *bytes.Reader
}

func (f *treeFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *treeFile) Read(b []byte) (int, error) { return f.r.Read(b) }
func (f *treeFile) Close() error               { return nil }
