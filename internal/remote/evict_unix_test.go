//go:build unix

package remote

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/git/gittest"
)

// holdLockEnv makes the test binary a process holding a shared lock on the file it
// names (as a gitgate using a checkout does) until its stdin closes.
const holdLockEnv = "GITGATE_TEST_HOLD_TREE_LOCK"

// holdGitLockEnv makes the test binary a process holding a Git URL's fetch lock (as a
// gitgate fetching into that URL's object store does: lockGit) until its stdin closes.
// The value is the <cache>/git directory and the URL, a newline between.
const holdGitLockEnv = "GITGATE_TEST_HOLD_GIT_LOCK"

func TestMain(m *testing.M) {
	if p := os.Getenv(holdLockEnv); p != "" {
		release, ok := lockShared(p)
		if !ok {
			fmt.Println("no lock")
			os.Exit(1)
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin)
		release()
		os.Exit(0)
	}
	if v := os.Getenv(holdGitLockEnv); v != "" {
		dir, url, _ := strings.Cut(v, "\n")
		unlock := lockGit(dir, url)
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin)
		unlock()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// holdInOtherProcess starts a process holding path's shared lock; the returned func
// ends it.
func holdInOtherProcess(t *testing.T, path string) (end func()) {
	t.Helper()
	return startHolder(t, holdLockEnv+"="+path)
}

// holdGitInOtherProcess starts a process holding the fetch lock of url's object store
// under gitDir (<cache>/git), taken by lockGit as a fetch takes it; the returned func
// ends it.
func holdGitInOtherProcess(t *testing.T, gitDir, url string) (end func()) {
	t.Helper()
	return startHolder(t, holdGitLockEnv+"="+gitDir+"\n"+url)
}

// startHolder starts the test binary with env set and waits until it says it holds its
// lock.
func startHolder(t *testing.T, env string) (end func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), env)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "locked\n" {
		stdin.Close()
		cmd.Wait()
		t.Fatalf("the other process did not take the lock: %q", line)
	}
	ended := false
	end = func() {
		if !ended {
			ended = true
			stdin.Close()
			cmd.Wait()
		}
	}
	t.Cleanup(end)
	return end
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Git checkouts count towards the cache's bound and are evicted by the blobs' rule
// (least recently used first); one a process is using (its shared lock: another
// process's, or this Fetcher's own until Close) is never removed; an evicted commit is
// named offline and written out again online.
func TestGitCheckoutEviction(t *testing.T) {
	work := gittest.Init(t, "")
	big := func(tag string) map[string]string {
		return map[string]string{"data.txt": fmt.Sprintf("%s %0*d\n", tag, 20000, 0)}
	}
	cA := work.CommitFiles("a", big("a"))
	work.Tag("a", cA, "")
	cB := work.CommitFiles("b", big("b"))
	work.Tag("b", cB, "")
	cC := work.CommitFiles("c", big("c"))
	url, _ := gittest.HTTPServer(t, work.Dir, "")

	s := testSettings(t, "")
	f1 := newFetcher(t, s)
	dirs := map[string]string{}
	for _, ref := range []string{"a", "b", "master"} {
		tree, err := f1.Git(ctx, url, ref)
		if err != nil {
			t.Fatal(err)
		}
		dirs[ref] = tree.Dir
	}
	f1.Close()
	blob, err := f1.cache.put([]byte("an old blob"), "")
	if err != nil {
		t.Fatal(err)
	}
	blobPath, _ := f1.cache.blobPath(blob)
	// Used: the blob longest ago, then a, b, master.
	now := time.Now()
	for i, p := range []string{blobPath, dirs["a"], dirs["b"], dirs["master"]} {
		when := now.Add(time.Duration(i-4) * time.Hour)
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
	}
	size := func(ref string) int64 { return f1.cache.treeSize(dirs[ref]) }
	if size("a") < 20000 {
		t.Fatalf("checkout a counts %d bytes", size("a"))
	}

	// A bound one byte short of the three checkouts: the blob and the least recently
	// used checkout (a) go; master, just used, and b stay.
	s.MaxCacheBytes = size("a") + size("b") + size("master") - 1
	f2 := newFetcher(t, s)
	if tree, err := f2.Git(ctx, url, "master"); err != nil || tree.Commit != cC {
		t.Fatalf("master: %+v %v", tree, err)
	}
	if exists(blobPath) || exists(dirs["a"]) {
		t.Errorf("the least recently used blob and checkout were kept (blob %v, a %v)", exists(blobPath), exists(dirs["a"]))
	}
	if !exists(filepath.Join(dirs["b"], "data.txt")) || !exists(filepath.Join(dirs["master"], "data.txt")) {
		t.Fatal("a checkout more recently used than the evicted ones was removed")
	}

	// b in use by another process: kept under any bound; master, which this Fetcher
	// returned, too.
	end := holdInOtherProcess(t, f2.cache.treeLock(dirs["b"]))
	f2.cache.max = 1
	f2.cache.evict("")
	if !exists(filepath.Join(dirs["b"], "data.txt")) {
		t.Fatal("a checkout another process holds was removed")
	}
	if !exists(filepath.Join(dirs["master"], "data.txt")) {
		t.Fatal("a checkout this Fetcher returned was removed before Close")
	}
	end()
	f2.cache.evict("")
	if exists(dirs["b"]) {
		t.Error("b was kept after the other process let it go")
	}
	if !exists(filepath.Join(dirs["master"], "data.txt")) {
		t.Error("master was removed while this Fetcher holds it")
	}
	f2.Close()
	f2.cache.evict("")
	if exists(dirs["master"]) {
		t.Error("master was kept after Close")
	}

	// Evicted: named offline, written out again online.
	off := s
	off.Offline, off.MaxCacheBytes = true, 0
	if _, err := newFetcher(t, off).Git(ctx, url, "b"); !errors.As(err, new(*OfflineError)) {
		t.Errorf("offline, b evicted: %v", err)
	}
	s.MaxCacheBytes = 0
	if tree, err := newFetcher(t, s).Git(ctx, url, "b"); err != nil || tree.Commit != cB || !exists(filepath.Join(tree.Dir, "data.txt")) {
		t.Errorf("online, b evicted: %+v %v", tree, err)
	}
}
