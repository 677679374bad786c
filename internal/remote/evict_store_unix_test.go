//go:build unix

package remote

import (
	"encoding/base64"
	"math/rand"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/git/gittest"
)

// storeRepo is a repository served over Git's smart HTTP on 127.0.0.1 whose one commit
// holds 64 KiB of incompressible data, so its object store in the cache has a size
// that matters against a bound.
type storeRepo struct {
	url, commit string
	packs       *atomic.Int64
}

func newStoreRepo(t *testing.T, seed int64) storeRepo {
	t.Helper()
	work := gittest.Init(t, "")
	data := make([]byte, 48<<10)
	rand.New(rand.NewSource(seed)).Read(data)
	commit := work.CommitFiles("data", map[string]string{"data.txt": base64.StdEncoding.EncodeToString(data) + "\n"})
	url, packs := gittest.HTTPServer(t, work.Dir, "")
	return storeRepo{url: url, commit: commit, packs: packs}
}

// store is the object store the fetcher keeps for url.
func storeOf(f *Fetcher, url string) string {
	return filepath.Join(f.cache.repos(), gitKey(url)+".git")
}

// Git object stores count towards the cache's bound and are evicted by the same
// least-recently-used rule as blobs and checkouts (used: every fetch through one touches
// it); the written-out commits and ref records stay, so offline still renders the
// commit, and online the URL is cloned again into a new store.
func TestGitStoreEviction(t *testing.T) {
	repos := []storeRepo{newStoreRepo(t, 1), newStoreRepo(t, 2), newStoreRepo(t, 3)}
	s := testSettings(t, "")
	f1 := newFetcher(t, s)
	dirs := make([]string, len(repos))
	for i, r := range repos {
		tree, err := f1.Git(ctx, r.url, "master")
		if err != nil {
			t.Fatal(err)
		}
		dirs[i] = tree.Dir
		// The store is where git.Source keeps it: named as lockGit names its lock.
		if !exists(filepath.Join(storeOf(f1, r.url), "objects")) {
			t.Fatalf("no object store %s for %s (gitKey does not name git.Source's store)", storeOf(f1, r.url), r.url)
		}
		if got := f1.cache.stores(); len(got) != i+1 {
			t.Fatalf("after %d fetches the cache lists stores %v", i+1, got)
		}
	}
	f1.Close()

	// Used: store 0, checkout 0, store 1, checkout 1, store 2, checkout 2.
	now := time.Now()
	var total, store0 int64
	for i, r := range repos {
		store := storeOf(f1, r.url)
		for j, p := range []string{store, dirs[i]} {
			when := now.Add(time.Duration(2*i+j-6) * time.Hour)
			if err := os.Chtimes(p, when, when); err != nil {
				t.Fatal(err)
			}
		}
		size := dirSize(store)
		if size < 48<<10 {
			t.Fatalf("store %d counts %d bytes, less than its data", i, size)
		}
		if i == 0 {
			store0 = size
		}
		total += size + f1.cache.treeSize(dirs[i])
	}

	// A bound under the total by half of store 0 (the checkouts alone are far under
	// it): fetching repository 2 again evicts store 0, the least recently used entry,
	// and nothing else.
	s.MaxCacheBytes = total - store0/2
	f2 := newFetcher(t, s)
	if tree, err := f2.Git(ctx, repos[2].url, "master"); err != nil || tree.Commit != repos[2].commit {
		t.Fatalf("repository 2: %+v %v", tree, err)
	}
	if exists(storeOf(f2, repos[0].url)) {
		t.Fatal("the least recently used object store was kept past the bound")
	}
	for i := range repos {
		if !exists(filepath.Join(dirs[i], "data.txt")) {
			t.Errorf("checkout %d was removed (only store 0 had to go)", i)
		}
		if i > 0 && !exists(filepath.Join(storeOf(f2, repos[i].url), "objects")) {
			t.Errorf("store %d, more recently used than store 0, was removed", i)
		}
	}
	f2.Close()

	// Offline, the evicted store is not needed: the ref record and the checkout are.
	packs := repos[0].packs.Load()
	off := s
	off.Offline, off.MaxCacheBytes = true, 0
	tree, err := newFetcher(t, off).Git(ctx, repos[0].url, "master")
	if err != nil || tree.Commit != repos[0].commit || tree.Dir != dirs[0] {
		t.Fatalf("offline after the store was evicted: %+v %v", tree, err)
	}
	if !exists(filepath.Join(tree.Dir, "data.txt")) {
		t.Error("offline: the checkout has no data.txt")
	}
	if exists(storeOf(f2, repos[0].url)) || repos[0].packs.Load() != packs {
		t.Error("offline recreated the store or fetched a pack")
	}

	// Online, the URL is cloned again into a new store and renders the same commit.
	s.MaxCacheBytes = 0
	f3 := newFetcher(t, s)
	tree, err = f3.Git(ctx, repos[0].url, "master")
	if err != nil || tree.Commit != repos[0].commit {
		t.Fatalf("online after the store was evicted: %+v %v", tree, err)
	}
	if repos[0].packs.Load() == packs {
		t.Error("online after the store was evicted: no pack was fetched")
	}
	if !exists(filepath.Join(storeOf(f3, repos[0].url), "objects")) {
		t.Error("online after the store was evicted: no new store")
	}
	if b, err := os.ReadFile(filepath.Join(tree.Dir, "data.txt")); err != nil || len(b) < 48<<10 {
		t.Errorf("online after the store was evicted: data.txt %d bytes, %v", len(b), err)
	}
	f3.Close()
}

// A store whose URL a fetch holds (its lockGit lock: another process's, or this one's)
// is never removed, under any bound; let go, it is.
func TestGitStoreInUseKept(t *testing.T) {
	a, b := newStoreRepo(t, 4), newStoreRepo(t, 5)
	s := testSettings(t, "")
	f := newFetcher(t, s)
	for _, r := range []storeRepo{a, b} {
		if _, err := f.Git(ctx, r.url, "master"); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	gitDir := filepath.Join(s.CacheDir, "git")

	end := holdGitInOtherProcess(t, gitDir, a.url)
	unlock := lockGit(gitDir, b.url) // a fetch of b running in this process
	f.cache.max = 1
	f.cache.evict("")
	if !exists(filepath.Join(storeOf(f, a.url), "objects")) {
		t.Fatal("a store another process is fetching into was removed")
	}
	if !exists(filepath.Join(storeOf(f, b.url), "objects")) {
		t.Fatal("a store this process is fetching into was removed")
	}
	unlock()
	f.cache.evict("")
	if exists(storeOf(f, b.url)) {
		t.Error("b's store was kept after its fetch ended")
	}
	if !exists(filepath.Join(storeOf(f, a.url), "objects")) {
		t.Fatal("a store another process is fetching into was removed")
	}
	end()
	f.cache.evict("")
	if exists(storeOf(f, a.url)) {
		t.Error("a's store was kept after the other process let it go")
	}
	// The next fetch clones again.
	f.cache.max = 0
	if tree, err := f.Git(ctx, a.url, "master"); err != nil || tree.Commit != a.commit {
		t.Errorf("a after eviction: %+v %v", tree, err)
	}
	f.Close()
}

// A store is counted once per process while it is not fetched into; a fetch (which
// touches it) makes the next pass count it again.
func TestGitStoreSizeCounted(t *testing.T) {
	r := newStoreRepo(t, 6)
	s := testSettings(t, "")
	f := newFetcher(t, s)
	if _, err := f.Git(ctx, r.url, "master"); err != nil {
		t.Fatal(err)
	}
	store := storeOf(f, r.url)
	got, ok := f.cache.storeSizes[store]
	if !ok || got.size != dirSize(store) {
		t.Fatalf("after a fetch the store's size is %+v (%v), want %d", got, ok, dirSize(store))
	}
	// Grown behind the pass's back without a touch: the memo stands (no walk) ...
	extra := filepath.Join(store, "objects", "extra")
	if err := os.WriteFile(extra, make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(store, got.used, got.used); err != nil {
		t.Fatal(err)
	}
	f.cache.evict("")
	if f.cache.storeSizes[store].size != got.size {
		t.Errorf("an untouched store was counted again: %d, was %d", f.cache.storeSizes[store].size, got.size)
	}
	// ... and a touch (every fetch) has it counted again.
	touch(store)
	f.cache.evict("")
	if n := f.cache.storeSizes[store].size; n != got.size+1000 {
		t.Errorf("a touched store counts %d bytes, want %d", n, got.size+1000)
	}
	if err := os.Remove(extra); err != nil {
		t.Fatal(err)
	}
	f.Close()
}
