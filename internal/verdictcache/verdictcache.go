// Package verdictcache stores what a render target's check found, keyed by everything
// the result depends on, so an unchanged target is neither rendered nor evaluated
// again. Entries live in the cache directory of remote sources (internal/remote's
// Store: verified blobs, the same size bound and least-recently-used eviction); an
// entry that is missing, corrupt or of another format is a miss, never a verdict.
//
// The package knows keys and storage; what a key covers and what an entry holds is
// the caller's (cmd/gitgate's check).
package verdictcache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gitgate/gitgate/internal/remote"
)

// Format changes whenever an entry's meaning or layout does: entries of another format
// are not found (it is part of every key).
const Format = "gitgate-verdict/1"

// Hasher builds a key from fields; each is written with its length, so no two
// sequences of fields hash alike.
type Hasher struct{ h hash.Hash }

// NewHasher starts a key with its kind (what is keyed).
func NewHasher(kind string) *Hasher {
	h := &Hasher{h: sha256.New()}
	h.String(Format)
	h.String(kind)
	return h
}

// String adds a field.
func (h *Hasher) String(s string) { h.Bytes([]byte(s)) }

// Bytes adds a field.
func (h *Hasher) Bytes(b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.h.Write(n[:])
	h.h.Write(b)
}

// JSON adds a value as its JSON encoding (maps with sorted keys).
func (h *Hasher) JSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h.Bytes(b)
	return nil
}

// Sum is the key: hex sha256.
func (h *Hasher) Sum() string { return hex.EncodeToString(h.h.Sum(nil)) }

// Files digests the content of files of fsys, each read once however many keys name it.
// A name ending in "/" stands for every file below that directory (names and contents,
// in order); a name that does not exist digests as absent (creating it changes the
// digest). Safe for concurrent use.
type Files struct {
	fsys    fs.FS
	maxSize int64
	mu      sync.Mutex
	memo    map[string]string
	stat    *StatMemo
	listed  map[string]map[string]bool // directory -> its names, as listed in this run
}

// Listed tells f the names of directory dir as another reader of the same fs.FS listed
// them in this run: a name in dir that is not among them digests as absent without a
// stat of its own.
func (f *Files) Listed(dir string, names map[string]bool) {
	f.mu.Lock()
	if f.listed == nil {
		f.listed = map[string]map[string]bool{}
	}
	f.listed[dir] = names
	f.mu.Unlock()
}

// unlisted: name's directory was listed in this run without it.
func (f *Files) unlisted(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	names, ok := f.listed[path.Dir(name)]
	return ok && !names[path.Base(name)]
}

// Trust makes f take a file's digest from m when its stat is trusted there (see
// StatMemo), and record in m what it hashes.
func (f *Files) Trust(m *StatMemo) *Files {
	f.stat = m
	return f
}

// Seen tells f the content of name as another reader of the same fs.FS read it, with
// its stat taken before the read (nil: not known): its digest, remembered for this run
// and, with a stat, in the stat memo. It is what a later Digest of name returns.
func (f *Files) Seen(name string, fi fs.FileInfo, data []byte) string {
	s := sha256.Sum256(data)
	d := "file:" + hex.EncodeToString(s[:])
	if fi != nil && f.stat != nil {
		f.stat.record(name, fi, d)
	}
	f.mu.Lock()
	f.memo[name] = d
	f.mu.Unlock()
	return d
}

// FileDigest is the digest of the file name whose stat (links followed) the caller just
// took through the same fs.FS: as Digest computes it, without a second stat.
func (f *Files) FileDigest(name string, st fs.FileInfo) (string, error) {
	f.mu.Lock()
	d, ok := f.memo[name]
	f.mu.Unlock()
	if ok {
		return d, nil
	}
	d, err := f.regular(name, st)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	f.memo[name] = d
	f.mu.Unlock()
	return d, nil
}

// NewFiles digests files of fsys (read through it: confined as the caller's is); a
// file larger than maxSize (when > 0) makes the digest an error.
func NewFiles(fsys fs.FS, maxSize int64) *Files {
	return &Files{fsys: fsys, maxSize: maxSize, memo: map[string]string{}}
}

// ErrUnreadable is a dependency that could not be read (not an absent one): the target
// is not cached, its render reports the problem.
var ErrUnreadable = errors.New("a dependency cannot be read")

// Digest is the digest of names (sorted by the caller or not: they are sorted here).
func (f *Files) Digest(names []string) (string, error) {
	names = append([]string{}, names...)
	sort.Strings(names)
	h := NewHasher("files")
	for _, n := range names {
		d, err := f.one(n)
		if err != nil {
			return "", err
		}
		h.String(n)
		h.String(d)
	}
	return h.Sum(), nil
}

func (f *Files) one(name string) (string, error) {
	f.mu.Lock()
	d, ok := f.memo[name]
	f.mu.Unlock()
	if ok {
		return d, nil
	}
	var err error
	if dir, isDir := strings.CutSuffix(name, "/"); isDir {
		d, err = f.tree(dir)
	} else {
		d, err = f.file(name)
	}
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	f.memo[name] = d
	f.mu.Unlock()
	return d, nil
}

func (f *Files) file(name string) (string, error) {
	if f.unlisted(name) {
		return "absent", nil
	}
	st, err := fs.Stat(f.fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return "absent", nil
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w: %v", name, ErrUnreadable, err)
	}
	if st.IsDir() { // a file name that is a directory now: its whole tree
		return f.tree(name)
	}
	return f.regular(name, st)
}

// regular digests the file name of stat st (a file, not a directory).
func (f *Files) regular(name string, st fs.FileInfo) (string, error) {
	if st.IsDir() {
		return f.tree(name)
	}
	if f.maxSize > 0 && st.Size() > f.maxSize {
		return "", fmt.Errorf("%s: %w: larger than %d bytes", name, ErrUnreadable, f.maxSize)
	}
	if f.stat != nil {
		if d, ok := f.stat.lookup(name, st); ok {
			return d, nil
		}
	}
	// The stat is taken before the read: a file changed in between has a newer stat
	// than its record, so the next run hashes it again.
	b, err := fs.ReadFile(f.fsys, name)
	if err != nil {
		return "", fmt.Errorf("%s: %w: %v", name, ErrUnreadable, err)
	}
	s := sha256.Sum256(b)
	d := "file:" + hex.EncodeToString(s[:])
	if f.stat != nil {
		f.stat.record(name, st, d)
	}
	return d, nil
}

func (f *Files) tree(dir string) (string, error) {
	if dir == "" {
		dir = "."
	}
	st, err := fs.Stat(f.fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "absent", nil
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w: %v", dir, ErrUnreadable, err)
	}
	if !st.IsDir() {
		return f.file(dir)
	}
	h := NewHasher("tree")
	err = fs.WalkDir(f.fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fd, err := f.file(p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, dir+"/")
		if dir == "." {
			rel = p
		}
		h.String(path.Clean(rel))
		h.String(fd)
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrUnreadable) {
			return "", err
		}
		return "", fmt.Errorf("%s: %w: %v", dir, ErrUnreadable, err)
	}
	return "tree:" + h.Sum(), nil
}

// Cache is the verdict cache of one run: entries by key in the store, with counts.
type Cache struct {
	store          *remote.Store
	hits, misses   atomic.Int64
	stored, failed atomic.Int64
	wrote          atomic.Bool // anything put in this run (Close evicts only then)

	// The run's bundle (LoadBundle): every entry a run used, in one blob.
	mu        sync.Mutex
	bundleKey string
	bundle    map[string][]byte // loaded: key -> entry
	used      map[string][]byte // this run's entries, from wherever
	outside   bool              // an entry used that the bundle did not hold
	found     int               // entries of used that Get found (not Put)
}

// LoadBundle loads the bundle of entries stored by the last run with the same run
// digest and targets (key: the caller's digest of both), so this run reads one blob
// instead of two files per target; Close writes this run's bundle when it used an entry
// the bundle did not hold (or did not use all it held) and found at least half of its
// entries in the cache. The bundle is a verified blob of
// the store like every entry, holding each entry's exact bytes under its key: an entry
// from it is the entry Get would read.
func (c *Cache) LoadBundle(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bundleKey, c.used, c.found = key, map[string][]byte{}, 0
	if b, ok := c.store.Get("bundle:" + key); ok {
		c.bundle, _ = decodeBundle(b)
	}
}

func (c *Cache) note(key string, b []byte, fromBundle, getting bool) {
	c.mu.Lock()
	// A Put after lookups that found nothing (a cold run: every lookup comes before
	// the renders) will not make a bundle: its bytes are not kept.
	if c.used != nil && (getting || c.found > 0) {
		if _, again := c.used[key]; !again && getting {
			c.found++
		}
		c.used[key] = b
		c.outside = c.outside || !fromBundle
	}
	c.mu.Unlock()
}

const bundleMagic = "gitgate-verdict-bundle/1\n"

func encodeBundle(entries map[string][]byte) []byte {
	keys := slices.Sorted(maps.Keys(entries))
	var b bytes.Buffer
	b.WriteString(bundleMagic)
	putUint(&b, uint64(len(keys)))
	for _, k := range keys {
		putString(&b, k)
		putString(&b, string(entries[k]))
	}
	return b.Bytes()
}

func decodeBundle(b []byte) (map[string][]byte, bool) {
	rest, ok := bytes.CutPrefix(b, []byte(bundleMagic))
	if !ok {
		return nil, false
	}
	d := decoder{b: rest}
	n := d.uint()
	if d.err != nil || n > uint64(len(d.b)) {
		return nil, false
	}
	out := make(map[string][]byte, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		k := d.string()
		out[k] = []byte(d.string())
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, false
	}
	return out, true
}

// Open opens the cache in dir ("" for the default cache directory of remote sources).
func Open(dir string) (*Cache, error) {
	s, err := remote.OpenStore(dir, 0)
	if err != nil {
		return nil, err
	}
	return &Cache{store: s}, nil
}

// Dir is the cache directory.
func (c *Cache) Dir() string { return c.store.Dir() }

func recordName(key string) string { return "verdict:" + key }

// Get decodes key's entry into v: false when it is absent, corrupt (removed) or does
// not decode.
func (c *Cache) Get(key string, v any) bool {
	c.mu.Lock()
	b, fromBundle := c.bundle[key]
	c.mu.Unlock()
	ok := fromBundle
	if !ok {
		b, ok = c.store.Get(recordName(key))
	}
	if ok && json.Unmarshal(b, v) == nil {
		c.note(key, b, fromBundle, true)
		c.hits.Add(1)
		return true
	}
	c.misses.Add(1)
	return false
}

// Put stores v as key's entry. A failure is counted, never fatal: the next run renders
// the target again.
func (c *Cache) Put(key string, v any) {
	b, err := json.Marshal(v)
	if err == nil {
		c.wrote.Store(true)
		err = c.store.Put(recordName(key), b)
	}
	if err == nil {
		c.note(key, b, false, false)
	}
	if err != nil {
		c.failed.Add(1)
		return
	}
	c.stored.Add(1)
}

// Memo is the memo stored as kind:key (a plan: render.PlanMemo), verified as every
// entry: false when absent or corrupt.
func (c *Cache) Memo(kind, key string) ([]byte, bool) { return c.store.Get("memo:" + kind + ":" + key) }

// PutMemo stores a memo; a failure is not an error (the next run does without).
func (c *Cache) PutMemo(kind, key string, b []byte) {
	c.wrote.Store(true)
	_ = c.store.Put("memo:"+kind+":"+key, b)
}

// Close evicts past the cache's bound, once per run, when the run stored anything: a
// run that only read (a warm check) did not grow it, and eviction lists every blob.
func (c *Cache) Close() {
	c.mu.Lock()
	// Not after a run that rendered most of its targets (a cold one): it would hold every
	// entry in memory twice for a bundle the next run may not find whole; that run writes it.
	if c.bundleKey != "" && len(c.used) > 0 && 2*c.found >= len(c.used) && (c.outside || len(c.used) != len(c.bundle)) {
		c.wrote.Store(true)
		_ = c.store.Put("bundle:"+c.bundleKey, encodeBundle(c.used))
	}
	c.bundleKey, c.bundle, c.used, c.found = "", nil, nil, 0
	c.mu.Unlock()
	if c.wrote.Load() {
		c.store.Evict()
	}
}

// Stats are the run's counts: entries found, not found, stored, not stored (errors).
func (c *Cache) Stats() (hits, misses, stored, failed int64) {
	return c.hits.Load(), c.misses.Load(), c.stored.Load(), c.failed.Load()
}

// BuildID identifies the running gitgate: its VCS revision when the build records one
// and the tree was not modified, else the digest of the executable (memoised in the
// store by path, size and modification time, so it is read once per build).
func (c *Cache) BuildID() (string, error) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, modified := "", true
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if rev != "" && !modified {
			return "vcs:" + rev + ":" + bi.GoVersion, nil
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	st, err := os.Stat(exe)
	if err != nil {
		return "", err
	}
	memo := fmt.Sprintf("exe:%s:%d:%d", exe, st.Size(), st.ModTime().UnixNano())
	if b, ok := c.store.Get(memo); ok {
		return string(b), nil
	}
	fh, err := os.Open(exe)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", err
	}
	id := "exe:" + hex.EncodeToString(h.Sum(nil))
	_ = c.store.Put(memo, []byte(id))
	return id, nil
}
