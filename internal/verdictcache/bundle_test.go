package verdictcache

import (
	"os"
	"path/filepath"
	"testing"
)

// countBundles is the bundle records in the cache directory.
func countBundles(t *testing.T, c *Cache) int {
	t.Helper()
	n := 0
	_ = filepath.WalkDir(c.Dir(), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := os.ReadFile(p); err == nil {
				if _, ok := decodeBundle(b); ok {
					n++
				}
			}
		}
		return nil
	})
	return n
}

// TestBundle: a run reads the entries the last run of the same bundle key used from one
// blob; an entry the bundle lacks is read on its own and the bundle rewritten; a run
// that used exactly the bundle writes nothing; a corrupt bundle is ignored (entries read
// one by one), never trusted.
func TestBundle(t *testing.T) {
	dir := t.TempDir()
	open := func() *Cache {
		c, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := open()
	c.LoadBundle("b1")
	var v string
	if c.Get("k1", &v) {
		t.Fatal("an entry in an empty cache")
	}
	c.Put("k1", "one")
	c.Put("k2", "two")
	c.Close()
	if n := countBundles(t, c); n != 0 {
		t.Fatalf("%d bundles after a run that rendered everything, want 0", n)
	}
	// The next run finds its entries one by one, and writes the bundle.
	c = open()
	c.LoadBundle("b1")
	if !c.Get("k1", &v) || !c.Get("k2", &v) {
		t.Fatal("entries not found")
	}
	c.Close()
	if n := countBundles(t, c); n != 1 {
		t.Fatalf("%d bundles after the second run, want 1", n)
	}

	// Each entry is stored on its own as well (check --base, another run's targets).
	for _, k := range []string{"k1", "k2"} {
		if r, ok := c.store.Get(recordName(k)); !ok || len(r) == 0 {
			t.Fatalf("entry %s not stored on its own", k)
		}
	}
	c = open()
	c.LoadBundle("b1")
	if !c.Get("k1", &v) || v != "one" || !c.Get("k2", &v) || v != "two" {
		t.Fatalf("entries from the bundle: %q", v)
	}
	if c.outside || len(c.used) != 2 {
		t.Fatalf("outside %v, used %d", c.outside, len(c.used))
	}
	c.Close()
	if c.wrote.Load() {
		t.Error("a run that used exactly its bundle wrote")
	}

	// A new entry: read on its own, the bundle rewritten with it.
	c = open()
	c.Put("k3", "three")
	c = open()
	c.LoadBundle("b1")
	if !c.Get("k1", &v) || !c.Get("k3", &v) || v != "three" {
		t.Fatal("an entry outside the bundle not found")
	}
	c.Close()
	c = open()
	c.LoadBundle("b1")
	if len(c.bundle) != 2 || c.bundle["k3"] == nil || c.bundle["k2"] != nil {
		t.Fatalf("the rewritten bundle holds %d entries", len(c.bundle))
	}

	// Another bundle key: not this bundle.
	c = open()
	c.LoadBundle("b2")
	if len(c.bundle) != 0 {
		t.Fatal("another key's bundle loaded")
	}

	// Corrupt: a bundle that does not decode is none.
	for _, bad := range [][]byte{[]byte("gitgate-verdict-bundle/1\n\xff"), encodeBundle(map[string][]byte{"k1": []byte("x")})[:20]} {
		if _, ok := decodeBundle(bad); ok {
			t.Errorf("%q decodes", bad)
		}
	}
}
