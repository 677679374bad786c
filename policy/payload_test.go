package policy

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/cel-go/cel"
	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
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

// payloadFS is a test repository: a suite under suite/ whose kyverno-test.yaml is test,
// with the other files given.
func payloadFS(test string, files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{"suite/" + TestFileName: {Data: []byte(test)}}
	for name, data := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return fsys
}

// TestPayloadPoliciesStayOffline: a policy that calls the CEL http library is never
// allowed to connect: an HTTP or Envoy one (whose library Kyverno binds to a live
// client) is reported not evaluated, a JSON one runs with gitgate's offline HTTP rule;
// the server is never contacted and no row passes.
func TestPayloadPoliciesStayOffline(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		fmt.Fprint(w, `{"allowed": true}`)
	}))
	defer srv.Close()
	pols := fmt.Sprintf(`apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: http-calls-out
spec:
  evaluation:
    mode: HTTP
  validations:
  - expression: "http.Get('%[1]s/http') != null ? http.Allowed().Response() : http.Denied('no').Response()"
---
apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: envoy-calls-out
spec:
  evaluation:
    mode: Envoy
  variables:
  - name: answer
    expression: "[1].map(i, http.Client('').Get('%[1]s/envoy'))"
  validations:
  - expression: "size(variables.answer) > 0 ? envoy.Allowed().Response() : null"
---
apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: json-calls-out
spec:
  evaluation:
    mode: JSON
  validations:
  - expression: "http.Get('%[1]s/json').allowed == true"
`, srv.URL)
	test := `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata:
  name: offline
policies: [policies.yaml]
jsonPayloads: [payload.json]
httpPayloads: [http.json]
envoyPayloads: [envoy.json]
results:
- policy: http-calls-out
  result: pass
- policy: envoy-calls-out
  result: pass
- policy: json-calls-out
  result: pass
`
	fsys := payloadFS(test, map[string]string{
		"suite/policies.yaml": pols,
		"suite/payload.json":  `{"a": 1}`,
		"suite/http.json":     `{"attributes": {"method": "GET", "path": "/"}}`,
		"suite/envoy.json":    `{"attributes": {"request": {"http": {"method": "GET", "path": "/"}}}}`,
	})
	res := RunTests(context.Background(), fsys, "suite", TestOptions{})
	if len(res.Errors) > 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	if hits != 0 {
		t.Fatalf("a policy contacted %s %d times", srv.URL, hits)
	}
	if len(res.Rows) != 3 {
		t.Fatalf("%d rows, want 3: %+v", len(res.Rows), res.Rows)
	}
	for _, r := range res.Rows {
		t.Logf("%s on %s: %s: %s", r.Policy, r.Resource, r.Actual, r.Message)
		if r.Pass || r.Actual == StatusPass {
			t.Errorf("%s passes without its network call: %+v", r.Policy, r)
		}
		if r.Policy != "json-calls-out" && !strings.Contains(r.Message, "not evaluated: ") {
			t.Errorf("%s: want a not-evaluated row naming the http call, got %q", r.Policy, r.Message)
		}
	}
}

func TestUsesHTTPClient(t *testing.T) {
	for expr, want := range map[string]bool{
		"http.Allowed().Response()":                                   false,
		"http.Denied('no').Response()":                                false,
		"object.attributes.path == '/'":                               false,
		"object.http.x == 1":                                          false,
		"http.Get('https://x.example')":                               true,
		"http.post('https://x.example', {})":                          true,
		"http.Client('ca').Get('https://x.example')":                  true,
		"[1, 2].exists(i, http.Get('https://x.example') == i)":        true,
		"{'k': http}.k.Get('https://x.example')":                      true,
		"cond ? http.Allowed().Response() : http.Get('u').Response()": true,
	} {
		env, _ := cel.NewEnv(cel.OptionalTypes())
		a, iss := env.Parse(expr)
		if iss.Err() != nil {
			t.Fatalf("%s: %v", expr, iss.Err())
		}
		if got := usesHTTPClient(a.NativeRep().Expr()); got != want {
			t.Errorf("%s: uses the http client %v, want %v", expr, got, want)
		}
	}
}

// TestPayloadFiles: payloads are read from inside the test's filesystem only and
// decoded as Kyverno's CLI decodes them (an Envoy request strictly), each bad one an
// error naming its file; an expectation on a payload that is not there fails.
func TestPayloadFiles(t *testing.T) {
	pols := map[string]string{
		"suite/json.yaml": `apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: json-pol
spec:
  evaluation:
    mode: JSON
  validations:
  - expression: "object.a == 1"
`,
		"suite/envoy.yaml": `apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: envoy-pol
spec:
  evaluation:
    mode: Envoy
  validations:
  - expression: "envoy.Allowed().Response()"
`,
		"outside.json":     `{"a": 1}`,
		"suite/ok.json":    `{"a": 1}`,
		"suite/list.json":  `[{"a": 1}]`,
		"suite/a.txt":      `{"a": 1}`,
		"suite/bomb.yaml":  "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
		"suite/bad.json":   "{\n  \"a\": 1,\n  \"b\": ]\n}",
		"suite/env-x.json": `{"attributes": {"request": {"http": {"method": "GET"}}}, "notAField": 1}`,
	}
	test := func(field, file, policy string) string {
		return fmt.Sprintf(`apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata:
  name: t
policies: [json.yaml, envoy.yaml]
%s: [%q]
results:
- policy: %s
  result: pass
`, field, file, policy)
	}
	for _, c := range []struct {
		name, field, file, policy, want string
	}{
		{"parent", "jsonPayloads", "../../outside.json", "json-pol", "outside.json"},
		{"absolute", "jsonPayloads", "/etc/passwd", "json-pol", "/etc/passwd"},
		{"missing", "jsonPayloads", "nope.json", "json-pol", "suite/nope.json"},
		{"not-an-object", "jsonPayloads", "list.json", "json-pol", "suite/list.json: jsonPayloads: a JSON payload is one object"},
		{"extension", "jsonPayloads", "a.txt", "json-pol", "suite/a.txt: jsonPayloads: a JSON payload is a .json, .yaml or .yml file"},
		{"bad-json", "jsonPayloads", "bad.json", "json-pol", "suite/bad.json:3: jsonPayloads: not JSON"},
		{"alias-bomb", "jsonPayloads", "bomb.yaml", "json-pol", "aliases expand too far"},
		{"envoy-unknown-field", "envoyPayloads", "env-x.json", "envoy-pol", "suite/env-x.json: envoyPayloads: not an Envoy CheckRequest"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := RunTests(context.Background(), payloadFS(test(c.field, c.file, c.policy), pols), "suite", TestOptions{})
			if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), c.want) {
				t.Fatalf("errors %v, want one naming %q", res.Errors, c.want)
			}
			for _, r := range res.Rows {
				if r.Pass {
					t.Errorf("a row passes: %+v", r)
				}
			}
		})
	}
	t.Run("not-named", func(t *testing.T) {
		body := test("jsonPayloads", "ok.json", "json-pol") + "  resources: [other.json]\n"
		res := RunTests(context.Background(), payloadFS(body, pols), "suite", TestOptions{})
		if len(res.Errors) > 0 || len(res.Rows) != 1 || res.Rows[0].Pass || !strings.Contains(res.Rows[0].Message, `"other.json" is not among the test's jsonPayloads`) {
			t.Fatalf("want one failing row naming other.json: %+v, errors %v", res.Rows, res.Errors)
		}
	})
	t.Run("no-payloads", func(t *testing.T) {
		body := strings.Replace(test("jsonPayloads", "ok.json", "envoy-pol"), `jsonPayloads: ["ok.json"]`, "", 1)
		res := RunTests(context.Background(), payloadFS(body, pols), "suite", TestOptions{})
		if len(res.Errors) > 0 || len(res.Rows) != 1 || res.Rows[0].Pass || !strings.Contains(res.Rows[0].Message, "the test has no envoyPayloads") {
			t.Fatalf("want one failing row: %+v, errors %v", res.Rows, res.Errors)
		}
	})
	t.Run("named-as-path", func(t *testing.T) {
		body := test("jsonPayloads", "ok.json", "json-pol") + "  resources: [./ok.json]\n"
		res := RunTests(context.Background(), payloadFS(body, pols), "suite", TestOptions{})
		requirePass(t, res)
	})
}

// TestPayloadPoliciesNotEvaluatedByCheck: check judges Kubernetes objects, so a
// JSON, HTTP or Envoy ValidatingPolicy loads (its CEL compiled), gives no result on
// any object, never a pass, and is named in exactly one notice each; the Kubernetes
// policy beside them still judges.
func TestPayloadPoliciesNotEvaluatedByCheck(t *testing.T) {
	doc := func(kind, name, mode, expr string) string {
		return fmt.Sprintf(`apiVersion: policies.kyverno.io/v1
kind: %s
metadata:
  name: %s
  namespace: default
spec:
  evaluation:
    mode: %s
  validations:
  - expression: %q
`, kind, name, mode, expr)
	}
	fsys := fstest.MapFS{"policies/p.yaml": {Data: []byte(strings.Join([]string{
		doc("ValidatingPolicy", "json-pol", "JSON", "object.kind == 'never'"),
		doc("NamespacedValidatingPolicy", "ns-json-pol", "JSON", "object.kind == 'never'"),
		doc("ValidatingPolicy", "http-pol", "HTTP", "http.Denied('no').Response()"),
		doc("ValidatingPolicy", "envoy-pol", "Envoy", "envoy.Denied(403).Response()"),
		`apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: kube-pol
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE]
      resources: [configmaps]
  validations:
  - expression: "object.metadata.name == 'never'"
`}, "---\n"))}}
	gate, err := OpenGate(GateOptions{NoBuiltin: true, PolicyDirs: []Source{{FS: fsys, Root: "policies", Display: "policies"}}})
	if err != nil {
		t.Fatal(err)
	}
	payload := []string{"json-pol", "ns-json-pol", "http-pol", "envoy-pol"}
	if len(gate.Set.PayloadPolicies) != 4 || len(gate.Set.ValidatingPolicies) != 1 {
		t.Fatalf("%d payload policies, %d Kubernetes ones; want 4 and 1", len(gate.Set.PayloadPolicies), len(gate.Set.ValidatingPolicies))
	}
	for _, name := range payload {
		n := 0
		for _, w := range gate.Warnings {
			if strings.Contains(w, "/"+name+" evaluates") {
				n++
				if !strings.Contains(w, "not evaluated by check") || !strings.HasPrefix(w, "policies/p.yaml:") {
					t.Errorf("notice %q: want the policy's file:line and that check does not evaluate it", w)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s: %d notices, want 1: %q", name, n, gate.Warnings)
		}
	}
	cm := mustResource(t, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: default\ndata:\n  a: b\n")
	rep := gate.CheckResources(context.Background(), []Resource{cm}, CheckOptions{})
	kube := 0
	for _, r := range rep.Results {
		if slices.Contains(payload, r.Policy) {
			t.Errorf("payload policy %s judged a Kubernetes object: %+v", r.Policy, r)
		}
		if r.Policy == "kube-pol" && r.Status == StatusFail {
			kube++
		}
	}
	if kube != 1 {
		t.Errorf("the Kubernetes policy did not judge the ConfigMap: %+v", rep.Results)
	}
	// A broken payload policy is a load error, as any policy.
	bad := fstest.MapFS{"p.yaml": {Data: []byte(doc("ValidatingPolicy", "bad", "HTTP", "envoy.Allowed().Response()"))}}
	if _, err := Load(bad, "p.yaml"); err == nil || !strings.Contains(err.Error(), "ValidatingPolicy/bad") {
		t.Errorf("a policy whose CEL does not compile loads: %v", err)
	}
}

// TestJSONPolicyOnTestResources: as Kyverno's CLI, a JSON-mode policy also judges a
// test's Kubernetes resources, as raw JSON (kyverno test v1.19.1 passes this suite, and
// fails it flipped).
func TestJSONPolicyOnTestResources(t *testing.T) {
	fsys := payloadFS(`apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata:
  name: jres
policies: [policy.yaml]
resources: [cm.yaml]
results:
- {policy: json-on-objects, resources: [blue], result: pass}
- {policy: json-on-objects, resources: [red], result: fail}
`, map[string]string{
		"suite/policy.yaml": `apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: json-on-objects
spec:
  evaluation:
    mode: JSON
  validations:
  - expression: "object.data.team == 'blue'"
`,
		"suite/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: blue, namespace: apps}
data: {team: blue}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: red, namespace: apps}
data: {team: red}
`,
	})
	res := RunTests(context.Background(), fsys, "suite", TestOptions{})
	requirePass(t, res)
	if len(res.Rows) != 2 {
		t.Fatalf("%d rows, want 2: %+v", len(res.Rows), res.Rows)
	}
	over := fstest.MapFS{"suite/" + TestFileName: {Data: flipResults(t, fsys, "suite/"+TestFileName)}}
	if wrong := RunTests(context.Background(), overlayFS{fsys, over}, "suite", TestOptions{}); len(wrong.Errors) > 0 || wrong.Failed() != 2 {
		t.Fatalf("flipped: %d of %d rows fail, errors %v", wrong.Failed(), len(wrong.Rows), wrong.Errors)
	}
}

// TestPayloadPoliciesGitgateDoesNotEvaluate: an Envoy NamespacedValidatingPolicy (the
// CLI evaluates authorization payloads with the cluster-wide kind only) and an unknown
// mode load with a notice and fail every expectation with the reason.
func TestPayloadPoliciesGitgateDoesNotEvaluate(t *testing.T) {
	for mode, want := range map[string]string{
		"Envoy": "not evaluated: NamespacedValidatingPolicy/pol: Envoy authorization payloads are evaluated with a ValidatingPolicy",
		"Grpc":  `not evaluated: NamespacedValidatingPolicy/pol: spec.evaluation.mode "Grpc" is none of Kubernetes, JSON, HTTP, Envoy`,
	} {
		t.Run(mode, func(t *testing.T) {
			fsys := payloadFS(`apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata:
  name: t
policies: [pol.yaml]
envoyPayloads: [req.json]
results:
- {policy: pol, result: pass}
`, map[string]string{
				"suite/pol.yaml": `apiVersion: policies.kyverno.io/v1
kind: NamespacedValidatingPolicy
metadata:
  name: pol
  namespace: default
spec:
  evaluation:
    mode: ` + mode + `
  validations:
  - expression: "envoy.Allowed().Response()"
`,
				"suite/req.json": `{"attributes": {"request": {"http": {"method": "GET"}}}}`,
			})
			res := RunTests(context.Background(), fsys, "suite", TestOptions{})
			if len(res.Errors) > 0 || len(res.Rows) != 1 || res.Rows[0].Pass || !strings.Contains(res.Rows[0].Message, want) {
				t.Fatalf("want one failing row %q: %+v, errors %v", want, res.Rows, res.Errors)
			}
			if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "gitgate does not evaluate it") {
				t.Errorf("warnings %q: want the policy's notice", res.Warnings)
			}
		})
	}
}

// TestPayloadNetworkUseEveryExpression: an http call in a messageExpression or an audit
// annotation is found too, not only in the validations' expressions.
func TestPayloadNetworkUseEveryExpression(t *testing.T) {
	base := func() *policiesv1beta1.ValidatingPolicy {
		p := &policiesv1beta1.ValidatingPolicy{}
		p.Spec.Validations = []admissionregistrationv1.Validation{{Expression: "http.Allowed().Response()"}}
		return p
	}
	if why := payloadNetworkUse(base()); why != "" {
		t.Fatalf("an offline policy refused: %s", why)
	}
	msg := base()
	msg.Spec.Validations[0].MessageExpression = "string(http.Get('https://x.example'))"
	if why := payloadNetworkUse(msg); !strings.Contains(why, "spec.validations[0].messageExpression") {
		t.Errorf("messageExpression: %q", why)
	}
	ann := base()
	ann.Spec.AuditAnnotations = []admissionregistrationv1.AuditAnnotation{{Key: "k", ValueExpression: "string(http.Get('https://x.example'))"}}
	if why := payloadNetworkUse(ann); !strings.Contains(why, "spec.auditAnnotations[0].valueExpression") {
		t.Errorf("auditAnnotations: %q", why)
	}
}
