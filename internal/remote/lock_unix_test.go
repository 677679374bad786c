//go:build unix

package remote

import (
	"path/filepath"
	"testing"
	"time"
)

// TestLockFileExcludes: a second holder (its own open file, as another process has)
// waits until the first releases: two gitgate processes sharing a cold cache never
// create one Git object store at once.
func TestLockFileExcludes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "locks", "x.lock")
	release := lockFile(p)
	got := make(chan struct{})
	go func() {
		r := lockFile(p)
		close(got)
		r()
	}()
	select {
	case <-got:
		t.Fatal("the second lock was taken while the first was held")
	case <-time.After(200 * time.Millisecond):
	}
	release()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the second lock was never taken after release")
	}
}
