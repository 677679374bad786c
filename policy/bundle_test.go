package policy

import (
	"context"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestBuiltinBundleSuites runs every kyverno-test.yaml of the built-in bundle with
// gitgate's engine: the bundle is tested like code, by the same runner users get.
func TestBuiltinBundleSuites(t *testing.T) {
	out := RunTests(context.Background(), os.DirFS("../policies"), ".", TestOptions{Display: "policies"})
	for _, err := range out.Errors {
		t.Error(err)
	}
	if out.Tests < 11 {
		t.Errorf("found %d kyverno-test.yaml, want one per built-in policy (11)", out.Tests)
	}
	for _, r := range out.Rows {
		if !r.Pass {
			t.Errorf("%s: %s/%s on %s: expected %s, got %s: %s", r.Test, r.Policy, r.Rule, r.Resource, r.Expected, r.Actual, r.Message)
		}
	}
}

// TestLazyContextMatchesEager evaluates the bundle's test resources with Kyverno's own
// checkpointing and with the copy-on-write context: every result must be identical.
func TestLazyContextMatchesEager(t *testing.T) {
	set, err := Load(os.DirFS("../policies"), ".")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]any{RegistriesVariable: RegistryPatterns([]string{"harbor.example.com"})}
	lazy, err := NewEngine(set, Options{Variables: vars})
	if err != nil {
		t.Fatal(err)
	}
	eager, err := NewEngine(set, Options{Variables: vars, eagerContext: true})
	if err != nil {
		t.Fatal(err)
	}
	src := Source{FS: os.DirFS("../policies"), Root: ".", Display: "policies"}
	jobs, errs, _ := walk(src, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	n := 0
	for _, j := range jobs {
		rs, err := readJobAll(j, DefaultMaxFileSize)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if skipKind(r) || r.Object.GetAPIVersion() == "kyverno.io/v1" {
				continue
			}
			n++
			want := eager.Evaluate(context.Background(), r, Request{})
			got := lazy.Evaluate(context.Background(), r, Request{})
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s %s: lazy context differs (-eager +lazy)\n%s", r.Origin, r.ID(), diff)
			}
		}
	}
	if n < 50 {
		t.Errorf("compared only %d resources", n)
	}
}
