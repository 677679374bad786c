package main

import (
	"context"
	"encoding/json"
	"strings"
	"sync"

	"github.com/gitgate/gitgate/internal/verdictcache"
	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
)

// compareCache is the verdict cache in merge-request mode (check --base): the same
// entries as check's, under the same keys (runKey, cacheKeys), on both sides: head is
// the working tree, the merge base a revision read from Git whose files digest as a
// checkout's would, so a target unchanged since a check of the base commit (or since
// the previous run of the merge request) is neither rendered nor judged.
//
// What Compare needs beyond check's share of the report is the target's rendered YAML
// (its diff): check stores it beside the entry as it renders (storeRendered, so it is
// not held until the entries are stored), never when it shows a masked Secret value
// (masks are keyed per run); a target without it is rendered. Entries with custom resources are neither used nor stored here:
// check judges those again after every target rendered (CRDs other targets render),
// Compare does not. Not used when the policies change (render.Compare judges head
// under both rule sets): checkChange then passes none.
type compareCache struct {
	vc      *verdictcache.Cache
	run     string
	workers int // digesting the targets' dependencies

	mu   sync.Mutex
	keys map[bool]map[string]string // side (head?) -> target name -> key
	deps map[bool]map[string]render.Deps
}

func newCompareCache(vc *verdictcache.Cache, run string, workers int) *compareCache {
	return &compareCache{vc: vc, run: run, workers: workers,
		keys: map[bool]map[string]string{true: {}, false: {}},
		deps: map[bool]map[string]render.Deps{true: {}, false: {}}}
}

func (c *compareCache) Known(ctx context.Context, repo render.Repo, d *render.Discovery, ts []render.Target, head bool) []*render.KnownSide {
	out := make([]*render.KnownSide, len(ts))
	if len(ts) == 0 {
		return out
	}
	sub := *d
	sub.Targets = ts
	keys, deps := cacheKeys(ctx, repo, &sub, c.run, c.workers)
	c.mu.Lock()
	for i, t := range ts {
		c.keys[head][t.Name], c.deps[head][t.Name] = keys[i], deps[i]
	}
	c.mu.Unlock()
	for i, t := range ts {
		var e cacheEntry
		if keys[i] == "" || !c.vc.Get(keys[i], &e) {
			continue
		}
		var y renderedEntry
		if e.CustomKinds || !c.vc.Get(renderedKey(keys[i]), &y) {
			traceCache(t.Name, "stale")
			continue
		}
		if !entryFits(ctx, repo, t, &e) {
			continue
		}
		traceCache(t.Name, "hit")
		out[i] = &render.KnownSide{Report: e.report(), YAML: []byte(y.YAML), Remotes: e.Status.Remotes, Notices: e.TargetNotices}
	}
	return out
}

// Rendered stores what check would store of a target rendered on either side.
func (c *compareCache) Rendered(head bool, tr render.Traced, part *policy.Report, yaml []byte) {
	r := tr.Rendered
	c.mu.Lock()
	defer c.mu.Unlock()
	key, dep := c.keys[head][r.Target.Name], c.deps[head][r.Target.Name]
	store := key != "" && tr.Reads != nil && r.Err == nil && len(part.Errors) == 0 && !customKinds(r.Resources)
	for _, res := range r.Resources {
		store = store && !policy.IsCRD(res)
	}
	for f := range tr.Reads {
		store = store && dep.Match(f)
	}
	var e *cacheEntry
	if store {
		e = newEntry(&targetOutcome{part: part, notices: r.Notices, store: true}, "")
	}
	if e == nil {
		traceCache(r.Target.Name, "render")
		return
	}
	// A copy of what the report holds now: Compare classifies the results in place.
	b, err := json.Marshal(e)
	if err != nil {
		traceCache(r.Target.Name, "render")
		return
	}
	c.vc.Put(key, json.RawMessage(b))
	putRendered(c.vc, key, yaml)
	traceCache(r.Target.Name, "miss")
}

// renderedEntry is a target's render.DiffYAML, stored beside its entry.
type renderedEntry struct {
	YAML string `json:"yaml"`
}

func renderedKey(key string) string {
	h := verdictcache.NewHasher("rendered")
	h.String(key)
	return h.Sum()
}

// storeRendered stores the rendered YAML of a target check stores (key: its entry's).
func storeRendered(vc *verdictcache.Cache, key string, rs []policy.Resource) {
	if vc != nil && key != "" {
		putRendered(vc, key, render.DiffYAML(rs))
	}
}

func putRendered(vc *verdictcache.Cache, key string, yaml []byte) {
	if !strings.Contains(string(yaml), "<masked ") { // masks are keyed per run
		vc.Put(renderedKey(key), renderedEntry{YAML: string(yaml)})
	}
}
