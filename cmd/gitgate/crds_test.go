package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCheckCRDs: crds: in .gitgate.yaml and --crds load CRDs (testdata/crds, written
// for the tests), so a custom resource is validated as the API server would (a typo is
// a blocking finding at its line and column) instead of "not schema-checked"; a crds:
// path out of the repository is an error at its line, and a CRD the API server refuses
// is an error naming its file:line.
func TestCheckCRDs(t *testing.T) {
	t.Setenv("CI", "1")
	rollout, err := os.ReadFile("../../testdata/crds/rollout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	quota, err := os.ReadFile("../../testdata/crds/quota.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		".gitgate.yaml":           "crds:\n  - crds\n",
		"crds/rollout.yaml":       string(rollout),
		"apps/kustomization.yaml": "resources: [rollout.yaml, quota.yaml]\n",
		"apps/rollout.yaml": "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: web, namespace: shop}\nspec:\n" +
			"  replicass: 3\n  selector: {matchLabels: {app: web}}\n  strategy: {canary: {steps: [{setWeight: 20}]}}\n",
		"apps/quota.yaml": "apiVersion: limits.gitgate.dev/v1\nkind: Quota\nmetadata: {name: q}\nspec: {min: 3, max: 1, team: team-a}\n",
	})
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"quota.yaml": string(quota)})
	t.Chdir(dir)
	runCheck := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"check", "--no-builtin"}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, stderr := runCheck(".")
	if code != exitViolations || !strings.Contains(out, `apps/rollout.yaml:5:3: Rollout/shop/web: schema/rollout: strict decoding error: unknown field "spec.replicass"`) {
		t.Errorf("crds: exit %d\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(out, "1 not schema-checked (no schema for limits.gitgate.dev/v1/Quota)") {
		t.Errorf("the Quota (no CRD) must be the only kind not schema-checked (the Rollout and the CRD itself are):\n%s", out)
	}
	// --crds adds the user's own file, outside the repository: the Quota's CEL rule now judges it.
	code, out, stderr = runCheck("--crds", filepath.Join(outside, "quota.yaml"), ".")
	if code != exitViolations || !strings.Contains(out, "min must not exceed max") || strings.Contains(out, "not schema-checked") {
		t.Errorf("--crds: exit %d\n%s\n%s", code, out, stderr)
	}
	// A crds: entry that climbs out of the repository is refused at its line.
	writeFiles(t, dir, map[string]string{".gitgate.yaml": "registries: []\ncrds:\n  - crds\n  - ../elsewhere\n"})
	code, _, stderr = runCheck(".")
	if code != exitError || !strings.Contains(stderr, ".gitgate.yaml:4:5: crds[1]") || !strings.Contains(stderr, "--crds") {
		t.Errorf("crds: ../elsewhere: exit %d\n%s", code, stderr)
	}
	// A CRD the API server refuses is named at its file:line.
	bad := strings.Replace(string(rollout), "  name: rollouts.argoproj.io", "  name: rollout.argoproj.io", 1)
	writeFiles(t, dir, map[string]string{".gitgate.yaml": "crds: [crds]\n", "crds/rollout.yaml": bad})
	line := strings.Count(bad[:strings.Index(bad, "name: rollout.argoproj.io")], "\n") + 1
	code, _, stderr = runCheck(".")
	if code != exitError || !strings.Contains(stderr, "crds/rollout.yaml:"+strconv.Itoa(line)+":") || !strings.Contains(stderr, `must be spec.names.plural+"."+spec.group`) {
		t.Errorf("invalid CRD: exit %d\n%s", code, stderr)
	}
}

// TestCheckRenderedCRDs: a CRD that one target renders (a kustomization of CRDs, as a
// platform repository keeps them beside their operator) validates the custom resources
// of another target, whichever renders first: the CR with a broken CEL rule is a
// blocking finding with the rule's message, and nothing is "not schema-checked".
func TestCheckRenderedCRDs(t *testing.T) {
	t.Setenv("CI", "1")
	quota, err := os.ReadFile("../../testdata/crds/quota.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		// "a-apps" sorts and renders before "z-crds".
		"a-apps/kustomization.yaml": "resources: [quota.yaml]\n",
		"a-apps/quota.yaml":         "apiVersion: limits.gitgate.dev/v1\nkind: Quota\nmetadata: {name: q}\nspec: {min: 3, max: 1, team: team-a}\n",
		"z-crds/kustomization.yaml": "resources: [quota.yaml]\n",
		"z-crds/quota.yaml":         string(quota),
	})
	t.Chdir(dir)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"check", "--no-builtin", "--workers", "1", "."}, &out, &errb)
	if code != exitViolations || !strings.Contains(out.String(), "a-apps/quota.yaml") || !strings.Contains(out.String(), "min must not exceed max") ||
		strings.Contains(out.String(), "not schema-checked") {
		t.Fatalf("exit %d, want the Quota's CEL finding and nothing unchecked\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
}
