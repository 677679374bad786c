//go:build !unix

package remote

// lockFile is no lock where the system has no flock: the in-process mutex serialises
// this process's fetches.
func lockFile(string) (release func()) { return func() {} }
