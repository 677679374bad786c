package policy

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"
)

const testPolicies = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: pods
spec:
  rules:
  - name: add-team
    match: {any: [{resources: {kinds: [Pod]}}]}
    mutate:
      patchStrategicMerge:
        metadata:
          labels: {team: platform}
  - name: need-team
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: team label required
      pattern: {metadata: {labels: {team: "?*"}}}
  - name: signed
    match: {any: [{resources: {kinds: [Pod]}}]}
    verifyImages:
    - imageReferences: ["*"]
      attestors:
      - entries:
        - keys:
            publicKeys: |-
              -----BEGIN PUBLIC KEY-----
              MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8nXRh950IZbRj8Ra/N9sbqOPZrfM
              5/KAQN0/KjHcorm/J5yhtVpT1oqLZGfhM9XK41aabHbmYp82fdvZuvwWlg==
              -----END PUBLIC KEY-----
`

const testPod = `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers: [{name: web, image: nginx:1.27}]
`

func runTestFS(t *testing.T, files map[string]string) *TestOutcome {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, data := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return RunTests(context.Background(), fsys, ".", TestOptions{Display: "suite"})
}

func suite(results string) map[string]string {
	return map[string]string{
		"policy.yaml":    testPolicies,
		"resources.yaml": testPod,
		"patched.yaml": `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: default
  labels: {team: platform}
spec:
  containers: [{name: web, image: nginx:1.27}]
`,
		"other.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: other, namespace: default}\n",
		"wrong.yaml": `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: default
  labels: {team: payments}
spec:
  containers: [{name: web, image: nginx:1.27}]
`,
		TestFileName: `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata: {name: t}
policies: [policy.yaml]
resources: [resources.yaml]
results:
` + results,
	}
}

func rowsFor(out *TestOutcome, rule string) []TestRow {
	var rows []TestRow
	for _, r := range out.Rows {
		if r.Rule == rule {
			rows = append(rows, r)
		}
	}
	return rows
}

// TestRunTestsMutateThenValidate: validation runs on the mutated object (the pod lacks
// the label as written), and patchedResources is compared: right passes, wrong fails
// with the field that differs.
func TestRunTestsMutateThenValidate(t *testing.T) {
	out := runTestFS(t, suite(`- {policy: pods, rule: add-team, resources: [web], kind: Pod, result: pass, patchedResources: patched.yaml}
- {policy: pods, rule: need-team, resources: [web], kind: Pod, result: pass}
`))
	if len(out.Errors) > 0 || len(out.Rows) != 2 || out.Failed() != 0 {
		t.Fatalf("want 2 passing rows: %+v %v", out.Rows, out.Errors)
	}
	out = runTestFS(t, suite(`- {policy: pods, rule: add-team, resources: [web], kind: Pod, result: pass, patchedResources: wrong.yaml}
`))
	rows := rowsFor(out, "add-team")
	if len(rows) != 1 || rows[0].Pass || !strings.Contains(rows[0].Message, `metadata.labels.team: expected "payments", got "platform"`) ||
		!strings.Contains(rows[0].Message, "suite/wrong.yaml:") {
		t.Fatalf("a wrong patched resource must fail naming the field and file: %+v", rows)
	}
	// The validated object is the mutated one, compared too when patchedResources is
	// given on a validate result, as Kyverno's CLI does.
	out = runTestFS(t, suite(`- {policy: pods, rule: need-team, resources: [web], kind: Pod, result: pass, patchedResources: wrong.yaml}
`))
	if rows := rowsFor(out, "need-team"); len(rows) != 1 || rows[0].Pass {
		t.Fatalf("validate row with a wrong patched resource must fail: %+v", rows)
	}
}

// TestRunTestsNotEvaluated: expectations gitgate did not evaluate fail with the reason,
// whatever was expected: a verifyImages rule, a rule the policy does not have, an
// expected object missing from patchedResources, a test field gitgate does not use.
func TestRunTestsNotEvaluated(t *testing.T) {
	for _, tc := range []struct{ name, results, want string }{
		{"verifyImages", "- {policy: pods, rule: signed, resources: [web], kind: Pod, result: pass}\n", "not evaluated: rule signed is a verifyImages rule"},
		{"no such rule", "- {policy: pods, rule: typo, resources: [web], kind: Pod, result: skip}\n", `not evaluated: policy pods has no rule "typo"`},
		{"missing patched object", "- {policy: pods, rule: add-team, resources: [web], kind: Pod, result: pass, patchedResources: other.yaml}\n",
			"suite/other.yaml has no v1 Pod/default/web: nothing to compare"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := runTestFS(t, suite(tc.results))
			if len(out.Rows) != 1 || out.Rows[0].Pass || !strings.Contains(out.Rows[0].Message, tc.want) {
				t.Fatalf("want one failing row saying %q, got %+v (errors %v)", tc.want, out.Rows, out.Errors)
			}
		})
	}
	// A rule that does not apply passes as excluded, as in Kyverno's CLI, but not when
	// the expected patched object claims a mutation that did not happen.
	files := suite("- {policy: pods, rule: add-team, resources: [web], kind: Pod, result: pass, patchedResources: patched.yaml}\n")
	files["policy.yaml"] = strings.Replace(files["policy.yaml"], "- name: add-team\n    match: {any: [{resources: {kinds: [Pod]}}]}", "- name: add-team\n    match: {any: [{resources: {kinds: [Pod], namespaces: [kube-system]}}]}", 1)
	out := runTestFS(t, files)
	if len(out.Rows) != 1 || out.Rows[0].Pass || !strings.Contains(out.Rows[0].Message, "excluded: the rule does not apply to this resource, yet the patchedResource object differs") {
		t.Fatalf("an excluded row whose expected object differs must fail: %+v %v", out.Rows, out.Errors)
	}
	// An expectation with no resource to evaluate on fails.
	files = suite("- {policy: pods, rule: need-team, kind: Pod, result: pass}\n")
	files[TestFileName] = strings.Replace(files[TestFileName], "resources: [resources.yaml]\n", "", 1)
	out = runTestFS(t, files)
	if len(out.Rows) != 1 || out.Rows[0].Pass || !strings.Contains(out.Rows[0].Message, "no resources to evaluate") {
		t.Fatalf("an expectation without resources must fail: %+v %v", out.Rows, out.Errors)
	}
}

// TestRunTestsStrict: an unknown field of a test, a values or a user info file is an
// error at its file:line naming the field, as kyverno test refuses it.
func TestRunTestsStrict(t *testing.T) {
	files := suite("- {policy: pods, rule: need-team, resources: [web], kind: Pod, result: pass, patchedResource: patched.yaml}\n")
	out := runTestFS(t, files)
	if len(out.Errors) != 1 || !strings.Contains(out.Errors[0].Error(), `suite/kyverno-test.yaml:7:`) ||
		!strings.Contains(out.Errors[0].Error(), `unknown field "results[0].patchedResource"`) {
		t.Fatalf("want the unknown field at its line, got %v", out.Errors)
	}
	files = suite("- {policy: pods, rule: need-team, resources: [web], kind: Pod, result: pass}\n")
	files[TestFileName] += "variables: values.yaml\n"
	files["values.yaml"] = "apiVersion: cli.kyverno.io/v1alpha1\nkind: Values\nglobalValues: {a: b}\nnamespaceSelector: []\nnamespace: []\n"
	out = runTestFS(t, files)
	if len(out.Errors) != 1 || !strings.Contains(out.Errors[0].Error(), `suite/values.yaml:5:1: unknown field "namespace"`) {
		t.Fatalf("want the values file's unknown field at its line, got %v", out.Errors)
	}
	files = suite("- {policy: pods, rule: need-team, resources: [web], kind: Pod, result: pass}\n")
	files[TestFileName] += "userinfo: user.yaml\n"
	files["user.yaml"] = "apiVersion: cli.kyverno.io/v1alpha1\nkind: UserInfo\nclusterRoles: [admin]\ngroups: [dev]\n"
	out = runTestFS(t, files)
	if len(out.Errors) != 1 || !strings.Contains(out.Errors[0].Error(), `suite/user.yaml:4:1: unknown field "groups"`) {
		t.Fatalf("want the user info file's unknown field at its line, got %v", out.Errors)
	}
}

// TestRunTestsOperationUpdate: a result's operation UPDATE evaluates with the resource
// as the old object too, as Kyverno's CLI does.
func TestRunTestsOperationUpdate(t *testing.T) {
	files := map[string]string{
		"policy.yaml": `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: immutable}
spec:
  rules:
  - name: same-image
    match: {any: [{resources: {kinds: [Pod], operations: [UPDATE]}}]}
    validate:
      message: image changed
      deny:
        conditions:
          any:
          - key: "{{ request.oldObject.spec.containers[0].image || 'none' }}"
            operator: NotEquals
            value: "{{ request.object.spec.containers[0].image }}"
`,
		"resources.yaml": testPod,
		TestFileName: `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata: {name: t}
policies: [policy.yaml]
resources: [resources.yaml]
results:
- {policy: immutable, rule: same-image, resources: [web], kind: Pod, result: pass, operation: UPDATE}
`,
	}
	out := runTestFS(t, files)
	if len(out.Errors) > 0 || len(out.Rows) != 1 || !out.Rows[0].Pass || out.Rows[0].Actual != StatusPass {
		t.Fatalf("UPDATE with the resource as old object must pass: %+v %v", out.Rows, out.Errors)
	}
}

// TestRunTestsPerResourceOperation: a values file's request.operation for one policy
// and resource (policies[].resources[].values) makes that resource's evaluation an
// UPDATE with itself as the old object, as Kyverno's CLI takes it; the other resource
// stays a CREATE, where the rule (UPDATE only) does not apply. The same expectations
// fail when the values file gives no operation.
func TestRunTestsPerResourceOperation(t *testing.T) {
	pods := testPod + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: api}\nspec:\n  containers: [{name: api, image: nginx:1.27}]\n"
	files := func(values string) map[string]string {
		return map[string]string{
			"policy.yaml": `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: updates}
spec:
  rules:
  - name: seen-as-update
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: not an update with its old object
      deny:
        conditions:
          any:
          - key: "{{ request.oldObject.metadata.name || 'none' }}"
            operator: NotEquals
            value: "{{ request.object.metadata.name }}"
`,
			"resources.yaml": pods,
			"values.yaml":    values,
			TestFileName: `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata: {name: t}
policies: [policy.yaml]
resources: [resources.yaml]
variables: values.yaml
results:
- {policy: updates, rule: seen-as-update, resources: [web], kind: Pod, result: pass}
- {policy: updates, rule: seen-as-update, resources: [api], kind: Pod, result: fail}
`,
		}
	}
	perResource := "apiVersion: cli.kyverno.io/v1alpha1\nkind: Value\npolicies:\n- name: updates\n  resources:\n  - name: web\n    values: {request.operation: UPDATE}\n"
	out := runTestFS(t, files(perResource))
	if len(out.Errors) > 0 || len(out.Rows) != 2 || out.Failed() != 0 {
		t.Fatalf("per-resource UPDATE: %+v %v", out.Rows, out.Errors)
	}
	out = runTestFS(t, files("apiVersion: cli.kyverno.io/v1alpha1\nkind: Value\n"))
	if len(out.Errors) > 0 || out.Failed() != 1 {
		t.Fatalf("without the operation, web must fail (a CREATE has no old object): %+v %v", out.Rows, out.Errors)
	}
}

// TestRunTestsContext: a test's context file answers CEL resource.get, for that test's
// engine only (Kyverno binds it process-wide at compile time; see celCompileMu).
func TestRunTestsContext(t *testing.T) {
	pol := `apiVersion: policies.kyverno.io/v1beta1
kind: ValidatingPolicy
metadata: {name: allowed-name}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  variables:
  - name: cm
    expression: resource.get("v1", "configmaps", "default", "allowed")
  validations:
  - expression: object.metadata.name == variables.cm.data.name
`
	files := map[string]string{
		"policy.yaml":    pol,
		"resources.yaml": testPod,
		"context.yaml": `apiVersion: cli.kyverno.io/v1alpha1
kind: Context
metadata: {name: c}
spec:
  resources:
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: allowed, namespace: default}, data: {name: web}}
`,
		TestFileName: `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata: {name: t}
policies: [policy.yaml]
resources: [resources.yaml]
context: context.yaml
results:
- {policy: allowed-name, resources: [web], kind: Pod, result: pass}
`,
	}
	out := runTestFS(t, files)
	if len(out.Errors) > 0 || len(out.Rows) != 1 || !out.Rows[0].Pass {
		t.Fatalf("with the context file the pod passes: %+v %v", out.Rows, out.Errors)
	}
	// An engine built without the context does not see the test's ConfigMap.
	eng, err := NewEngine(mustSet(t, pol), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := summarise(eng.Evaluate(context.Background(), mustResource(t, testPod), Request{})); len(got) != 1 || strings.Contains(got[0], "=pass") {
		t.Fatalf("an engine without the context must not pass: %v", got)
	}
}
