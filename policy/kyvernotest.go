package policy

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/apis/v1alpha1"
	"sigs.k8s.io/yaml"
)

// TestFileName is the name of a Kyverno CLI test manifest.
const TestFileName = "kyverno-test.yaml"

// TestRow is one expectation of a Kyverno test: policy/rule on a resource.
type TestRow struct {
	Test     string `json:"test"` // the kyverno-test.yaml, as shown
	Name     string `json:"name,omitempty"`
	Policy   string `json:"policy"`
	Rule     string `json:"rule,omitempty"`
	Resource string `json:"resource"`
	Expected Status `json:"expected"`
	Actual   Status `json:"actual"`
	Pass     bool   `json:"pass"`
	Message  string `json:"message,omitempty"`
}

// TestOutcome is the result of running Kyverno test manifests.
type TestOutcome struct {
	Rows []TestRow
	// Errors are tests that could not run: unreadable manifests, policies that do not
	// load, missing files.
	Errors []error
	// Tests counts the kyverno-test.yaml files found.
	Tests int
}

// Failed counts the rows whose actual result differs from the expected one.
func (o *TestOutcome) Failed() int {
	n := 0
	for _, r := range o.Rows {
		if !r.Pass {
			n++
		}
	}
	return n
}

// TestOptions configure RunTests.
type TestOptions struct {
	// Variables are added to every rule's context, as for a check.
	Variables map[string]any
	// Display is prepended to paths in rows and errors (the directory the user named).
	Display string
}

// RunTests finds every kyverno-test.yaml under root in fsys and runs it as Kyverno's
// `kyverno test` does for validation policies: each listed resource is evaluated by the
// listed policies with the test's values, exceptions and user info, and every expected
// result is compared with the actual one. Rule names match as Kyverno's CLI matches them
// (the rule, or its autogen- and autogen-cronjob- variants).
func RunTests(ctx context.Context, fsys fs.FS, root string, opts TestOptions) *TestOutcome {
	out := &TestOutcome{}
	show := func(p string) string {
		if opts.Display == "" {
			return p
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		return path.Join(opts.Display, rel)
	}
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			out.Errors = append(out.Errors, &InputError{Origin: Origin{File: show(p)}, Err: unwrapPathErr(err)})
			return nil
		}
		if d.IsDir() && p != root && strings.HasPrefix(d.Name(), ".") {
			return fs.SkipDir
		}
		if d.IsDir() || d.Name() != TestFileName {
			return nil
		}
		out.Tests++
		rows, err := runTest(ctx, fsys, p, show, opts)
		out.Rows = append(out.Rows, rows...)
		if err != nil {
			out.Errors = append(out.Errors, err)
		}
		return nil
	})
	if err != nil {
		out.Errors = append(out.Errors, err)
	}
	return out
}

func runTest(ctx context.Context, fsys fs.FS, file string, show func(string) string, opts TestOptions) ([]TestRow, error) {
	shown := show(file)
	fail := func(err error) error { return &InputError{Origin: Origin{File: shown}, Err: err} }
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, fail(unwrapPathErr(err))
	}
	var t v1alpha1.Test
	if err := yaml.Unmarshal(data, &t); err != nil {
		return nil, fail(fmt.Errorf("not a Kyverno test manifest: %w", err))
	}
	dir := path.Dir(file)
	rel := func(p string) (string, error) {
		if strings.Contains(p, "://") {
			return "", fmt.Errorf("%s: remote files are not fetched offline", p)
		}
		return path.Clean(path.Join(dir, p)), nil
	}
	var paths []string
	for _, p := range append(append([]string{}, t.Policies...), t.PolicyExceptions...) {
		rp, err := rel(p)
		if err != nil {
			return nil, fail(err)
		}
		paths = append(paths, rp)
	}
	set, err := Load(fsys, paths...)
	if err != nil {
		return nil, fail(fmt.Errorf("policies do not load: %w", err))
	}
	var resources []Resource
	for _, p := range t.Resources {
		rp, err := rel(p)
		if err != nil {
			return nil, fail(err)
		}
		b, err := fs.ReadFile(fsys, rp)
		if err != nil {
			return nil, fail(fmt.Errorf("resources: %w", unwrapPathErr(err)))
		}
		rs, err := Decode(show(rp), b)
		if err != nil {
			return nil, err
		}
		resources = append(resources, rs...)
	}
	values := t.Values
	if t.Variables != "" {
		rp, err := rel(t.Variables)
		if err != nil {
			return nil, fail(err)
		}
		if values, err = LoadValues(fsys, rp); err != nil {
			return nil, fail(err)
		}
	}
	var req Request
	if t.UserInfo != "" {
		rp, err := rel(t.UserInfo)
		if err != nil {
			return nil, fail(err)
		}
		b, err := fs.ReadFile(fsys, rp)
		if err != nil {
			return nil, fail(fmt.Errorf("userinfo: %w", unwrapPathErr(err)))
		}
		var ui v1alpha1.UserInfo
		if err := yaml.Unmarshal(b, &ui); err != nil {
			return nil, fail(fmt.Errorf("userinfo %s: %w", t.UserInfo, err))
		}
		req.UserInfo = &ui.RequestInfo
	}
	if values != nil {
		if op, ok := values.GlobalValues["request.operation"].(string); ok {
			req.Operation = op
		}
	}
	eng, err := NewEngine(set, Options{Values: values, Variables: opts.Variables})
	if err != nil {
		return nil, fail(err)
	}
	type evaluated struct {
		r       Resource
		results []Result
	}
	var all []evaluated
	for _, r := range resources {
		all = append(all, evaluated{r, eng.Evaluate(ctx, r, req)})
	}
	name := t.Name
	if name == "" {
		name = t.GetName()
	}
	var rows []TestRow
	for _, exp := range t.Results {
		want := Status(exp.Result)
		names := append([]string{}, exp.Resources...)
		for _, spec := range exp.ResourceSpecs {
			names = append(names, spec.Namespace+"/"+spec.Name)
		}
		for _, resName := range names {
			found := false
			for _, ev := range all {
				// As in Kyverno's CLI, resources are matched by [namespace/]name; the
				// expected kind is informational.
				if !resourceNamed(ev.r, resName) {
					continue
				}
				found = true
				row := TestRow{Test: shown, Name: name, Policy: exp.Policy, Rule: exp.Rule, Resource: ev.r.ID(), Expected: want}
				matched := matchingResults(ev.results, exp.Policy, exp.Rule)
				if len(matched) == 0 {
					// Kyverno's CLI counts a rule that did not apply to the resource as
					// excluded, which passes whatever was expected.
					row.Actual, row.Pass, row.Message = StatusSkip, true, "excluded: the rule does not apply to this resource"
					rows = append(rows, row)
					continue
				}
				for _, m := range matched {
					rr := row
					rr.Rule = m.Rule
					rr.Actual = m.Status
					rr.Pass = m.Status == want
					rr.Message = CleanMessage(m.Message)
					rows = append(rows, rr)
				}
			}
			if !found {
				rows = append(rows, TestRow{Test: shown, Name: name, Policy: exp.Policy, Rule: exp.Rule, Resource: resName, Expected: want,
					Message: fmt.Sprintf("resource %q not found in the test's resources", resName)})
			}
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Policy < rows[j].Policy })
	return rows, nil
}

func resourceNamed(r Resource, name string) bool {
	if ns, n, ok := strings.Cut(name, "/"); ok {
		return r.Object.GetNamespace() == ns && r.Object.GetName() == n
	}
	return r.Object.GetName() == name
}

func matchingResults(results []Result, policy, rule string) []Result {
	if i := strings.LastIndex(policy, "/"); i >= 0 {
		policy = policy[i+1:]
	}
	var out []Result
	for _, r := range results {
		if r.Policy != policy {
			continue
		}
		if rule != "" && r.Rule != rule && r.Rule != "autogen-"+rule && r.Rule != "autogen-cronjob-"+rule {
			continue
		}
		out = append(out, r)
	}
	return out
}
