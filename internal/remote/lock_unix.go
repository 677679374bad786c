//go:build unix

package remote

import (
	"os"
	"path/filepath"
	"syscall"
)

// lockFile takes an exclusive lock on path (created as needed), held until release.
// A lock that cannot be taken (a read-only cache) is no lock: the in-process mutex
// still serialises this process.
func lockFile(path string) (release func()) {
	release, _ = flock(path, syscall.LOCK_EX)
	return release
}

// lockShared takes a shared lock on path (created as needed), held until release: a
// Git checkout in use, which eviction leaves alone. ok is false when no lock could be
// taken.
func lockShared(path string) (release func(), ok bool) {
	return flock(path, syscall.LOCK_SH)
}

// tryLockExclusive takes an exclusive lock on path without waiting: ok is false while
// anyone (another process, or another open file of this one) holds a lock on it.
func tryLockExclusive(path string) (release func(), ok bool) {
	return flock(path, syscall.LOCK_EX|syscall.LOCK_NB)
}

func flock(path string, how int) (release func(), ok bool) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return func() {}, false
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return func() {}, false
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return func() {}, false
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, true
}
