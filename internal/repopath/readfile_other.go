//go:build !unix

package repopath

import (
	"errors"
	"os"
)

var errFollow = errors.New("the last element is a symbolic link")

// readRegular reads the regular file p (os.ReadFile where there is no O_NOFOLLOW; the
// file was checked not to be a link just before).
func readRegular(p string, _ int64) ([]byte, error) { return os.ReadFile(p) }
