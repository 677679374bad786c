//go:build !unix

package remote

// lockFile is no lock where the system has no flock: the in-process mutex serialises
// this process's fetches.
func lockFile(string) (release func()) { return func() {} }

// lockShared is no lock where the system has no flock.
func lockShared(string) (release func(), ok bool) { return func() {}, false }

// tryLockExclusive never succeeds where the system has no flock: without a way to
// tell a Git checkout in use, none is evicted.
func tryLockExclusive(string) (release func(), ok bool) { return func() {}, false }
