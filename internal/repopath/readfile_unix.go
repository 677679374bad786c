//go:build unix

package repopath

import (
	"errors"
	"io/fs"
	"syscall"
)

// errFollow: the file became a symbolic link after it was checked; the caller judges the
// name again.
var errFollow = errors.New("the last element is a symbolic link")

// readRegular reads the regular file p of size (a hint) in one open that does not follow
// a final symbolic link: four system calls instead of os.ReadFile's ten (os.Open sets a
// regular file non-blocking, fails to register it with the poller and resets it).
func readRegular(p string, size int64) ([]byte, error) {
	var fd int
	var err error
	for {
		fd, err = syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err == syscall.ELOOP {
		return nil, errFollow
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	defer syscall.Close(fd)
	if size < 0 {
		size = 0
	}
	buf := make([]byte, 0, size+1) // +1: the read that sees the end
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: p, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}
