package main

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type shardIdentity struct {
	Index, Total     int
	Commit           string
	Dirty            bool
	Changes          string
	Plan, Assignment string
	AssignedBy       string
	Planned          []string
	Targets          int
}

// TestShardIdentity: a shard's report says which part of which check it is as fields
// (JSON "shard", SARIF runs[0].properties.shard, JUnit gitgate.shard.* properties): the
// index, the count, the Git commit, the planned targets; merge-reports refuses shards of
// two commits, a report whose targets were cut, and says which files.
func TestShardIdentity(t *testing.T) {
	t.Setenv("CI", "1")
	dir, repo := gitRepoOf(t, "../../testdata/seed")
	appendFile(t, filepath.Join(dir, "README.md"), "\nsharded\n")
	head := repo.Commit("a README line: the same plan, another commit")
	out := t.TempDir()
	files := map[int]string{}
	for i := 1; i <= 2; i++ {
		files[i] = filepath.Join(out, fmt.Sprintf("shard-%d.json", i))
		args := []string{"check", "--no-cache", "--shard", fmt.Sprintf("%d/2", i), "-o", "json=" + files[i]}
		if i == 1 {
			args = append(args, "-o", "sarif="+filepath.Join(out, "1.sarif"), "-o", "junit="+filepath.Join(out, "1.xml"))
		}
		shardRun(t, dir, args...)
	}
	var r struct{ Shard *shardIdentity }
	b, err := os.ReadFile(files[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Shard == nil {
		t.Fatalf("shard 1/2's JSON has no shard field (%v):\n%s", err, clip(string(b)))
	}
	s := r.Shard
	if s.Index != 1 || s.Total != 2 || s.Commit != head || s.Dirty || len(s.Plan) != 16 || len(s.Assignment) != 16 || s.AssignedBy != "hash" {
		t.Errorf("shard = %+v, want 1/2 of commit %s, clean, by hash", *s, head)
	}
	if len(s.Planned) < 2 || !slices.IsSorted(s.Planned) || s.Targets >= len(s.Planned) {
		t.Errorf("planned %v, this shard's %d: want the plan's sorted names, more than this shard holds", s.Planned, s.Targets)
	}

	var sarif struct {
		Runs []struct {
			Properties struct{ Shard *shardIdentity }
		}
	}
	if b, err = os.ReadFile(filepath.Join(out, "1.sarif")); err == nil {
		err = json.Unmarshal(b, &sarif)
	}
	if err != nil || len(sarif.Runs) != 1 || sarif.Runs[0].Properties.Shard == nil || sarif.Runs[0].Properties.Shard.Commit != head || sarif.Runs[0].Properties.Shard.Index != 1 {
		t.Errorf("SARIF: no shard 1 of commit %s in runs[0].properties (%v)", head, err)
	}
	var junit struct {
		Properties struct {
			Property []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"property"`
		} `xml:"properties"`
	}
	if b, err = os.ReadFile(filepath.Join(out, "1.xml")); err == nil {
		err = xml.Unmarshal(b, &junit)
	}
	props := map[string]string{}
	for _, p := range junit.Properties.Property {
		props[p.Name] = p.Value
	}
	if err != nil || props["gitgate.shard.index"] != "1" || props["gitgate.shard.total"] != "2" || props["gitgate.shard.commit"] != head ||
		props["gitgate.shard.planned"] != fmt.Sprint(len(s.Planned)) {
		t.Errorf("JUnit properties %v (%v), want shard 1/2 of %s", props, err, head)
	}

	// The two shards merge; shard 2 run again after a commit does not.
	if code, stderr := mergeRun(t, files[1], files[2]); code == exitError && strings.Contains(stderr, "merge-reports:") {
		t.Fatalf("the shards of one commit do not merge: %s", stderr)
	}
	appendFile(t, filepath.Join(dir, "README.md"), "\nagain\n")
	next := repo.Commit("another README line")
	later := filepath.Join(out, "shard-2-later.json")
	shardRun(t, dir, "check", "--no-cache", "--shard", "2/2", "-o", "json="+later)
	code, stderr := mergeRun(t, files[1], later)
	if code != exitError || !strings.Contains(stderr, "shards of different commits") || !strings.Contains(stderr, later) || !strings.Contains(stderr, files[1]) ||
		!strings.Contains(stderr, head) || !strings.Contains(stderr, next) {
		t.Errorf("shards of two commits: exit %d, want 2 naming both files and commits: %s", code, stderr)
	}

	// An uncommitted change: the shard says so.
	appendFile(t, filepath.Join(dir, "README.md"), "\nuncommitted\n")
	dirty := filepath.Join(out, "dirty.json")
	shardRun(t, dir, "check", "--no-cache", "--shard", "1/2", "-o", "json="+dirty)
	b, _ = os.ReadFile(dirty)
	r.Shard = nil
	if json.Unmarshal(b, &r) != nil || r.Shard == nil || !r.Shard.Dirty || r.Shard.Commit != next || len(r.Shard.Changes) != 16 {
		t.Errorf("a shard of a working tree with changes: %+v, want commit %s, dirty, a digest of the changes", r.Shard, next)
	}
	// The other shard on the same uncommitted tree merges with it; on a tree changed
	// again, or on the clean commit, it does not.
	dirty2 := filepath.Join(out, "dirty-2.json")
	shardRun(t, dir, "check", "--no-cache", "--shard", "2/2", "-o", "json="+dirty2)
	if code, stderr := mergeRun(t, dirty, dirty2); code == exitError && strings.Contains(stderr, "merge-reports:") {
		t.Errorf("two shards of one uncommitted tree do not merge: %s", stderr)
	}
	appendFile(t, filepath.Join(dir, "README.md"), "\nchanged again\n")
	other := filepath.Join(out, "dirty-2-other.json")
	shardRun(t, dir, "check", "--no-cache", "--shard", "2/2", "-o", "json="+other)
	for _, f := range []string{other, later} {
		code, stderr := mergeRun(t, dirty, f)
		if code != exitError || !strings.Contains(stderr, "shards of different working trees") || !strings.Contains(stderr, f) || !strings.Contains(stderr, "uncommitted changes") {
			t.Errorf("shard 1/2 of one uncommitted tree, %s of another: exit %d, want 2 naming both files: %s", f, code, stderr)
		}
	}

	// A report cut short: a target dropped from shard 2 (and its count).
	var m map[string]any
	b, _ = os.ReadFile(files[2])
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	ts := m["targets"].([]any)
	if len(ts) == 0 {
		t.Fatalf("shard 2/2 holds no targets: the test needs one")
	}
	dropped := ts[0].(map[string]any)["name"].(string)
	m["targets"] = ts[1:]
	m["shard"].(map[string]any)["targets"] = float64(len(ts) - 1)
	cut := filepath.Join(out, "cut.json")
	b, _ = json.Marshal(m)
	if err := os.WriteFile(cut, b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr = mergeRun(t, files[1], cut)
	if code != exitError || !strings.Contains(stderr, "in no shard: "+dropped) {
		t.Errorf("a shard with a target cut: exit %d, want 2 naming %s: %s", code, dropped, stderr)
	}
}
