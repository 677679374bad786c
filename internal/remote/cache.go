package remote

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/internal/git"
)

// cache is the content-addressed store: blobs under sha256/<hex>, verified by
// re-hashing on every read, and ref records under refs/ mapping a name to a digest.
// Every file is written to a temporary file and renamed, so concurrent processes
// never see a partial one.
type cache struct {
	dir string
	max int64
	mu  sync.Mutex // serialises eviction within a process
	// sizes are the checkouts' sizes read so far (a written-out commit's files do not
	// change: one that did is written out again, the same), under mu.
	sizes map[string]int64
	// storeSizes are the Git object stores' sizes read so far, each with the store's
	// modification time then: a store grows only by a fetch, and every fetch touches it
	// (Fetcher.Git), so one touched since is counted again. Under mu.
	storeSizes map[string]storeSize
}

type storeSize struct {
	size int64
	used time.Time
}

// ref is a name's record: which digest it resolved to, and when.
type ref struct {
	Key    string    `json:"key"`
	Digest string    `json:"digest"`
	Time   time.Time `json:"time"`
	// Version is what a constraint resolved to, for records that resolve one.
	Version string `json:"version,omitempty"`
	// URL is where the content was downloaded from (to fetch it again).
	URL string `json:"url,omitempty"`
	// Dir is where a Git commit is written out.
	Dir string `json:"dir,omitempty"`
	// Size is the bytes of a written-out commit's files (its treeKey record).
	Size int64 `json:"size,omitempty"`
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// blobPath is the file of a "sha256:<hex>" digest, or an error for anything else.
func (c *cache) blobPath(digest string) (string, error) {
	hexd, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexd) != 64 {
		return "", fmt.Errorf("digest %q: want sha256:<64 hex digits>", digest)
	}
	if _, err := hex.DecodeString(hexd); err != nil {
		return "", fmt.Errorf("digest %q: want sha256:<64 hex digits>", digest)
	}
	return filepath.Join(c.dir, "sha256", strings.ToLower(hexd)), nil
}

// errCorrupt is a blob whose content does not hash to its name; it has been removed.
var errCorrupt = errors.New("cached blob does not match its digest (removed)")

// get reads a blob and checks it hashes to digest: fs.ErrNotExist when absent,
// errCorrupt (and the blob removed) when it does not. A read touches the blob for
// least-recently-used eviction.
func (c *cache) get(digest string) ([]byte, error) {
	p, err := c.blobPath(digest)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if digestOf(b) != strings.ToLower(digest) {
		os.Remove(p)
		return nil, errCorrupt
	}
	now := time.Now()
	_ = os.Chtimes(p, now, now)
	return b, nil
}

// put stores b under its digest (which must be want when want is not empty) and
// evicts past the bound.
func (c *cache) put(b []byte, want string) (string, error) {
	d := digestOf(b)
	if want != "" && !strings.EqualFold(want, d) {
		return "", fmt.Errorf("content has digest %s, want %s", d, want)
	}
	p, _ := c.blobPath(d)
	if _, err := os.Stat(p); err == nil {
		now := time.Now()
		_ = os.Chtimes(p, now, now)
		return d, nil
	}
	if err := writeAtomic(p, b); err != nil {
		return "", err
	}
	c.evict(p)
	return d, nil
}

func writeAtomic(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("cache: %w; check --cache-dir", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("cache: %w; check --cache-dir", err)
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// refPath is the record file of a name. Names and recorded URLs never hold
// credentials: a URL's password is redacted from the name (the content is addressed by
// digest anyway) and a URL with credentials is not recorded.
func (c *cache) refPath(key string) string {
	s := sha256.Sum256([]byte(git.Redact(key)))
	return filepath.Join(c.dir, "refs", hex.EncodeToString(s[:16])+".json")
}

// getRef reads a name's record; ok false when there is none (or it is unreadable).
func (c *cache) getRef(key string) (ref, bool) {
	b, err := os.ReadFile(c.refPath(key))
	if err != nil {
		return ref{}, false
	}
	var r ref
	if json.Unmarshal(b, &r) != nil || r.Key != git.Redact(key) {
		return ref{}, false
	}
	return r, true
}

func (c *cache) putRef(r ref) error {
	r.Key = git.Redact(r.Key)
	if git.Redact(r.URL) != r.URL {
		r.URL = ""
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return writeAtomic(c.refPath(r.Key), b)
}

// evict removes the least recently used entries until the cache fits the bound: blobs
// (used: modification time, which reads touch), Git checkouts (written-out commits
// under git/worktrees/; used: the directory's modification time, which Fetcher.Git
// touches) and Git object stores (one per repository URL under git/repos/; used: the
// directory's modification time, which every fetch through it touches), by one rule.
// keep (just written) stays, and so does a checkout a process is using (it holds a
// shared lock on it: treeLock) and a store a fetch is using (it holds the URL's lock:
// lockGit).
func (c *cache) evict(keep string) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	const (
		blob = iota
		tree
		store
	)
	type entry struct {
		path string
		size int64
		used time.Time
		kind int
	}
	var entries []entry
	var total int64
	blobs, _ := os.ReadDir(filepath.Join(c.dir, "sha256"))
	for _, e := range blobs {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		entries = append(entries, entry{filepath.Join(c.dir, "sha256", e.Name()), info.Size(), info.ModTime(), blob})
		total += info.Size()
	}
	for _, dir := range c.trees() {
		info, err := os.Stat(dir)
		if err != nil {
			continue
		}
		size, ok := c.sizes[dir]
		if !ok {
			size = c.treeSize(dir)
			if c.sizes == nil {
				c.sizes = map[string]int64{}
			}
			c.sizes[dir] = size
		}
		entries = append(entries, entry{dir, size, info.ModTime(), tree})
		total += size
	}
	for _, dir := range c.stores() {
		info, err := os.Stat(dir)
		if err != nil {
			continue
		}
		s, ok := c.storeSizes[dir]
		if !ok || !s.used.Equal(info.ModTime()) {
			s = storeSize{dirSize(dir), info.ModTime()}
			if c.storeSizes == nil {
				c.storeSizes = map[string]storeSize{}
			}
			c.storeSizes[dir] = s
		}
		entries = append(entries, entry{dir, s.size, info.ModTime(), store})
		total += s.size
	}
	if total <= c.max {
		return
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].used.Before(entries[j].used) })
	for _, e := range entries {
		if total <= c.max {
			break
		}
		if e.path == keep {
			continue
		}
		switch e.kind {
		case tree:
			if c.removeTree(e.path) {
				total -= e.size
				delete(c.sizes, e.path)
			}
		case store:
			if c.removeStore(e.path) {
				total -= e.size
				delete(c.storeSizes, e.path)
			}
		default:
			if err := os.Remove(e.path); err == nil || errors.Is(err, fs.ErrNotExist) {
				total -= e.size
			}
		}
	}
}

// worktrees is where git.Source writes commits out for the fetcher: <key>/<commit>.
func (c *cache) worktrees() string { return filepath.Join(c.dir, "git", "worktrees") }

// trees lists the written-out commits (not one being written: *.tmp).
func (c *cache) trees() []string {
	var out []string
	repos, _ := os.ReadDir(c.worktrees())
	for _, r := range repos {
		if !r.IsDir() {
			continue
		}
		commits, _ := os.ReadDir(filepath.Join(c.worktrees(), r.Name()))
		for _, e := range commits {
			if e.IsDir() && !strings.HasSuffix(e.Name(), ".tmp") && !strings.HasPrefix(e.Name(), ".") {
				out = append(out, filepath.Join(c.worktrees(), r.Name(), e.Name()))
			}
		}
	}
	return out
}

// treeSize is a checkout's size as recorded when it was written, else counted.
func (c *cache) treeSize(dir string) int64 {
	if r, ok := c.getRef(treeKey(dir)); ok && r.Size > 0 {
		return r.Size
	}
	return dirSize(dir)
}

// dirSize is the bytes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// treeLock is the lock file of a checkout: shared by every process using it,
// exclusive to remove it. Lock files stay (removing one would let two holders lock
// two different files of one name).
func (c *cache) treeLock(dir string) string {
	name := ""
	if rel, err := filepath.Rel(c.worktrees(), dir); err == nil && !strings.HasPrefix(rel, "..") {
		name = strings.ReplaceAll(filepath.ToSlash(rel), "/", "-")
	} else {
		s := sha256.Sum256([]byte(dir))
		name = hex.EncodeToString(s[:16])
	}
	return filepath.Join(c.dir, "git", "locks", "tree-"+name+".lock")
}

// removeTree removes a checkout nobody holds: renamed away first (a reader sees it
// whole or not at all), then deleted. false when it is in use (or gone already).
func (c *cache) removeTree(dir string) bool { return removeUnlocked(dir, c.treeLock(dir)) }

// removeUnlocked removes dir if the lock file lock can be taken exclusively without
// waiting: renamed away first (a reader sees it whole or not at all), then deleted.
// false when someone holds the lock (or dir is gone already).
func removeUnlocked(dir, lock string) bool {
	release, ok := tryLockExclusive(lock)
	if !ok {
		return false
	}
	defer release()
	gone := filepath.Join(filepath.Dir(dir), ".evict-"+filepath.Base(dir))
	_ = os.RemoveAll(gone)
	if err := os.Rename(dir, gone); err != nil {
		return false
	}
	_ = os.RemoveAll(gone)
	return true
}

// repos is where git.Source keeps the fetcher's object stores: <key>.git, one per
// repository URL (key: gitKey of the URL).
func (c *cache) repos() string { return filepath.Join(c.dir, "git", "repos") }

// stores lists the Git object stores (not one being removed: .evict-*).
func (c *cache) stores() []string {
	var out []string
	entries, _ := os.ReadDir(c.repos())
	for _, e := range entries {
		if e.IsDir() && strings.HasSuffix(e.Name(), ".git") && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, filepath.Join(c.repos(), e.Name()))
		}
	}
	return out
}

// removeStore removes an object store no fetch is using: it takes the store's URL
// lock (the one lockGit takes around every fetch into it, in this process or another)
// exclusively without waiting, renames the store away and deletes it. The written-out
// commits (git/worktrees/) and the ref records (refs/) are elsewhere and stay: offline
// runs read only those, and the next fetch of the URL clones into a new store. false
// when a fetch holds the lock (or the store is gone already).
func (c *cache) removeStore(dir string) bool {
	return removeUnlocked(dir, gitLockPath(filepath.Join(c.dir, "git"), strings.TrimSuffix(filepath.Base(dir), ".git")))
}

// DefaultCacheDir is the cache directory when --cache-dir is not given:
// $XDG_CACHE_HOME/gitgate (~/.cache/gitgate).
func DefaultCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: %w; give --cache-dir", err)
	}
	return filepath.Join(base, "gitgate"), nil
}

// Store is the cache directory for another user of it (the verdict cache): named
// records (refs/) pointing at blobs (sha256/), the same files as remote sources, under
// the same size bound and least-recently-used eviction, every blob re-hashed on read.
// Put does not evict: a run stores many small entries and calls Evict once at its end.
type Store struct {
	c *cache
}

// OpenStore opens the cache directory dir ("" for DefaultCacheDir) bounded at max bytes
// (0 for DefaultMaxCacheBytes, as remote sources).
func OpenStore(dir string, max int64) (*Store, error) {
	if dir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	if max == 0 {
		max = DefaultMaxCacheBytes
	}
	return &Store{c: &cache{dir: dir, max: max}}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.c.dir }

// Get is the blob the record name points at, verified: false when there is no record,
// no blob, or the blob does not hash to its name (it is then removed: a miss, never
// wrong content).
func (s *Store) Get(name string) ([]byte, bool) {
	r, ok := s.c.getRef(name)
	if !ok {
		return nil, false
	}
	b, err := s.c.get(r.Digest)
	if err != nil {
		return nil, false
	}
	return b, true
}

// Put stores b as a blob and points the record name at it.
func (s *Store) Put(name string, b []byte) error {
	d := digestOf(b)
	p, _ := s.c.blobPath(d)
	if _, err := os.Stat(p); err == nil {
		now := time.Now()
		_ = os.Chtimes(p, now, now)
	} else if err := writeAtomic(p, b); err != nil {
		return err
	}
	return s.c.putRef(ref{Key: name, Digest: d, Time: time.Now()})
}

// Evict removes the least recently used entries past the bound, as after a download.
func (s *Store) Evict() { s.c.evict("") }
