package admission

import (
	"math/rand"
	"strings"
	"testing"
	"time"

	upstream "github.com/IGLOU-EU/go-wildcard"
	"github.com/kyverno/kyverno/ext/wildcard"
)

// go.mod replaces github.com/IGLOU-EU/go-wildcard (Kyverno's wildcard matcher) with the
// linear-time matcher in third_party/go-wildcard. These tests hold it to the same results
// as a reference matcher and to a time bound on the input that made the original
// backtrack exponentially.

// refMatch is the reference: dynamic programming over runes, O(len(p) x len(s)).
func refMatch(pattern, name string) bool {
	if pattern == "" {
		return name == ""
	}
	p, s := []rune(pattern), []rune(name)
	// m[j]: p[:i] matches s[:j]
	m := make([]bool, len(s)+1)
	m[0] = true
	for i := range p {
		next := make([]bool, len(s)+1)
		switch p[i] {
		case '*':
			seen := false
			for j := 0; j <= len(s); j++ {
				seen = seen || m[j]
				next[j] = seen
			}
		case '?':
			for j := 1; j <= len(s); j++ {
				next[j] = m[j-1]
			}
		default:
			for j := 1; j <= len(s); j++ {
				next[j] = m[j-1] && s[j-1] == p[i]
			}
		}
		m = next
	}
	return m[len(s)]
}

func TestWildcardAgreesWithReference(t *testing.T) {
	cases := [][2]string{
		{"", ""}, {"", "a"}, {"*", ""}, {"*", "abc"}, {"?", ""}, {"?", "é"}, {"??", "é"},
		{"a*", "a"}, {"*a", "ba"}, {"a*b", "ab"}, {"a*b", "a"}, {"a*a", "a"}, {"**", "x"},
		{"*?*", ""}, {"*?*", "x"}, {"a?c", "abc"}, {"a?c", "aéc"}, {"*.example.com", "a.example.com"},
		{"ghcr.io/*", "ghcr.io/x/y:1"}, {"*:latest", "nginx:latest"}, {"*:latest", "nginx:latest1"},
		{"*a*a*a*a*a*a*b", strings.Repeat("a", 40)}, {"*a*a*a*a*a*a*b", strings.Repeat("a", 40) + "b"},
		{"*ab?*", "aab"}, {"*ab?*", "aabx"}, {"\xff*", "\xfe"}, {"\xff", "\xfe"}, {"a\xff?", "a\xfe\xfd"},
		{"*?a?*", "bab"}, {"?*?", "a"}, {"?*?", "ab"},
	}
	for _, c := range cases {
		if got, want := wildcard.Match(c[0], c[1]), refMatch(c[0], c[1]); got != want {
			t.Errorf("Match(%q, %q) = %v, want %v", c[0], c[1], got, want)
		}
	}
	// Random patterns and names over a small alphabet, where stars and question marks
	// interact most.
	rng := rand.New(rand.NewSource(1))
	pick := func(alphabet []string, n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(alphabet[rng.Intn(len(alphabet))])
		}
		return b.String()
	}
	pat := []string{"a", "b", "*", "?", "é"}
	txt := []string{"a", "b", "é"}
	matched := 0
	for range 20000 {
		p, s := pick(pat, rng.Intn(8)), pick(txt, rng.Intn(10))
		want := refMatch(p, s)
		if want {
			matched++
		}
		if got := upstream.Match(p, s); got != want {
			t.Fatalf("Match(%q, %q) = %v, want %v", p, s, got, want)
		}
		if got := upstream.MatchSimple(p, s); got != want {
			t.Fatalf("MatchSimple(%q, %q) = %v, want %v", p, s, got, want)
		}
	}
	if matched < 1000 || matched > 19000 {
		t.Fatalf("random cases matched %d of 20000: the generator does not exercise both outcomes", matched)
	}
}

// TestWildcardLinear: the pattern that backtracked exponentially, against a long value,
// through Kyverno's own package, finishes within a bound (the original did not finish
// 2^40 steps within minutes).
func TestWildcardLinear(t *testing.T) {
	long := strings.Repeat("a", 1<<20) // 1 MiB, far beyond where backtracking ends in time
	start := time.Now()
	for _, p := range []string{"*a*a*a*a*a*a*b", "*a?a*a?a*a*a*b", strings.Repeat("*a", 200) + "*b"} {
		if wildcard.Match(p, long) {
			t.Errorf("Match(%.20q..., a*1Mi) = true, want false", p)
		}
		if !wildcard.Match(p, long+"b") {
			t.Errorf("Match(%.20q..., a*1Mi b) = false, want true", p)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("3 patterns against 1 MiB took %s; want well under 5s (linear time)", d)
	}
}
