package main

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/report"
)

// shardFiles runs the n shards of a check of the seed (a copy) and returns their JSON
// reports and the copy; cache "" runs them --no-cache.
func shardFiles(t *testing.T, n int, cache string) ([]string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "testdata", "seed"))); err != nil {
		t.Fatal(err)
	}
	var files []string
	for i := 1; i <= n; i++ {
		f := filepath.Join(t.TempDir(), fmt.Sprintf("shard-%d.json", i))
		args := []string{"check", "--shard", fmt.Sprintf("%d/%d", i, n), "-o", "json=" + f}
		if cache == "" {
			args = append(args, "--no-cache")
		} else {
			args = append(args, "--cache-dir", cache)
		}
		shardRun(t, dir, args...)
		files = append(files, f)
	}
	return files, dir
}

func mergeRun(t *testing.T, files ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), append([]string{"merge-reports", "-o", "json"}, files...), &stdout, &stderr)
	return code, stderr.String()
}

func TestMergeRefuses(t *testing.T) {
	t.Setenv("CI", "1")
	files, dir := shardFiles(t, 3, "")
	if code, stderr := mergeRun(t, files[0], files[2]); code != exitError || !strings.Contains(stderr, "shard 2/3 missing") {
		t.Errorf("a missing shard: exit %d, %s", code, stderr)
	}
	if code, stderr := mergeRun(t, files[0], files[1], files[1], files[2]); code != exitError || !strings.Contains(stderr, "shard 2/3 given twice") {
		t.Errorf("a shard twice: exit %d, %s", code, stderr)
	}
	full := filepath.Join(t.TempDir(), "full.json")
	shardRun(t, dir, "check", "--no-cache", "-o", "json="+full)
	if code, stderr := mergeRun(t, full); code != exitError || !strings.Contains(stderr, "not a shard's report") {
		t.Errorf("an unsharded report: exit %d, %s", code, stderr)
	}
	two, _ := shardFiles(t, 2, "")
	if code, stderr := mergeRun(t, files[0], two[1]); code != exitError || !strings.Contains(stderr, "not the same split") {
		t.Errorf("shards of two splits: exit %d, %s", code, stderr)
	}
	// Another plan: a target added to the repository between the shards' runs.
	if err := os.MkdirAll(filepath.Join(dir, "extra"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "extra", "kustomization.yaml"), []byte("resources: []\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.json")
	shardRun(t, dir, "check", "--no-cache", "--shard", "2/3", "-o", "json="+other)
	if code, stderr := mergeRun(t, files[0], other, files[2]); code != exitError || !strings.Contains(stderr, "different runs") {
		t.Errorf("shards of two plans: exit %d, %s", code, stderr)
	}
}

// With a verdict cache that recorded the targets' costs the shards balance by them, and
// still merge into the unsharded report.
func TestMergeShardsByCost(t *testing.T) {
	t.Setenv("CI", "1")
	cache := t.TempDir()
	_, dir := shardFiles(t, 0, "")
	full := filepath.Join(t.TempDir(), "full.json")
	shardRun(t, dir, "check", "--cache-dir", cache, "-o", "json="+full) // records every target's cost
	var files []string
	for i := 1; i <= 2; i++ {
		f := filepath.Join(t.TempDir(), fmt.Sprintf("shard-%d.json", i))
		_, stderr := shardRun(t, dir, "check", "--cache-dir", cache, "--shard", fmt.Sprintf("%d/2", i), "-o", "json="+f)
		if !strings.Contains(stderr, "assigned by recorded cost") {
			t.Errorf("shard %d/2 not balanced by cost: %s", i, stderr)
		}
		files = append(files, f)
	}
	merged := filepath.Join(t.TempDir(), "merged.json")
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), append([]string{"merge-reports", "-o", "json=" + merged}, files...), &stdout, &stderr); code != exitError { // the seed has errors
		t.Fatalf("merge-reports: exit %d: %s", code, stderr.String())
	}
	want, got := normalJSON(t, full), normalJSON(t, merged)
	for k := range want {
		if !jsonEqual(want[k], got[k]) {
			t.Errorf("%q differs:\n--- unsharded\n%s\n--- merged\n%s", k, clip(jsonText(want[k])), clip(jsonText(got[k])))
		}
	}
}

// crossCRDRepo is a repository where custom resources need a CRD another target
// renders (a-apps' Quota and Gizmo: z-crds' and x-gizmo's CRDs, the latter's kind
// written escaped), or that no target renders (b-orphans' Gadget),
// beside targets that cannot render a CRD (plain; a-apps and b-orphans themselves) and
// targets that must be rendered to know (a chart, a kustomization with a backslash).
func crossCRDRepo(t *testing.T) string {
	t.Helper()
	quota, err := os.ReadFile("../../testdata/crds/quota.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a-apps/kustomization.yaml": "resources: [quota.yaml, gizmo.yaml]\n",
		"a-apps/gizmo.yaml":         "apiVersion: toys.gitgate.dev/v1\nkind: Gizmo\nmetadata: {name: g}\nspec: {size: 9}\n",
		// A CRD whose kind is written escaped: no file of its target holds the word.
		"x-gizmo/kustomization.yaml": "resources: [crd.yaml]\n",
		"x-gizmo/crd.yaml": "apiVersion: apiextensions.k8s.io/v1\nkind: \"CustomResource\\x44efinition\"\nmetadata: {name: gizmos.toys.gitgate.dev}\n" +
			"spec: {group: toys.gitgate.dev, scope: Namespaced, names: {kind: Gizmo, plural: gizmos}, versions: [{name: v1, served: true, storage: true, " +
			"schema: {openAPIV3Schema: {type: object, properties: {spec: {type: object, properties: {size: {type: integer, maximum: 5}}}}}}}]}\n",
		"a-apps/quota.yaml":            "apiVersion: limits.gitgate.dev/v1\nkind: Quota\nmetadata: {name: q}\nspec: {min: 3, max: 1, team: team-a}\n",
		"b-orphans/kustomization.yaml": "resources: [gadget.yaml]\n",
		"b-orphans/gadget.yaml":        "apiVersion: toys.gitgate.dev/v1\nkind: Gadget\nmetadata: {name: g}\nspec: {size: 3}\n",
		"z-crds/kustomization.yaml":    "resources: [quota.yaml]\n",
		"z-crds/quota.yaml":            string(quota),
		// A CRD the set cannot take: its target's shard reports it, once.
		"y-bad/kustomization.yaml": "resources: [crd.yaml]\n",
		"y-bad/crd.yaml": "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: bads.bad.gitgate.dev}\n" +
			"spec: {group: bad.gitgate.dev, bogus: 1, scope: Namespaced, names: {kind: Bad, plural: bads}, versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]}\n",
		"plain/kustomization.yaml":   "resources: [cm.yaml]\n",
		"plain/cm.yaml":              "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\ndata: {a: b}\n",
		"escaped/kustomization.yaml": "resources: [cm.yaml]\n",
		"escaped/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: escaped}\ndata: {a: \"tab\\there\"}\n",
		"chart/Chart.yaml":           "apiVersion: v2\nname: chart\nversion: 0.1.0\n",
		"chart/templates/cm.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: chart}\ndata: {a: b}\n",
	})
	return dir
}

// mustRender are crossCRDRepo's targets no proof spares from rendering.
var mustRender = map[string]bool{"z-crds": true, "y-bad": true, "x-gizmo": true, "escaped": true, "chart": true}

// A shard whose custom resources' CRD another shard's target renders finds it and
// validates them as the unsharded check does: for N = 1..4 the merged report is the
// unsharded one in every format, no shard says anything of CRDs, a kind with a CRD
// nowhere stays not schema-checked as unsharded; only the shards that need CRDs look,
// rendering only the other targets no proof spares (cold), then none (the verdict
// cache's records, stored by an unsharded check).
func TestMergeShardsCrossCRD(t *testing.T) {
	t.Setenv("CI", "1")
	dir := crossCRDRepo(t)
	formats := report.CheckFormats().Names()
	outArgs := func(dir string) []string {
		var args []string
		for _, f := range formats {
			args = append(args, "-o", f+"="+filepath.Join(dir, f))
		}
		return args
	}
	full := t.TempDir()
	wantCode, _ := shardRun(t, dir, append([]string{"check", "--no-cache", "--no-builtin"}, outArgs(full)...)...)
	want := normalJSON(t, filepath.Join(full, "json"))
	if !strings.Contains(jsonText(want["results"]), "min must not exceed max") || !strings.Contains(jsonText(want["results"]), "Gizmo") || !strings.Contains(jsonText(want["notSchemaChecked"]), "toys.gitgate.dev/v1/Gadget") {
		t.Fatalf("the unsharded check did not validate the Quota or did not leave the Gadget unchecked: %s", jsonText(want))
	}
	if !strings.Contains(jsonText(want["errors"]), "bads.bad.gitgate.dev") {
		t.Fatalf("the unsharded check does not report the CRD it cannot take: %s", jsonText(want["errors"]))
	}
	cache := t.TempDir()
	for _, cached := range []bool{false, true} {
		flags := []string{"check", "--no-builtin", "--no-cache"}
		if cached {
			flags = []string{"check", "--no-builtin", "--cache-dir", cache}
			shardRun(t, dir, "check", "--no-builtin", "--cache-dir", cache, "-o", "json="+filepath.Join(t.TempDir(), "x.json")) // stores every target's CRD record
		}
		for n := 1; n <= 4; n++ {
			var files []string
			for i := 1; i <= n; i++ {
				f := filepath.Join(t.TempDir(), "shard.json")
				how := map[string]string{}
				shardCRDTrace = func(target, h string) { how[target] = h }
				_, stderr := shardRun(t, dir, append(flags, "--shard", fmt.Sprintf("%d/%d", i, n), "-o", "json="+f)...)
				shardCRDTrace = nil
				if strings.Contains(stderr, "not schema-checked") {
					t.Errorf("cached %v, shard %d/%d speaks of unchecked objects: %s", cached, i, n, stderr)
				}
				mine := map[string]bool{}
				ts, _ := normalJSON(t, f)["targets"].([]any) // none: an empty shard
				for _, tg := range ts {
					mine[tg.(map[string]any)["name"].(string)] = true
				}
				// Cold, a shard looks when a kind is left without a CRD; warm, when an
				// entry was judged against CRDs the shard's own targets do not render.
				look := n > 1 && (mine["b-orphans"] || mine["a-apps"] && !(mine["z-crds"] && mine["x-gizmo"]))
				if cached {
					look = n > 1 && (mine["b-orphans"] || mine["a-apps"]) && !(mine["z-crds"] && mine["x-gizmo"] && mine["y-bad"])
				}
				wantHow := map[string]string{}
				if look {
					for _, tg := range want["targets"].([]any) {
						name := tg.(map[string]any)["name"].(string)
						switch {
						case mine[name]:
						case cached:
							wantHow[name] = "cached"
						case mustRender[name]:
							wantHow[name] = "rendered"
						default:
							wantHow[name] = "skipped"
						}
					}
				}
				if !maps.Equal(how, wantHow) {
					t.Errorf("cached %v, shard %d/%d (targets %v): other targets' CRDs known as %v, want %v", cached, i, n, mine, how, wantHow)
				}
				files = append(files, f)
			}
			merged := t.TempDir()
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), append(append([]string{"merge-reports"}, outArgs(merged)...), files...), &stdout, &stderr); code != wantCode {
				t.Errorf("cached %v, %d shards merged: exit %d, unsharded %d: %s", cached, n, code, wantCode, stderr.String())
			}
			for _, f := range formats {
				a, _ := os.ReadFile(filepath.Join(full, f))
				b, err := os.ReadFile(filepath.Join(merged, f))
				if err != nil || len(a) == 0 || !bytes.Equal(a, b) {
					t.Errorf("cached %v, %d shards merged: -o %s differs (%v):\n--- unsharded\n%s\n--- merged\n%s", cached, n, f, err, clip(string(a)), clip(string(b)))
				}
			}
		}
	}
}
