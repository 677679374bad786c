package policy

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"sigs.k8s.io/yaml"
)

// FuzzParseConfig: any bytes either load or are an error naming the file; a config that
// loads survives a round trip unchanged.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(fullConfig))
	f.Add([]byte("registry: [a]\n"))
	f.Add([]byte("actions: {a: off, b: Enforce}\ntargets: {include: ['*']}\n"))
	f.Add([]byte("clusters: [{name: a, nmae: b}]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(ConfigFile, data)
		if err != nil {
			if !strings.Contains(err.Error(), ConfigFile) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseConfig(ConfigFile, out)
		if err != nil {
			t.Fatalf("a loaded config does not load again: %v\n%s", err, out)
		}
		if diff := cmp.Diff(c, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip changed the config (-first +second):\n%s", diff)
		}
	})
}

// FuzzParseWaivers: every entry is trimmed, names hold no separator, and a reason is
// what follows the first colon.
func FuzzParseWaivers(f *testing.F) {
	f.Add("require-probes/liveness: batch worker; labels: n/a\nx")
	f.Add(";;\n:\n/:")
	f.Fuzz(func(t *testing.T, s string) {
		for _, w := range ParseWaivers(s) {
			if w.Entry == "" || w.Entry != strings.TrimSpace(w.Entry) {
				t.Fatalf("entry %q not trimmed or empty", w.Entry)
			}
			if strings.ContainsAny(w.Policy+w.Rule+w.Reason, ";\n") || strings.Contains(w.Policy+w.Rule, ":") || strings.Contains(w.Policy, "/") {
				t.Fatalf("separator left in %+v", w)
			}
			if !strings.HasPrefix(w.Entry, w.Policy) {
				t.Fatalf("policy %q is not the start of %q", w.Policy, w.Entry)
			}
		}
	})
}
