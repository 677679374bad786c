package policy

import (
	"context"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

// mutexSuite is policy/testdata/mutex: a ClusterPolicy mutateExisting rule (targets by
// namespace variable and label selector) and a mutateExisting MutatingPolicy
// (targetMatchConstraints with an objectSelector), with targetResources. `kyverno test`
// v1.19.1 passes it.
const mutexSuite = TestFileName

func runMutex(t *testing.T, over fstest.MapFS) *TestOutcome {
	t.Helper()
	var fsys = os.DirFS("testdata/mutex")
	if over != nil {
		fsys = overlayFS{fsys, over}
	}
	return RunTests(context.Background(), fsys, mutexSuite, TestOptions{Display: "mutex/" + mutexSuite})
}

// TestMutateExistingSuite: the targets each policy selects are patched and compared
// with the expected objects; a flipped result or a changed expected value fails.
func TestMutateExistingSuite(t *testing.T) {
	res := runMutex(t, nil)
	requirePass(t, res)
	want := map[string]bool{
		"stamp-release|annotate-web-deployments|Deployment/shop/storefront":            false,
		"flag-rotated-settings|flag-rotated-settings|ConfigMap/shop/checkout-settings": false,
	}
	for _, r := range res.Rows {
		k := r.Policy + "|" + r.Rule + "|" + r.Resource
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected row %+v", r)
			continue
		}
		if r.Actual != StatusPass || len(r.Compared) != 1 || !strings.HasPrefix(r.Compared[0], "mutex/patched.yaml:") {
			t.Errorf("row %s: want pass, compared with mutex/patched.yaml, got %+v", k, r)
		}
		want[k] = true
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("no row %s (rows %+v)", k, res.Rows)
		}
	}
	for _, r := range res.Rows {
		if strings.Contains(r.Message, "not-a-real-token") {
			t.Errorf("a row shows the trigger Secret's data: %+v", r)
		}
	}

	t.Run("flipped", func(t *testing.T) {
		wrong := runMutex(t, fstest.MapFS{mutexSuite: {Data: flipResults(t, os.DirFS("testdata/mutex"), mutexSuite)}})
		if len(wrong.Errors) > 0 || len(wrong.Rows) != 2 || wrong.Failed() != 2 {
			t.Fatalf("every result flipped: want 2 failing rows, got %+v %v", wrong.Rows, wrong.Errors)
		}
	})
	t.Run("wrong-object", func(t *testing.T) {
		// The release annotation the ClusterPolicy writes, and the label the
		// MutatingPolicy writes, each expected with another value.
		b, err := os.ReadFile("testdata/mutex/patched.yaml")
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ from, to, row string }{
			{`example.org/release: "2026.12.1"`, `example.org/release: "2026.12.2"`, "Deployment/shop/storefront"},
			{`rotated: "yes"`, `rotated: "no"`, "ConfigMap/shop/checkout-settings"},
		} {
			if !strings.Contains(string(b), tc.from) {
				t.Fatalf("patched.yaml lacks %q", tc.from)
			}
			wrong := runMutex(t, fstest.MapFS{"patched.yaml": {Data: []byte(strings.Replace(string(b), tc.from, tc.to, 1))}})
			failed := 0
			for _, r := range wrong.Rows {
				if r.Pass {
					continue
				}
				failed++
				if r.Resource != tc.row || !strings.Contains(r.Message, "differs from mutex/patched.yaml:") {
					t.Errorf("%s: want only %s failing with the difference, got %+v", tc.to, tc.row, r)
				}
			}
			if failed != 1 {
				t.Errorf("%s: want one failing row, got %+v %v", tc.to, wrong.Rows, wrong.Errors)
			}
		}
	})
	t.Run("target not selected", func(t *testing.T) {
		// orders-db is tier: db, which the rule's selector leaves out: expecting it
		// patched fails, never passes for want of a result.
		test, err := os.ReadFile("testdata/mutex/" + mutexSuite)
		if err != nil {
			t.Fatal(err)
		}
		edited := strings.Replace(string(test), "  - shop/storefront\n", "  - shop/orders-db\n", 1)
		wrong := runMutex(t, fstest.MapFS{mutexSuite: {Data: []byte(edited)}})
		var row *TestRow
		for i, r := range wrong.Rows {
			if r.Policy == "stamp-release" {
				row = &wrong.Rows[i]
			}
		}
		if row == nil || row.Pass || row.Resource != "Deployment/shop/orders-db" || !strings.Contains(row.Message, "did not patch it") ||
			!strings.Contains(row.Message, "mutex/targets.yaml:") {
			t.Fatalf("want a failing row saying the rule did not patch orders-db (targets.yaml:line), got %+v %v", row, wrong.Errors)
		}
	})
	t.Run("trigger not matched", func(t *testing.T) {
		// With the Secret renamed to a ConfigMap the MutatingPolicy's matchConstraints
		// (secrets) select no trigger: its target is not patched, and expecting it is a
		// failure, although Kyverno's CLI evaluates targets for any trigger.
		b, err := os.ReadFile("testdata/mutex/triggers.yaml")
		if err != nil {
			t.Fatal(err)
		}
		edited := strings.Replace(string(b), "kind: Secret\nmetadata:\n  name: api-token", "kind: ConfigMap\nmetadata:\n  name: api-token", 1)
		edited = strings.Replace(edited, "type: Opaque\nstringData:\n  token: not-a-real-token\n", "data:\n  token: x\n", 1)
		if edited == string(b) {
			t.Fatal("triggers.yaml changed")
		}
		wrong := runMutex(t, fstest.MapFS{"triggers.yaml": {Data: []byte(edited)}})
		failed := 0
		for _, r := range wrong.Rows {
			if r.Policy == "flag-rotated-settings" {
				if r.Pass || !strings.Contains(r.Message, "did not patch it") {
					t.Errorf("want the MutatingPolicy's row failing, got %+v", r)
				}
				failed++
			}
		}
		if failed != 1 {
			t.Errorf("want one row of flag-rotated-settings, got %+v %v", wrong.Rows, wrong.Errors)
		}
	})
	t.Run("missing target file", func(t *testing.T) {
		test, err := os.ReadFile("testdata/mutex/" + mutexSuite)
		if err != nil {
			t.Fatal(err)
		}
		edited := strings.Replace(string(test), "- targets.yaml\n", "- no-such-targets.yaml\n", 1)
		out := runMutex(t, fstest.MapFS{mutexSuite: {Data: []byte(edited)}})
		if len(out.Errors) != 1 || !strings.Contains(out.Errors[0].Error(), "targetResources: mutex/no-such-targets.yaml") || len(out.Rows) != 0 {
			t.Fatalf("want the missing targetResources file named, got %v %+v", out.Errors, out.Rows)
		}
	})
	t.Run("strict", func(t *testing.T) {
		test, err := os.ReadFile("testdata/mutex/" + mutexSuite)
		if err != nil {
			t.Fatal(err)
		}
		edited := strings.Replace(string(test), "targetResources:", "targetResource:", 1)
		out := runMutex(t, fstest.MapFS{mutexSuite: {Data: []byte(edited)}})
		if len(out.Errors) != 1 || !strings.Contains(out.Errors[0].Error(), "mutex/kyverno-test.yaml:9:") || !strings.Contains(out.Errors[0].Error(), `unknown field "targetResource"`) {
			t.Fatalf("want the misspelt field at its line, got %v", out.Errors)
		}
	})
}

// TestMutateExistingSecretTarget: a patched Secret target that differs from its
// expected object fails naming the key, never showing either value.
func TestMutateExistingSecretTarget(t *testing.T) {
	files := map[string]string{
		"policy.yaml": `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: tag-secrets}
spec:
  rules:
  - name: tag
    match: {any: [{resources: {kinds: [ConfigMap]}}]}
    mutate:
      targets: [{apiVersion: v1, kind: Secret, namespace: "{{ request.object.metadata.namespace }}"}]
      patchStrategicMerge: {metadata: {labels: {tagged: "true"}}}
`,
		"trigger.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: trigger, namespace: team}\ndata: {a: b}\n",
		"target.yaml":  "apiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: team}\ndata: {password: c2VjcmV0LXZhbHVlLTE=}\n",
		"patched.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: team, labels: {tagged: \"true\"}}\ndata: {password: d3JvbmctdmFsdWUtMg==}\n",
		TestFileName: `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata: {name: secret-target}
policies: [policy.yaml]
resources: [trigger.yaml]
targetResources: [target.yaml]
results:
- {policy: tag-secrets, rule: tag, resources: [team/creds], patchedResources: patched.yaml, result: pass}
`,
	}
	out := runTestFS(t, files)
	if len(out.Errors) > 0 || len(out.Rows) != 1 {
		t.Fatalf("want one row, got %+v %v", out.Rows, out.Errors)
	}
	r := out.Rows[0]
	if r.Pass || r.Resource != "Secret/team/creds" || !strings.Contains(r.Message, "data.password") {
		t.Fatalf("want the Secret's differing key named, got %+v", r)
	}
	for _, v := range []string{"c2VjcmV0LXZhbHVlLTE=", "secret-value-1", "d3JvbmctdmFsdWUtMg==", "wrong-value-2"} {
		if strings.Contains(r.Message, v) {
			t.Errorf("the row shows a Secret value %q: %s", v, r.Message)
		}
	}
	// With the right value the same row passes: the label was patched.
	files["patched.yaml"] = strings.Replace(files["patched.yaml"], "d3JvbmctdmFsdWUtMg==", "c2VjcmV0LXZhbHVlLTE=", 1)
	if out := runTestFS(t, files); len(out.Rows) != 1 || !out.Rows[0].Pass {
		t.Fatalf("want the patched Secret equal to its expected object, got %+v %v", out.Rows, out.Errors)
	}
}

// TestMutateExistingNamespacedPolicy: a NamespacedMutatingPolicy fires for triggers in
// its namespace and patches targets there only.
func TestMutateExistingNamespacedPolicy(t *testing.T) {
	files := map[string]string{
		"policy.yaml": `apiVersion: policies.kyverno.io/v1beta1
kind: NamespacedMutatingPolicy
metadata: {name: mark-settings, namespace: shop}
spec:
  evaluation: {mutateExisting: {enabled: true}}
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [secrets]}]
  targetMatchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [configmaps]}]
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: 'Object{metadata: Object.metadata{labels: Object.metadata.labels{marked: "yes"}}}'
`,
		"trigger.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: token, namespace: shop}\n",
		"targets.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: other}\n",
		"patched.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop, labels: {marked: \"yes\"}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: other, labels: {marked: \"yes\"}}\n",
		TestFileName: `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata: {name: namespaced}
policies: [policy.yaml]
resources: [trigger.yaml]
targetResources: [targets.yaml]
results:
- {policy: mark-settings, isMutatingPolicy: true, resources: [shop/settings, other/settings], patchedResources: patched.yaml, result: pass}
`,
	}
	out := runTestFS(t, files)
	got := map[string]bool{}
	for _, r := range out.Rows {
		got[r.Resource] = r.Pass
	}
	if len(out.Errors) > 0 || len(out.Rows) != 2 || !got["ConfigMap/shop/settings"] || got["ConfigMap/other/settings"] {
		t.Fatalf("want shop/settings patched and other/settings not, got %+v %v", out.Rows, out.Errors)
	}
}
