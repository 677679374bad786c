package verdictcache

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gitgate/gitgate/internal/repopath"
)

func TestHasherFieldsDoNotRunTogether(t *testing.T) {
	a := NewHasher("k")
	a.String("ab")
	a.String("c")
	b := NewHasher("k")
	b.String("a")
	b.String("bc")
	if a.Sum() == b.Sum() {
		t.Error(`("ab","c") and ("a","bc") hash alike`)
	}
	c := NewHasher("other")
	c.String("ab")
	c.String("c")
	if a.Sum() == c.Sum() {
		t.Error("keys of two kinds hash alike")
	}
}

func write(t *testing.T, dir, name, body string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFilesDigest: a digest changes with a file's content, with a file added under a
// directory dependency, and with a missing file created (even empty); it does not
// change with files that are not dependencies.
func TestFilesDigest(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "app/kustomization.yaml", "resources: [d.yaml]\n")
	write(t, dir, "app/d.yaml", "kind: A\n")
	write(t, dir, "chart/templates/a.yaml", "x\n")
	write(t, dir, "other.yaml", "y\n")
	deps := []string{"app/kustomization.yaml", "app/d.yaml", "app/kustomization.yml", "chart/"}
	digest := func() string {
		t.Helper()
		d, err := NewFiles(repopath.DirFS(dir), 0).Digest(deps)
		if err != nil {
			t.Fatal(err)
		}
		// The confined filesystem's fast reads digest as plain os.DirFS does.
		plain, err := NewFiles(os.DirFS(dir), 0).Digest(deps)
		if err != nil || plain != d {
			t.Fatalf("os.DirFS: %s, %v; repopath.DirFS: %s", plain, err, d)
		}
		return d
	}
	d0 := digest()
	if d0 != digest() {
		t.Fatal("the same files digest differently")
	}
	write(t, dir, "other.yaml", "z\n")
	if digest() != d0 {
		t.Error("a file that is no dependency changed the digest")
	}
	steps := []struct {
		what   string
		change func()
	}{
		{"content", func() { write(t, dir, "app/d.yaml", "kind: B\n") }},
		{"a file added below a directory", func() { write(t, dir, "chart/templates/b.yaml", "") }},
		{"a file below a directory renamed", func() {
			os.Rename(filepath.Join(dir, "chart/templates/b.yaml"), filepath.Join(dir, "chart/templates/c.yaml"))
		}},
		{"a missing dependency created empty", func() { write(t, dir, "app/kustomization.yml", "") }},
	}
	prev := d0
	for _, s := range steps {
		s.change()
		if d := digest(); d == prev {
			t.Errorf("%s: digest unchanged", s.what)
		} else {
			prev = d
		}
	}
}

// TestFilesRefuseOutside: a dependency that is a symbolic link out of the repository is
// not read (the target is not cached), and a file past the size bound is not either.
func TestFilesRefuseOutside(t *testing.T) {
	outside := t.TempDir()
	write(t, outside, "secret.txt", "OUTSIDE")
	dir := t.TempDir()
	write(t, dir, "big.yaml", "0123456789")
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "link.yaml")); err != nil {
		t.Skip("no symbolic links here:", err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "linkdir")); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "in/a.yaml", "a\n")
	if err := os.Symlink("in", filepath.Join(dir, "inlink")); err != nil {
		t.Fatal(err)
	}
	for name, files := range map[string]func(max int64) *Files{
		"NewFiles": func(max int64) *Files { return NewFiles(repopath.DirFS(dir), max) },
	} {
		if _, err := files(0).Digest([]string{"link.yaml"}); err == nil {
			t.Errorf("%s: a link out of the repository was digested", name)
		}
		if _, err := files(0).Digest([]string{"linkdir/secret.txt"}); err == nil {
			t.Errorf("%s: a file below a directory link out of the repository was digested", name)
		}
		if _, err := files(0).Digest([]string{"./"}); err == nil {
			t.Errorf("%s: a directory holding a link out of the repository was digested", name)
		}
		if _, err := files(5).Digest([]string{"big.yaml"}); err == nil {
			t.Errorf("%s: a file past the size bound was digested", name)
		}
		a, err1 := files(0).Digest([]string{"in/a.yaml"})
		b, err2 := files(0).Digest([]string{"inlink/a.yaml"})
		if err1 != nil || err2 != nil || a == "" || b == "" { // a link that stays inside is read
			t.Errorf("%s: a link inside the repository: %v %v", name, err1, err2)
		}
	}
}

// TestCacheRoundTripAndCorruption: an entry reads back as stored; one whose blob was
// altered is a miss (and the blob removed), never the altered content.
func TestCacheRoundTripAndCorruption(t *testing.T) {
	dir := t.TempDir()
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	type entry struct{ Verdict string }
	var got entry
	if c.Get("k1", &got) {
		t.Fatal("an empty cache has an entry")
	}
	c.Put("k1", entry{"fail"})
	if !c.Get("k1", &got) || got.Verdict != "fail" {
		t.Fatalf("read back %+v", got)
	}
	blobs, _ := filepath.Glob(filepath.Join(dir, "sha256", "*"))
	if len(blobs) != 1 {
		t.Fatalf("blobs %v, want one", blobs)
	}
	if err := os.WriteFile(blobs[0], []byte(`{"Verdict":"pass"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	got = entry{}
	if c.Get("k1", &got) {
		t.Errorf("a corrupted entry was used: %+v", got)
	}
	if _, err := os.Stat(blobs[0]); !os.IsNotExist(err) {
		t.Error("the corrupted blob was kept")
	}
	hits, misses, stored, _ := c.Stats()
	if hits != 1 || misses != 2 || stored != 1 {
		t.Errorf("stats %d hits %d misses %d stored, want 1 2 1", hits, misses, stored)
	}
}

// TestBuildID: the running binary has an identity, the same twice (the second time
// from the store's memo when it is the executable's digest).
func TestBuildID(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.BuildID()
	if err != nil || a == "" {
		t.Fatalf("BuildID: %q, %v", a, err)
	}
	b, _ := c.BuildID()
	if a != b {
		t.Errorf("BuildID %q then %q", a, b)
	}
}
