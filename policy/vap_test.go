package policy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/apis/v1alpha1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const vapRequireTeam = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: require-team}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [apps]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [deployments]
  matchConditions:
  - name: not-skipped
    expression: "!has(object.metadata.annotations) || !('skip' in object.metadata.annotations)"
  validations:
  - expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
    messageExpression: "'Deployment ' + object.metadata.name + ' has no team label'"
`

func vapBinding(actions, extra string) string {
	return `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: require-team-binding}
spec:
  policyName: require-team
  validationActions: [` + actions + `]
` + extra
}

const vapDeployments = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: unlabelled
  namespace: shop
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: a}}
    spec:
      containers: [{name: a, image: registry.example.com/a:1}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: labelled
  namespace: shop
  labels: {team: payments}
spec:
  selector: {matchLabels: {app: b}}
  template:
    metadata: {labels: {app: b}}
    spec:
      containers: [{name: b, image: registry.example.com/b:1}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: skipped
  namespace: shop
  annotations: {skip: "yes"}
spec:
  selector: {matchLabels: {app: c}}
  template:
    metadata: {labels: {app: c}}
    spec:
      containers: [{name: c, image: registry.example.com/c:1}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {k: v}
`

// TestCheckVAP: a ValidatingAdmissionPolicy with a binding judges Deployments as the
// API server would: Deny blocks at the resource's line, Warn/Audit report without
// blocking, a matchCondition or a binding's selector keeps a resource out, and without
// a binding the policy is not evaluated (a notice, no finding).
func TestCheckVAP(t *testing.T) {
	cases := []struct {
		name    string
		binding string // "" = no binding file
		// want: resource name -> status:action of its require-team result; absent = none.
		want   map[string]string
		notice string
	}{
		{name: "deny", binding: vapBinding("Deny", ""),
			want: map[string]string{"unlabelled": "fail:enforce", "labelled": "pass:enforce", "skipped": "skip:enforce"}},
		{name: "warn and audit", binding: vapBinding("Warn, Audit", ""),
			want: map[string]string{"unlabelled": "fail:audit", "labelled": "pass:audit", "skipped": "skip:audit"}},
		{name: "binding namespace selector not matching", binding: vapBinding("Deny", `  matchResources:
    namespaceSelector: {matchLabels: {env: prod}}
`), want: map[string]string{}},
		{name: "binding namespace selector matching the values' labels", binding: vapBinding("Deny", `  matchResources:
    namespaceSelector: {matchLabels: {env: dev}}
`), want: map[string]string{"unlabelled": "fail:enforce", "labelled": "pass:enforce", "skipped": "skip:enforce"}},
		{name: "no binding", binding: "", want: map[string]string{},
			notice: "ValidatingAdmissionPolicy/require-team is not evaluated: no ValidatingAdmissionPolicyBinding names it"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := []string{"vap.yaml"}
			if err := os.WriteFile(filepath.Join(dir, "vap.yaml"), []byte(vapRequireTeam), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.binding != "" {
				files = append(files, "binding.yaml")
				if err := os.WriteFile(filepath.Join(dir, "binding.yaml"), []byte(tc.binding), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			set, err := Load(os.DirFS(dir), files...)
			if err != nil {
				t.Fatal(err)
			}
			vals := &Values{}
			vals.NamespaceSelectors = append(vals.NamespaceSelectors, v1alpha1.NamespaceSelector{Name: "shop", Labels: map[string]string{"env": "dev"}})
			eng, err := NewEngine(set, Options{Values: vals})
			if err != nil {
				t.Fatal(err)
			}
			rs, err := Decode("apps/deploy.yaml", []byte(vapDeployments))
			if err != nil {
				t.Fatal(err)
			}
			// Every status, from the engine.
			got := map[string]string{}
			for _, res := range rs {
				for _, r := range eng.Evaluate(context.Background(), res, Request{}) {
					if r.Policy != "require-team" || r.Rule != "require-team" {
						t.Errorf("policy/rule %s/%s, want require-team/require-team as kyverno test reports it", r.Policy, r.Rule)
					}
					if _, dup := got[r.Name]; dup {
						t.Errorf("%s judged twice", r.Name)
					}
					got[r.Name] = string(r.Status) + ":" + strings.ToLower(string(r.Action))
				}
			}
			// The findings, from check: the failure at the resource's file and line.
			rep := eng.CheckResources(context.Background(), rs, CheckOptions{Workers: 1})
			var findings []Result
			for _, r := range rep.Results {
				if r.Policy == "require-team" && r.Status == StatusFail {
					findings = append(findings, r)
				}
			}
			if wantFail := strings.HasPrefix(tc.want["unlabelled"], "fail"); wantFail != (len(findings) == 1) || len(findings) > 1 {
				t.Fatalf("check findings %+v, want fail: %v", findings, wantFail)
			}
			for _, r := range findings {
				if r.Name != "unlabelled" || r.Origin.File != "apps/deploy.yaml" || r.Origin.Line != 1 {
					t.Errorf("finding %s at %s:%d, want unlabelled at apps/deploy.yaml:1", r.Name, r.Origin.File, r.Origin.Line)
				}
				if r.Message != "Deployment unlabelled has no team label" {
					t.Errorf("message %q", r.Message)
				}
				if r.Blocking() != (r.Action == Enforce) {
					t.Errorf("blocking %v with action %s", r.Blocking(), r.Action)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("results %v, want %v", got, tc.want)
			}
			for name, w := range tc.want {
				if got[name] != w {
					t.Errorf("%s: %q, want %q (all: %v)", name, got[name], w, got)
				}
			}
			notices := strings.Join(eng.Notices(), "\n")
			if tc.notice == "" && strings.Contains(notices, "not evaluated") {
				t.Errorf("unexpected notice: %s", notices)
			}
			if tc.notice != "" && (!strings.Contains(notices, tc.notice) || !strings.Contains(notices, "vap.yaml")) {
				t.Errorf("notices %q, want %q naming vap.yaml", notices, tc.notice)
			}
		})
	}
}

// TestVAPParams: a binding's paramRef selects among the set's param objects; without
// one the binding is an error (not a pass), unless parameterNotFoundAction is Allow.
func TestVAPParams(t *testing.T) {
	dir := t.TempDir()
	pol := `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: max-replicas}
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}
  validations:
  - expression: "object.spec.replicas <= int(params.data.max)"
    message: too many replicas
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: max-replicas}
spec:
  policyName: max-replicas
  validationActions: [Deny]
  paramRef: {name: limits, namespace: default, parameterNotFoundAction: Deny}
`
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, err := Decode("d.yaml", []byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: big, namespace: default}
spec:
  replicas: 5
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: a}}
    spec: {containers: [{name: a, image: a}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	run := func(max string) Status {
		set, err := Load(os.DirFS(dir), "p.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if max != "" {
			set.Params = append(set.Params, &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "v1", "kind": "ConfigMap",
				"metadata": map[string]any{"name": "limits", "namespace": "default"},
				"data":     map[string]any{"max": max},
			}})
		}
		eng, err := NewEngine(set, Options{})
		if err != nil {
			t.Fatal(err)
		}
		res := eng.Evaluate(context.Background(), rs[0], Request{})
		if len(res) != 1 {
			t.Fatalf("max %q: results %+v, want one", max, res)
		}
		return res[0].Status
	}
	if s := run("3"); s != StatusFail {
		t.Errorf("max 3, replicas 5: %s, want fail", s)
	}
	if s := run("10"); s != StatusPass {
		t.Errorf("max 10, replicas 5: %s, want pass", s)
	}
	if s := run(""); s != StatusError {
		t.Errorf("no param: %s, want error", s)
	}
}

// TestKyvernoCLIVAPSuitesFlipped: every ValidatingAdmissionPolicy suite of Kyverno's
// test/cli (listed in kyverno-cli-suites.txt) fails with every expected result
// flipped, so its pass is one that could fail: every row it evaluated fails flipped
// (a row with no result is excluded, as kyverno test counts it); each evaluates one.
func TestKyvernoCLIVAPSuitesFlipped(t *testing.T) {
	root := kyvernoCLITests(t)
	base := os.DirFS(root)
	n := 0
	for _, dir := range suiteList(t, "testdata/kyverno-cli-suites.txt") {
		if !strings.Contains(dir, "validating-admission-polic") {
			continue
		}
		n++
		file := dir + "/" + TestFileName
		t.Run(dir, func(t *testing.T) {
			res := RunTests(context.Background(), base, file, TestOptions{Display: file})
			requirePass(t, res)
			over := fstest.MapFS{file: {Data: flipResults(t, base, file)}}
			wrong := RunTests(context.Background(), overlayFS{base, over}, file, TestOptions{Display: file})
			if len(wrong.Errors) > 0 {
				t.Fatalf("the flipped copy does not run: %v", wrong.Errors)
			}
			// Every row the true run evaluated (not one Kyverno's CLI counts as
			// excluded: no result, which any expectation accepts) fails flipped.
			evaluated := map[string]bool{}
			for _, r := range res.Rows {
				if !strings.HasPrefix(r.Message, "excluded") {
					evaluated[r.Policy+"|"+r.Resource] = true
				}
			}
			if len(evaluated) == 0 {
				t.Fatal("every row is excluded: nothing in this suite is compared")
			}
			for _, r := range wrong.Rows {
				if evaluated[r.Policy+"|"+r.Resource] && r.Pass {
					t.Errorf("%s on %s: flipped expectation %s passes (actual %s)", r.Policy, r.Resource, r.Expected, r.Actual)
				}
			}
		})
	}
	if n < 11 {
		t.Errorf("only %d VAP suites listed", n)
	}
}

// TestCheckVAPParamsFromPolicyDir: in check, a binding's paramRef selects an object kept
// in the policy directory beside the policy, as the cluster keeps it; without it the
// binding is an error saying where to put it, never a pass.
func TestCheckVAPParamsFromPolicyDir(t *testing.T) {
	const vap = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: allowed-team}
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}
  validations:
  - expression: "has(object.metadata.labels) && 'team' in object.metadata.labels && object.metadata.labels.team == params.data.team"
    messageExpression: "'team must be ' + params.data.team"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: allowed-team}
spec:
  policyName: allowed-team
  validationActions: [Deny]
  paramRef: {name: team-param, namespace: policy, parameterNotFoundAction: Deny}
`
	const param = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: team-param, namespace: policy}\ndata: {team: payments}\n"
	const other = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other, namespace: policy}\ndata: {team: nobody}\n"
	for _, tc := range []struct {
		name  string
		files fstest.MapFS
		want  map[string]string // resource -> status
	}{
		{"param beside the policy", fstest.MapFS{"p/vap.yaml": {Data: []byte(vap)}, "p/params.yaml": {Data: []byte(other + "---\n" + param)}},
			map[string]string{"unlabelled": "fail", "labelled": "pass", "skipped": "fail"}},
		{"no such param", fstest.MapFS{"p/vap.yaml": {Data: []byte(vap)}, "p/params.yaml": {Data: []byte(other)}},
			map[string]string{"unlabelled": "error", "labelled": "error", "skipped": "error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := Load(tc.files, "p")
			if err != nil {
				t.Fatal(err)
			}
			eng, err := NewEngine(set, Options{})
			if err != nil {
				t.Fatal(err)
			}
			rs, err := Decode("apps/deploy.yaml", []byte(vapDeployments))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, res := range rs {
				for _, r := range eng.Evaluate(context.Background(), res, Request{}) {
					if r.Policy != "allowed-team" {
						continue
					}
					got[r.Name] = string(r.Status)
					if r.Status == StatusError && !strings.Contains(r.Message, "policy directory") {
						t.Errorf("%s: error without advice: %s", r.Name, r.Message)
					}
					if r.Status == StatusFail && !strings.Contains(r.Message, "team must be payments") {
						t.Errorf("%s: message %q does not read the param", r.Name, r.Message)
					}
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s: %s, want %s (all: %v)", k, got[k], v, got)
				}
			}
		})
	}
}

// TestMergeReplacesByName: a later set's policy of the same kind and name replaces the
// earlier one (a repository overriding a built-in), with a warning naming both files,
// for every kind the set holds, not only ClusterPolicies; other kinds of the same name
// stay.
func TestMergeReplacesByName(t *testing.T) {
	binding := "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata: {name: require-team}\nspec:\n  policyName: require-team\n  validationActions: [%s]\n"
	load := func(dir, action string) *Set {
		set, err := Load(fstest.MapFS{dir + "/vap.yaml": {Data: []byte(vapRequireTeam + "---\n" + fmt.Sprintf(binding, action))}}, dir)
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	set := load("builtin", "Deny")
	set.Merge(load("repo", "Audit"))
	if len(set.ValidatingAdmissionPolicies) != 1 || len(set.ValidatingAdmissionPolicyBindings) != 1 {
		t.Fatalf("%d policies, %d bindings after the merge, want 1 and 1", len(set.ValidatingAdmissionPolicies), len(set.ValidatingAdmissionPolicyBindings))
	}
	if got := set.ValidatingAdmissionPolicyBindings[0].Spec.ValidationActions; len(got) != 1 || got[0] != "Audit" {
		t.Errorf("the earlier binding was kept: %v", got)
	}
	var warned int
	for _, w := range set.Warnings {
		if strings.Contains(w, "from repo/vap.yaml replaces the one from builtin/vap.yaml") {
			warned++
		}
	}
	if warned != 2 {
		t.Errorf("want a warning for the policy and for its binding: %q", set.Warnings)
	}
}
