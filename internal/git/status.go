package git

import (
	"bytes"
	"crypto/sha1"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// worktreeChanges lists the files whose staged or working-tree content differs from
// HEAD, as go-git's Worktree.Status does, in one walk of the working tree: a file whose
// size and modification time match its index entry (and is older than the index, so not
// "racily clean") is not read; the staged side compares tree hashes computed from the
// index with HEAD's trees and reads only the trees that differ. Status builds merkle
// tries of both sides and costs seconds on a monorepo; this is what a merge-request
// check of one changed app should cost. staged leaves unstaged and untracked files out.
// ok=false asks the caller to use Worktree.Status (conflicts in the index, submodules).
func worktreeChanges(repo *gogit.Repository, top string, head *object.Tree, staged bool) (changed map[string]bool, ok bool) {
	idx, err := repo.Storer.Index()
	if err != nil {
		return nil, false
	}
	entries := make(map[string]*index.Entry, len(idx.Entries))
	for _, e := range idx.Entries {
		if e.Stage != 0 || e.Mode == filemode.Submodule || e.IntentToAdd { // stage 0: no conflict
			return nil, false
		}
		entries[e.Name] = e
	}
	changed = map[string]bool{}
	if !stagedChanges(repo, idx, head, changed) {
		return nil, false
	}
	if staged {
		return changed, true
	}

	seen := make(map[string]bool, len(entries))
	var ignore []gitignore.Pattern
	if data, err := os.ReadFile(filepath.Join(top, ".git", "info", "exclude")); err == nil {
		ignore = append(ignore, parseIgnore(data, nil)...)
	}
	err = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(top, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if d.Name() == ".git" && rel != "." {
				return fs.SkipDir
			}
			var parts []string
			if rel != "." {
				parts = strings.Split(rel, "/")
				if gitignore.NewMatcher(ignore).Match(parts, true) && !hasTracked(entries, rel) {
					return fs.SkipDir
				}
			}
			if data, err := os.ReadFile(filepath.Join(p, ".gitignore")); err == nil {
				ignore = append(ignore, parseIgnore(data, parts)...)
			}
			return nil
		}
		e, tracked := entries[rel]
		if !tracked {
			if !gitignore.NewMatcher(ignore).Match(strings.Split(rel, "/"), false) {
				changed[rel] = true // untracked
			}
			return nil
		}
		seen[rel] = true
		info, err := d.Info()
		if err != nil {
			changed[rel] = true
			return nil
		}
		if e.SkipWorktree || info.Mode().IsRegular() && int64(e.Size) == info.Size() && e.ModifiedAt.Equal(info.ModTime()) && info.ModTime().Before(idx.ModTime) {
			return nil // clean by its metadata
		}
		var data []byte
		if info.Mode()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				changed[rel] = true
				return nil
			}
			data = []byte(filepath.ToSlash(target))
		} else if data, err = os.ReadFile(p); err != nil {
			changed[rel] = true
			return nil
		}
		if plumbing.ComputeHash(plumbing.BlobObject, data) != e.Hash {
			changed[rel] = true
		}
		return nil
	})
	if err != nil {
		return nil, false
	}
	for name, e := range entries {
		if !seen[name] && !e.SkipWorktree {
			changed[name] = true // deleted from the working tree
		}
	}
	return changed, true
}

// hasTracked reports whether the index tracks a file below dir (an ignored directory
// may still hold tracked files).
func hasTracked(entries map[string]*index.Entry, dir string) bool {
	prefix := dir + "/"
	for name := range entries {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

func parseIgnore(data []byte, domain []string) []gitignore.Pattern {
	var ps []gitignore.Pattern
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ps = append(ps, gitignore.ParsePattern(line, domain))
	}
	return ps
}

// indexTree is a directory of the index, as Git would write it as a tree.
type indexTree struct {
	files map[string]*index.Entry
	dirs  map[string]*indexTree
	hash  plumbing.Hash
}

// stagedChanges adds the paths whose index entry differs from HEAD. It hashes the
// index's directories as Git trees and descends only where a hash differs from HEAD's.
func stagedChanges(repo *gogit.Repository, idx *index.Index, head *object.Tree, changed map[string]bool) bool {
	root := &indexTree{files: map[string]*index.Entry{}, dirs: map[string]*indexTree{}}
	for _, e := range idx.Entries {
		t := root
		parts := strings.Split(e.Name, "/")
		for _, d := range parts[:len(parts)-1] {
			sub := t.dirs[d]
			if sub == nil {
				sub = &indexTree{files: map[string]*index.Entry{}, dirs: map[string]*indexTree{}}
				t.dirs[d] = sub
			}
			t = sub
		}
		t.files[parts[len(parts)-1]] = e
	}
	root.computeHash()
	var diff func(t *indexTree, h *object.Tree, dir string) bool
	diff = func(t *indexTree, h *object.Tree, dir string) bool {
		if h != nil && t != nil && t.hash == h.Hash {
			return true
		}
		inHead := map[string]object.TreeEntry{}
		if h != nil {
			for _, e := range h.Entries {
				inHead[e.Name] = e
			}
		}
		join := func(n string) string {
			if dir == "" {
				return n
			}
			return dir + "/" + n
		}
		if t != nil {
			for n, e := range t.files {
				he, ok := inHead[n]
				if !ok || he.Hash != e.Hash || !he.Mode.IsFile() {
					changed[join(n)] = true
				}
			}
			for n, sub := range t.dirs {
				var hs *object.Tree
				if he, ok := inHead[n]; ok && he.Mode == filemode.Dir {
					var err error
					if hs, err = object.GetTree(repo.Storer, he.Hash); err != nil {
						return false
					}
				}
				if !diff(sub, hs, join(n)) {
					return false
				}
			}
		}
		for n, he := range inHead { // in HEAD, gone from the index
			if t != nil && (t.files[n] != nil || t.dirs[n] != nil) {
				continue
			}
			if he.Mode == filemode.Dir {
				hs, err := object.GetTree(repo.Storer, he.Hash)
				if err != nil || !diff(nil, hs, join(n)) {
					return false
				}
				continue
			}
			if he.Mode != filemode.Submodule {
				changed[join(n)] = true
			}
		}
		return true
	}
	return diff(root, head, "")
}

// computeHash hashes the directory as Git hashes a tree object: entries sorted by name
// (directories as if their name ended in "/"), each "<mode> <name>\0<hash>".
func (t *indexTree) computeHash() plumbing.Hash {
	type entry struct {
		name, key string
		mode      filemode.FileMode
		hash      plumbing.Hash
	}
	var es []entry
	for n, e := range t.files {
		es = append(es, entry{n, n, e.Mode, e.Hash})
	}
	for n, d := range t.dirs {
		es = append(es, entry{n, n + "/", filemode.Dir, d.computeHash()})
	}
	sort.Slice(es, func(i, j int) bool { return es[i].key < es[j].key })
	var b bytes.Buffer
	for _, e := range es {
		b.WriteString(strings.TrimLeft(e.mode.String(), "0"))
		b.WriteByte(' ')
		b.WriteString(e.name)
		b.WriteByte(0)
		b.Write(e.hash[:])
	}
	h := sha1.New()
	h.Write([]byte("tree " + strconv.Itoa(b.Len()) + "\x00"))
	h.Write(b.Bytes())
	copy(t.hash[:], h.Sum(nil))
	return t.hash
}
