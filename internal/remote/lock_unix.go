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
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return func() {}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return func() {}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}
