package main

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gitgate/gitgate/internal/git"
	"github.com/gitgate/gitgate/internal/repopath"
	"github.com/gitgate/gitgate/internal/verdictcache"
	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
)

// check --shard I/N: the plan's targets split over N CI jobs (GitLab's parallel:
// CI_NODE_INDEX/CI_NODE_TOTAL, a GitHub Actions matrix), each job checking its share.
// Every job computes the same assignment from the same inputs: the plan (identical in
// every job, it is the repository's), and the targets' recorded costs when the verdict
// cache has them (jobs that restore the same --cache-dir). Costs are recorded by
// unsharded checks only (a nightly or main-branch run whose cache the shards restore):
// a shard that recorded its own would change what the next shard on the same cache
// reads. Each shard's report says which part of which check it is (policy.ShardInfo:
// the commit, the plan and the assignment); merge-reports checks the jobs agreed and
// joins them.
//
// What needs every target, per shard:
//   - custom resources are validated against the CRDs any target of the plan renders,
//     as unsharded: a shard whose own targets leave objects of kinds no known CRD covers
//     finds the CRDs the other shards' targets render (render only, or their record in
//     the verdict cache, or proven to render none: shard_crds.go) and rechecks them;
//   - duplicates are found within a target (two targets defining the same object are not
//     duplicates: they deploy to different places), so sharding changes nothing there;
//   - plan errors and notices, the gate's warnings and load errors are the repository's:
//     every shard reports them, merge-reports keeps one copy.

// shardSpec is one shard: Index in 1..Total (1-based, as GitLab's CI_NODE_INDEX).
type shardSpec struct {
	Index, Total int
}

func (s shardSpec) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Total) }

// maxShards bounds N: more jobs than that is a typo, not a plan.
const maxShards = 10000

// parseShard reads I/N (1 <= I <= N).
func parseShard(s string) (shardSpec, error) {
	bad := func(why string) (shardSpec, error) {
		return shardSpec{}, fmt.Errorf("--shard %q: %s; give I/N with 1 <= I <= N, e.g. --shard 1/3 (GitLab: --shard $CI_NODE_INDEX/$CI_NODE_TOTAL)", s, why)
	}
	a, b, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return bad("no /")
	}
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	switch {
	case err1 != nil || err2 != nil:
		return bad("I and N must be whole numbers")
	case n < 1:
		return bad("N must be at least 1")
	case n > maxShards:
		return bad(fmt.Sprintf("N must be at most %d", maxShards))
	case i == 0:
		return bad("shards are numbered from 1 (as GitLab's CI_NODE_INDEX; with a 0-based index pass $((i+1)))")
	case i < 1 || i > n:
		return bad("I must be between 1 and N")
	}
	return shardSpec{Index: i, Total: n}, nil
}

// targetID is a target's identity for the assignment: what it is, not where the plan
// lists it, so adding a target moves no other (without recorded costs).
func targetID(t render.Target) string { return t.Name + "\x00" + t.Path }

func targetHash(t render.Target) uint64 {
	s := sha256.Sum256([]byte(targetID(t)))
	return binary.BigEndian.Uint64(s[:8])
}

// assignShards gives each target its shard (0-based). costs (nil, or one per target,
// negative for unknown) are recorded render+judge times: with none known every target
// goes by its hash (hash mod n); with some known the targets are balanced greedily,
// longest first (unknown ones costed at the median of the known), each to the least
// loaded shard, ties broken by hash then by shard number, so every shard computes the
// same assignment from the same costs.
func assignShards(targets []render.Target, costs []float64, n int) []int {
	out := make([]int, len(targets))
	hashes := make([]uint64, len(targets))
	for i, t := range targets {
		hashes[i] = targetHash(t)
	}
	var known []float64
	for _, c := range costs {
		if c >= 0 {
			known = append(known, c)
		}
	}
	if len(known) == 0 || n == 1 {
		for i := range targets {
			out[i] = int(hashes[i] % uint64(n))
		}
		return out
	}
	slices.Sort(known)
	median := known[len(known)/2]
	cost := make([]float64, len(targets))
	for i := range targets {
		cost[i] = median
		if costs[i] >= 0 {
			cost[i] = costs[i]
		}
	}
	order := make([]int, len(targets))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		i, j := order[a], order[b]
		if cost[i] != cost[j] {
			return cost[i] > cost[j]
		}
		if hashes[i] != hashes[j] {
			return hashes[i] < hashes[j]
		}
		return targetID(targets[i]) < targetID(targets[j])
	})
	load := make([]float64, n)
	for _, i := range order {
		best := 0
		for s := 1; s < n; s++ {
			if load[s] < load[best] {
				best = s
			}
		}
		out[i] = best
		load[best] += cost[i]
	}
	return out
}

// shardPlan is what a shard's report records of its check (policy.ShardInfo, the
// report's Shard): the plan every shard must share and the assignment they must agree on.
type shardPlan struct {
	Spec       shardSpec
	Plan       string   // digest of gitgate's version, .gitgate.yaml and every planned target
	Planned    []string // the plan's target names
	Assignment string   // digest of the plan and every target's shard
	ByCost     bool
	Targets    int // this shard's
}

// info is the report's Shard; commit and changes are the repository's (shardCommit).
func (p shardPlan) info(commit, changes string) *policy.ShardInfo {
	by := "hash"
	if p.ByCost {
		by = "recorded cost"
	}
	return &policy.ShardInfo{Index: p.Spec.Index, Total: p.Spec.Total, Commit: commit, Dirty: changes != "", Changes: changes, Plan: p.Plan, Planned: p.Planned,
		Assignment: p.Assignment, AssignedBy: by, Targets: p.Targets}
}

// shardNotice is the shard's line among the notices (stderr and every format that
// lists notices), for a reader; merge-reports reads the report's Shard, never this.
func shardNotice(s *policy.ShardInfo) string {
	commit := s.Commit
	switch {
	case commit == "":
		commit = "no Git commit"
	case s.Dirty:
		commit = "commit " + git.ShortRev(commit) + " with uncommitted changes"
	default:
		commit = "commit " + git.ShortRev(commit)
	}
	return fmt.Sprintf("shard %d/%d: %d of %d targets of %s, assigned by %s (plan %s, assignment %s)", s.Index, s.Total, s.Targets, len(s.Planned), commit, s.AssignedBy, s.Plan, s.Assignment)
}

// shardCommit is the commit a shard checks: HEAD of the repository at root ("" when
// root is not in a Git repository), and a digest of the working tree's changes from it
// ("" for none): every changed path with its content (or its absence), so two shards
// that ran on the same uncommitted tree (files a pipeline step wrote) agree, and two
// that ran on different ones do not.
func shardCommit(root string, maxFileSize int64) (string, string) {
	work := repopath.DirFS(root)
	ch, err := git.OpenChange(root, "HEAD", git.ChangeOptions{MaxBlobSize: maxFileSize, WorkFS: work})
	if err != nil || len(ch.Files) == 0 {
		if err != nil {
			return "", ""
		}
		return ch.BaseCommit, ""
	}
	d, err := verdictcache.NewFiles(work, maxFileSize).Digest(ch.Files)
	if err != nil { // a changed file that cannot be read: never equal to another shard's
		d = "unreadable:" + err.Error()
	}
	h := verdictcache.NewHasher("shard-changes")
	h.String(d)
	return ch.BaseCommit, h.Sum()[:16]
}

// selectShard limits the plan to the shard's targets. set gives the settings digested
// into the plan; costs are read from vc (nil: none).
func selectShard(d *render.Discovery, spec shardSpec, set *settings, vc *verdictcache.Cache) (*render.Discovery, shardPlan) {
	var costs []float64
	if vc != nil {
		costs = make([]float64, len(d.Targets))
		for i, t := range d.Targets {
			costs[i] = -1
			var c costRecord
			if vc.Get(costKey(t), &c) && c.Name == t.Name && c.Path == t.Path {
				costs[i] = c.Millis
			}
		}
	}
	assign := assignShards(d.Targets, costs, spec.Total)
	h := verdictcache.NewHasher("shard-plan")
	h.String(version)
	if cfg, err := verdictcache.NewFiles(repopath.DirFS(set.root), set.maxFileSize).Digest([]string{policy.ConfigFile}); err == nil {
		h.String(cfg)
	}
	h.String(set.under)
	_ = h.JSON(d.Targets)
	plan := h.Sum()[:16]
	a := verdictcache.NewHasher("shard-assignment")
	a.String(plan)
	_ = a.JSON(assign)
	sp := shardPlan{Spec: spec, Plan: plan, Assignment: a.Sum()[:16]}
	for _, t := range d.Targets {
		sp.Planned = append(sp.Planned, t.Name)
	}
	slices.Sort(sp.Planned)
	for _, c := range costs {
		sp.ByCost = sp.ByCost || c >= 0
	}
	sd := *d
	sd.Targets = nil
	for i, t := range d.Targets {
		if assign[i] == spec.Index-1 {
			sd.Targets = append(sd.Targets, t)
		}
	}
	sp.Targets = len(sd.Targets)
	return &sd, sp
}

// costRecord is a target's last recorded render+judge time, in the verdict cache under
// its identity (not its content: a changed target costs about what it did).
type costRecord struct {
	Name   string  `json:"name"`
	Path   string  `json:"path"`
	Millis float64 `json:"ms"`
}

func costKey(t render.Target) string {
	h := verdictcache.NewHasher("cost")
	h.String(targetID(t))
	return h.Sum()
}

// recordCost stores a rendered target's cost (vc nil: nothing).
func recordCost(vc *verdictcache.Cache, t render.Target, d time.Duration) {
	if vc == nil {
		return
	}
	vc.Put(costKey(t), costRecord{Name: t.Name, Path: t.Path, Millis: float64(d.Microseconds()) / 1000})
}
