package render

import (
	"context"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/internal/kustomization"
	"github.com/gitgate/gitgate/internal/pool"
	"github.com/gitgate/gitgate/internal/repopath"
	"sigs.k8s.io/yaml"
)

// Deps are the repository files a target's render reads: repo-relative, slash-separated
// paths, where a path ending in "/" stands for every file below that directory. They are
// computed from the sources alone, without rendering, so merge-request mode can map a
// change to the targets it affects in milliseconds; a test checks them against the files
// a real render reads.
type Deps []string

// Match reports whether a changed file is one of the dependencies.
func (d Deps) Match(file string) bool {
	for _, p := range d {
		if p == file || strings.HasSuffix(p, "/") && strings.HasPrefix(file, p) {
			return true
		}
	}
	return false
}

// MatchAny reports whether any of the changed files is a dependency.
func (d Deps) MatchAny(files []string) bool {
	for _, f := range files {
		if d.Match(f) {
			return true
		}
	}
	return false
}

// targetDeps lists what rendering t reads:
//   - kustomize: every kustomization file of its graph (bases, components) and every file
//     they name (resources, patches, generators' files and env files, replacements,
//     CRDs, transformers, OpenAPI schemas); a directory named as a resource without a
//     kustomization counts whole;
//   - Helm: the chart directory (templates, values, subcharts), its file:// dependencies
//     and the value files;
//   - directories and Tekton files: themselves; for a directory's .jsonnet files, what
//     they import, importstr and importbin, transitively, and the import candidates
//     looked at before the file found (go-jsonnet's search order).
//
// Paths that do not exist are listed all the same: creating them changes the render.
// The Application or ApplicationSet that defines a target is not among them: a change
// there affects exactly the targets whose definition it changes (see Affected).
func targetDeps(repo Repo, t Target) Deps {
	repo = repo.confined()
	return newDepsCache(repo.FS).deps(t)
}

// depsCache reads each kustomization of a repository once, for the dependencies of many
// targets.
type depsCache struct {
	fsys fs.FS
	kust map[string]*kustomization.Kustomization // by directory; nil when it has none
	memo map[string]Deps                         // by sourceKey: a target's deps once
}

func newDepsCache(fsys fs.FS) *depsCache {
	return &depsCache{fsys: fsys, kust: map[string]*kustomization.Kustomization{}, memo: map[string]Deps{}}
}

// deps are t's dependencies, computed once per source (callers must not modify them).
func (c *depsCache) deps(t Target) Deps {
	k := sourceKey(t)
	if d, ok := c.memo[k]; ok {
		return d
	}
	d := c.compute(t)
	c.memo[k] = d
	return d
}

func (c *depsCache) compute(t Target) Deps {
	repo := Repo{FS: c.fsys}
	set := map[string]bool{}
	add := func(p string) {
		if p != "" && p != "." {
			set[p] = true
		}
	}
	if t.Repo != nil { // another repository: only its values files of this one
		for _, f := range t.ValueFiles {
			if _, _, ok := t.refFile(f); !ok {
				add(f)
			}
		}
	} else {
		c.sourceDeps(repo, t, set, add)
	}
	out := make(Deps, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// sourceDeps adds the files of this repository a target of it reads.
func (c *depsCache) sourceDeps(repo Repo, t Target, set map[string]bool, add func(string)) {
	switch t.Kind {
	case Kustomize:
		c.kustomizeDeps(t.Path, set, map[string]bool{})
	case Helm:
		if t.Chart == nil { // a fetched chart reads only its values files here
			helmDeps(repo.FS, t.Path, set, map[string]bool{})
		}
		for _, f := range t.ValueFiles {
			if _, _, ok := t.refFile(f); !ok {
				add(f)
			}
		}
	case Directory:
		if st, err := fs.Stat(repo.FS, t.Path); err == nil && !st.IsDir() {
			add(t.Path)
		} else {
			add(t.Path + "/")
		}
		if t.Jsonnet != nil {
			files, _ := directoryFiles(repo, t)
			var jfiles []string
			for _, f := range files {
				if isJsonnet(f) {
					jfiles = append(jfiles, f)
				}
			}
			for _, f := range jsonnetDeps(repo, t, jfiles) {
				add(f)
			}
		}
	default:
		add(t.Path)
	}
}

// read parses the kustomization in dir once: nil when there is none or it does not
// parse (kustomize reports that; the file itself is a dependency all the same).
func (c *depsCache) read(dir string) *kustomization.Kustomization {
	if k, ok := c.kust[dir]; ok {
		return k
	}
	var k *kustomization.Kustomization
	if _, data := kustomization.Find(c.fsys, dir); data != nil {
		k, _ = kustomization.Parse(data)
	}
	c.kust[dir] = k
	return k
}

func (c *depsCache) kustomizeDeps(dir string, set, seen map[string]bool) {
	if seen[dir] {
		return
	}
	seen[dir] = true
	fsys := c.fsys
	for _, n := range kustomization.FileNames {
		set[path.Join(dir, n)] = true // creating a kustomization where there was none changes the render
	}
	k := c.read(dir)
	if k == nil {
		return
	}
	file := func(p string) {
		if p == "" || isRemote(p) {
			return
		}
		if q, err := repopath.Clean(path.Join(dir, p)); err == nil {
			set[q] = true
		}
	}
	ref := func(p string) { // a file, or a directory with or without a kustomization
		if p == "" || isRemote(p) {
			return
		}
		q, err := repopath.Clean(path.Join(dir, p))
		if err != nil {
			return
		}
		if st, err := fs.Stat(fsys, q); err == nil && st.IsDir() {
			if kustomization.Has(fsys, q) {
				c.kustomizeDeps(q, set, seen)
			} else {
				set[q+"/"] = true
			}
			return
		}
		set[q] = true
	}
	for _, group := range [][]string{k.Resources, k.Bases, k.Components, k.Generators, k.Transformers, k.Validators} {
		for _, r := range group {
			ref(r)
		}
	}
	for _, group := range [][]string{k.CRDs, k.Configurations} {
		for _, f := range group {
			file(f)
		}
	}
	for _, p := range k.PatchesStrategicMerge {
		if !strings.Contains(p, "\n") { // else an inline patch
			file(p)
		}
	}
	for _, p := range k.Patches {
		file(p.Path)
	}
	for _, p := range k.PatchesJSON6902 {
		file(p.Path)
	}
	for _, r := range k.Replacements {
		file(r.Path)
	}
	for _, g := range append(k.ConfigMapGenerator, k.SecretGenerator...) {
		for _, f := range g.Files {
			if _, src, ok := strings.Cut(f, "="); ok {
				f = src
			}
			file(f)
		}
		for _, e := range g.Envs {
			file(e)
		}
		file(g.Env)
	}
	file(k.OpenAPI["path"])
	home := k.HelmGlobals.ChartHome
	if home == "" {
		home = "charts"
	}
	for _, h := range k.HelmCharts {
		file(h.ValuesFile)
		for _, f := range h.AdditionalValues {
			file(f)
		}
		if q, err := repopath.Clean(path.Join(dir, home, h.Name)); err == nil {
			helmDeps(fsys, q, set, map[string]bool{})
		}
	}
}

// helmDeps adds a chart directory and the charts its file:// dependencies name.
func helmDeps(fsys fs.FS, dir string, set, seen map[string]bool) {
	if seen[dir] {
		return
	}
	seen[dir] = true
	set[dir+"/"] = true
	data, err := fs.ReadFile(fsys, path.Join(dir, "Chart.yaml"))
	if err != nil {
		return
	}
	var c struct {
		Dependencies []struct {
			Repository string `json:"repository"`
		} `json:"dependencies"`
	}
	if yaml.Unmarshal(data, &c) != nil {
		return
	}
	for _, d := range c.Dependencies {
		if p, ok := strings.CutPrefix(d.Repository, "file://"); ok {
			if q, err := repopath.Clean(path.Join(dir, p)); err == nil {
				helmDeps(fsys, q, set, seen)
			}
		}
	}
}

// DepsOf lists, for each of targets, the repository files its render reads (as
// targetDeps), each kustomization of the repository read once. The verdict cache keys a
// target's result by their content.
// The plan's own (d, when not nil: it computed them for its Application probe) are
// reused. The lists are shared: do not modify them.
func DepsOf(repo Repo, d *Discovery, targets []Target) []Deps {
	repo = repo.confined()
	c := newDepsCache(repo.FS)
	if d != nil && d.deps != nil {
		c = d.deps
	}
	out := make([]Deps, len(targets))
	for i, t := range targets {
		out[i] = c.deps(t)
	}
	return out
}

// Traced is a rendered target with the repository files its render read (repo-relative,
// as Repo.Trace reports them). Reads is nil when the render was not traced: the plan
// rendered the target while looking for Applications.
type Traced struct {
	Rendered
	Reads map[string]bool
	// Elapsed is how long the render took (0 for one the plan rendered): check --shard
	// balances by it.
	Elapsed time.Duration
}

// RenderTraced is RenderPlan for some of the plan's targets (targets; a later call
// renders afresh what the plan rendered), each render traced: sink gets every target
// as soon as it renders, from the worker's goroutine, with the files it read, so a
// caller can tell whether its dependencies (DepsOf) covered them.
func RenderTraced(ctx context.Context, repo Repo, d *Discovery, targets []Target, workers int, progress func(done, total int), sink func(Traced)) {
	repo = repo.confined()
	var rest []Target
	done := 0
	for _, t := range targets {
		r, ok := d.rendered[sourceKey(t)]
		if !ok {
			rest = append(rest, t)
			continue
		}
		r.Target = t // the plan's name and DeployedBy
		sink(Traced{Rendered: r})
		done++
	}
	d.rendered = nil
	total := len(targets)
	if progress != nil && done > 0 {
		progress(done, total)
	}
	var mu sync.Mutex
	pool.ForEach(ctx, len(rest), workers, func(i int) {
		t := rest[i]
		reads := map[string]bool{}
		var rmu sync.Mutex
		r := repo
		r.Trace = func(f string) { rmu.Lock(); reads[f] = true; rmu.Unlock() }
		start := time.Now()
		rs, remotes, err := renderRecorded(ctx, r, t)
		notices := KustomizeNotices(r, t)
		rmu.Lock()
		got := reads
		rmu.Unlock()
		sink(Traced{Rendered: Rendered{Target: t, Resources: rs, Err: err, Notices: notices, Remotes: remotes}, Reads: got, Elapsed: time.Since(start)})
		if progress != nil {
			mu.Lock()
			done++
			progress(done, total)
			mu.Unlock()
		}
	})
}
