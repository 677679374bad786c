package verdictcache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io/fs"
	"maps"
	"slices"
	"sync"
	"time"
)

// StatMemo trusts a file's stat as Git's index does: it maps a repository file's path to
// the stat record (size, modification and change times in nanoseconds, device, inode,
// mode) it had when its content was hashed, and the digest. A file whose stat matches
// its record is not read again. Kept per repository root in the verdict cache's store
// (a verified blob: same bound and eviction as every entry there).
//
// What is never trusted:
//   - a racily-clean record: one whose file's modification or change time is not older,
//     to the second, than the start of the run that hashed it (the file may have changed
//     again within the same clock tick, keeping its stat); it is hashed again, and its
//     new record, stamped with the new run, is trusted once the file is older than that;
//   - a memo that is corrupt, of another format or of another root: ignored (every file
//     hashed), never trusted;
//   - a stat without the inode and change time (a platform whose FileInfo lacks them):
//     no record at all.
//
// The record is of the file a confined read opens (Files reads through the caller's
// confined fs.FS and takes the stat before the read): a symbolic link inside the
// repository is followed and its target's stat recorded, one out of it is refused
// before anything is trusted.
type StatMemo struct {
	store blobStore
	wrote func() // tells the cache it grew
	name  string
	root  string
	start int64 // this run's start, Unix seconds: the stamp of what it hashes
	mu    sync.Mutex
	old   map[string]statRecord
	seen  map[string]statRecord // looked up or hashed in this run
	dirty bool
	// Trusted and Hashed count the run's files taken from the memo and hashed.
	trusted, hashed int
}

// blobStore is the part of internal/remote's Store the memo uses (tests use a map).
type blobStore interface {
	Get(name string) ([]byte, bool)
	Put(name string, b []byte) error
}

// statID is what a file's stat must match.
type statID struct {
	Size, Mtime, Ctime int64
	Dev, Ino           uint64
	Mode               uint32
}

type statRecord struct {
	statID
	Stamp  int64 // the Unix second the run that hashed it started
	Digest string
}

// trusted: the file is strictly older, to the second, than the run that hashed it.
func (r statRecord) trusted() bool {
	return r.Mtime/1e9 < r.Stamp && r.Ctime/1e9 < r.Stamp && r.Mtime >= 0 && r.Ctime >= 0
}

const statMemoMagic = "gitgate-statmemo/1\n"

// OpenStatMemo loads the stat memo of the repository at root (its real, absolute path)
// from the cache's store; start is the run's start (before any file of the repository
// was read).
func (c *Cache) OpenStatMemo(root string, start time.Time) *StatMemo {
	m := openStatMemo(c.store, root, start)
	m.wrote = func() { c.wrote.Store(true) }
	return m
}

func openStatMemo(store blobStore, root string, start time.Time) *StatMemo {
	s := sha256.Sum256([]byte(root))
	m := &StatMemo{store: store, name: "statmemo:" + hex.EncodeToString(s[:]), root: root, start: start.Unix(),
		old: map[string]statRecord{}, seen: map[string]statRecord{}}
	if b, ok := store.Get(m.name); ok {
		if recs, ok := decodeStatMemo(b, root); ok {
			m.old = recs
		}
	}
	return m
}

// lookup is name's digest when its stat is trusted.
func (m *StatMemo) lookup(name string, fi fs.FileInfo) (string, bool) {
	id, ok := statOf(fi)
	if !ok {
		return "", false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.old[name]
	if !ok || r.statID != id || !r.trusted() {
		return "", false
	}
	m.seen[name] = r
	m.trusted++
	return r.Digest, true
}

// record notes that name, whose stat before the read was fi, hashed to digest.
func (m *StatMemo) record(name string, fi fs.FileInfo, digest string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hashed++
	id, ok := statOf(fi)
	if !ok {
		return
	}
	r := statRecord{statID: id, Stamp: m.start, Digest: digest}
	m.seen[name] = r
	if o, had := m.old[name]; !had || o != r {
		m.dirty = true
	}
}

// Counts are the files of this run taken from the memo and hashed.
func (m *StatMemo) Counts() (trusted, hashed int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.trusted, m.hashed
}

// maxStatRecords bounds the memo: records not seen in a run are kept (a run may digest
// part of the repository) only while the memo stays under it.
const maxStatRecords = 1 << 20

// Save writes the memo when this run hashed something new: this run's records, then
// earlier ones it did not look at, up to the bound. A failure is not an error: the next
// run hashes again.
func (m *StatMemo) Save() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirty {
		return
	}
	recs := make(map[string]statRecord, len(m.seen))
	for n, r := range m.seen {
		recs[n] = r
	}
	for n, r := range m.old {
		if len(recs) >= maxStatRecords {
			break
		}
		if _, ok := recs[n]; !ok {
			recs[n] = r
		}
	}
	if m.wrote != nil {
		m.wrote()
	}
	_ = m.store.Put(m.name, encodeStatMemo(m.root, recs))
	m.dirty = false
}

// The encoding: magic, root, count, then per record its name, the stat fields, the
// stamp and the digest, each string with its length. Sorted by name (stable blobs).
func encodeStatMemo(root string, recs map[string]statRecord) []byte {
	names := slices.Sorted(maps.Keys(recs))
	var b bytes.Buffer
	b.WriteString(statMemoMagic)
	putString(&b, root)
	putUint(&b, uint64(len(names)))
	for _, n := range names {
		r := recs[n]
		putString(&b, n)
		for _, v := range []uint64{uint64(r.Size), uint64(r.Mtime), uint64(r.Ctime), r.Dev, r.Ino, uint64(r.Mode), uint64(r.Stamp)} {
			putUint(&b, v)
		}
		putString(&b, r.Digest)
	}
	return b.Bytes()
}

func putUint(b *bytes.Buffer, v uint64) {
	var buf [binary.MaxVarintLen64]byte
	b.Write(buf[:binary.PutUvarint(buf[:], v)])
}

func putString(b *bytes.Buffer, s string) {
	putUint(b, uint64(len(s)))
	b.WriteString(s)
}

var errCorrupt = errors.New("corrupt stat memo")

// decodeStatMemo reads a memo of root; false for anything else (corrupt, truncated,
// trailing bytes, another format or root).
func decodeStatMemo(b []byte, root string) (map[string]statRecord, bool) {
	rest, ok := bytes.CutPrefix(b, []byte(statMemoMagic))
	if !ok {
		return nil, false
	}
	d := decoder{b: rest}
	if d.string() != root {
		return nil, false
	}
	n := d.uint()
	if d.err != nil || n > maxStatRecords {
		return nil, false
	}
	recs := make(map[string]statRecord, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		name := d.string()
		var r statRecord
		r.Size, r.Mtime, r.Ctime = int64(d.uint()), int64(d.uint()), int64(d.uint())
		r.Dev, r.Ino = d.uint(), d.uint()
		mode := d.uint()
		r.Stamp = int64(d.uint())
		r.Digest = d.string()
		if mode > 1<<32-1 || name == "" || r.Digest == "" {
			d.err = errCorrupt
		}
		r.Mode = uint32(mode)
		recs[name] = r
	}
	if d.err != nil || len(d.b) != 0 || uint64(len(recs)) != n {
		return nil, false
	}
	return recs, true
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errCorrupt
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
