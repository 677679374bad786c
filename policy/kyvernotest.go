package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/gitgate/gitgate/internal/repopath"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/apis/v1alpha1"
	"github.com/kyverno/kyverno/pkg/cel/libs"
	yaml3 "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
	// Compared are the expected objects (patchedResources, generatedResource) the row
	// was compared with, as file:line.
	Compared []string `json:"compared,omitempty"`
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
	base, display := root, opts.Display
	if st, err := fs.Stat(fsys, root); err == nil && !st.IsDir() {
		// gitgate test path/to/kyverno-test.yaml: its files are shown beside it.
		base, display = path.Dir(root), path.Dir(opts.Display)
	}
	show := func(p string) string {
		if opts.Display == "" {
			return p
		}
		rel := p
		if base != "." {
			rel = strings.TrimPrefix(strings.TrimPrefix(p, base), "/")
		}
		return path.Join(display, rel)
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
		tests, err := readTests(fsys, p, show(p))
		if err != nil {
			out.Errors = append(out.Errors, err)
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

// readTests reads every document of a kyverno-test.yaml as a Test, strictly: a field
// the Test schema (Kyverno's cli.kyverno.io/v1alpha1 Test) does not have is an error at
// its file:line, as `kyverno test` refuses it (it decodes with UnmarshalStrict).
func readTests(fsys fs.FS, file, shown string) ([]v1alpha1.Test, error) {
	data, err := ReadFileLimit(fsys, file, 0)
	if err != nil {
		return nil, unwrapPathErr(err)
	}
	var out []v1alpha1.Test
	err = eachDocument(shown, data, func(root *yaml3.Node, v any) error {
		if v == nil {
			return nil
		}
		var t v1alpha1.Test
		if err := decodeStrict(shown, root, v, &t, "Kyverno test manifest (cli.kyverno.io/v1alpha1 Test)"); err != nil {
			return err
		}
		out = append(out, t)
		return nil
	})
	return out, err
}

// decodeStrict decodes v (the document root parsed from file) into into, refusing
// any field into's type does not have with the field's file:line and path. what names
// the schema in errors.
func decodeStrict(file string, root *yaml3.Node, v any, into any, what string) error {
	if err := unknownFields(root, reflect.TypeOf(into), ""); err != nil {
		err.Origin.File = file
		err.Err = fmt.Errorf("%w: not a field of a %s; remove or correct it", err.Err, what)
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return &InputError{Origin: Origin{File: file, Line: root.Line}, Err: err}
	}
	if err := json.Unmarshal(b, into); err != nil {
		return &InputError{Origin: Origin{File: file, Line: root.Line}, Err: fmt.Errorf("not a %s: %w", what, err)}
	}
	return nil
}

var jsonUnmarshaler = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()

// unknownFields finds the first key of the YAML node n that the Go type t (decoded
// with encoding/json, as Kyverno's CLI decodes tests) does not have.
func unknownFields(n *yaml3.Node, t reflect.Type, at string) *InputError {
	for n != nil && n.Kind == yaml3.AliasNode {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n == nil || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(jsonUnmarshaler) || t.Implements(jsonUnmarshaler) {
		return nil // any value, or a type that decodes itself (RawExtension, Quantity, Time)
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml3.MappingNode {
			return nil // a type error, which decoding reports
		}
		fields := map[string]reflect.Type{}
		schemaFields(t, fields)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" {
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				for name, f := range fields { // encoding/json matches names case-insensitively
					if strings.EqualFold(name, k.Value) {
						ft, ok = f, true
						break
					}
				}
			}
			p := k.Value
			if at != "" {
				p = at + "." + k.Value
			}
			if !ok {
				return &InputError{Origin: Origin{Line: k.Line, Col: k.Column}, Err: fmt.Errorf("unknown field %q", p)}
			}
			if err := unknownFields(v, ft, p); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml3.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if at != "" {
				p = at + "." + p
			}
			if err := unknownFields(n.Content[i+1], t.Elem(), p); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml3.SequenceNode {
			return nil
		}
		for i, e := range n.Content {
			if err := unknownFields(e, t.Elem(), fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// schemaFields collects the JSON field names of struct type t, with embedded structs
// without a name (",inline") flattened as encoding/json does.
func schemaFields(t reflect.Type, out map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		if f.Anonymous && name == "" {
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				schemaFields(ft, out)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := out[name]; !dup {
			out[name] = f.Type
		}
	}
}

// readStrict reads a values or user info file of a test strictly into into.
func readStrict(fsys fs.FS, file, shown string, into any, what string) error {
	data, err := ReadFileLimit(fsys, file, 0)
	if err != nil {
		return &InputError{Origin: Origin{File: shown}, Err: unwrapPathErr(err)}
	}
	n := 0
	err = eachDocument(shown, data, func(root *yaml3.Node, v any) error {
		if n++; n > 1 {
			return &InputError{Origin: Origin{File: shown, Line: root.Line}, Err: fmt.Errorf("a %s is one document", what)}
		}
		if v == nil {
			return nil
		}
		return decodeStrict(shown, root, v, into, what)
	})
	return err
}

func runTest(ctx context.Context, fsys fs.FS, file string, t v1alpha1.Test, show func(string) string, opts TestOptions) ([]TestRow, []string, error) {
	shown := show(file)
	fail := func(err error) ([]TestRow, []string, error) {
		return nil, nil, &InputError{Origin: Origin{File: shown}, Err: err}
	}
	// failInput keeps an error that already names its file and line.
	failInput := func(err error) ([]TestRow, []string, error) {
		if ie := (*InputError)(nil); errors.As(err, &ie) {
			return nil, nil, err
		}
		return fail(err)
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
	resources, err := readTestObjects(fsys, "resources", t.Resources, rel, show)
	if err != nil {
		return failInput(err)
	}
	loadAsKyvernoCLI(resources)
	// targetResources: the objects mutateExisting rules and MutatingPolicies patch
	// (mutateexisting.go).
	targets, err := readTestObjects(fsys, "targetResources", t.TargetResources, rel, show)
	if err != nil {
		return failInput(err)
	}
	loadAsKyvernoCLI(targets)
	// paramResources: the objects a ValidatingAdmissionPolicyBinding's paramRef selects;
	// kyverno test takes params from there only, not from the policy files.
	params, err := readTestObjects(fsys, "paramResources", t.ParamResources, rel, show)
	if err != nil {
		return failInput(err)
	}
	set.Params = nil
	for _, r := range params {
		set.Params = append(set.Params, r.Object)
	}
	values := t.Values
	if t.Variables != "" {
		rp, err := rel(t.Variables)
		if err != nil {
			return fail(err)
		}
		var v v1alpha1.Values
		if err := readStrict(fsys, rp, show(rp), &v, "Kyverno values file (cli.kyverno.io/v1alpha1 Values)"); err != nil {
			return nil, nil, err
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
		var ui v1alpha1.UserInfo
		if err := readStrict(fsys, rp, show(rp), &ui, "Kyverno user info file (cli.kyverno.io/v1alpha1 UserInfo)"); err != nil {
			return nil, nil, err
		}
		req.UserInfo = &ui.RequestInfo
	}
	if values != nil {
		if op, ok := values.GlobalValues["request.operation"].(string); ok {
			req.Operation = op
		}
	}
	data, err := loadTestData(fsys, t, rel, show, append(append([]Resource{}, resources...), targets...))
	if err != nil {
		var ie *InputError
		if errors.As(err, &ie) {
			return nil, nil, err
		}
		return fail(err)
	}
	engOpts := Options{Values: values, Variables: opts.Variables, test: data}
	var fromFile *libs.FakeContextProvider
	if t.Context != "" {
		rp, err := rel(t.Context)
		if err != nil {
			return fail(err)
		}
		if fromFile, err = loadTestContext(fsys, rp, show(rp)); err != nil {
			return nil, nil, err
		}
	}
	engOpts.celContext = data.celContext(fromFile)
	eng, err := NewEngine(set, engOpts)
	if err != nil {
		return fail(err)
	}
	if err := enableTestMutateExisting(eng, data, resources, targets); err != nil {
		return fail(err)
	}
	// ValidatingPolicies of JSON, HTTP and Envoy payloads, on the test's payloads (payloadrun.go).
	payloads, err := newPayloadRun(fsys, t, set, eng, engOpts.celContext, data, rel, show, resources)
	if err != nil {
		var ie *InputError
		if errors.As(err, &ie) {
			return nil, nil, err
		}
		return fail(err)
	}
	// With clusterResources, the CLI reads each resource's namespace from the cluster
	// (unless the values file gives its labels): its labels are the namespace labels,
	// and a namespace that is not there fails the test.
	requests := map[string]Request{}
	if data.cluster != nil {
		for _, r := range resources {
			ns := r.Object.GetNamespace()
			if ns == "" || r.Object.GetKind() == "Namespace" || len(selectorLabels(values, ns)) > 0 {
				continue
			}
			nsLabels, err := data.cluster.namespaceLabels(ctx, r)
			if err != nil {
				return fail(err)
			}
			rq := req
			rq.NamespaceLabels = nsLabels
			if rq.NamespaceLabels == nil {
				rq.NamespaceLabels = map[string]string{}
			}
			requests[r.ID()] = rq
		}
	}
	requestFor := func(r Resource) Request {
		if rq, ok := requests[r.ID()]; ok {
			return rq
		}
		return req
	}
	// Each operation the test asks for (the values file's, and any a result names) is
	// one evaluation of every resource, as Kyverno's CLI runs one per operation.
	// A result without its own operation takes, resource by resource, the one the values
	// file gives that policy and resource, else the global one (Kyverno's CLI,
	// variables.ComputeVariables): such runs are per policy.
	resourceOp := func(policy string, r Resource) (string, bool) {
		if values == nil {
			return "", false
		}
		for _, p := range values.Policies {
			if p.Name != policy {
				continue
			}
			for _, vr := range p.Resources {
				if o, ok := vr.Values["request.operation"].(string); ok && vr.Name == r.Object.GetName() {
					return strings.ToUpper(o), true
				}
			}
		}
		return "", false
	}
	runs := map[string][]evaluated{}
	evaluate := func(op, policy string, explicit bool) []evaluated {
		key := op
		if !explicit {
			for _, r := range resources {
				if _, ok := resourceOp(policy, r); ok {
					key = op + "|" + policy
					break
				}
			}
		}
		if all, ok := runs[key]; ok {
			return all
		}
		var all []evaluated
		for _, r := range resources {
			rop := op
			if o, ok := resourceOp(policy, r); ok && !explicit {
				rop = o
			}
			all = append(all, eng.testEvaluate(ctx, r, requestFor(r), rop))
		}
		runs[key] = all
		return all
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
	for _, p := range set.MutatingPolicies {
		known[p.GetName()] = true
	}
	for _, p := range set.ValidatingAdmissionPolicies {
		known[p.GetName()] = true
	}
	for _, p := range set.MutatingAdmissionPolicies {
		known[p.GetName()] = true
	}
	for _, p := range set.GeneratingPolicies {
		known[p.GetName()] = true
	}
	cmp := &comparer{fsys: fsys, show: show, rel: rel, files: map[string][]Resource{}}
	// Generate rules run on the object as mutated, with the expectation's
	// cloneSourceResource as what the cluster holds: once per operation, resource and
	// source file.
	gensDone := map[string][]Generated{}
	generated := func(op string, ev evaluated, cloneSource string) ([]Generated, error) {
		key := op + "\x00" + ev.r.ID() + "\x00" + cloneSource
		if g, ok := gensDone[key]; ok {
			return g, nil
		}
		var existing []*unstructured.Unstructured
		if cloneSource != "" {
			rs, _, err := cmp.load(cloneSource)
			if err != nil {
				return nil, fmt.Errorf("cloneSourceResource: %w", err)
			}
			for _, r := range rs {
				existing = append(existing, r.Object)
			}
		}
		req := requestFor(ev.r)
		req.Operation = op
		vr := ev.r
		vr.Object = ev.patched
		g, err := eng.Generate(ctx, vr, req, existing)
		if err != nil {
			return nil, err
		}
		gensDone[key] = g
		return g, nil
	}
	var rows []TestRow
	var dpolTargets []dpolTarget // the test's resources and JSON payloads, read on first use
	for _, exp := range t.Results {
		want := Status(exp.Result)
		policyName := exp.Policy[strings.LastIndex(exp.Policy, "/")+1:]
		if _, ok := payloads.policies[policyName]; ok && !known[policyName] {
			rows = append(rows, payloads.rows(ctx, exp, TestRow{Test: shown, Name: name, Policy: exp.Policy, Rule: exp.Rule, Expected: want}, unscoredPayload(payloads.policies[policyName]), rel)...)
			continue
		}
		if exp.IsDeletingPolicy && exp.Operation != "" { // as Kyverno's CLI
			return fail(fmt.Errorf("result for policy %s: operation is not supported for deleting policies", exp.Policy))
		}
		if p, ok := eng.deletingPolicy(policyName); ok && !known[policyName] { // dpol.go
			if dpolTargets == nil {
				if dpolTargets, err = testDeletingTargets(resources, payloads.files[ModeJSON]); err != nil {
					return fail(err)
				}
			}
			names := append([]string{}, exp.Resources...)
			for _, spec := range exp.ResourceSpecs {
				names = append(names, spec.Namespace+"/"+spec.Name)
			}
			base := TestRow{Test: shown, Name: name, Policy: exp.Policy, Rule: exp.Rule, Resource: strings.Join(names, ","), Expected: want}
			rows = append(rows, eng.deletingRows(ctx, p, base, want, names, dpolTargets, valuesNamespace(values))...)
			continue
		}
		if !known[policyName] {
			rows = append(rows, TestRow{Test: shown, Name: name, Policy: exp.Policy, Rule: exp.Rule, Resource: strings.Join(exp.Resources, ","), Expected: want,
				Message: "policy not found among the test's policies, or of a kind gitgate does not evaluate"})
			continue
		}
		op := req.Operation
		if exp.Operation != "" {
			switch strings.ToUpper(exp.Operation) {
			case "CREATE", "UPDATE", "DELETE":
				op = strings.ToUpper(exp.Operation)
			default:
				return fail(fmt.Errorf("result for policy %s: invalid operation %q, must be one of CREATE, UPDATE, DELETE", exp.Policy, exp.Operation))
			}
		}
		all := evaluate(op, exp.Policy, exp.Operation != "")
		names := append([]string{}, exp.Resources...)
		for _, spec := range exp.ResourceSpecs {
			names = append(names, spec.Namespace+"/"+spec.Name)
		}
		if len(names) == 0 { // no resources named: every resource, as Kyverno's CLI does
			for _, ev := range all {
				names = append(names, ev.r.Object.GetNamespace()+"/"+ev.r.Object.GetName())
			}
			// and every target the expectation's policy patched
			names = append(names, targetNames(all, targets, exp.Policy, exp.Rule)...)
		}
		if len(names) == 0 {
			// Nothing to evaluate the expectation on: never a silent pass.
			rows = append(rows, TestRow{Test: shown, Name: name, Policy: exp.Policy, Rule: exp.Rule, Expected: want, Message: "the test has no resources to evaluate this expectation on"})
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
				matched := matchingResults(ev.all(), exp.Policy, exp.Rule)
				var gens []Generated
				if eng.policyHasGenerate(policyName) {
					var err error
					if gens, err = generated(op, ev, exp.CloneSourceResource); err != nil {
						row.Actual, row.Message = StatusError, err.Error()
						rows = append(rows, row)
						continue
					}
					// A copy: gens is shared by every expectation on this resource.
					gens = slices.DeleteFunc(slices.Clone(gens), func(g Generated) bool { return !ruleMatches(g.Result, exp.Policy, exp.Rule) })
				}
				if len(matched) == 0 && len(gens) == 0 {
					if why := eng.notEvaluatedRule(policyName, exp.Rule); why != "" {
						row.Actual, row.Message = StatusError, notEvaluatedPrefix+why
						rows = append(rows, row)
						continue
					}
					// Kyverno's CLI counts a rule that did not apply to the resource as
					// excluded, which passes whatever was expected. It compares no object
					// then; gitgate does: the object must equal the expected patched one
					// (nothing was mutated by this rule), and nothing was generated.
					row.Actual, row.Pass, row.Message = StatusSkip, true, "excluded: the rule does not apply to this resource"
					if exp.PatchedResources != "" {
						// An expected object for this resource claims a mutation; none in
						// the file (a resource of the same name the rule does not select)
						// claims nothing.
						if want, _, err := cmp.find(exp.PatchedResources, ev.patched); err != nil || want != nil {
							if row = compareRow(row, cmp, exp.PatchedResources, "patchedResources", ev.patched); !row.Pass {
								row.Message = "excluded: the rule does not apply to this resource, yet " + row.Message
							}
						}
					}
					if exp.GeneratedResource != "" || len(exp.GeneratedResources) > 0 {
						row.Pass, row.Message = false, "excluded: the rule does not apply to this resource, so it generates nothing to compare with the expected generated object"
					}
					rows = append(rows, row)
					continue
				}
				status := func(m Result) TestRow {
					rr := row
					rr.Rule = m.Rule
					rr.Actual = m.Status
					if rr.Actual == StatusFail && unscored[m.Policy] {
						rr.Actual = StatusWarn // policies.kyverno.io/scored: "false" reports a failure as a warning
					}
					rr.Pass = rr.Actual == want && !strings.HasPrefix(m.Message, notEvaluatedPrefix)
					rr.Message = CleanMessage(m.Message)
					return rr
				}
				for _, m := range matched {
					rr := status(m.Result)
					evaluated := !strings.HasPrefix(m.Message, notEvaluatedPrefix)
					// As Kyverno's CLI, the objects are compared first: a difference is the
					// row's message even when the status differs too.
					if evaluated && exp.PatchedResources != "" {
						// As Kyverno's CLI: a mutate rule's row compares the object its
						// policy produced, any other row the object that was validated.
						rr = compareRow(rr, cmp, exp.PatchedResources, "patchedResources", m.object)
					}
					if evaluated && (exp.GeneratedResource != "" || len(exp.GeneratedResources) > 0) {
						rr.Pass, rr.Message = false, fmt.Sprintf("a generatedResource is expected, but rule %s is not a generate rule", m.Rule)
					}
					rows = append(rows, rr)
				}
				for _, g := range gens {
					rr := status(g.Result)
					if len(g.Objects) == 0 {
						// Kyverno's CLI: a generate rule that created nothing (an error,
						// an exception) is compared by its status only; expecting an
						// object that was not generated fails here.
						if rr.Actual == StatusPass && (exp.GeneratedResource != "" || len(exp.GeneratedResources) > 0) {
							rr.Pass, rr.Message = false, "the rule applied but generated nothing to compare with the generatedResource"
						}
						rows = append(rows, rr)
						continue
					}
					for _, obj := range g.Objects {
						ro := rr
						ro.Resource = FormatID(obj.GetKind(), obj.GetNamespace(), obj.GetName())
						if exp.PatchedResources != "" {
							ro = compareRow(ro, cmp, exp.PatchedResources, "patchedResources", obj)
						}
						switch {
						case len(exp.GeneratedResources) > 0:
							ro = compareAny(ro, cmp, exp.GeneratedResources, obj)
						case exp.GeneratedResource != "":
							ro = compareRow(ro, cmp, exp.GeneratedResource, "generatedResource", obj)
						}
						rows = append(rows, ro)
					}
				}
			}
			if trs, ok := targetRows(all, targets, exp, resName, TestRow{Test: shown, Name: name, Policy: exp.Policy, Rule: exp.Rule, Expected: want}, cmp); ok {
				found = true
				rows = append(rows, trs...)
			}
			if !found {
				rows = append(rows, TestRow{Test: shown, Name: name, Policy: exp.Policy, Rule: exp.Rule, Resource: resName, Expected: want,
					Message: fmt.Sprintf("resource %q not found in the test's resources", resName)})
			}
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Policy < rows[j].Policy })
	return rows, payloadTestWarnings(set), nil
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

// ruleMatches reports whether r is a result of the expectation's policy and rule: the
// rule, or its autogen- and autogen-cronjob- variants, any rule when none is named.
func ruleMatches(r Result, policy, rule string) bool {
	if i := strings.LastIndex(policy, "/"); i >= 0 {
		policy = policy[i+1:]
	}
	if r.Policy != policy {
		return false
	}
	return rule == "" || r.Rule == rule || r.Rule == "autogen-"+rule || r.Rule == "autogen-cronjob-"+rule
}

func matchingResults(results []testResult, policy, rule string) []testResult {
	var out []testResult
	for _, r := range results {
		if ruleMatches(r.Result, policy, rule) {
			out = append(out, r)
		}
	}
	return out
}

// testResult is a rule's result in a test run with the object a patchedResources
// expectation compares: for a mutate rule the object its policy produced, for any
// other the object that was validated (mutated first, as Kyverno's CLI does).
type testResult struct {
	Result
	object *unstructured.Unstructured
}

// evaluated is one resource of a test run: its mutate rules' results, then its
// validation results on the mutated object.
type evaluated struct {
	r                  Resource
	patched            *unstructured.Unstructured // r's object after mutation
	mutated, validated []testResult
	// targets are the mutateExisting results about other objects than r, for r as
	// their trigger (mutateexisting.go).
	targets []testResult
}

func (ev evaluated) all() []testResult {
	return append(append([]testResult{}, ev.mutated...), ev.validated...)
}

// testEvaluate runs one resource of a test as Kyverno's CLI does: mutate rules policy
// after policy, then validation of the mutated object. An UPDATE has the resource as
// its old object too (Kyverno's CLI: "both object and oldObject are set to the
// resource"); a DELETE has it as the old object.
func (e *Engine) testEvaluate(ctx context.Context, r Resource, base Request, op string) evaluated {
	req := base
	req.Operation = op
	ev := evaluated{r: r}
	if strings.EqualFold(op, "UPDATE") && req.OldObject == nil {
		req.OldObject = r.Object.DeepCopy() // its own copy: values may set request.oldObject fields
	}
	steps, patched, err := e.mutateSteps(ctx, r, req)
	if err != nil {
		for i := range e.policies {
			if cp := &e.policies[i]; cp.policy.GetSpec().HasMutate() {
				ev.mutated = append(ev.mutated, testResult{e.result(r, cp, "", StatusError, err.Error(), ""), r.Object})
			}
		}
		patched = r.Object
	}
	for _, s := range steps {
		for _, res := range MaskResults(s.results, r.Object.Object) {
			ev.mutated = append(ev.mutated, testResult{res, s.patched})
		}
		ev.targets = append(ev.targets, s.targets...)
	}
	ev.patched = patched
	ev.targets = append(ev.targets, e.mpolMutateExisting(ctx, patched, req)...)
	vr := r
	vr.Object = patched
	if strings.EqualFold(op, "UPDATE") && base.OldObject == nil {
		req.OldObject = patched.DeepCopy()
	}
	for _, res := range e.Evaluate(ctx, vr, req) {
		ev.validated = append(ev.validated, testResult{res, patched})
	}
	return ev
}

// notEvaluatedRule says why an expectation of the named policy and rule (any rule when
// empty) that has no result was not evaluated, or "" when it was (the rule did not
// apply, which Kyverno's CLI counts as excluded).
func (e *Engine) notEvaluatedRule(policy, rule string) string {
	for i := range e.policies {
		cp := &e.policies[i]
		if cp.policy.GetName() != policy {
			continue
		}
		found := false
		for _, r := range cp.policy.GetSpec().Rules {
			if rule != "" && r.Name != rule && r.Name != "autogen-"+rule && r.Name != "autogen-cronjob-"+rule {
				continue
			}
			found = true
			switch {
			case r.HasVerifyImages():
				return fmt.Sprintf("rule %s is a verifyImages rule; gitgate does not verify images (it needs the registry)", r.Name)
			case r.HasMutateExisting() && e.mutex == nil:
				return fmt.Sprintf("rule %s is a mutateExisting rule; gitgate does not apply them (they change other objects, from the cluster)", r.Name)
			}
		}
		if !found {
			return fmt.Sprintf("policy %s has no rule %q", policy, rule)
		}
		return ""
	}
	return ""
}

// compareRow fails row when obj differs from its expected object in file, and records
// which object it was compared with.
func compareRow(row TestRow, cmp *comparer, file, field string, obj *unstructured.Unstructured) TestRow {
	ok, msg, at, err := cmp.compare(file, field, obj)
	if at.File != "" {
		row.Compared = append(row.Compared, at.String())
	}
	switch {
	case err != nil:
		row.Pass, row.Message = false, err.Error()
	case !ok:
		row.Pass, row.Message = false, msg
	}
	return row
}

// compareAny passes row when obj equals its expected object in one of files (a
// result's generatedResources), as Kyverno's CLI; else the last difference fails it.
func compareAny(row TestRow, cmp *comparer, files []string, obj *unstructured.Unstructured) TestRow {
	last := row
	for _, f := range files {
		r := compareRow(row, cmp, f, "generatedResources", obj)
		if r.Pass {
			return r
		}
		last = r
	}
	return last
}

// policyHasGenerate reports whether the named ClusterPolicy or Policy has generate rules,
// or is a GeneratingPolicy.
func (e *Engine) policyHasGenerate(name string) bool {
	for i := range e.policies {
		if p := e.policies[i].policy; p.GetName() == name && p.GetSpec().HasGenerate() {
			return true
		}
	}
	for _, p := range e.gpol {
		if p.Policy.GetName() == name {
			return true
		}
	}
	return false
}

// comparer compares objects with the expected ones of a test's patchedResources (and
// generatedResource) files, as `kyverno test` does (cmd/cli/kubectl-kyverno/commands/
// test/compare.go): the expected object is the one of the file with the actual one's
// apiVersion, kind, namespace and name (a namespaced object without a namespace is in
// "default"); generate labels are tidied on both; empty maps, lists and nulls are
// dropped; the rest must be equal (a JSON merge patch from one to the other is empty).
type comparer struct {
	fsys  fs.FS
	show  func(string) string
	rel   func(string) (string, error)
	files map[string][]Resource
}

func (c *comparer) load(name string) ([]Resource, string, error) {
	rp, err := c.rel(name)
	if err != nil {
		return nil, name, err
	}
	if rs, ok := c.files[rp]; ok {
		return rs, c.show(rp), nil
	}
	b, err := ReadFileLimit(c.fsys, rp, 0)
	if err != nil {
		return nil, c.show(rp), &InputError{Origin: Origin{File: c.show(rp)}, Err: unwrapPathErr(err)}
	}
	rs, err := Decode(c.show(rp), b)
	if err != nil {
		return nil, c.show(rp), err
	}
	for _, r := range rs {
		if r.Object.GetNamespace() == "" && !ClusterScoped(r.Object.GetKind()) {
			r.Object.SetNamespace("default")
		}
	}
	c.files[rp] = rs
	return rs, c.show(rp), nil
}

// find returns the object of the file with actual's apiVersion, kind, namespace and
// name (nil when there is none) and the file as shown.
func (c *comparer) find(name string, actual *unstructured.Unstructured) (*Resource, string, error) {
	rs, shown, err := c.load(name)
	if err != nil {
		return nil, shown, err
	}
	for i := range rs {
		o := rs[i].Object
		if o.GetAPIVersion() == actual.GetAPIVersion() && o.GetKind() == actual.GetKind() && o.GetNamespace() == actual.GetNamespace() && o.GetName() == actual.GetName() {
			return &rs[i], shown, nil
		}
	}
	return nil, shown, nil
}

// compare reports whether actual equals its expected object in the file, and where
// that object is; when it is not there, the row fails (Kyverno's CLI silently drops the
// row unless failOnMissingResources is set; gitgate never passes what it did not
// compare).
func (c *comparer) compare(name, field string, actual *unstructured.Unstructured) (bool, string, Origin, error) {
	expected, shown, err := c.find(name, actual)
	if err != nil {
		return false, "", Origin{}, fmt.Errorf("%s: %w", field, err)
	}
	if expected == nil {
		return false, fmt.Sprintf("%s %s has no %s %s: nothing to compare the %s object with", field, shown,
			actual.GetAPIVersion(), FormatID(actual.GetKind(), actual.GetNamespace(), actual.GetName()), strings.TrimSuffix(field, "s")), Origin{}, nil
	}
	a, e := tidyObject(actual.Object), tidyObject(expected.Object.Object)
	diffs := objectDiff("", e, a, nil)
	if len(diffs) == 0 {
		return true, "", expected.Origin, nil
	}
	if IsSecret(actual.Object) {
		// A Secret's differences show its keys, never its values (a patched target or
		// resource may be one).
		if masked := objectDiff("", tidyObject(MaskSecret(expected.Object.Object)), tidyObject(MaskSecret(actual.Object)), nil); len(masked) > 0 {
			diffs = masked
		} else {
			diffs = []string{"a data or stringData value differs (masked)"}
		}
	}
	const most = 5
	more := ""
	if len(diffs) > most {
		more = fmt.Sprintf(" (and %d more)", len(diffs)-most)
		diffs = diffs[:most]
	}
	return false, fmt.Sprintf("the %s object differs from %s: %s%s", strings.TrimSuffix(field, "s"), expected.Origin,
		strings.Join(diffs, "; "), more), expected.Origin, nil
}

// tidyObject is a JSON copy of obj with Kyverno's comparison tidying: generate.kyverno.io/
// labels dropped and app.kubernetes.io/managed-by: kyverno added (FixupGenerateLabels),
// then empty maps, empty lists and nulls removed (Tidy).
func tidyObject(obj map[string]any) any {
	cp, err := jsonCopy(obj)
	if err != nil {
		return obj
	}
	u := unstructured.Unstructured{Object: cp}
	labels := map[string]string{"app.kubernetes.io/managed-by": "kyverno"}
	for k, v := range u.GetLabels() {
		if !strings.HasPrefix(k, "generate.kyverno.io/") {
			labels[k] = v
		}
	}
	u.SetLabels(labels)
	return tidy(u.Object)
}

func tidy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if e = tidy(e); e != nil {
				out[k] = e
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []any:
		var out []any
		for _, e := range x {
			if e = tidy(e); e != nil {
				out = append(out, e)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case int64:
		return float64(x) // JSON has one kind of number
	}
	return v
}

// objectDiff lists where the tidied expected and actual values differ, as
// "path: expected X, got Y" ("-" for absent), in path order.
func objectDiff(at string, expected, actual any, out []string) []string {
	show := func(v any) string {
		if v == nil {
			return "-"
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // "<masked …>" as it is, not \u003c
		_ = enc.Encode(v)
		b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		if len(b) > 80 {
			return string(b[:77]) + "..."
		}
		return string(b)
	}
	em, eok := expected.(map[string]any)
	am, aok := actual.(map[string]any)
	if eok && aok {
		keys := map[string]bool{}
		for k := range em {
			keys[k] = true
		}
		for k := range am {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			p := k
			if at != "" {
				p = at + "." + k
			}
			out = objectDiff(p, em[k], am[k], out)
		}
		return out
	}
	el, eok := expected.([]any)
	al, aok := actual.([]any)
	if eok && aok && len(el) == len(al) {
		for i := range el {
			out = objectDiff(fmt.Sprintf("%s[%d]", at, i), el[i], al[i], out)
		}
		return out
	}
	if reflect.DeepEqual(expected, actual) {
		return out
	}
	if at == "" {
		at = "(the object)"
	}
	return append(out, fmt.Sprintf("%s: expected %s, got %s", at, show(expected), show(actual)))
}

// loadTestContext reads a test's context file (cli.kyverno.io/v1alpha1 Context) into
// the in-memory context CEL policies read through resource.Get/List and
// image.GetMetadata, as Kyverno's CLI does offline.
func loadTestContext(fsys fs.FS, file, shown string) (*libs.FakeContextProvider, error) {
	var c v1alpha1.Context
	if err := readStrict(fsys, file, shown, &c, "Kyverno test context file (cli.kyverno.io/v1alpha1 Context)"); err != nil {
		return nil, err
	}
	fake := libs.NewFakeContextProvider()
	for i := range c.ContextSpec.Resources {
		r := &c.ContextSpec.Resources[i]
		obj, err := jsonCopy(r.Object)
		if err != nil {
			return nil, &InputError{Origin: Origin{File: shown}, Err: fmt.Errorf("spec.resources[%d]: %w", i, err)}
		}
		r.Object = obj
		gvr, _ := meta.UnsafeGuessKindToResource(r.GroupVersionKind())
		if err := fake.AddResource(gvr, r); err != nil {
			return nil, &InputError{Origin: Origin{File: shown}, Err: fmt.Errorf("spec.resources[%d] %s: %w", i, FormatID(r.GetKind(), r.GetNamespace(), r.GetName()), err)}
		}
	}
	for i, img := range c.ContextSpec.Images {
		b, err := json.Marshal(img)
		if err != nil {
			return nil, &InputError{Origin: Origin{File: shown}, Err: fmt.Errorf("spec.images[%d]: %w", i, err)}
		}
		var data map[string]any
		if err := json.Unmarshal(b, &data); err != nil {
			return nil, &InputError{Origin: Origin{File: shown}, Err: fmt.Errorf("spec.images[%d]: %w", i, err)}
		}
		fake.AddImageData(img.Image, data)
	}
	return fake, nil
}

// readTestObjects reads the objects of a test's file-list field (resources,
// targetResources, paramResources) from inside the test's filesystem, under the size
// bound; a file that does not decode is an *InputError at its line.
func readTestObjects(fsys fs.FS, field string, files []string, rel func(string) (string, error), show func(string) string) ([]Resource, error) {
	var out []Resource
	for _, p := range files {
		rp, err := rel(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		b, err := ReadFileLimit(fsys, rp, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", field, show(rp), unwrapPathErr(err))
		}
		rs, err := Decode(show(rp), b)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

// loadAsKyvernoCLI makes test objects what Kyverno's CLI loads: namespaced objects
// without a namespace land in "default", and every number is a float64.
func loadAsKyvernoCLI(rs []Resource) {
	for _, r := range rs {
		if r.Object.GetNamespace() == "" && !ClusterScoped(r.Object.GetKind()) {
			r.Object.SetNamespace("default")
		}
		r.Object.Object = toFloat(r.Object.Object).(map[string]any)
	}
}
