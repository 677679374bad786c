package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/render"
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

// A CRD one shard renders is not seen by another: the shard whose custom resources went
// unchecked says so, and so does the merged report; listed under crds:, every shard
// validates them and the merge equals the unsharded check.
func TestMergeShardsCrossCRD(t *testing.T) {
	t.Setenv("CI", "1")
	quota, err := os.ReadFile("../../testdata/crds/quota.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a-apps/kustomization.yaml": "resources: [quota.yaml]\n",
		"a-apps/quota.yaml":         "apiVersion: limits.gitgate.dev/v1\nkind: Quota\nmetadata: {name: q}\nspec: {min: 3, max: 1, team: team-a}\n",
		"z-crds/kustomization.yaml": "resources: [quota.yaml]\n",
		"z-crds/quota.yaml":         string(quota),
	})
	n := 2
	for ; n < 10; n++ { // a split that separates the two targets
		a := assignShards([]render.Target{{Name: "a-apps", Path: "a-apps"}, {Name: "z-crds", Path: "z-crds"}}, nil, n)
		if a[0] != a[1] {
			break
		}
	}
	shards := func() []string {
		var files []string
		for i := 1; i <= n; i++ {
			f := filepath.Join(t.TempDir(), "shard.json")
			shardRun(t, dir, "check", "--no-cache", "--no-builtin", "--shard", fmt.Sprintf("%d/%d", i, n), "-o", "json="+f)
			files = append(files, f)
		}
		return files
	}
	merged := filepath.Join(t.TempDir(), "merged.json")
	run(t.Context(), append([]string{"merge-reports", "-o", "json=" + merged}, shards()...), io.Discard, io.Discard)
	b, _ := os.ReadFile(merged)
	if !strings.Contains(string(b), shardCRDNotice) || !strings.Contains(string(b), "limits.gitgate.dev/v1/Quota") {
		t.Errorf("%d shards, the CRD in another shard: no notice or no unchecked Quota in the merged report:\n%s", n, b)
	}
	writeFiles(t, dir, map[string]string{".gitgate.yaml": "crds: [z-crds/quota.yaml]\n"})
	full := filepath.Join(t.TempDir(), "full.json")
	shardRun(t, dir, "check", "--no-cache", "--no-builtin", "-o", "json="+full)
	run(t.Context(), append([]string{"merge-reports", "-o", "json=" + merged}, shards()...), io.Discard, io.Discard)
	want, got := normalJSON(t, full), normalJSON(t, merged)
	if !strings.Contains(jsonText(want["results"]), "min must not exceed max") {
		t.Fatalf("the unsharded check did not validate the Quota: %s", jsonText(want))
	}
	for k := range want {
		if !jsonEqual(want[k], got[k]) {
			t.Errorf("with crds: %q differs:\n--- unsharded\n%s\n--- merged\n%s", k, clip(jsonText(want[k])), clip(jsonText(got[k])))
		}
	}
}
