package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/internal/pool"
	"github.com/gitgate/gitgate/internal/repopath"
	"github.com/gitgate/gitgate/internal/verdictcache"
	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
	"k8s.io/client-go/kubernetes/scheme"
)

// The verdict cache of a repository check (check --base too: cache_compare.go): a target whose key
// (cacheKeys) has an entry is neither rendered nor evaluated; its entry is what its
// render and judgement added to the report. What a key covers:
//
//   - the run's settings (runKey): gitgate's build, .gitgate.yaml, every flag that
//     changes a result, the Kubernetes version, the content of every policy, exception
//     and values file and of the CRDs of crds:/--crds, the gate's warnings (an
//     exception that expired since shows there);
//   - the target as planned (its name, kind, path, Application fields: render.Target);
//   - the content of every file render.DepsOf names for it (absent files included),
//     digested once per run (runDigests) and not read at all when the stat memo trusts
//     the file's stat (verdictcache.StatMemo: Git's index rule, racily-clean files hashed
//     again).
//
// The plan itself comes from the plan memo when the repository's listings, stats and
// file digests are as a stored plan observed them (planRepo, render.PlanWithMemo), and a
// warm run reads its entries from one bundle (verdictcache.Cache.LoadBundle).
//
// An entry is checked further before it is used: the remote sources it rendered from
// must resolve as they did (render.ResolveRemotes: the same versions and digests), and
// an entry with custom resources must have been judged against the same CRDs rendered
// by other targets (crdGen). What is never stored: a target whose render read a file
// its dependencies do not name (tracing tells), one that did not render cleanly (any
// error: they are reported afresh every run), one that renders CRDs (others are judged
// against them: it renders every run), one the plan rendered untraced, one whose
// findings show a masked Secret value (masks are keyed per run), an interrupted run.

// cacheEntry is one target's share of the report, as Judge made it and after custom
// resources were checked against CRDs other targets rendered.
type cacheEntry struct {
	Status     policy.TargetStatus `json:"status"`
	Summary    policy.Summary      `json:"summary"`
	Results    []policy.Result     `json:"results,omitempty"`
	Duplicates []policy.Duplicate  `json:"duplicates,omitempty"`
	Unchecked  map[string]int      `json:"unchecked,omitempty"`
	Notices    []string            `json:"notices,omitempty"`
	// TargetNotices are the render's own (kustomize deprecations), deduplicated over
	// targets by checkRepo.
	TargetNotices []string `json:"targetNotices,omitempty"`
	// CustomKinds: the target renders objects of kinds no built-in API group serves,
	// judged against CRDs (CRDGen: those other targets rendered in that run).
	CustomKinds bool   `json:"customKinds,omitempty"`
	CRDGen      string `json:"crdGen,omitempty"`
}

// depsOf is render.DepsOf; a test makes it miss files to show such targets are not stored.
var depsOf = render.DepsOf

// cacheTrace, when set (tests), is told of every target's fate: "hit", "miss" (rendered,
// stored), "render" (rendered, not storable) or "stale" (an entry found, not usable).
var cacheTrace func(target, fate string)

func traceCache(target, fate string) {
	if cacheTrace != nil {
		cacheTrace(target, fate)
	}
}

// openVerdictCache opens the verdict cache of check (nil with --no-cache). A --cache-dir
// that cannot be opened is a warning on stderr; the check then runs uncached, as it does
// silently where there is no default cache directory.
func openVerdictCache(o *checkOptions, warn func(string)) *verdictcache.Cache {
	if o.noCache {
		return nil
	}
	vc, err := verdictcache.Open(o.gate.remote.cacheDir)
	if err != nil {
		if o.gate.remote.cacheDir != "" { // else there is no default directory (no HOME): nothing to fix
			warn(fmt.Sprintf("verdict cache off: %v", err))
		}
		return nil
	}
	return vc
}

// runKey digests what every target's result depends on besides the target itself.
func runKey(vc *verdictcache.Cache, set *settings, gate *policy.Gate, opts policy.CheckOptions) (string, error) {
	build, err := vc.BuildID()
	if err != nil {
		return "", fmt.Errorf("gitgate's own build cannot be identified: %w", err)
	}
	// set.partial is not keyed (check --base opens whole rule sets only, check partial
	// ones): it changes a result only through the load errors, which are.
	h := verdictcache.NewHasher("run")
	h.String(build)
	f := set.flags
	if err := h.JSON(struct {
		PolicyDirs, Registries, CRDs          []string
		NoBuiltin                             bool
		Values, KubeVersion                   string
		HelmTimeout                           int64
		HelmMaxOutput                         int64
		MaxObjects                            int
		Schema, NoMutate, KeepPasses, Partial bool
		MaxFileSize                           int64
		Kube                                  string
		Request                               policy.Request
		Warnings                              []string
		LoadErrors                            []string
		Policies                              int
	}{f.policyDirs, f.registries, f.crds, f.noBuiltin, f.values, f.kubeVersion, int64(f.limits.helmTimeout), f.limits.helmMaxOutput, f.limits.maxObjects,
		opts.Schema, opts.NoMutate, opts.KeepPasses, false, opts.MaxFileSize, opts.KubeVersion.String(), opts.Request,
		gate.Warnings, errorStrings(gate.LoadErrors), gate.Set.Len()}); err != nil {
		return "", err
	}
	// .gitgate.yaml, the policies (exceptions and waivers' policies among them), the
	// values file, the CRDs: by content.
	var srcs []policy.Source
	srcs = append(srcs, repoSource(set.root, policy.ConfigFile))
	for _, d := range set.policyDirs {
		if set.repoPolicies {
			srcs = append(srcs, set.repoSource(d))
		} else {
			srcs = append(srcs, osSource(d))
		}
	}
	switch {
	case f.values != "":
		srcs = append(srcs, osSource(f.values))
	case set.cfg.Values != "":
		srcs = append(srcs, repoSource(set.root, set.cfg.Values))
	}
	for _, rel := range set.cfg.CRDs {
		srcs = append(srcs, repoSource(set.root, rel))
	}
	for _, p := range f.crds {
		srcs = append(srcs, osSource(p))
	}
	for _, src := range srcs {
		d, err := verdictcache.NewFiles(src.FS, set.maxFileSize).Digest([]string{src.Root})
		if err != nil {
			return "", err
		}
		// A file of the repository by its place in it: another checkout of the same
		// content keys alike (report reads each commit in a worktree of its own).
		name := src.Display
		if rel, ok := repopath.Under(set.root, name); ok {
			name = "repo:" + rel
		}
		h.String(name)
		h.String(d)
	}
	return h.Sum(), nil
}

func errorStrings(errs []error) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

// runDigests are the digests of one checkout's files for a run: the plan memo's and the
// keys', each file hashed at most once, and not at all when the stat memo trusts it.
type runDigests struct {
	dir   string
	fsys  *repopath.FS
	files *verdictcache.Files
	stat  *verdictcache.StatMemo
}

type runDigestsKey struct{}

// withRunDigests opens the stat memo of the checkout at repo.Dir (start: before any of
// its files was read in this run) and puts the run's digests in ctx for cacheKeys.
func withRunDigests(ctx context.Context, vc *verdictcache.Cache, repo render.Repo, start time.Time) (context.Context, *runDigests) {
	fsys := repopath.DirFS(repo.Dir)
	if vc == nil || repo.Dir == "" || fsys.Root() == nil {
		return ctx, nil
	}
	rd := &runDigests{dir: repo.Dir, fsys: fsys, stat: vc.OpenStatMemo(fsys.Root().Real(), start)}
	rd.files = verdictcache.NewFiles(fsys, repo.MaxFileSize).Trust(rd.stat)
	return context.WithValue(ctx, runDigestsKey{}, rd), rd
}

func runDigestsOf(ctx context.Context, repo render.Repo) *runDigests {
	rd, _ := ctx.Value(runDigestsKey{}).(*runDigests)
	if rd == nil || repo.Dir == "" || rd.dir != repo.Dir {
		return nil
	}
	return rd
}

// save writes the stat memo when the run hashed something new.
func (rd *runDigests) save() {
	if rd != nil {
		rd.stat.Save()
	}
}

// planMemo is render.PlanMemo in the verdict cache, under a key of everything a plan
// depends on besides the repository's files (render.PlanMemo says what that is).
type planMemo struct {
	vc  *verdictcache.Cache
	key string
	rd  *runDigests
}

func (m *planMemo) Load() ([]byte, bool) { return m.vc.Memo("plan", m.key) }
func (m *planMemo) Save(b []byte)        { m.vc.PutMemo("plan", m.key, b) }
func (m *planMemo) Digest(name string, fi fs.FileInfo) (string, error) {
	return m.rd.files.FileDigest(name, fi)
}
func (m *planMemo) Listed(dir string, names map[string]bool) { m.rd.files.Listed(dir, names) }
func (m *planMemo) Seen(name string, fi fs.FileInfo, data []byte) string {
	return m.rd.files.Seen(name, fi, data)
}

// planRepo is the plan of check: render.Plan, from the verdict cache's plan memo when the
// repository did not change (nil vc: no memo). The returned context carries the run's
// digests for cacheKeys; done saves the stat memo (call it once the keys are made).
func planRepo(ctx context.Context, vc *verdictcache.Cache, set *settings, repo render.Repo, dopts render.DiscoverOptions, workers int) (*render.Discovery, context.Context, func()) {
	start := time.Now()
	ctx, rd := withRunDigests(ctx, vc, repo, start)
	if rd == nil {
		return render.Plan(ctx, repo, dopts, workers), ctx, func() {}
	}
	key, err := planKey(vc, rd, set, repo, dopts)
	if err != nil {
		return render.Plan(ctx, repo, dopts, workers), ctx, rd.save
	}
	prepo := repo
	prepo.FS = rd.fsys
	d, stats := render.PlanWithMemo(ctx, prepo, dopts, workers, &planMemo{vc: vc, key: key, rd: rd})
	if planTrace != nil {
		planTrace(stats)
	}
	return d, ctx, rd.save
}

// planTrace, when set (tests, benchmarks), is told how each plan was made.
var planTrace func(render.PlanStats)

// planKey digests what a plan depends on besides the repository's files: gitgate's
// build, the root, the discovery options (their Include by .gitgate.yaml, keyed by
// content: discovery does not read it) and the repository settings.
func planKey(vc *verdictcache.Cache, rd *runDigests, set *settings, repo render.Repo, dopts render.DiscoverOptions) (string, error) {
	build, err := vc.BuildID()
	if err != nil {
		return "", err
	}
	cfg, err := rd.files.Digest([]string{policy.ConfigFile})
	if err != nil {
		return "", err
	}
	h := verdictcache.NewHasher("plan")
	h.String(build)
	h.String(rd.fsys.Root().Real())
	h.String(cfg)
	if err := h.JSON(struct {
		Exclude, RepoURLs, Environments []string
		Under                           string
		MaxFileSize                     int64
		KubeVersion                     string
		APIVersions                     []string
		Clusters                        any
		Remotes                         bool
	}{dopts.Exclude, dopts.RepoURLs, dopts.Environments, dopts.Under, repo.MaxFileSize, repo.KubeVersion, repo.APIVersions, repo.Clusters, repo.Remotes != nil}); err != nil {
		return "", err
	}
	return h.Sum(), nil
}

// cacheKeys are the targets' keys ("" for a target that cannot be keyed: a dependency
// that cannot be read).
func cacheKeys(ctx context.Context, repo render.Repo, d *render.Discovery, run string, workers int) ([]string, []render.Deps) {
	targets := d.Targets
	deps := depsOf(repo, d, targets)
	// A checkout: one Root, its proven directories shared by every target; the run's
	// digests when the plan made some (planRepo). A revision with no checkout (check
	// --base's merge base): its tree, with the same digests.
	var files *verdictcache.Files
	switch rd := runDigestsOf(ctx, repo); {
	case rd != nil:
		files = rd.files
	case repo.Dir == "":
		files = verdictcache.NewFiles(repo.FS, repo.MaxFileSize)
	default:
		files = verdictcache.NewFiles(repopath.DirFS(repo.Dir), repo.MaxFileSize)
	}
	keys := make([]string, len(targets))
	pool.ForEach(ctx, len(targets), workers, func(i int) {
		d, err := files.Digest(deps[i])
		if err != nil {
			return
		}
		h := verdictcache.NewHasher("target")
		h.String(run)
		if h.JSON(targets[i]) != nil {
			return
		}
		h.String(d)
		keys[i] = h.Sum()
	})
	return keys, deps
}

// customKinds reports whether rs hold objects of a kind no built-in API group serves.
func customKinds(rs []policy.Resource) bool {
	for _, r := range rs {
		if r.Object != nil && !scheme.Scheme.IsGroupRegistered(r.Object.GroupVersionKind().Group) {
			return true
		}
	}
	return false
}

// crdGeneration digests the CRDs the run's targets rendered (sorted: targets finish
// in any order).
func crdGeneration(digests []string) string {
	if len(digests) == 0 {
		return ""
	}
	slices.Sort(digests)
	h := verdictcache.NewHasher("crds")
	for _, d := range digests {
		h.String(d)
	}
	return h.Sum()
}

// targetOutcome is what checking one target produced.
type targetOutcome struct {
	part    *policy.Report
	notices []string // the render's own
	pending []policy.Resource
	entry   *cacheEntry // from the cache, or to store
	key     string
	store   bool // rendered cleanly, its reads covered: store after the cross-target steps
	custom  bool
	done    bool // rendered and gated completely (or from the cache)
}

// evaluateTargets renders and judges the plan's targets, each entry of vc (nil: no
// cache) standing in for a target whose key it has; one outcome per target, in plan
// order. The cross-target step (custom resources against CRDs a later target rendered)
// is done here, per target, so a stored entry holds the target's final share.
//
// record: store each rendered target's cost (render+judge time) for check --shard's
// balance; shards do not, so every shard of a run reads the same costs.
// elsewhere (check --shard I/N, N > 1; else nil) adds the CRDs other shards' targets
// render when the shard needs them (shard_crds.go).
func evaluateTargets(ctx context.Context, repo render.Repo, d *render.Discovery, gate *policy.Gate, opts policy.CheckOptions, vc *verdictcache.Cache, run string, record bool, progress func(done, total int), elsewhere *shardCRDs) []*targetOutcome {
	one := opts
	one.Workers, one.Progress = 1, nil
	outs := make([]*targetOutcome, len(d.Targets))
	for i := range outs {
		outs[i] = &targetOutcome{}
	}
	var keys []string
	var deps []render.Deps
	index := map[string]int{}
	for i, t := range d.Targets {
		index[targetID(t)] = i
	}
	todo := d.Targets
	if vc != nil && run != "" {
		keys, deps = cacheKeys(ctx, repo, d, run, opts.Workers)
		runDigestsOf(ctx, repo).save() // before vc.Close, which evicts past the bound
		todo = nil
		// One blob for the entries of the last run of these targets with this run key
		// (a shard's, check DIR's: their own); what it lacks is read entry by entry.
		bk := verdictcache.NewHasher("bundle")
		bk.String(run)
		for _, t := range d.Targets {
			bk.String(t.Name + "\x00" + t.Path)
		}
		vc.LoadBundle(bk.Sum())
		// Looked up on the workers: an entry not in the bundle is two small files read
		// and verified.
		pool.ForEach(ctx, len(d.Targets), opts.Workers, func(i int) {
			outs[i].key = keys[i]
			var e cacheEntry
			if keys[i] != "" && vc.Get(keys[i], &e) && entryFits(ctx, repo, d.Targets[i], &e) {
				outs[i].entry = &e
			}
		})
		for i, t := range d.Targets {
			if outs[i].entry == nil {
				todo = append(todo, t)
			}
		}
	}
	var mu sync.Mutex
	var crds []string
	render1 := func(targets []render.Target, progress func(done, total int)) {
		render.RenderTraced(ctx, repo, d, targets, opts.Workers, progress, func(tr render.Traced) {
			r := tr.Rendered
			judging := time.Now()
			part := render.Judge(ctx, gate, r, one)
			if record && tr.Reads != nil && ctx.Err() == nil {
				recordCost(vc, r.Target, tr.Elapsed+time.Since(judging)) // for check --shard's balance
			}
			interrupted := ctx.Err() != nil
			if interrupted { // one InterruptedError for the repository, in checkRepo
				part.Errors = slices.DeleteFunc(part.Errors, func(e error) bool { return errors.Is(e, ctx.Err()) })
			}
			o := outs[index[targetID(r.Target)]]
			o.part, o.notices, o.entry = part, r.Notices, nil
			o.custom = customKinds(r.Resources)
			if opts.CRDs != nil && len(part.Unchecked) > 0 { // their CRD may come from a later target
				for _, res := range r.Resources {
					if part.Unchecked[res.Object.GetAPIVersion()+"/"+res.Object.GetKind()] > 0 {
						o.pending = append(o.pending, res)
					}
				}
			}
			var own []string
			rendersCRDs := false
			for _, res := range r.Resources {
				if policy.IsCRD(res) {
					rendersCRDs = true
					b, _ := json.Marshal(res.Object.Object)
					own = append(own, res.Origin.String()+"\x00"+string(b))
				}
			}
			o.store = !interrupted && tr.Reads != nil && r.Err == nil && len(part.Errors) == 0 && !rendersCRDs && o.key != ""
			if o.store && deps != nil {
				dep := deps[index[targetID(r.Target)]]
				for f := range tr.Reads {
					if !dep.Match(f) {
						o.store = false // its dependencies miss a file it reads: never cached
						break
					}
				}
			}
			if o.store && !o.custom { // for check --base, which does not take custom resources' entries (cache_compare.go)
				storeRendered(vc, o.key, r.Resources)
			}
			if deps != nil { // the CRDs it renders, for shards that need them (shard_crds.go)
				recordCRDs(vc, o.key, tr, deps[index[targetID(r.Target)]], interrupted)
			}
			mu.Lock()
			crds = append(crds, own...)
			o.done = !interrupted
			mu.Unlock()
		})
	}
	inner := progress
	if hits := len(d.Targets) - len(todo); progress != nil && hits > 0 {
		progress(hits, len(d.Targets))
		inner = func(n, _ int) { progress(hits+n, len(d.Targets)) }
	}
	if len(todo) > 0 {
		render1(todo, inner)
	}
	gen := crdGeneration(crds)
	fits := func(e *cacheEntry) bool { return e.CRDGen == gen }
	if elsewhere != nil {
		gen, fits = elsewhere.resolve(ctx, opts.CRDs, outs, crds, opts.Workers)
	}
	// Entries with custom resources judged against other CRDs than this run's: stale.
	var stale []render.Target
	for i, o := range outs {
		if o.entry != nil && o.entry.CustomKinds && !fits(o.entry) {
			o.entry = nil
			traceCache(d.Targets[i].Name, "stale")
			stale = append(stale, d.Targets[i])
		}
	}
	if len(stale) > 0 {
		render1(stale, nil)
	}
	for i, o := range outs {
		if o.part != nil {
			policy.RecheckCustomResources(ctx, o.pending, opts, o.part)
			o.pending = nil
			continue
		}
		if o.entry != nil {
			o.part = o.entry.report()
			o.notices = o.entry.TargetNotices
			o.done = true
			traceCache(d.Targets[i].Name, "hit")
		}
	}
	if vc == nil {
		return outs
	}
	if ctx.Err() == nil {
		for i, o := range outs {
			if o.entry != nil || o.part == nil {
				continue
			}
			e := newEntry(o, gen)
			if !o.store || e == nil {
				traceCache(d.Targets[i].Name, "render")
				continue
			}
			vc.Put(o.key, e)
			traceCache(d.Targets[i].Name, "miss")
		}
	}
	vc.Close()
	return outs
}

// entryFits checks what a key cannot cover: the target is the one stored, and its
// remote sources resolve as they did.
func entryFits(ctx context.Context, repo render.Repo, t render.Target, e *cacheEntry) bool {
	if e.Status.Name != t.Name || e.Status.Path != t.Path {
		traceCache(t.Name, "stale")
		return false
	}
	if len(e.Status.Remotes) == 0 {
		return true
	}
	now, err := render.ResolveRemotes(ctx, repo, t)
	if err != nil || !sameRemotes(now, e.Status.Remotes) {
		traceCache(t.Name, "stale")
		return false
	}
	return true
}

func sameRemotes(a, b []policy.RemoteSource) bool {
	key := func(rs []policy.RemoteSource) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Kind+"\x00"+r.URL+"\x00"+r.Name+"\x00"+r.Resolved+"\x00"+r.Digest)
		}
		sort.Strings(out)
		return slices.Compact(out)
	}
	return slices.Equal(key(a), key(b))
}

// newEntry is a rendered target's entry; nil when it must not be stored (its findings
// show a masked Secret value: masks are keyed per run).
func newEntry(o *targetOutcome, gen string) *cacheEntry {
	p := o.part
	if len(p.Targets) != 1 {
		return nil
	}
	e := &cacheEntry{Status: p.Targets[0], Summary: p.Summary, Results: p.Results, Duplicates: p.Duplicates, Unchecked: p.Unchecked,
		Notices: p.Notices, TargetNotices: o.notices, CustomKinds: o.custom}
	if o.custom {
		e.CRDGen = gen
	}
	b, err := json.Marshal(e)
	if err != nil || strings.Contains(string(b), "<masked ") {
		return nil
	}
	return e
}

// report is the entry as the target's part of the report.
func (e *cacheEntry) report() *policy.Report {
	return &policy.Report{Summary: e.Summary, Results: e.Results, Duplicates: e.Duplicates, Unchecked: e.Unchecked, Notices: e.Notices,
		Targets: []policy.TargetStatus{e.Status}}
}
