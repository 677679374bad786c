//go:build linux

package verdictcache

import (
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gitgate/gitgate/internal/repopath"
)

// mapStore is a blobStore in memory.
type mapStore map[string][]byte

func (s mapStore) Get(n string) ([]byte, bool) { b, ok := s[n]; return b, ok }
func (s mapStore) Put(n string, b []byte) error {
	s[n] = append([]byte{}, b...)
	return nil
}

// countingFS counts the files read through it.
type countingFS struct {
	fs.StatFS
	reads atomic.Int64
}

func (c *countingFS) ReadFile(name string) ([]byte, error) {
	c.reads.Add(1)
	return fs.ReadFile(c.StatFS, name)
}

// run digests names of fsys as one run starting at start with the memo of root in
// store, and returns the digest and the files read.
func run(t *testing.T, store mapStore, root string, fsys fs.StatFS, start time.Time, names ...string) (string, int64) {
	t.Helper()
	c := &countingFS{StatFS: fsys}
	m := openStatMemo(store, root, start)
	d, err := NewFiles(c, 0).Trust(m).Digest(names)
	if err != nil {
		t.Fatal(err)
	}
	m.Save()
	return d, c.reads.Load()
}

func plainDigest(t *testing.T, fsys fs.FS, names ...string) string {
	t.Helper()
	d, err := NewFiles(fsys, 0).Digest(names)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// On disk: an unchanged file is trusted (not read); a file edited with its size and
// modification time restored (touch -d back: its change time moves), and a file
// replaced by another of the same size and times (a new inode), are read again, and
// every digest is the one an unmemoised Files computes.
func TestStatMemoDisk(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	write("a.yaml", "kind: A\n")
	write("b.yaml", "kind: B\n")
	write("c.yaml", "kind: C\n")
	for _, n := range []string{"a.yaml", "b.yaml", "c.yaml"} {
		if err := os.Chtimes(filepath.Join(dir, n), past, past); err != nil {
			t.Fatal(err)
		}
	}
	fsys := repopath.DirFS(dir)
	store := mapStore{}
	names := []string{"a.yaml", "b.yaml", "c.yaml", "sub/"}
	// Later runs start after the files' change times (set just now): a second on.
	later := func() time.Time { return time.Now().Add(2 * time.Second) }

	d1, reads := run(t, store, dir, fsys, later(), names...)
	if reads != 3 || d1 != plainDigest(t, fsys, names...) {
		t.Fatalf("first run: %d reads, digest %s", reads, d1)
	}
	d2, reads := run(t, store, dir, fsys, later(), names...)
	if reads != 0 || d2 != d1 {
		t.Fatalf("unchanged: %d reads (want 0), same digest %v", reads, d2 == d1)
	}

	// touch -d back: same size, same modification time, new content.
	write("a.yaml", "kind: X\n")
	if err := os.Chtimes(filepath.Join(dir, "a.yaml"), past, past); err != nil {
		t.Fatal(err)
	}
	// Replaced: another file renamed over it, same size and times.
	write("b.new", "kind: Y\n")
	if err := os.Chtimes(filepath.Join(dir, "b.new"), past, past); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "b.new"), filepath.Join(dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	d3, reads := run(t, store, dir, fsys, later(), names...)
	if want := plainDigest(t, fsys, names...); d3 != want || d3 == d1 {
		t.Fatalf("after the edits: digest %s, want %s (old %s)", d3, want, d1)
	}
	if reads != 2 {
		t.Fatalf("after the edits: %d reads, want 2 (a.yaml, b.yaml; c.yaml trusted)", reads)
	}
	// A file created under a directory named by the keys: found by the walk.
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("sub/d.yaml", "kind: D\n")
	d4, _ := run(t, store, dir, fsys, later(), names...)
	if want := plainDigest(t, fsys, names...); d4 != want || d4 == d3 {
		t.Fatalf("a new file: digest %s, want %s", d4, want)
	}
}

// stat builds a regular file's stat for fstest.MapFS.
func stat(size int64, mtime, ctime time.Time, ino uint64) *syscall.Stat_t {
	return &syscall.Stat_t{Size: size, Ino: ino, Dev: 1, Mode: syscall.S_IFREG | 0o644,
		Mtim: syscall.NsecToTimespec(mtime.UnixNano()), Ctim: syscall.NsecToTimespec(ctime.UnixNano())}
}

// Racily clean: an edit within the second the memo's run started that keeps every stat
// field (a filesystem with coarse timestamps) is hashed again; the same file once older
// than a run's start is trusted.
func TestStatMemoRacilyClean(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	m := start.Add(300 * time.Millisecond) // within the second the run started
	st := stat(8, m, m, 7)
	fsys := fstest.MapFS{"a.yaml": {Data: []byte("kind: A\n"), ModTime: m, Sys: st}}
	store := mapStore{}
	d1, reads := run(t, store, "/repo", fsys, start, "a.yaml")
	if reads != 1 {
		t.Fatalf("first run: %d reads", reads)
	}
	// Edited within the same tick: same size, times, inode.
	fsys["a.yaml"] = &fstest.MapFile{Data: []byte("kind: B\n"), ModTime: m, Sys: st}
	d2, reads := run(t, store, "/repo", fsys, start.Add(5*time.Second), "a.yaml")
	if reads != 1 || d2 == d1 || d2 != plainDigest(t, fsys, "a.yaml") {
		t.Fatalf("racily clean edit: %d reads (want 1), digest changed %v", reads, d2 != d1)
	}
	// Hashed by a run that started after it: trusted from then on.
	_, reads = run(t, store, "/repo", fsys, start.Add(10*time.Second), "a.yaml")
	if reads != 0 {
		t.Fatalf("older than the run that hashed it: %d reads, want 0", reads)
	}
	// A change time in the run's second (chmod, link count) is racy as well.
	st2 := stat(8, start.Add(-time.Hour), start.Add(20*time.Second+time.Millisecond), 7)
	fsys["a.yaml"] = &fstest.MapFile{Data: []byte("kind: B\n"), ModTime: start.Add(-time.Hour), Sys: st2}
	run(t, store, "/repo", fsys, start.Add(20*time.Second), "a.yaml")
	if _, reads = run(t, store, "/repo", fsys, start.Add(30*time.Second), "a.yaml"); reads != 1 {
		t.Fatalf("change time in the hashing run's second: %d reads, want 1", reads)
	}
}

// A corrupt memo, one truncated, and one of another root stored under this root's name
// are ignored: every file is hashed.
func TestStatMemoCorruptOrForeign(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	old := start.Add(-time.Hour)
	fsys := fstest.MapFS{"a.yaml": {Data: []byte("kind: A\n"), ModTime: old, Sys: stat(8, old, old, 7)}}
	store := mapStore{}
	run(t, store, "/repo", fsys, start, "a.yaml")
	name := openStatMemo(mapStore{}, "/repo", start).name
	good := store[name]
	if _, reads := run(t, store, "/repo", fsys, start, "a.yaml"); reads != 0 {
		t.Fatalf("a good memo: %d reads", reads)
	}
	// The record's digest forged (what a corrupt memo could claim): another digest.
	forged := encodeStatMemo("/repo", map[string]statRecord{"a.yaml": {statID: mustStat(t, fsys, "a.yaml"), Stamp: start.Unix(), Digest: "file:forged"}})
	for what, b := range map[string][]byte{
		"garbage":   []byte("not a memo"),
		"truncated": good[:len(good)-3],
		"trailing":  append(append([]byte{}, good...), 0),
		"foreign":   encodeStatMemo("/other", map[string]statRecord{"a.yaml": {statID: mustStat(t, fsys, "a.yaml"), Stamp: start.Unix(), Digest: "file:forged"}}),
	} {
		store[name] = b
		d, reads := run(t, store, "/repo", fsys, start, "a.yaml")
		if reads != 1 || d != plainDigest(t, fsys, "a.yaml") {
			t.Errorf("%s memo: %d reads (want 1), digest right %v", what, reads, d == plainDigest(t, fsys, "a.yaml"))
		}
	}
	// The format itself is trusted once it decodes (it is a verified blob of the store):
	// the forged record shows that a decoded record is used, so the checks above matter.
	store[name] = forged
	if d, reads := run(t, store, "/repo", fsys, start, "a.yaml"); reads != 0 || d == plainDigest(t, fsys, "a.yaml") {
		t.Fatalf("a decoded record is not used: %d reads", reads)
	}
}

func mustStat(t *testing.T, fsys fs.StatFS, name string) statID {
	fi, err := fsys.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	id, ok := statOf(fi)
	if !ok {
		t.Fatal("no stat")
	}
	return id
}
