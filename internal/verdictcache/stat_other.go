//go:build !linux

package verdictcache

import "io/fs"

// statOf: only Linux's stat is known here (inode and change time); elsewhere every file
// is hashed, as without a memo.
func statOf(fs.FileInfo) (statID, bool) { return statID{}, false }
