package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/render"
	"github.com/gitgate/gitgate/report"
)

func TestShardParse(t *testing.T) {
	for in, want := range map[string]shardSpec{"1/1": {1, 1}, "2/3": {2, 3}, " 3/3 ": {3, 3}} {
		got, err := parseShard(in)
		if err != nil || got != want {
			t.Errorf("parseShard(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1", "0/3", "4/3", "-1/3", "1/0", "a/3", "1/x", "1/100000"} {
		if _, err := parseShard(in); err == nil {
			t.Errorf("parseShard(%q): no error", in)
		}
	}
}

func TestShardFlagInvalid(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []string{"0/3", "4/3", "x"} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), []string{"check", "--no-cache", "--shard", s, dir}, &stdout, &stderr)
		if code != exitError || !strings.Contains(stderr.String(), "--shard") || !strings.Contains(stderr.String(), "1 <= I <= N") {
			t.Errorf("--shard %s: exit %d, stderr %q", s, code, stderr.String())
		}
	}
}

func shardTargets(n int) []render.Target {
	var ts []render.Target
	for i := range n {
		ts = append(ts, render.Target{Name: fmt.Sprintf("apps/app-%d", i), Path: fmt.Sprintf("apps/app-%d", i), Kind: "kustomize"})
	}
	return ts
}

// Without costs a target's shard is its own: adding or reordering targets moves none other.
func TestShardAssignStable(t *testing.T) {
	ts := shardTargets(200)
	a := assignShards(ts, nil, 3)
	per := make([]int, 3)
	for _, s := range a {
		per[s]++
	}
	for s, n := range per {
		if n < 40 { // 200/3 ~ 67 by hash
			t.Errorf("shard %d got %d of 200 targets: %v", s+1, n, per)
		}
	}
	more := append([]render.Target{{Name: "apps/new", Path: "apps/new", Kind: "kustomize"}}, ts...)
	slices.Reverse(more[1:])
	b := assignShards(more, nil, 3)
	for i, tg := range ts {
		j := slices.IndexFunc(more, func(m render.Target) bool { return m.Name == tg.Name })
		if a[i] != b[j] {
			t.Errorf("%s moved from shard %d to %d when a target was added", tg.Name, a[i]+1, b[j]+1)
		}
	}
}

// With costs the shards are balanced, and the same costs give the same assignment.
func TestShardAssignByCost(t *testing.T) {
	ts := shardTargets(40)
	costs := make([]float64, len(ts))
	for i := range costs {
		costs[i] = 1
	}
	costs[3], costs[17] = 100, 90 // two heavy targets: never on one shard
	costs[5] = -1                 // unknown: the median
	a := assignShards(ts, costs, 2)
	if a[3] == a[17] {
		t.Errorf("both heavy targets on shard %d", a[3]+1)
	}
	load := make([]float64, 2)
	for i, s := range a {
		c := costs[i]
		if c < 0 {
			c = 1
		}
		load[s] += c
	}
	if d := load[0] - load[1]; d > 12 || d < -12 { // 100+19 against 90+20 at worst
		t.Errorf("loads %v", load)
	}
	if b := assignShards(ts, slices.Clone(costs), 2); !slices.Equal(a, b) {
		t.Errorf("same costs, different assignment: %v, %v", a, b)
	}
}

// shardRun runs gitgate in dir on . and returns the exit code and stderr.
func shardRun(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	// "." as in CI: files shown repo-relative, so errors sort as they do there. Back to
	// the package directory after, for the tests' relative paths.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := os.Chdir(wd); err != nil {
			t.Fatal(err)
		}
	}()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), append(args, "."), &stdout, &stderr)
	return code, stderr.String()
}

// normalJSON reads a JSON report for comparison: notices as a sorted set, the shard
// CRD notice left out (the unsharded check has no such caveat; notSchemaChecked,
// compared, shows whether it mattered).
func normalJSON(t *testing.T, file string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, n := range m["notices"].([]any) {
		ns = append(ns, n.(string))
	}
	slices.Sort(ns)
	m["notices"] = slices.Compact(ns)
	return m
}

func shardRepos(t *testing.T) map[string]string {
	repos := map[string]string{"seed": filepath.Join("..", "..", "testdata", "seed"), "jsonnet": filepath.Join("..", "..", "render", "testdata", "jsonnet", "repo")}
	entries, err := os.ReadDir(filepath.Join("..", "..", "testdata", "shapes"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		repos[e.Name()] = filepath.Join("..", "..", "testdata", "shapes", e.Name())
	}
	// The repository's own errors, which every shard reports: a policy that does not
	// load, an Application defined twice, one with no repoURL; and a target's.
	errs := t.TempDir()
	writeFiles(t, errs, map[string]string{
		"a/kustomization.yaml": "resources: [cm.yaml]\n",
		"a/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"b/kustomization.yaml": "resources: [cm.yaml]\n",
		"b/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
		"c/kustomization.yaml": "resources: [cm.yaml]\n",
		"c/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c\n", // a target's own error, in one shard
		"policies/broken.yaml": "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: broken}\nspec: {rules: [{name: x, match: 5}]}\n",
		"argocd/apps.yaml": "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web, namespace: argocd}\nspec: {source: {path: a}}\n---\n" +
			"apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web, namespace: argocd}\nspec: {source: {path: b}}\n",
	})
	repos["errors"] = errs
	return repos
}

// TestShardMergeEqualsUnsharded: the merged report of N shards (N = 1, 2, 3) is the
// unsharded check's (JSON, exit code), each target in exactly one shard, and every
// format written; over the seed, the shapes and the jsonnet repository (copies, so each
// is its own repository root).
func TestShardMergeEqualsUnsharded(t *testing.T) {
	t.Setenv("CI", "1")
	for name, src := range shardRepos(t) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "repo")
			if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			full := filepath.Join(out, "full.json")
			wantCode, _ := shardRun(t, dir, "check", "--no-cache", "-o", "json="+full)
			want := normalJSON(t, full)
			wts, _ := want["targets"].([]any)
			nTargets := len(wts)
			if nTargets == 0 {
				t.Fatalf("no targets in %s", src)
			}
			for n := 1; n <= 3; n++ {
				var files []string
				seen := map[string]int{}
				for i := 1; i <= n; i++ {
					f := filepath.Join(out, fmt.Sprintf("shard-%d-of-%d.json", i, n))
					code, stderr := shardRun(t, dir, "check", "--no-cache", "--shard", fmt.Sprintf("%d/%d", i, n), "-o", "json="+f)
					if code != 0 && code != exitViolations && code != exitError {
						t.Fatalf("shard %d/%d: exit %d: %s", i, n, code, stderr)
					}
					if !strings.Contains(stderr, fmt.Sprintf("notice: shard %d/%d: ", i, n)) {
						t.Errorf("shard %d/%d does not say which it is: %s", i, n, stderr)
					}
					ts, _ := normalJSON(t, f)["targets"].([]any) // none: an empty shard
					for _, tg := range ts {
						seen[tg.(map[string]any)["name"].(string)+"|"+tg.(map[string]any)["path"].(string)]++
					}
					files = append(files, f)
				}
				if len(seen) != nTargets {
					t.Errorf("%d shards hold %d targets, the unsharded check %d", n, len(seen), nTargets)
				}
				for id, c := range seen {
					if c != 1 {
						t.Errorf("%d shards: target %s in %d shards", n, id, c)
					}
				}
				merged := t.TempDir()
				args := []string{"merge-reports"}
				for _, f := range report.CheckFormats().Names() {
					args = append(args, "-o", f+"="+filepath.Join(merged, f))
				}
				slices.Reverse(files) // any order
				var stdout, stderr bytes.Buffer
				code := run(t.Context(), append(args, files...), &stdout, &stderr)
				if code != wantCode {
					t.Errorf("%d shards merged: exit %d, unsharded %d: %s", n, code, wantCode, stderr.String())
				}
				got := normalJSON(t, filepath.Join(merged, "json"))
				for k := range want {
					if !jsonEqual(want[k], got[k]) {
						t.Errorf("%d shards merged: %q differs:\n--- unsharded\n%s\n--- merged\n%s", n, k, clip(jsonText(want[k])), clip(jsonText(got[k])))
					}
				}
				for _, f := range report.CheckFormats().Names() {
					if st, err := os.Stat(filepath.Join(merged, f)); err != nil || st.Size() == 0 {
						t.Errorf("%d shards merged: -o %s not written (%v)", n, f, err)
					}
				}
			}
		})
	}
}

func jsonText(v any) string { b, _ := json.MarshalIndent(v, "", " "); return string(b) }

func jsonEqual(a, b any) bool { return jsonText(a) == jsonText(b) }
