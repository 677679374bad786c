// Package treediff lists the paths that differ between two trees, with one rule for
// merge-request mode (render.Compare without a Git change list) and the runner's gate
// between stages. The rule is Git's, so a tree diff and `git status` agree:
//   - only .git directories are left out (VCS metadata, not content); other hidden
//     files and directories are content a kustomization may name;
//   - directories are not listed themselves, only what they hold (an empty directory
//     renders nothing);
//   - a regular file differs when its content or its executable bit does;
//   - a symbolic link is compared as a link (its target text), never followed, so a
//     link out of the tree is not read; a path that changes type differs;
//   - other file types (sockets, devices) are not content and are ignored;
//   - no size limit: every differing byte counts (sizes are compared first, so files of
//     different sizes are never read).
package treediff

import (
	"bytes"
	"io/fs"
	"sort"
)

type entry struct {
	kind fs.FileMode // 0 (regular) or fs.ModeSymlink
	exec bool
	size int64
	link string
}

// Diff returns the slash-separated paths, sorted, that were added, removed or changed
// from a to b.
func Diff(a, b fs.FS) ([]string, error) {
	ea, err := list(a)
	if err != nil {
		return nil, err
	}
	eb, err := list(b)
	if err != nil {
		return nil, err
	}
	var out []string
	for p, x := range ea {
		y, ok := eb[p]
		if !ok || x != y {
			out = append(out, p)
			continue
		}
		if x.kind == 0 {
			same, err := sameContent(a, b, p)
			if err != nil {
				return nil, err
			}
			if !same {
				out = append(out, p)
			}
		}
	}
	for p := range eb {
		if _, ok := ea[p]; !ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

func list(fsys fs.FS) (map[string]entry, error) {
	out := map[string]entry{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" && p != "." {
				return fs.SkipDir
			}
			return nil
		}
		if d.Name() == ".git" { // a worktree's .git file
			return nil
		}
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			link, err := fs.ReadLink(fsys, p)
			if err != nil {
				return err
			}
			out[p] = entry{kind: fs.ModeSymlink, link: link}
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			out[p] = entry{exec: info.Mode().Perm()&0o111 != 0, size: info.Size()}
		}
		return nil
	})
	return out, err
}

func sameContent(a, b fs.FS, p string) (bool, error) {
	x, err := fs.ReadFile(a, p)
	if err != nil {
		return false, err
	}
	y, err := fs.ReadFile(b, p)
	if err != nil {
		return false, err
	}
	return bytes.Equal(x, y), nil
}
