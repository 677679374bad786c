package policy

import (
	"context"
	"os"
	"path"
	"strings"
	"testing"
	"testing/fstest"
)

// dpolSuites are gitgate's own DeletingPolicy suites (policy/testdata/dpol), written
// from scratch. cleanup passes in kyverno test v1.19.1 as well; lookups too, but for
// revoke-expired-leases: kyverno test v1.19.1 gives DeletingPolicies no apiCallResponses
// (its http.Get goes to the network), gitgate answers from them and never connects.
var dpolSuites = map[string]int{"cleanup": 8, "lookups": 6} // suite: rows

// TestDpolSuites runs them: every row passes, each row is a DeletingPolicy's evaluated
// result (no excluded or unevaluated row), and with every expected result flipped every
// row fails.
func TestDpolSuites(t *testing.T) {
	base := os.DirFS("testdata/dpol")
	for suite, want := range dpolSuites {
		t.Run(suite, func(t *testing.T) {
			res := RunTests(context.Background(), base, suite, TestOptions{Display: suite})
			requirePass(t, res)
			if len(res.Rows) != want {
				t.Fatalf("%d rows, want %d", len(res.Rows), want)
			}
			statuses := map[Status]int{}
			for _, r := range res.Rows {
				statuses[r.Actual]++
				if r.Rule != r.Policy {
					t.Errorf("%s on %s: rule %q, want the policy's name as Kyverno names it", r.Policy, r.Resource, r.Rule)
				}
			}
			if statuses[StatusPass] == 0 || statuses[StatusFail] == 0 {
				t.Errorf("statuses %v: the suite should hold both objects deleted and kept", statuses)
			}
			file := path.Join(suite, TestFileName)
			over := fstest.MapFS{file: {Data: flipResults(t, base, file)}}
			wrong := RunTests(context.Background(), overlayFS{base, over}, suite, TestOptions{Display: suite})
			if len(wrong.Errors) > 0 {
				t.Fatalf("the flipped copy does not run: %v", wrong.Errors)
			}
			if len(wrong.Rows) != want || wrong.Failed() != want {
				t.Fatalf("every expected result flipped, yet %d of %d rows pass", len(wrong.Rows)-wrong.Failed(), len(wrong.Rows))
			}
		})
	}
}

// TestDpolCleanupDetails: what each row of the cleanup suite says: the exception, the
// error of a condition that does not evaluate, the namespace of the values file.
func TestDpolCleanupDetails(t *testing.T) {
	res := RunTests(context.Background(), os.DirFS("testdata/dpol"), "cleanup", TestOptions{})
	rows := map[string]TestRow{}
	for _, r := range res.Rows {
		rows[r.Resource] = r
	}
	for id, want := range map[string]struct {
		status Status
		text   string
	}{
		"Pod/ci/runner-done":         {StatusPass, "would be deleted"},
		"Pod/ci/runner-busy":         {StatusFail, "would not be deleted"},
		"Pod/ci/runner-held":         {StatusFail, "PolicyException"},
		"ConfigMap/ci/notes-orphan":  {StatusPass, "would be deleted"},
		"Deployment/previews/pr-103": {StatusError, "no such key: annotations"},
		"Deployment/previews/pr-102": {StatusFail, "would not be deleted"},
		"ConfigMap/ci/notes-owned":   {StatusFail, "would not be deleted"},
		"Deployment/previews/pr-101": {StatusPass, "would be deleted"},
	} {
		r, ok := rows[id]
		if !ok || r.Actual != want.status || !strings.Contains(r.Message, want.text) {
			t.Errorf("%s: %+v, want %s saying %q", id, r, want.status, want.text)
		}
	}
}

// TestDpolUnselected: an expectation on an object the policy's matchConstraints do not
// select fails whatever it expects (kyverno test has no result for it: "not found"),
// as does one naming no such object; an operation on a DeletingPolicy's expectation is
// refused as Kyverno's CLI refuses it.
func TestDpolUnselected(t *testing.T) {
	base := os.DirFS("testdata/dpol")
	for _, result := range []string{"pass", "fail", "skip"} {
		test := `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata: {name: unselected}
policies: [policies.yaml]
exceptions: [exceptions.yaml]
resources: [resources.yaml]
variables: values.yaml
results:
- {isDeletingPolicy: true, policy: expire-previews, resources: [runner-done], result: ` + result + `}
- {isDeletingPolicy: true, policy: reap-finished-runners, resources: [no-such-pod], result: ` + result + `}
`
		over := fstest.MapFS{"cleanup/" + TestFileName: {Data: []byte(test)}}
		res := RunTests(context.Background(), overlayFS{base, over}, "cleanup", TestOptions{})
		if len(res.Errors) > 0 || len(res.Rows) != 2 || res.Failed() != 2 {
			t.Fatalf("expecting %s: rows %+v, errors %v", result, res.Rows, res.Errors)
		}
		for _, r := range res.Rows {
			if !strings.Contains(r.Message, "not selected by the DeletingPolicy's matchConstraints") && !strings.Contains(r.Message, `"no-such-pod" not found`) {
				t.Errorf("row %+v", r)
			}
		}
	}
	test := `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata: {name: operation}
policies: [policies.yaml]
resources: [resources.yaml]
results:
- {isDeletingPolicy: true, policy: expire-previews, resources: [pr-101], result: pass, operation: UPDATE}
`
	over := fstest.MapFS{"cleanup/" + TestFileName: {Data: []byte(test)}}
	res := RunTests(context.Background(), overlayFS{base, over}, "cleanup", TestOptions{})
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), "operation is not supported for deleting policies") {
		t.Fatalf("errors %v, rows %+v", res.Errors, res.Rows)
	}
}

// TestDpolCheckNotice: check does not evaluate DeletingPolicies (they delete on a
// schedule, they admit nothing): one notice per policy with its file:line, no result
// from them on the objects they select (never a pass), and the rest of the set still
// judges those objects.
func TestDpolCheckNotice(t *testing.T) {
	policies, err := os.ReadFile("testdata/dpol/cleanup/policies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := writeFiles(t, map[string]string{
		"cleanup.yaml": string(policies),
		"labels.yaml": `apiVersion: policies.kyverno.io/v1beta1
kind: ValidatingPolicy
metadata: {name: pods-need-team}
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}
  validations:
  - expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
    message: pods need a team label
`,
	})
	gate, err := OpenGate(GateOptions{NoBuiltin: true, PolicyDirs: []Source{{FS: os.DirFS(dir), Root: ".", Display: "policies"}}})
	if err != nil {
		t.Fatal(err)
	}
	var notices []string
	for _, w := range gate.Warnings {
		if strings.Contains(w, "DeletingPolicy/") && strings.Contains(w, "not evaluated") {
			notices = append(notices, w)
		}
	}
	want := []string{
		"policies/cleanup.yaml:2:1: DeletingPolicy/reap-finished-runners not evaluated",
		"policies/cleanup.yaml:27:1: DeletingPolicy/drop-scratch-configmaps not evaluated",
		"policies/cleanup.yaml:46:1: NamespacedDeletingPolicy/expire-previews not evaluated",
	}
	if len(notices) != len(want) {
		t.Fatalf("notices %q, want one per DeletingPolicy", gate.Warnings)
	}
	for i, w := range want {
		if !strings.HasPrefix(notices[i], w) || !strings.Contains(notices[i], "not an admission policy") || strings.Contains(notices[i], "refuse") {
			t.Errorf("notice %q, want it to start %q", notices[i], w)
		}
	}
	resources, err := os.ReadFile("testdata/dpol/cleanup/resources.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Decode("apps/resources.yaml", resources)
	if err != nil {
		t.Fatal(err)
	}
	rep := gate.CheckResources(context.Background(), rs, CheckOptions{Workers: 1})
	team := 0
	for _, r := range rep.Results {
		switch r.Policy {
		case "reap-finished-runners", "drop-scratch-configmaps", "expire-previews":
			t.Errorf("check evaluated a DeletingPolicy: %+v", r)
		case "pods-need-team":
			if r.Status == StatusFail {
				team++
			}
		}
	}
	if team != 6 {
		t.Errorf("%d pods-need-team failures, want 6 (every Pod, every Deployment's template): %+v", team, rep.Results)
	}
	for _, n := range rep.Notices {
		if strings.Contains(n, "DeletingPolicy/") {
			t.Errorf("check repeated the notice per resource: %q", n)
		}
	}
}

// TestDpolLoad: the versions Kyverno v1.19.1 serves load (v1alpha1 with a deprecation
// warning), another is an error at its file:line naming the served ones, and CEL that
// does not compile is an error too.
func TestDpolLoad(t *testing.T) {
	doc := func(apiVersion, kind, expr string) string {
		return "apiVersion: " + apiVersion + "\nkind: " + kind + "\nmetadata: {name: p, namespace: ns}\nspec:\n  schedule: '@daily'\n" +
			"  matchConstraints:\n    resourceRules:\n    - {apiGroups: [''], apiVersions: [v1], resources: [pods]}\n" +
			"  conditions:\n  - {name: c, expression: '" + expr + "'}\n"
	}
	for _, tc := range []struct {
		apiVersion, kind, expr string
		err, warning           string
	}{
		{"policies.kyverno.io/v1", "DeletingPolicy", "true", "", ""},
		{"policies.kyverno.io/v1beta1", "NamespacedDeletingPolicy", "true", "", ""},
		{"policies.kyverno.io/v1", "NamespacedDeletingPolicy", "true", "", ""},
		{"policies.kyverno.io/v1alpha1", "DeletingPolicy", "true", "", "p.yaml:1:1: DeletingPolicy/p: DeletingPolicy policies.kyverno.io/v1alpha1 is deprecated; use policies.kyverno.io/v1"},
		{"policies.kyverno.io/v1alpha1", "NamespacedDeletingPolicy", "true", "p.yaml:1:1: NamespacedDeletingPolicy/p: NamespacedDeletingPolicy policies.kyverno.io/v1alpha1 is not a version Kyverno serves; use policies.kyverno.io/v1 or policies.kyverno.io/v1beta1", ""},
		{"policies.kyverno.io/v1", "DeletingPolicy", "object.metadata.name ==", "p.yaml:1:1: DeletingPolicy/p: CEL does not compile", ""},
	} {
		set, err := Load(fstest.MapFS{"p.yaml": {Data: []byte(doc(tc.apiVersion, tc.kind, tc.expr))}}, "p.yaml")
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %s: error %v, want %q", tc.apiVersion, tc.kind, err, tc.err)
			}
			continue
		case err != nil:
			t.Errorf("%s %s: %v", tc.apiVersion, tc.kind, err)
			continue
		}
		if len(set.DeletingPolicies) != 1 || set.DeletingPolicies[0].GetKind() != tc.kind {
			t.Errorf("%s %s: loaded %v", tc.apiVersion, tc.kind, set.Names())
		}
		if ns := set.DeletingPolicies[0].GetNamespace(); (tc.kind == "DeletingPolicy") != (ns == "") {
			t.Errorf("%s %s: namespace %q (a DeletingPolicy is cluster-scoped)", tc.apiVersion, tc.kind, ns)
		}
		if got := strings.Join(set.Warnings, "\n"); got != tc.warning {
			t.Errorf("%s %s: warnings %q, want %q", tc.apiVersion, tc.kind, got, tc.warning)
		}
	}
}

// TestDpolNamespacedScope: kyverno test evaluates a NamespacedDeletingPolicy on an object
// of another namespace (gitgate compares the same), but the row says that Kyverno's
// cleanup controller would leave it alone.
func TestDpolNamespacedScope(t *testing.T) {
	base := os.DirFS("testdata/dpol")
	test := `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata: {name: scope}
policies: [policies.yaml]
resources: [other.yaml]
results:
- {isDeletingPolicy: true, policy: expire-previews, resources: [staging/pr-9, previews/pr-9], result: pass}
`
	deployment := func(ns string) string {
		return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: pr-9
  namespace: ` + ns + `
  annotations: {preview.example.org/ttl-hours: "1"}
spec:
  selector: {matchLabels: {app: pr-9}}
  template:
    metadata: {labels: {app: pr-9}}
    spec: {containers: [{name: web, image: web:9}]}
`
	}
	over := fstest.MapFS{
		"cleanup/" + TestFileName: {Data: []byte(test)},
		"cleanup/other.yaml":      {Data: []byte(deployment("staging") + "---\n" + deployment("previews"))},
	}
	res := RunTests(context.Background(), overlayFS{base, over}, "cleanup", TestOptions{})
	requirePass(t, res)
	if len(res.Rows) != 2 {
		t.Fatalf("rows %+v", res.Rows)
	}
	for _, r := range res.Rows {
		note := strings.Contains(r.Message, "only lists objects in the policy's namespace previews")
		if note != (r.Resource == "Deployment/staging/pr-9") {
			t.Errorf("%s: %q", r.Resource, r.Message)
		}
	}
}

// TestDpolCheckInvalid: check's notice of a DeletingPolicy Kyverno's webhook would refuse
// (kyverno test evaluates it anyway) says why.
func TestDpolCheckInvalid(t *testing.T) {
	eng := loadEngine(t, map[string]string{"p.yaml": `apiVersion: policies.kyverno.io/v1
kind: DeletingPolicy
metadata: {name: sloppy}
spec:
  schedule: every night
  conditions:
  - {name: c, expression: "true"}
`})
	n := eng.Notices()
	if len(n) != 1 || !strings.Contains(n[0], "DeletingPolicy/sloppy not evaluated") || !strings.Contains(n[0], "Kyverno would refuse to create it") ||
		!strings.Contains(n[0], "matchConstraints") || !strings.Contains(n[0], "not in proper cron format") {
		t.Fatalf("notices %q", n)
	}
}

// TestDpolPayloads: JSON payloads as Kyverno's CLI reads them: a JSON or one-document
// YAML object, named as the test names it (./ cleaned); anything else is the test's
// error naming the file.
func TestDpolPayloads(t *testing.T) {
	const policy = `apiVersion: policies.kyverno.io/v1beta1
kind: DeletingPolicy
metadata: {name: stale-build}
spec:
  schedule: "@hourly"
  conditions:
  - {name: old, expression: "object.age > 30"}
`
	test := func(payloads, expect string) string {
		return "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nmetadata: {name: payloads}\npolicies: [policy.yaml]\njsonPayloads: " + payloads + "\nresults:\n" + expect
	}
	files := fstest.MapFS{
		"t/policy.yaml":  {Data: []byte(policy)},
		"t/old.json":     {Data: []byte(`{"age": 45}`)},
		"t/new.yaml":     {Data: []byte("age: 3\n")},
		"t/two.yaml":     {Data: []byte("age: 3\n---\nage: 4\n")},
		"t/list.json":    {Data: []byte(`[{"age": 45}]`)},
		"t/payload.toml": {Data: []byte("age = 45\n")},
		"t/" + TestFileName: {Data: []byte(test("[./old.json, new.yaml]",
			"- {isDeletingPolicy: true, policy: stale-build, resources: [old.json], result: pass}\n- {isDeletingPolicy: true, policy: stale-build, resources: [new.yaml], result: fail}\n"))},
	}
	res := RunTests(context.Background(), files, "t", TestOptions{})
	requirePass(t, res)
	if len(res.Rows) != 2 || res.Rows[0].Resource != "old.json" || res.Rows[1].Resource != "new.yaml" {
		t.Fatalf("rows %+v", res.Rows)
	}
	for name, want := range map[string]string{
		"two.yaml":     "t/two.yaml: jsonPayloads: a JSON payload is one object",
		"list.json":    "t/list.json: jsonPayloads: a JSON payload is one object",
		"payload.toml": "t/payload.toml: jsonPayloads: a JSON payload is a .json, .yaml or .yml file",
		"missing.json": "t/missing.json: jsonPayloads: file does not exist",
	} {
		files["t/"+TestFileName] = &fstest.MapFile{Data: []byte(test("["+name+"]", "- {isDeletingPolicy: true, policy: stale-build, result: pass}\n"))}
		res := RunTests(context.Background(), files, "t", TestOptions{})
		if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), want) || len(res.Rows) != 0 {
			t.Errorf("%s: errors %v, rows %+v; want an error saying %q", name, res.Errors, res.Rows, want)
		}
	}
}
