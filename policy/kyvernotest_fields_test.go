package policy

import (
	"context"
	"os"
	"path"
	"strings"
	"testing"
	"testing/fstest"
)

// The suites of policy/testdata/ktest were written for these tests; `kyverno test`
// v1.19.1 passes each of them as they are (run by hand when they were written: every
// expected result, including the error of a canned 503 and the skip of a rule whose
// namespaceSelector the cluster's Namespace labels do not match).
var fieldSuites = []string{"apicall", "globalcontext", "cluster"}

func runKtest(t *testing.T, over fstest.MapFS, dir string) *TestOutcome {
	t.Helper()
	var fsys = os.DirFS("testdata/ktest")
	if over != nil {
		fsys = overlayFS{fsys, over}
	}
	return RunTests(context.Background(), fsys, dir, TestOptions{Display: dir})
}

// editKtest is a suite's file with edit applied to each document.
func editKtest(t *testing.T, file string, edit func(map[string]any)) fstest.MapFS {
	return fstest.MapFS{file: {Data: editDocs(t, os.DirFS("testdata/ktest"), file, edit)}}
}

func rowOf(res *TestOutcome, policy, rule, resource string) (TestRow, bool) {
	for _, r := range res.Rows {
		if r.Policy == policy && r.Rule == rule && r.Resource == resource {
			return r, true
		}
	}
	return TestRow{}, false
}

// TestKyvernoTestFieldSuites: each suite using apiCallResponses, globalContextEntries or
// clusterResources passes; with every expected result flipped every evaluated row
// fails; with the field's data changed the rows that depend on it fail; without the
// field they never pass where the data decided them.
func TestKyvernoTestFieldSuites(t *testing.T) {
	for _, dir := range fieldSuites {
		t.Run(dir, func(t *testing.T) {
			res := runKtest(t, nil, dir)
			requirePass(t, res)
			file := path.Join(dir, TestFileName)
			wrong := runKtest(t, fstest.MapFS{file: {Data: flipResults(t, os.DirFS("testdata/ktest"), file)}}, dir)
			if len(wrong.Errors) > 0 {
				t.Fatalf("the flipped copy does not run: %v", wrong.Errors)
			}
			for _, r := range wrong.Rows {
				if r.Pass && r.Actual != StatusSkip {
					t.Errorf("expected result flipped, yet %s/%s on %s passes: %+v", r.Policy, r.Rule, r.Resource, r)
				}
			}
			if wrong.Failed() == 0 {
				t.Fatal("every expected result flipped, yet nothing fails")
			}
		})
	}
}

// failsRow asserts the row exists and does not pass.
func failsRow(t *testing.T, res *TestOutcome, policy, rule, resource, why string) {
	t.Helper()
	r, ok := rowOf(res, policy, rule, resource)
	if !ok {
		t.Fatalf("no row %s/%s on %s (rows %+v, errors %v)", policy, rule, resource, res.Rows, res.Errors)
	}
	if r.Pass {
		t.Errorf("%s: %s/%s on %s still passes: %+v", why, policy, rule, resource, r)
	}
}

func TestKyvernoTestAPICallResponses(t *testing.T) {
	file := "apicall/" + TestFileName
	// The scanner now refuses approved-pod and the allow list names another registry.
	res := runKtest(t, editKtest(t, file, func(doc map[string]any) {
		for _, e := range doc["apiCallResponses"].([]any) {
			m := e.(map[string]any)
			body := m["response"].(map[string]any)["body"].(map[string]any)
			switch m["url"] {
			case "https://scanner.gitgate.invalid/v1/pods/approved-pod":
				body["verdict"] = map[string]any{"approved": false}
			case "https://allow-list.gitgate.invalid/registries":
				body["prefixes"] = []any{"elsewhere.invalid/"}
			}
		}
	}), "apicall")
	failsRow(t, res, "scanner-gate", "scanner-approves", "Pod/shop/approved-pod", "apiCall mock changed")
	failsRow(t, res, "registry-allow-list", "registry-allow-list", "Pod/shop/approved-pod", "http mock changed")
	if r, _ := rowOf(res, "scanner-gate", "team-is-active", "Pod/shop/approved-pod"); !r.Pass {
		t.Errorf("a row whose mock did not change must still pass: %+v", r)
	}

	// Without the canned responses nothing answers: no row that needs one passes,
	// and nothing is contacted (the CEL http library refuses every URL).
	res = runKtest(t, editKtest(t, file, func(doc map[string]any) { delete(doc, "apiCallResponses") }), "apicall")
	for _, rr := range [][2]string{{"scanner-gate", "scanner-approves"}, {"scanner-gate", "team-is-active"}, {"registry-allow-list", "registry-allow-list"}} {
		failsRow(t, res, rr[0], rr[1], "Pod/shop/approved-pod", "no apiCallResponses")
	}

	// Invalid entries are the test's error, as the CLI refuses them.
	for _, tc := range []struct {
		edit func(map[string]any)
		want string
	}{
		{func(doc map[string]any) {
			doc["apiCallResponses"] = append(doc["apiCallResponses"].([]any), doc["apiCallResponses"].([]any)[0])
		}, "duplicate entry"},
		{func(doc map[string]any) {
			doc["apiCallResponses"].([]any)[0].(map[string]any)["urlPath"] = "/x"
		}, "mutually exclusive"},
	} {
		res := runKtest(t, editKtest(t, file, tc.edit), "apicall")
		if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), tc.want) || !strings.Contains(res.Errors[0].Error(), file) {
			t.Errorf("want one error naming %s and saying %q, got %v", file, tc.want, res.Errors)
		}
	}
}

func TestKyvernoTestGlobalContextEntries(t *testing.T) {
	file := "globalcontext/" + TestFileName
	res := runKtest(t, editKtest(t, file, func(doc map[string]any) {
		for _, e := range doc["globalContextEntries"].([]any) {
			m := e.(map[string]any)
			switch m["name"] {
			case "tier-settings": // small now allows 1 replica
				m["data"].(map[string]any)["settings"].(map[string]any)["tiers"].([]any)[0].(map[string]any)["maxReplicas"] = 1
			case "owner-directory": // ada leaves
				delete(m["resources"].([]any)[0].(map[string]any)["data"].(map[string]any), "ada")
			}
		}
	}), "globalcontext")
	failsRow(t, res, "tier-limits", "replicas-within-tier", "Deployment/finance/payroll", "data changed")
	failsRow(t, res, "owner-is-known", "owner-is-known", "Deployment/finance/payroll", "inline resources changed")

	// resourceFiles are read from the test's directory: a changed file changes verdicts.
	over := fstest.MapFS{"globalcontext/running.yaml": {Data: []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: payroll, namespace: finance}\n")}}
	res = runKtest(t, over, "globalcontext")
	failsRow(t, res, "tier-limits", "name-is-free", "Deployment/finance/payroll", "resource file changed")
	failsRow(t, res, "tier-limits", "name-is-free", "Deployment/finance/ledger", "resource file changed")

	// Without the entries the lookups are not loaded, as in the CLI: no row the data
	// decided passes.
	res = runKtest(t, editKtest(t, file, func(doc map[string]any) { delete(doc, "globalContextEntries") }), "globalcontext")
	failsRow(t, res, "tier-limits", "name-is-free", "Deployment/finance/payroll", "no globalContextEntries")
	failsRow(t, res, "owner-is-known", "owner-is-known", "Deployment/finance/payroll", "no globalContextEntries")

	// A resource file outside the test's filesystem is refused.
	res = runKtest(t, editKtest(t, file, func(doc map[string]any) {
		doc["globalContextEntries"].([]any)[1].(map[string]any)["resourceFiles"] = []any{"../../../../../etc/passwd"}
	}), "globalcontext")
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), "resourceFiles") || len(res.Rows) != 0 {
		t.Errorf("a resource file out of the tree must be the test's error, got %v, rows %+v", res.Errors, res.Rows)
	}
}

func TestKyvernoTestClusterResources(t *testing.T) {
	file := "cluster/cluster.yaml"
	// The shop's limit drops to 1: web breaks it in both policies.
	res := runKtest(t, editKtest(t, file, func(doc map[string]any) {
		for _, o := range doc["spec"].(map[string]any)["resources"].([]any) {
			m := o.(map[string]any)
			md := m["metadata"].(map[string]any)
			if m["kind"] == "ConfigMap" && md["namespace"] == "shop" {
				m["data"] = map[string]any{"maxReplicas": "1"}
			}
			if m["kind"] == "BackupClass" && md["name"] == "gold" {
				m["spec"] = map[string]any{"retentionDays": 1}
			}
		}
	}), "cluster")
	failsRow(t, res, "cluster-lookups", "replicas-within-quota", "Deployment/shop/web", "configMap changed")
	failsRow(t, res, "cluster-lookups", "backup-class-retains-a-week", "Deployment/shop/web", "custom resource changed")
	failsRow(t, res, "cluster-lookups-cel", "cluster-lookups-cel", "Deployment/shop/web", "configMap changed")

	// The namespace labels come from the cluster's Namespace: lab labelled prod makes
	// the backup rule apply to toy, whose class does not exist.
	res = runKtest(t, editKtest(t, file, func(doc map[string]any) {
		for _, o := range doc["spec"].(map[string]any)["resources"].([]any) {
			m := o.(map[string]any)
			if m["kind"] == "Namespace" && m["metadata"].(map[string]any)["name"] == "lab" {
				m["metadata"].(map[string]any)["labels"] = map[string]any{"env": "prod"}
			}
		}
	}), "cluster")
	if r, _ := rowOf(res, "cluster-lookups", "backup-class-retains-a-week", "Deployment/lab/toy"); r.Pass || r.Actual == StatusSkip {
		t.Errorf("lab labelled prod: the rule must apply to toy and the skip expectation fail: %+v", r)
	}

	// A resource whose Namespace is not in the cluster fails the test, as in the CLI.
	res = runKtest(t, editKtest(t, file, func(doc map[string]any) {
		spec := doc["spec"].(map[string]any)
		var keep []any
		for _, o := range spec["resources"].([]any) {
			if m := o.(map[string]any); m["kind"] != "Namespace" || m["metadata"].(map[string]any)["name"] != "shop" {
				keep = append(keep, o)
			}
		}
		spec["resources"] = keep
	}), "cluster")
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), `failed to get the resource's namespace`) || len(res.Rows) != 0 {
		t.Errorf("a missing Namespace must fail the test, got %v, rows %+v", res.Errors, res.Rows)
	}

	// Without clusterResources the lookups are not loaded: no row they decided passes.
	res = runKtest(t, editKtest(t, "cluster/"+TestFileName, func(doc map[string]any) { delete(doc, "clusterResources") }), "cluster")
	failsRow(t, res, "cluster-lookups", "replicas-within-quota", "Deployment/shop/batch", "no clusterResources")
	failsRow(t, res, "cluster-lookups-cel", "cluster-lookups-cel", "Deployment/shop/web", "no clusterResources")

	// A cluster resources file is decoded strictly.
	res = runKtest(t, fstest.MapFS{file: {Data: []byte("apiVersion: cli.kyverno.io/v1alpha1\nkind: ClusterResource\nspec:\n  resource: []\n")}}, "cluster")
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), `cluster/cluster.yaml:4:3: unknown field "spec.resource"`) {
		t.Errorf("want the unknown field at its line, got %v", res.Errors)
	}
}

// TestKyvernoCLIFieldSuitesFlipped: the suites of Kyverno's test/cli using these
// fields (listed in kyverno-cli-suites.txt, where they must pass) fail with every
// expected result flipped.
func TestKyvernoCLIFieldSuitesFlipped(t *testing.T) {
	root := kyvernoCLITests(t)
	base := os.DirFS(root)
	n := 0
	for _, dir := range suiteList(t, "testdata/kyverno-cli-suites.txt") {
		file := path.Join(dir, TestFileName)
		data, err := os.ReadFile(path.Join(root, file))
		if err != nil || !strings.Contains(string(data), "clusterResources:") && !strings.Contains(string(data), "apiCallResponses:") && !strings.Contains(string(data), "globalContextEntries:") {
			continue
		}
		n++
		t.Run(dir, func(t *testing.T) {
			wrong := RunTests(context.Background(), overlayFS{base, fstest.MapFS{file: {Data: flipResults(t, base, file)}}}, dir, TestOptions{Display: dir})
			if len(wrong.Errors) > 0 {
				t.Fatalf("the flipped copy does not run: %v", wrong.Errors)
			}
			if wrong.Failed() == 0 {
				t.Fatalf("every expected result flipped, yet all %d rows pass", len(wrong.Rows))
			}
		})
	}
	if n < 9 {
		t.Errorf("only %d suites using the fields listed", n)
	}
}

// TestKyvernoTestServiceCallRefused: with clusterResources Kyverno's loader would send
// an apiCall's service request (the CLI does); gitgate refuses it by name and answers
// from apiCallResponses only.
func TestKyvernoTestServiceCallRefused(t *testing.T) {
	files := map[string]string{
		"policy.yaml": `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: ask}
spec:
  background: false
  rules:
  - name: service
    match: {any: [{resources: {kinds: [ConfigMap]}}]}
    context:
    - name: answer
      apiCall: {service: {url: "https://unanswered.gitgate.invalid/{{ request.object.metadata.name }}"}}
    validate:
      deny: {conditions: {any: [{key: "{{ answer.ok }}", operator: NotEquals, value: true}]}}
`,
		"resources.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: apps}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: apps}\n",
		"cluster.yaml":   "apiVersion: cli.kyverno.io/v1alpha1\nkind: ClusterResource\nspec:\n  resources:\n  - {apiVersion: v1, kind: Namespace, metadata: {name: apps}}\n",
		TestFileName: `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata: {name: service}
policies: [policy.yaml]
resources: [resources.yaml]
clusterResources: [cluster.yaml]
apiCallResponses:
- url: https://unanswered.gitgate.invalid/a
  response: {body: {ok: true}}
results:
- {policy: ask, rule: service, resources: [apps/a], kind: ConfigMap, result: pass}
- {policy: ask, rule: service, resources: [apps/b], kind: ConfigMap, result: pass}
`,
	}
	out := runTestFS(t, files)
	a, _ := rowOf(out, "ask", "service", "ConfigMap/apps/a")
	b, _ := rowOf(out, "ask", "service", "ConfigMap/apps/b")
	if !a.Pass {
		t.Errorf("the answered call must pass: %+v (errors %v)", a, out.Errors)
	}
	if b.Pass || b.Actual != StatusError || !strings.Contains(b.Message, "which gitgate never contacts") {
		t.Errorf("the unanswered call must be an error saying it is not made: %+v", b)
	}
}
