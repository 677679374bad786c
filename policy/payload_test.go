package policy

import (
	"context"
	"os"
	"path"
	"strings"
	"testing"
	"testing/fstest"
)

// TestKyvernoCLIPayloadSuites runs the suites of Kyverno's own CLI tests whose
// ValidatingPolicies evaluate JSON, HTTP or Envoy payloads
// (policy/testdata/kyverno-cli-suites-payload.txt): each must pass as it does with
// `kyverno test`, every row on a payload, and each must fail, row by row, with every
// expected result flipped.
func TestKyvernoCLIPayloadSuites(t *testing.T) {
	root := kyvernoCLITests(t)
	base := os.DirFS(root)
	files := suiteList(t, "testdata/kyverno-cli-suites-payload.txt")
	for _, file := range files {
		if path.Base(file) != TestFileName {
			t.Fatalf("bad line %q: want PATH/%s", file, TestFileName)
		}
		t.Run(file, func(t *testing.T) {
			res := RunTests(context.Background(), base, file, TestOptions{Display: file})
			requirePass(t, res)
			for _, r := range res.Rows {
				t.Logf("%s/%s on %s: expected %s, got %s: %s", r.Policy, r.Rule, r.Resource, r.Expected, r.Actual, r.Message)
				if !strings.HasSuffix(r.Resource, ".json") {
					t.Errorf("%s on %s: not a row on a payload", r.Policy, r.Resource)
				}
			}
			for _, w := range res.Warnings {
				if strings.Contains(w, "not evaluated") {
					t.Errorf("warning %q: the suite's payload policies are evaluated", w)
				}
			}
			over := fstest.MapFS{file: {Data: flipResults(t, base, file)}}
			wrong := RunTests(context.Background(), overlayFS{base, over}, file, TestOptions{Display: file})
			if len(wrong.Errors) > 0 {
				t.Fatalf("the flipped copy does not run: %v", wrong.Errors)
			}
			if len(wrong.Rows) != len(res.Rows) || wrong.Failed() != len(wrong.Rows) {
				t.Fatalf("every expected result flipped: %d of %d rows fail, want all %d", wrong.Failed(), len(wrong.Rows), len(res.Rows))
			}
		})
	}
	if len(files) < 9 {
		t.Errorf("only %d suites listed", len(files))
	}
}

// TestPayloadSuite runs gitgate's own payload suite (testdata/payload, written from
// scratch; `kyverno test` v1.19.1 passes it): every row passes, each of the three modes
// is compared, and with every expected result flipped every row fails.
func TestPayloadSuite(t *testing.T) {
	fsys := os.DirFS("testdata/payload")
	res := RunTests(context.Background(), fsys, ".", TestOptions{Display: "testdata/payload"})
	requirePass(t, res)
	if res.Tests != 7 || len(res.Rows) != 13 {
		t.Errorf("%d tests, %d rows; want 7 tests, 13 rows", res.Tests, len(res.Rows))
	}
	statuses := map[Status]int{}
	for _, r := range res.Rows {
		t.Logf("%s: %s/%s on %s: expected %s, got %s: %s", r.Name, r.Policy, r.Rule, r.Resource, r.Expected, r.Actual, r.Message)
		statuses[r.Actual]++
	}
	// pass, fail, skip (no match; an exception) and error (a forged JWT) all occur.
	for _, s := range []Status{StatusPass, StatusFail, StatusSkip, StatusError} {
		if statuses[s] == 0 {
			t.Errorf("no row with result %s: %v", s, statuses)
		}
	}
	over := fstest.MapFS{TestFileName: {Data: flipResults(t, fsys, TestFileName)}}
	wrong := RunTests(context.Background(), overlayFS{fsys, over}, ".", TestOptions{Display: "testdata/payload"})
	if len(wrong.Errors) > 0 {
		t.Fatalf("the flipped copy does not run: %v", wrong.Errors)
	}
	if len(wrong.Rows) != len(res.Rows) || wrong.Failed() != len(wrong.Rows) {
		for _, r := range wrong.Rows {
			t.Logf("flipped: %s/%s on %s: expected %s, got %s, pass=%v", r.Policy, r.Rule, r.Resource, r.Expected, r.Actual, r.Pass)
		}
		t.Fatalf("every expected result flipped: %d of %d rows fail, want all %d", wrong.Failed(), len(wrong.Rows), len(res.Rows))
	}
}
