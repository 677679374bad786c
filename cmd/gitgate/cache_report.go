package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"sync"

	"github.com/gitgate/gitgate/internal/verdictcache"
	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/reconcile"
	"github.com/gitgate/gitgate/render"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// reportCache is the verdict cache of gitgate report (reconcile.ReportCache): Git's side
// of each app, under the keys check gives its targets (runKey with the report's gate and
// options, cacheKeys), in the same store, with the same bounds and verification.
//
// What report needs of a target is not what check keeps: the objects themselves, in
// render order and with their origins (an app's objects are applied and listed in that
// order; Argo CD's own objects and hooks are named by origin in its notices), where
// check keeps the target's judgement and a masked, sorted YAML for merge requests. So a
// report keeps its own entries beside check's, under names derived from the same keys:
//
//   - per target (reportEntryKey): the objects. Stored under check's rules: a traced
//     render that read nothing outside its dependencies, no error, no CRDs rendered, no
//     custom resources, no Secret value (an entry never holds one: the target is rendered
//     every run), and only an entry that decodes back to exactly the objects rendered.
//     Used only when entryFits (the same target, its remote sources resolving as they
//     did);
//   - per app (reportVerdictKey: the run, the app, its targets' keys): the blocking
//     findings of its desired objects, which tell drift that breaks a policy from objects
//     that never passed. Used only when every target of the app came from its entry in
//     this run; stored only when every target has one (so was covered by its key), the
//     judgement had no error, and the app has no CRD nor custom resource (CheckResources
//     adds an app's CRDs to the cluster's set that later apps' custom resources are
//     validated against, and the cluster's own CRDs are not in the key).
//
// Nothing about the cluster is cached: the live objects, the dry-run applies, their
// policy results and the drift are computed every run.
type reportCache struct {
	vc  *verdictcache.Cache
	run string

	// keys and deps by target (name|path), computed once before the apps run.
	keys map[string]string
	deps map[string]render.Deps

	mu sync.Mutex
	// entry: the target has an entry (it came from it, or was stored) this run; hit: it
	// came from it.
	entry, hit map[string]bool
}

// reportEntry is one target's rendered objects (render.Render's, before Desired
// filters and defaults them).
type reportEntry struct {
	Name    string                `json:"name"`
	Path    string                `json:"path"`
	Remotes []policy.RemoteSource `json:"remotes,omitempty"`
	Objects []reportObject        `json:"objects"`
}

type reportObject struct {
	Origin policy.Origin   `json:"origin"`
	Object json.RawMessage `json:"object"`
}

// reportVerdict is an app's blocking findings on Git's side (reconcile.GitFinding).
type reportVerdict struct {
	App      string   `json:"app"`
	Blocking []string `json:"blocking"`
}

// bindNoCache is --no-cache, for every command that uses the verdict cache.
func bindNoCache(fs *pflag.FlagSet, p *bool) {
	fs.BoolVar(p, "no-cache", false, "render and evaluate every target: do not use or fill the verdict cache (kept with remote sources in --cache-dir)")
}

// newReportCache keys every target of apps (cacheKeys, over the report's run key).
func newReportCache(ctx context.Context, vc *verdictcache.Cache, run string, repo render.Repo, apps []reconcile.App, workers int) *reportCache {
	c := &reportCache{vc: vc, run: run, keys: map[string]string{}, deps: map[string]render.Deps{}, entry: map[string]bool{}, hit: map[string]bool{}}
	var ts []render.Target
	for _, a := range apps {
		for _, t := range a.Targets {
			if _, ok := c.keys[targetID(t)]; !ok {
				c.keys[targetID(t)] = ""
				ts = append(ts, t)
			}
		}
	}
	keys, deps := cacheKeys(ctx, repo, &render.Discovery{Targets: ts}, run, workers)
	for i, t := range ts {
		c.keys[targetID(t)], c.deps[targetID(t)] = keys[i], deps[i]
	}
	return c
}

// keyedGate is the gate as runKey keys a report's: each commit is read in a worktree of
// its own, whose path the gate's warnings name (a repository policy replacing a built-in
// one); taken out, the warnings of two checkouts of the same content key alike (the
// files themselves are keyed by content).
func keyedGate(g *policy.Gate, dir string) *policy.Gate {
	k := *g
	k.Warnings = make([]string, len(g.Warnings))
	for i, w := range g.Warnings {
		k.Warnings[i] = strings.ReplaceAll(w, filepath.ToSlash(dir)+"/", "")
	}
	return &k
}

func reportEntryKey(key string) string {
	h := verdictcache.NewHasher("report-rendered")
	h.String(key)
	return h.Sum()
}

// reportVerdictKey is app's verdict key: "" when a target cannot be keyed.
func (c *reportCache) reportVerdictKey(app reconcile.App) string {
	h := verdictcache.NewHasher("report-verdict")
	h.String(c.run)
	if h.JSON(app) != nil {
		return ""
	}
	for _, t := range app.Targets {
		k := c.keys[targetID(t)]
		if k == "" {
			return ""
		}
		h.String(k)
	}
	return h.Sum()
}

// Render is render.Render of t, from its entry when one fits.
func (c *reportCache) Render(ctx context.Context, repo render.Repo, t render.Target) ([]policy.Resource, error) {
	id := targetID(t)
	key := c.keys[id]
	if key != "" {
		var e reportEntry
		if c.vc.Get(reportEntryKey(key), &e) {
			fits := entryFits(ctx, repo, t, &cacheEntry{Status: policy.TargetStatus{Name: e.Name, Path: e.Path, Remotes: e.Remotes}})
			if rs, err := e.resources(); fits && err == nil {
				c.mu.Lock()
				c.entry[id], c.hit[id] = true, true
				c.mu.Unlock()
				traceCache(t.Name, "hit")
				return rs, nil
			} else if fits {
				traceCache(t.Name, "stale")
			}
		}
	}
	var tr render.Traced
	rendered := false
	render.RenderTraced(ctx, repo, &render.Discovery{Targets: []render.Target{t}}, []render.Target{t}, 1, nil, func(x render.Traced) { tr, rendered = x, true })
	if !rendered { // the pool took no work (an interrupted report): Render says why
		traceCache(t.Name, "render")
		return render.Render(ctx, repo, t)
	}
	covered := key != "" && tr.Reads != nil && tr.Err == nil && ctx.Err() == nil
	for f := range tr.Reads {
		covered = covered && c.deps[id].Match(f)
	}
	var e *reportEntry
	if covered {
		e = newReportEntry(tr)
	}
	if e != nil {
		c.vc.Put(reportEntryKey(key), e)
		traceCache(t.Name, "miss")
	} else {
		traceCache(t.Name, "render")
	}
	c.mu.Lock()
	c.entry[id], c.hit[id] = e != nil, false
	c.mu.Unlock()
	return tr.Resources, tr.Err
}

// newReportEntry is a rendered target's entry, nil when it must not be stored.
func newReportEntry(tr render.Traced) *reportEntry {
	rs := tr.Resources
	if customKinds(rs) {
		return nil
	}
	e := &reportEntry{Name: tr.Target.Name, Path: tr.Target.Path, Remotes: tr.Remotes, Objects: make([]reportObject, 0, len(rs))}
	for _, r := range rs {
		if r.Object != nil && (policy.IsCRD(r) || policy.IsSecret(r.Object.Object)) {
			return nil // CRDs: as check; a Secret's values are never stored
		}
		o := reportObject{Origin: r.Origin, Object: json.RawMessage("null")}
		if r.Object != nil {
			b, err := json.Marshal(r.Object.Object)
			if err != nil || strings.Contains(string(b), "<masked ") {
				return nil
			}
			o.Object = b
		}
		e.Objects = append(e.Objects, o)
	}
	// Only what decodes back to exactly what was rendered (a float such as 1.0 would come
	// back an integer).
	back, err := e.resources()
	if err != nil || len(back) != len(rs) {
		return nil
	}
	for i := range rs {
		if back[i].Origin != rs[i].Origin || (back[i].Object == nil) != (rs[i].Object == nil) ||
			rs[i].Object != nil && !reflect.DeepEqual(back[i].Object.Object, rs[i].Object.Object) {
			return nil
		}
	}
	return e
}

// resources are the entry's objects, JSON-normalised as policy.Decode makes them.
func (e *reportEntry) resources() ([]policy.Resource, error) {
	out := make([]policy.Resource, len(e.Objects))
	for i, o := range e.Objects {
		out[i].Origin = o.Origin
		if string(o.Object) == "null" {
			continue
		}
		var m map[string]any
		if err := utiljson.Unmarshal(o.Object, &m); err != nil {
			return nil, err
		}
		out[i].Object = &unstructured.Unstructured{Object: m}
	}
	return out, nil
}

// Blocking is app's verdict, when every one of its targets came from its entry.
func (c *reportCache) Blocking(app reconcile.App) ([]string, bool) {
	c.mu.Lock()
	all := true
	for _, t := range app.Targets {
		all = all && c.hit[targetID(t)]
	}
	c.mu.Unlock()
	key := c.reportVerdictKey(app)
	var v reportVerdict
	if !all || key == "" || !c.vc.Get(key, &v) || v.App != app.Name {
		return nil, false
	}
	traceCache("verdict "+app.Name, "hit")
	return v.Blocking, true
}

// Judged stores app's verdict when it may be.
func (c *reportCache) Judged(app reconcile.App, desired []policy.Resource, judged *policy.Report, blocking []string) {
	c.mu.Lock()
	ok := true
	for _, t := range app.Targets {
		ok = ok && c.entry[targetID(t)]
	}
	c.mu.Unlock()
	key := c.reportVerdictKey(app)
	ok = ok && key != "" && len(judged.Errors) == 0 && !customKinds(desired)
	for _, r := range desired {
		ok = ok && !policy.IsCRD(r)
	}
	if !ok {
		traceCache("verdict "+app.Name, "render")
		return
	}
	c.vc.Put(key, reportVerdict{App: app.Name, Blocking: append([]string{}, blocking...)})
	traceCache("verdict "+app.Name, "miss")
}
