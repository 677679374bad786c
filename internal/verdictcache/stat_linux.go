//go:build linux

package verdictcache

import (
	"io/fs"
	"syscall"
)

// statOf is what a file's stat must match to be trusted (false: not known here).
func statOf(fi fs.FileInfo) (statID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() {
		return statID{}, false
	}
	return statID{Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(), Dev: uint64(st.Dev), Ino: st.Ino, Mode: st.Mode}, true
}
