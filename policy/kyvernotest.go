package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/gitgate/gitgate/internal/repopath"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/apis/v1alpha1"
	yaml3 "go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"
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
	// Tests counts the tests run (a kyverno-test.yaml may hold several documents).
	Tests int
	// Warnings are notices from loading the tests' policies (kinds gitgate skips).
	Warnings []string
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
		rel := p
		if root != "." {
			rel = strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		}
		return path.Join(opts.Display, rel)
	}
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			out.Errors = append(out.Errors, &InputError{Origin: Origin{File: show(p)}, Err: unwrapPathErr(err)})
			return nil
		}
		if d.IsDir() && p != root && d.Name() == ".git" {
			return fs.SkipDir // hidden test directories (.kyverno-test) are tests too
		}
		if d.IsDir() || d.Name() != TestFileName {
			return nil
		}
		tests, err := readTests(fsys, p)
		if err != nil {
			out.Errors = append(out.Errors, &InputError{Origin: Origin{File: show(p)}, Err: err})
			return nil
		}
		for _, t := range tests {
			out.Tests++
			rows, warnings, err := runTest(ctx, fsys, p, t, show, opts)
			out.Rows = append(out.Rows, rows...)
			out.Warnings = append(out.Warnings, warnings...)
			if err != nil {
				out.Errors = append(out.Errors, err)
			}
		}
		return nil
	})
	if err != nil {
		out.Errors = append(out.Errors, err)
	}
	return out
}

// readTests reads every document of a kyverno-test.yaml as a Test.
func readTests(fsys fs.FS, file string) ([]v1alpha1.Test, error) {
	data, err := ReadFileLimit(fsys, file, 0)
	if err != nil {
		return nil, unwrapPathErr(err)
	}
	var out []v1alpha1.Test
	err = eachDocument(file, data, func(_ *yaml3.Node, v any) error {
		if v == nil {
			return nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var t v1alpha1.Test
		if err := json.Unmarshal(b, &t); err != nil {
			return fmt.Errorf("not a Kyverno test manifest: %w", err)
		}
		out = append(out, t)
		return nil
	})
	return out, err
}

func runTest(ctx context.Context, fsys fs.FS, file string, t v1alpha1.Test, show func(string) string, opts TestOptions) ([]TestRow, []string, error) {
	shown := show(file)
	fail := func(err error) ([]TestRow, []string, error) {
		return nil, nil, &InputError{Origin: Origin{File: shown}, Err: err}
	}
	dir := path.Dir(file)
	rel := func(p string) (string, error) {
		if strings.Contains(p, "://") {
			return "", fmt.Errorf("%s: remote files are not fetched offline", p)
		}
		if path.IsAbs(p) {
			return "", &repopath.EscapeError{Path: p, Reason: repopath.Absolute}
		}
		// Relative to the test's directory, inside the filesystem the tests were found
		// in (a confined one refuses symbolic links out as well).
		c, err := repopath.Clean(path.Join(dir, p))
		if err != nil {
			return "", &repopath.EscapeError{Path: p, Reason: repopath.Parent}
		}
		return c, nil
	}
	var paths []string
	for _, p := range append(append([]string{}, t.Policies...), t.PolicyExceptions...) {
		rp, err := rel(p)
		if err != nil {
			return fail(err)
		}
		paths = append(paths, rp)
	}
	set, err := Load(fsys, paths...)
	if err != nil {
		return fail(fmt.Errorf("policies do not load: %w", err))
	}
	var resources []Resource
	for _, p := range t.Resources {
		rp, err := rel(p)
		if err != nil {
			return fail(err)
		}
		b, err := ReadFileLimit(fsys, rp, 0)
		if err != nil {
			return fail(fmt.Errorf("resources: %s: %w", rp, unwrapPathErr(err)))
		}
		rs, err := Decode(show(rp), b)
		if err != nil {
			return nil, nil, err
		}
		for _, r := range rs {
			// As Kyverno's CLI loads test resources: namespaced objects without a
			// namespace land in "default", and every number is a float64.
			if r.Object.GetNamespace() == "" && !ClusterScoped(r.Object.GetKind()) {
				r.Object.SetNamespace("default")
			}
			r.Object.Object = toFloat(r.Object.Object).(map[string]any)
		}
		resources = append(resources, rs...)
	}
	values := t.Values
	if t.Variables != "" {
		rp, err := rel(t.Variables)
		if err != nil {
			return fail(err)
		}
		if values, err = LoadValues(fsys, rp); err != nil {
			return fail(err)
		}
	}
	var req Request
	if t.UserInfo != "" {
		rp, err := rel(t.UserInfo)
		if err != nil {
			return fail(err)
		}
		b, err := ReadFileLimit(fsys, rp, 0)
		if err != nil {
			return fail(fmt.Errorf("userinfo: %w", unwrapPathErr(err)))
		}
		var ui v1alpha1.UserInfo
		if err := sigsyaml.Unmarshal(b, &ui); err != nil {
			return fail(fmt.Errorf("userinfo %s: %w", t.UserInfo, err))
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
		return fail(err)
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
	unscored := map[string]bool{}
	known := map[string]bool{}
	for _, p := range set.Policies {
		known[p.GetName()] = true
		unscored[p.GetName()] = p.GetAnnotations()[annotationScored] == "false"
	}
	for _, p := range set.ValidatingPolicies {
		known[p.GetName()] = true
		unscored[p.GetName()] = p.GetAnnotations()[annotationScored] == "false"
	}
	var rows []TestRow
	for _, exp := range t.Results {
		want := Status(exp.Result)
		policyName := exp.Policy[strings.LastIndex(exp.Policy, "/")+1:]
		if !known[policyName] {
			rows = append(rows, TestRow{Test: shown, Name: name, Policy: exp.Policy, Rule: exp.Rule, Resource: strings.Join(exp.Resources, ","), Expected: want,
				Message: "policy not found among the test's policies, or of a kind gitgate does not evaluate"})
			continue
		}
		names := append([]string{}, exp.Resources...)
		for _, spec := range exp.ResourceSpecs {
			names = append(names, spec.Namespace+"/"+spec.Name)
		}
		if len(names) == 0 { // no resources named: every resource, as Kyverno's CLI does
			for _, ev := range all {
				names = append(names, ev.r.Object.GetNamespace()+"/"+ev.r.Object.GetName())
			}
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
					if rr.Actual == StatusFail && unscored[m.Policy] {
						rr.Actual = StatusWarn // policies.kyverno.io/scored: "false" reports a failure as a warning
					}
					rr.Pass = rr.Actual == want
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
	return rows, set.Warnings, nil
}

const annotationScored = "policies.kyverno.io/scored"

// toFloat turns every number into a float64, as Kyverno's CLI does with test resources.
func toFloat(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = toFloat(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = toFloat(e)
		}
		return x
	case int64:
		return float64(x)
	}
	return v
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
