package render

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"sync"

	"github.com/gitgate/gitgate/internal/treediff"
	"github.com/gitgate/gitgate/policy"
	"github.com/pmezard/go-difflib/difflib"
	"sigs.k8s.io/yaml"
)

// CompareOptions configure Compare.
type CompareOptions struct {
	Discover DiscoverOptions
	// Workers render targets in parallel.
	Workers int
	// Check configures the gate's check of each target (its Workers is ignored).
	Check policy.CheckOptions
	// Changed are the files that differ between base and head, relative to both roots;
	// nil compares the two trees file by file.
	Changed []string
	// PoliciesChanged re-evaluates every target: the policies (or the settings) differ.
	PoliciesChanged bool
	// BaseGate judges the base, HeadGate the head (the same gate when policies did not
	// change).
	BaseGate, HeadGate *policy.Gate
	// BaseRules and HeadRules, when both are set (the policies changed), are the rules
	// of the merge base and of head: head's renders are gated under both (a gate that is
	// HeadGate is not evaluated twice) and the findings head's rules add to or remove
	// from the base's are Changes.Policy, the policy change's blast radius.
	BaseRules, HeadRules *policy.Gate
	// Progress is called as targets render, on both sides.
	Progress func(done, total int)
	// Cache, when set, stands in for rendering and judging the targets whose outcome
	// it knows, on either side, and is told of every target rendered. It is not used
	// when the policies changed (BaseRules and HeadRules set: head's renders are judged
	// under two rule sets).
	Cache CompareCache
}

// CompareCache is what Compare asks before rendering a side's targets (cmd/gitgate's
// verdict cache, shared with check: the same keys, so a base commit's target that a
// check of that commit stored is not rendered again).
type CompareCache interface {
	// Known returns, for each of ts (the affected targets of one side, planned in d),
	// what rendering and judging it gave, or nil: render it.
	Known(ctx context.Context, repo Repo, d *Discovery, ts []Target, head bool) []*KnownSide
	// Rendered is told of each target rendered on a side, from the rendering worker:
	// the traced render, its judgement and its DiffYAML. It must copy what it keeps:
	// Compare goes on to classify the judgement's results in place.
	Rendered(head bool, tr Traced, judged *policy.Report, yaml []byte)
}

// KnownSide is one side's outcome of a target, as Compare computes it.
type KnownSide struct {
	Report  *policy.Report
	YAML    []byte
	Remotes []policy.RemoteSource
	// Notices are the render's own (kustomize deprecations).
	Notices []string
}

// Compare is merge-request mode: it maps the changed files to the targets that read
// them (targetDeps) on either side, renders only those at base and at head, gates both,
// and classifies every head finding as new or unchanged and every base finding head no
// longer has as fixed (matched on target, resource identity and policy/rule, never on
// lines). Each affected target gets its rendered diff, with Secret values masked. The
// report's Results are head's findings of the affected targets; Report.Blocking is true
// only for new Enforce findings.
func Compare(ctx context.Context, base, head Repo, opts CompareOptions) *policy.Report {
	base, head = base.confined(), head.confined()
	changed := opts.Changed
	if changed == nil {
		var err error
		if changed, err = treediff.Diff(base.FS, head.FS); err != nil {
			return &policy.Report{Unchecked: map[string]int{}, Errors: []error{fmt.Errorf("compare base and head: %w", err)}}
		}
	}
	rep := &policy.Report{Unchecked: map[string]int{}}
	if base.Dir == "" {
		// A revision with no checkout (OpenChange): kustomize and Helm read the disk,
		// so what each base target reads is written to a directory as it renders.
		dir, err := os.MkdirTemp("", "gitgate-base-")
		if err != nil {
			rep.Errors = append(rep.Errors, fmt.Errorf("base revision: %w", err))
			return rep
		}
		defer os.RemoveAll(dir)
		base.stage = newStage(base.FS, dir)
	}
	// The same plan as check's on each side: app-of-apps followed, one target per source.
	var dBase, dHead *Discovery
	var wg sync.WaitGroup
	wg.Go(func() { dBase = Plan(ctx, base, opts.Discover, opts.Workers) })
	dHead = Plan(ctx, head, opts.Discover, opts.Workers)
	wg.Wait()
	baseTargets, headTargets := indexTargets(dBase.Targets), indexTargets(dHead.Targets)
	names := Affected(base, head, baseTargets, headTargets, changed, opts.PoliciesChanged)

	var onBase, onHead []Target
	for _, n := range names {
		if t, ok := baseTargets[n]; ok {
			onBase = append(onBase, t)
		}
		if t, ok := headTargets[n]; ok {
			onHead = append(onHead, t)
		}
	}
	// progress counts both sides' targets; each side reports its own running count.
	var progress func(side int) func(int, int)
	if opts.Progress != nil {
		var mu sync.Mutex
		var done [2]int
		total := len(onBase) + len(onHead)
		progress = func(side int) func(int, int) {
			return func(n, _ int) {
				mu.Lock()
				done[side] = n
				opts.Progress(done[0]+done[1], total)
				mu.Unlock()
			}
		}
	} else {
		progress = func(int) func(int, int) { return nil }
	}
	one := opts.Check
	one.Workers, one.Progress = 1, nil
	type side struct {
		report  *policy.Report
		yaml    []byte
		remotes []policy.RemoteSource
		// under the base's and head's rules (blast radius), when both are set
		baseRules, headRules []policy.Result
	}
	rulesFor := func(g *policy.Gate, judged *policy.Report, rs []policy.Resource) []policy.Result {
		if g == nil {
			return nil
		}
		if g == opts.HeadGate {
			return judged.Results
		}
		return g.CheckResources(ctx, rs, one).Results
	}
	var notices []string // head's targets' own, each once
	noticed := map[string]bool{}
	withRules := opts.BaseRules != nil && opts.HeadRules != nil
	// gateAll renders and gates one side's affected targets (those the cache does not
	// know); head's are also gated under both sides' rules and keep their notices.
	cache := opts.Cache
	if withRules {
		cache = nil
	}
	gateAll := func(repo Repo, d *Discovery, ts []Target, gate *policy.Gate, isHead bool, progress func(int, int)) map[string]side {
		out := map[string]side{}
		var mu sync.Mutex
		keep := func(n string, s side, own []string) {
			mu.Lock()
			out[n] = s
			if isHead {
				for _, n := range own {
					if !noticed[n] {
						noticed[n] = true
						notices = append(notices, n)
					}
				}
			}
			mu.Unlock()
		}
		todo := ts
		if cache != nil {
			todo = nil
			for i, k := range cache.Known(ctx, repo, d, ts, isHead) {
				if k == nil {
					todo = append(todo, ts[i])
					continue
				}
				keep(ts[i].Name, side{report: k.Report, yaml: k.YAML, remotes: k.Remotes}, k.Notices)
			}
			if hits := len(ts) - len(todo); progress != nil && hits > 0 {
				outer := progress
				outer(hits, len(ts))
				progress = func(n, _ int) { outer(hits+n, len(ts)) }
			}
		}
		RenderTraced(ctx, repo, d, todo, opts.Workers, progress, func(tr Traced) {
			r := tr.Rendered
			rep := Judge(ctx, gate, r, one)
			s := side{report: rep, yaml: DiffYAML(r.Resources), remotes: r.Remotes}
			if cache != nil {
				cache.Rendered(isHead, tr, rep, s.yaml)
			}
			if isHead && withRules {
				s.baseRules = rulesFor(opts.BaseRules, rep, r.Resources)
				s.headRules = rulesFor(opts.HeadRules, rep, r.Resources)
			}
			keep(r.Target.Name, s, r.Notices)
		})
		return out
	}
	baseOut := gateAll(base, dBase, onBase, opts.BaseGate, false, progress(0))
	headOut := gateAll(head, dHead, onHead, opts.HeadGate, true, progress(1))

	ch := &policy.Changes{Files: changed, PoliciesChanged: opts.PoliciesChanged}
	if withRules {
		ch.Policy = &policy.PolicyChange{}
	}
	for _, n := range names {
		b, inBase := baseOut[n]
		h, inHead := headOut[n]
		tc := policy.TargetChange{Name: n, State: policy.TargetModified}
		var baseResults []policy.Result
		switch {
		case !inBase:
			tc.State = policy.TargetAdded
		case !inHead:
			tc.State = policy.TargetRemoved
		}
		if inBase {
			tc.BaseBlocking = b.report.Summary.Blocking > 0
			baseResults = b.report.Results
		}
		if inHead {
			tc.HeadBlocking = h.report.Summary.Blocking > 0
			if withRules {
				added, removed := policy.RuleDelta(h.baseRules, h.headRules)
				ch.Policy.Added = append(ch.Policy.Added, added...)
				ch.Policy.Removed = append(ch.Policy.Removed, removed...)
			}
			ch.Fixed = append(ch.Fixed, policy.Classify(baseResults, h.report.Results)...)
			rep.Merge(h.report)
		} else {
			ch.Fixed = append(ch.Fixed, policy.Classify(baseResults, nil)...)
		}
		tc.Diff = unifiedDiff(n, b.yaml, h.yaml)
		if !slices.Equal(b.remotes, h.remotes) { // a chart version or a ref moved
			tc.BaseRemotes, tc.HeadRemotes = b.remotes, h.remotes
		}
		ch.Targets = append(ch.Targets, tc)
	}
	policy.SortResults(ch.Fixed)
	if ch.Policy != nil {
		policy.SortResults(ch.Policy.Added)
		policy.SortResults(ch.Policy.Removed)
	}
	ch.CountBaselines(rep.Results)
	rep.Changes = ch
	rep.Summary.Targets = len(names)
	rep.Summary.Policies = opts.HeadGate.Set.Len()
	rep.Errors = append(rep.Errors, dHead.Errors...)
	rep.Notices = append(rep.Notices, dHead.Notices...)
	slices.Sort(notices) // targets finish in any order
	rep.Notices = append(rep.Notices, notices...)
	rep.Sort()
	return rep
}

// Affected names the targets a change affects, sorted: those added or removed, those
// whose definition changed (an Application's or ApplicationSet's parameters for it),
// those that read a changed file on either side (targetDeps), or all of them when the
// policies changed. Targets are matched by name.
func Affected(base, head Repo, baseTargets, headTargets map[string]Target, changed []string, policiesChanged bool) []string {
	base, head = base.confined(), head.confined()
	pick := map[string]bool{}
	consider := func(repo Repo, ts, other map[string]Target) {
		deps := newDepsCache(repo.FS)
		for n, t := range ts {
			o, ok := other[n]
			if policiesChanged || !ok || !reflect.DeepEqual(t, o) || deps.deps(t).MatchAny(changed) {
				pick[n] = true
			}
		}
	}
	consider(head, headTargets, baseTargets)
	// A target defined alike on both sides reads a changed file at base only if it
	// does at head (its kustomizations are dependencies on both sides): only the
	// base's own targets need a look.
	baseOnly := map[string]Target{}
	for n, t := range baseTargets {
		if o, ok := headTargets[n]; !ok || !reflect.DeepEqual(t, o) {
			baseOnly[n] = t
		}
	}
	consider(base, baseOnly, headTargets)
	names := make([]string, 0, len(pick))
	for n := range pick {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func indexTargets(ts []Target) map[string]Target {
	m := make(map[string]Target, len(ts))
	for _, t := range ts {
		m[t.Name] = t
	}
	return m
}

// DiffYAML is a target's rendered objects in a stable order, as YAML documents with
// sorted keys and Secret values masked: the text its rendered diff compares.
func DiffYAML(rs []policy.Resource) []byte {
	type doc struct {
		key  string
		data []byte
	}
	docs := make([]doc, 0, len(rs))
	for _, r := range rs {
		b, err := yaml.Marshal(policy.MaskSecret(r.Object.Object))
		if err != nil {
			continue
		}
		gvk := r.Object.GroupVersionKind()
		docs = append(docs, doc{key: gvk.Group + "/" + r.ID(), data: b})
	}
	sort.SliceStable(docs, func(i, j int) bool { return docs[i].key < docs[j].key })
	var buf bytes.Buffer
	for _, d := range docs {
		buf.WriteString("---\n")
		buf.Write(d.data)
	}
	return buf.Bytes()
}

// unifiedDiff is the unified diff of a target's rendered YAML at base and at head, or ""
// when they are the same.
func unifiedDiff(name string, a, b []byte) string {
	if bytes.Equal(a, b) {
		return ""
	}
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A:        difflib.SplitLines(string(a)),
		B:        difflib.SplitLines(string(b)),
		FromFile: "a/" + name,
		ToFile:   "b/" + name,
		Context:  3,
	})
	if err != nil {
		return ""
	}
	return d
}
