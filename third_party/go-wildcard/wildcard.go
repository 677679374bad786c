// Package wildcard matches names against patterns with '*' (any run of characters,
// including none) and '?' (exactly one character), on runes, in time linear in the
// name for patterns without '?' and O(len(pattern) x len(name)) with them.
//
// It replaces github.com/IGLOU-EU/go-wildcard v1.0.3 (see README.md) with the same API
// and results, without that version's exponential backtracking.
package wildcard

import (
	"strings"
	"unicode/utf8"
)

// Match reports whether name matches pattern: '*' matches any run of characters, '?'
// exactly one character, everything else itself. An empty pattern matches only "".
func Match(pattern, name string) bool {
	return match(pattern, name)
}

// MatchSimple is Match. (Upstream documents it as '*'-only, but its '?' matches one
// character there too, and panics at the end of the name; here it simply does not match.)
func MatchSimple(pattern, name string) bool {
	return match(pattern, name)
}

func match(pattern, name string) bool {
	if pattern == "" {
		return name == ""
	}
	// Upstream compares []rune conversions: each invalid byte becomes U+FFFD. Do the same
	// so that results agree on invalid UTF-8 too.
	if !utf8.ValidString(pattern) {
		pattern = string([]rune(pattern))
	}
	if !utf8.ValidString(name) {
		name = string([]rune(name))
	}
	pieces := strings.Split(pattern, "*")
	if len(pieces) == 1 {
		n, ok := matchPrefix(pattern, name)
		return ok && n == len(name)
	}
	// The first piece is anchored at the start.
	n, ok := matchPrefix(pieces[0], name)
	if !ok {
		return false
	}
	name = name[n:]
	// The last piece is anchored at the end: it is exactly as many runes long as it has.
	last := pieces[len(pieces)-1]
	start, ok := lastRunes(name, utf8.RuneCountInString(last))
	if !ok {
		return false
	}
	if n, ok := matchPrefix(last, name[start:]); !ok || n != len(name)-start {
		return false
	}
	name = name[:start]
	// Every piece between them at its leftmost occurrence: taking the earliest place
	// leaves the most room for the pieces after it, so no match is lost.
	for _, p := range pieces[1 : len(pieces)-1] {
		if p == "" {
			continue
		}
		i, n := index(name, p)
		if i < 0 {
			return false
		}
		name = name[i+n:]
	}
	return true
}

// matchPrefix matches piece (no '*') at the start of s and returns the bytes it covers.
func matchPrefix(piece, s string) (int, bool) {
	n := 0
	for piece != "" {
		q := strings.IndexByte(piece, '?')
		if q < 0 {
			q = len(piece)
		}
		if !strings.HasPrefix(s[n:], piece[:q]) {
			return 0, false
		}
		n += q
		piece = piece[q:]
		if piece == "" {
			break
		}
		// piece[0] == '?': exactly one rune of s
		if n >= len(s) {
			return 0, false
		}
		_, size := utf8.DecodeRuneInString(s[n:])
		n += size
		piece = piece[1:]
	}
	return n, true
}

// index is the leftmost position at which piece (no '*') matches in s, and the bytes the
// match covers; -1 when there is none.
func index(s, piece string) (int, int) {
	if !strings.Contains(piece, "?") {
		// A valid UTF-8 needle found in valid UTF-8 starts at a rune boundary.
		return strings.Index(s, piece), len(piece)
	}
	// Jump between candidates with the literal run before the first '?', if any.
	lead := piece[:strings.IndexByte(piece, '?')]
	for i := 0; i <= len(s); {
		if lead != "" {
			j := strings.Index(s[i:], lead)
			if j < 0 {
				return -1, 0
			}
			i += j
		}
		if n, ok := matchPrefix(piece, s[i:]); ok {
			return i, n
		}
		if i == len(s) {
			break
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return -1, 0
}

// lastRunes is the byte offset where the last k runes of s start; false when s has fewer.
func lastRunes(s string, k int) (int, bool) {
	i := len(s)
	for ; k > 0; k-- {
		if i == 0 {
			return 0, false
		}
		_, size := utf8.DecodeLastRuneInString(s[:i])
		i -= size
	}
	return i, true
}
