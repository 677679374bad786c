package git

import (
	"errors"
	"strings"
	"testing"
)

// The missing-base hint is a command a user pastes: it is quoted for the shell, and a
// revision carrying a line break or an option is never echoed into it.
func TestRevisionErrorHint(t *testing.T) {
	for _, c := range []struct {
		rev, want, absent string
	}{
		{rev: "origin/main", want: "git fetch --depth=50 origin main "},
		{rev: "v1.2.3", want: "origin v1.2.3 "},
		{rev: "feature/$(id)", want: `origin 'feature/$(id)' `},
		{rev: "it's", want: `origin 'it'\''s' `},
		{rev: "nope\necho pwned", want: "not a valid Git reference name", absent: "git fetch"},
		{rev: "--upload-pack=x", want: "not a valid Git reference name", absent: "git fetch"},
		{rev: "a..b", want: "not a valid Git reference name", absent: "git fetch"},
	} {
		msg := (&RevisionError{Rev: c.rev, Err: errors.New("not found in this clone")}).Error()
		if !strings.Contains(msg, c.want) {
			t.Errorf("%q: %q lacks %q", c.rev, msg, c.want)
		}
		if c.absent != "" && strings.Contains(msg, c.absent) {
			t.Errorf("%q: %q holds %q", c.rev, msg, c.absent)
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("%q: message has a line break: %q", c.rev, msg)
		}
	}
}
