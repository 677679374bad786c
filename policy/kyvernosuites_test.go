package policy

import (
	"bufio"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	yaml3 "go.yaml.in/yaml/v3"
)

// kyvernoCLITests is test/cli of the kyverno module this build uses.
func kyvernoCLITests(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/kyverno/kyverno").Output()
	if err != nil {
		t.Fatalf("locate the kyverno module: %v", err)
	}
	root := filepath.Join(strings.TrimSpace(string(out)), "test", "cli")
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("kyverno's CLI tests are not in the module cache: %v", err)
	}
	return root
}

// suiteList reads a list file's lines, comments and blank lines left out.
func suiteList(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// requirePass fails t unless every row of the outcome passed and nothing errored.
func requirePass(t *testing.T, res *TestOutcome) {
	t.Helper()
	for _, err := range res.Errors {
		t.Error(err)
	}
	if res.Tests == 0 {
		t.Fatal("no kyverno-test.yaml found")
	}
	if len(res.Rows) == 0 {
		t.Fatal("no results compared")
	}
	for _, r := range res.Rows {
		if !r.Pass {
			t.Errorf("%s/%s on %s: expected %s, got %s: %s", r.Policy, r.Rule, r.Resource, r.Expected, r.Actual, r.Message)
		}
	}
}

// TestKyvernoCLISuites runs the validation suites of Kyverno's own CLI tests (test/cli
// in the kyverno module this build uses) with gitgate's runner: they must pass as they
// do with `kyverno test`. The list is policy/testdata/kyverno-cli-suites.txt.
func TestKyvernoCLISuites(t *testing.T) {
	root := kyvernoCLITests(t)
	dirs := suiteList(t, "testdata/kyverno-cli-suites.txt")
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			requirePass(t, RunTests(context.Background(), os.DirFS(root), dir, TestOptions{Display: dir}))
		})
	}
	if len(dirs) < 50 {
		t.Errorf("only %d suites listed", len(dirs))
	}
}

// TestKyvernoCLIMutateGenerateSuites runs the mutate and generate suites of Kyverno's own
// CLI tests, and those of DeletingPolicies (policy/testdata/kyverno-cli-suites-mutate.txt):
// each must pass as it does with `kyverno test`, and each must FAIL with a deliberately wrong expectation, so a
// pass is never one that could not fail: every expected result flipped, and, where the
// suite expects patched or generated objects, one value changed in each of them.
func TestKyvernoCLIMutateGenerateSuites(t *testing.T) {
	root := kyvernoCLITests(t)
	base := os.DirFS(root)
	kinds := map[string]int{}
	for _, line := range suiteList(t, "testdata/kyverno-cli-suites-mutate.txt") {
		kind, file, ok := strings.Cut(line, " ")
		file = strings.TrimSpace(file)
		if !ok || (kind != "mutate" && kind != "generate" && kind != "delete") || path.Base(file) != TestFileName {
			t.Fatalf("bad line %q: want KIND PATH/%s, KIND mutate, generate or delete", line, TestFileName)
		}
		kinds[kind]++
		t.Run(file, func(t *testing.T) {
			res := RunTests(context.Background(), base, file, TestOptions{Display: file})
			requirePass(t, res)
			compared := 0
			for _, r := range res.Rows {
				if r.Actual != StatusSkip || !strings.HasPrefix(r.Message, "excluded") {
					compared++
				}
			}
			if compared == 0 {
				t.Fatal("every row is excluded: nothing in this suite is compared")
			}

			t.Run("flipped", func(t *testing.T) {
				over := fstest.MapFS{file: {Data: flipResults(t, base, file)}}
				wrong := RunTests(context.Background(), overlayFS{base, over}, file, TestOptions{Display: file})
				if len(wrong.Errors) > 0 {
					t.Fatalf("the flipped copy does not run: %v", wrong.Errors)
				}
				if wrong.Failed() == 0 {
					t.Fatalf("every expected result flipped, yet all %d rows pass", len(wrong.Rows))
				}
			})
			expected := expectedObjectFiles(t, base, file)
			if len(expected) == 0 {
				return
			}
			t.Run("wrong-object", func(t *testing.T) {
				over := fstest.MapFS{}
				for _, f := range expected {
					over[f] = &fstest.MapFile{Data: spoilObjects(t, base, f)}
				}
				wrong := RunTests(context.Background(), overlayFS{base, over}, file, TestOptions{Display: file})
				if len(wrong.Errors) > 0 {
					t.Fatalf("the spoilt copy does not run: %v", wrong.Errors)
				}
				// Every row that compared an object in the true run fails on the spoilt
				// value now.
				spoiltRows := map[string]TestRow{}
				for _, r := range wrong.Rows {
					spoiltRows[r.Policy+"|"+r.Rule+"|"+r.Resource] = r
				}
				comparedRows := 0
				for _, r := range res.Rows {
					if len(r.Compared) == 0 {
						continue
					}
					comparedRows++
					w, ok := spoiltRows[r.Policy+"|"+r.Rule+"|"+r.Resource]
					// A long value is shown cut; a Secret's value never (masked, its key shown).
					shown := strings.Contains(w.Message, spoilt[:len("gitgate-wrong")]) ||
						strings.HasPrefix(r.Resource, "Secret/") && strings.Contains(w.Message, "<masked ") && !strings.Contains(w.Message, spoilt[:len("gitgate")])
					if !ok || w.Pass || !strings.Contains(w.Message, "differs from") || !shown {
						t.Errorf("%s/%s on %s was compared with %v, yet with a value changed there: %+v", r.Policy, r.Rule, r.Resource, r.Compared, w)
					}
				}
				if comparedRows == 0 {
					t.Fatalf("the suite names expected objects (%s), yet no row compared one", strings.Join(expected, ", "))
				}
			})
		})
	}
	if kinds["mutate"] < 10 || kinds["generate"] < 5 || kinds["delete"] < 8 {
		t.Errorf("only %v suites listed", kinds)
	}
}

// TestKyvernoCLIUnsupportedSuites holds the suites gitgate cannot evaluate yet
// (policy/testdata/kyverno-cli-suites-unsupported.txt) to failing, with the reason:
// never a pass.
func TestKyvernoCLIUnsupportedSuites(t *testing.T) {
	root := kyvernoCLITests(t)
	n := 0
	for _, line := range suiteList(t, "testdata/kyverno-cli-suites-unsupported.txt") {
		parts := strings.Split(line, "|")
		if len(parts) != 3 {
			t.Fatalf("bad line %q: want PATH | TEXT | WHY", line)
		}
		file, text := strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1])
		n++
		t.Run(file, func(t *testing.T) {
			res := RunTests(context.Background(), os.DirFS(root), file, TestOptions{Display: file})
			if res.Tests == 0 {
				t.Fatal("no kyverno-test.yaml found")
			}
			found := false
			for _, err := range res.Errors {
				found = found || strings.Contains(err.Error(), text)
			}
			for _, r := range res.Rows {
				found = found || (!r.Pass && strings.Contains(r.Message, text))
			}
			if !found || (len(res.Errors) == 0 && res.Failed() == 0) {
				var got []string
				for _, r := range res.Rows {
					got = append(got, r.Resource+" pass="+map[bool]string{true: "yes", false: "no"}[r.Pass]+": "+r.Message)
				}
				t.Fatalf("no failure saying %q; rows: %q, errors: %v", text, got, res.Errors)
			}
		})
	}
	if n < 10 { // suites leave this list as gitgate learns to evaluate them
		t.Errorf("only %d suites listed", n)
	}
}

// TestKyvernoCLIEverySuiteListed: every kyverno-test.yaml of Kyverno's test/cli is in one
// of the four lists (a validation suite directory holds all below it), so a suite added
// by a Kyverno upgrade is a decision, not a silent gap.
func TestKyvernoCLIEverySuiteListed(t *testing.T) {
	root := kyvernoCLITests(t)
	var listed []string // paths of files, or directories holding files
	listed = append(listed, suiteList(t, "testdata/kyverno-cli-suites.txt")...)
	for _, line := range suiteList(t, "testdata/kyverno-cli-suites-mutate.txt") {
		_, file, _ := strings.Cut(line, " ")
		listed = append(listed, strings.TrimSpace(file))
	}
	for _, line := range suiteList(t, "testdata/kyverno-cli-suites-unsupported.txt") {
		file, _, _ := strings.Cut(line, "|")
		listed = append(listed, strings.TrimSpace(file))
	}
	listed = append(listed, suiteList(t, "testdata/kyverno-cli-suites-payload.txt")...) // payload_test.go
	n := 0
	err := fs.WalkDir(os.DirFS(root), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != TestFileName {
			return err
		}
		n++
		for _, l := range listed {
			if p == l || strings.HasPrefix(p, l+"/") {
				return nil
			}
		}
		t.Errorf("%s is in no list (testdata/kyverno-cli-suites*.txt)", p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 150 {
		t.Errorf("only %d kyverno-test.yaml found under %s", n, root)
	}
}

// overlayFS serves over's files instead of base's.
type overlayFS struct {
	base fs.FS
	over fstest.MapFS
}

func (o overlayFS) Open(name string) (fs.File, error) {
	if _, ok := o.over[name]; ok {
		return o.over.Open(name)
	}
	return o.base.Open(name)
}

// flipResults is the test file with every expected result changed: pass becomes
// fail, anything else pass.
func flipResults(t *testing.T, fsys fs.FS, file string) []byte {
	return editTests(t, fsys, file, func(res map[string]any) {
		if res["result"] == "pass" {
			res["result"] = "fail"
		} else {
			res["result"] = "pass"
		}
	})
}

// expectedObjectFiles are the patchedResources and generatedResource files the test's
// results name, as paths in fsys.
func expectedObjectFiles(t *testing.T, fsys fs.FS, file string) []string {
	seen := map[string]bool{}
	editTests(t, fsys, file, func(res map[string]any) {
		for _, k := range []string{"patchedResources", "generatedResource"} {
			if f, ok := res[k].(string); ok && f != "" {
				seen[path.Join(path.Dir(file), f)] = true
			}
		}
		if fs, ok := res["generatedResources"].([]any); ok {
			for _, f := range fs {
				seen[path.Join(path.Dir(file), f.(string))] = true
			}
		}
	})
	var out []string
	for f := range seen {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// editTests decodes every document of a kyverno-test.yaml, calls edit on each of its
// results and returns the documents encoded again.
func editTests(t *testing.T, fsys fs.FS, file string, edit func(map[string]any)) []byte {
	t.Helper()
	return editDocs(t, fsys, file, func(doc map[string]any) {
		results, _ := doc["results"].([]any)
		for _, r := range results {
			edit(r.(map[string]any))
		}
	})
}

const spoilt = "gitgate-wrong-expectation"

// spoilObjects changes one value of every object of a YAML file: the first string
// outside metadata (in key order), else it adds an annotation.
func spoilObjects(t *testing.T, fsys fs.FS, file string) []byte {
	return editDocs(t, fsys, file, func(doc map[string]any) {
		if !spoilFirstString(doc, true) {
			md, _ := doc["metadata"].(map[string]any)
			if md == nil {
				md = map[string]any{}
				doc["metadata"] = md
			}
			ann, _ := md["annotations"].(map[string]any)
			if ann == nil {
				ann = map[string]any{}
				md["annotations"] = ann
			}
			ann["gitgate.dev/wrong"] = spoilt
		}
	})
}

func spoilFirstString(v any, top bool) bool {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			if top && (k == "apiVersion" || k == "kind" || k == "metadata") {
				continue
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if s, ok := x[k].(string); ok {
				x[k] = s + "-" + spoilt
				return true
			}
			if spoilFirstString(x[k], false) {
				return true
			}
		}
	case []any:
		for i, e := range x {
			if s, ok := e.(string); ok {
				x[i] = s + "-" + spoilt
				return true
			}
			if spoilFirstString(e, false) {
				return true
			}
		}
	}
	return false
}

func editDocs(t *testing.T, fsys fs.FS, file string, edit func(map[string]any)) []byte {
	t.Helper()
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	err = eachDocument(file, data, func(_ *yaml3.Node, v any) error {
		doc, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		edit(doc)
		out, err := yaml3.Marshal(doc)
		if err != nil {
			return err
		}
		b.WriteString("---\n")
		b.Write(out)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return []byte(b.String())
}
