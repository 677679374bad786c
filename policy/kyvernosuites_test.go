package policy

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestKyvernoCLISuites runs the validation suites of Kyverno's own CLI tests (test/cli
// in the kyverno module this build uses) with gitgate's runner: they must pass as they
// do with `kyverno test`. The list is policy/testdata/kyverno-cli-suites.txt.
func TestKyvernoCLISuites(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/kyverno/kyverno").Output()
	if err != nil {
		t.Fatalf("locate the kyverno module: %v", err)
	}
	root := filepath.Join(strings.TrimSpace(string(out)), "test", "cli")
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("kyverno's CLI tests are not in the module cache: %v", err)
	}
	f, err := os.Open("testdata/kyverno-cli-suites.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		dir := strings.TrimSpace(sc.Text())
		if dir == "" || strings.HasPrefix(dir, "#") {
			continue
		}
		n++
		t.Run(dir, func(t *testing.T) {
			res := RunTests(context.Background(), os.DirFS(root), dir, TestOptions{Display: dir})
			for _, err := range res.Errors {
				t.Error(err)
			}
			if res.Tests == 0 {
				t.Fatal("no kyverno-test.yaml found")
			}
			for _, r := range res.Rows {
				if !r.Pass {
					t.Errorf("%s/%s on %s: expected %s, got %s: %s", r.Policy, r.Rule, r.Resource, r.Expected, r.Actual, r.Message)
				}
			}
		})
	}
	if n < 50 {
		t.Errorf("only %d suites listed", n)
	}
}
