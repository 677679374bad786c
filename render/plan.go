package render

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/policy"
)

// Plan is the one list of a repository's targets that every command sees (targets,
// render, check, sync, report): Discover's, plus the Applications that targets render
// (app-of-apps, followed to a depth of maxAppDepth; an Application already read is not
// read again, so a cycle stops), with
//   - a leaf kustomization, chart or directory that an Application deploys listed once,
//     as the Application's target (Argo CD renders it that way);
//   - one target per source: Applications that render the same path with the same
//     parameters and destination share it, each named in DeployedBy;
//   - unique names a user can type (see uniqueNames).
//
// Only targets whose files may hold an Application are rendered to find them (a cheap
// test on their dependencies); their renders are kept in the Discovery for RenderPlan,
// so nothing is rendered twice.
func Plan(ctx context.Context, repo Repo, opts DiscoverOptions, workers int) *Discovery {
	repo = repo.confined()
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	d := Discover(ctx, repo, opts)
	d.rendered = map[string]Rendered{}
	known := map[string]bool{}
	for _, a := range d.Apps {
		known[appKey(a)] = true
	}
	probe := newAppProbe(repo)
	for f, v := range d.appFiles { // files discovery read: not read again
		probe.files[f] = v
	}
	d.appFiles = nil
	d.deps = probe.deps
	pending := probe.filter(d.Targets)
	depth := 0
	for ; len(pending) > 0 && depth < maxAppDepth && ctx.Err() == nil; depth++ {
		for _, t := range pending {
			d.opaqueRender = d.opaqueRender || !readsThroughFS(t)
		}
		var apps []policy.Resource
		for _, r := range All(ctx, repo, pending, workers, nil, nil) {
			d.rendered[sourceKey(r.Target)] = r
			for _, a := range ChildApps(r.Resources) {
				if k := appKey(a); !known[k] {
					known[k] = true
					apps = append(apps, a)
				}
			}
		}
		if len(apps) == 0 {
			pending = nil
			break
		}
		ts, notices, errs := AppTargets(repo, apps, AppOptions{RepoURLs: opts.RepoURLs})
		setDeployedBy(ts)
		d.Notices = append(d.Notices, notices...)
		d.Errors = append(d.Errors, errs...)
		fresh := d.adopt(opts.filter(d, ts))
		pending = probe.filter(fresh)
	}
	if len(pending) > 0 && ctx.Err() == nil {
		d.Notices = append(d.Notices, fmt.Sprintf("app-of-apps deeper than %d levels not followed", maxAppDepth))
	}
	d.mergeSources()
	d.noteJsonnet() // app-of-apps may render the jsonnet Discover found unrendered
	SortTargets(d.Targets)
	uniqueNames(d.Targets)
	if opts.Under != "" && opts.Under != "." {
		d.keepUnder(repo, opts.Under)
	}
	for _, t := range d.Targets {
		if t.Kind == Kustomize || t.Kind == Helm || t.DefinedIn != "" {
			d.NeedsRendering = true
		}
	}
	return d
}

// readsThroughFS: t renders its repository's files by reading them through Repo.FS
// alone (plain manifest files and Tekton files of this repository, no jsonnet), so what
// its render depends on is what Repo.FS was asked.
func readsThroughFS(t Target) bool {
	return (t.Kind == Directory || t.Kind == Tekton) && t.Jsonnet == nil && t.Repo == nil && t.Chart == nil && len(t.Refs) == 0
}

// maxAppDepth bounds app-of-apps: an Application rendering Applications rendering ...
const maxAppDepth = 5

// appKey is an Application's identity and where it is written.
func appKey(a policy.Resource) string {
	return a.ID() + "@" + a.Origin.File + ":" + strconv.Itoa(a.Origin.Line)
}

// keepUnder keeps the targets whose source is under dir, or when there are none, those
// that read a file under it, and says so.
func (d *Discovery) keepUnder(repo Repo, dir string) {
	in := func(p string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	var kept []Target
	for _, t := range d.Targets {
		if t.Repo == nil && t.Chart == nil && in(t.Path) { // a path of this repository
			kept = append(kept, t)
		}
	}
	if len(kept) == 0 {
		deps := newDepsCache(repo.FS)
		for _, t := range d.Targets {
			for _, f := range deps.deps(t) {
				if in(strings.TrimSuffix(f, "/")) || strings.HasSuffix(f, "/") && in(dir) && strings.HasPrefix(dir+"/", f) {
					kept = append(kept, t)
					break
				}
			}
		}
		if len(kept) > 0 {
			d.Notices = append(d.Notices, fmt.Sprintf("%s is not a target of its own: checked the %d targets that build on it", dir, len(kept)))
		}
	}
	keep := map[string]bool{}
	for _, t := range kept {
		keep[sourceKey(t)] = true
	}
	for k := range d.rendered {
		if !keep[k] {
			delete(d.rendered, k)
		}
	}
	d.Targets = kept
	errs := d.Errors[:0]
	for _, e := range d.Errors {
		var ie *policy.InputError
		if !errors.As(e, &ie) || in(ie.Origin.File) {
			errs = append(errs, e)
		}
	}
	d.Errors = errs
}

// setDeployedBy names each Application target's Application (AppTargets names a target
// <app>, or <app>/<source index> for a multi-source Application).
func setDeployedBy(ts []Target) {
	for i, t := range ts {
		if t.DefinedIn != "" && len(t.DeployedBy) == 0 {
			app, _, _ := strings.Cut(t.Name, "/")
			ts[i].DeployedBy = []string{app}
		}
	}
}

// adopt adds the targets of Applications found in rendered output: a leaf found by the
// scan (no Application) at the same path gives way to the Application's
// target; a source already listed is not listed again. It returns what is new.
func (d *Discovery) adopt(ts []Target) []Target {
	var fresh []Target
	for _, t := range ts {
		if t.DefinedIn != "" && t.Repo == nil && t.Chart == nil {
			for i := 0; i < len(d.Targets); i++ {
				if l := d.Targets[i]; l.DefinedIn == "" && l.Path == t.Path {
					delete(d.rendered, sourceKey(l))
					d.Targets = append(d.Targets[:i], d.Targets[i+1:]...)
					i--
				}
			}
		}
		d.Targets = append(d.Targets, t)
		fresh = append(fresh, t)
	}
	return fresh
}

// mergeSources keeps one target per source (sourceKey): the first in name order keeps
// its name, and every Application that deploys the source is in its DeployedBy.
func (d *Discovery) mergeSources() {
	SortTargets(d.Targets)
	first := map[string]int{}
	out := d.Targets[:0]
	for _, t := range d.Targets {
		k := sourceKey(t)
		if i, ok := first[k]; ok {
			for _, a := range t.DeployedBy {
				if !slices.Contains(out[i].DeployedBy, a) {
					out[i].DeployedBy = append(out[i].DeployedBy, a)
				}
			}
			continue
		}
		first[k] = len(out)
		out = append(out, t)
	}
	d.Targets = out
}

// sourceKey is what a target renders: everything but its names. Two targets with the
// same key render the same objects.
func sourceKey(t Target) string {
	t.Name, t.DefinedIn, t.DeployedBy = "", "", nil
	b, _ := json.Marshal(t)
	if !t.Destination.Local() { // the same source on another cluster is another target
		return string(b) + "|" + t.Destination.String()
	}
	return string(b)
}

// uniqueNames makes every target name unique without free text: a name several targets
// share (or that is another target's path) becomes, for each, its Application file and name (clusters/prod/apps/web) or its
// path (apps/web/overlays/prod, charts/api/values-prod), and only if that still collides,
// a number (-2, -3).
func uniqueNames(ts []Target) {
	count := map[string]int{}
	paths := map[string]bool{}
	for _, t := range ts {
		count[t.Name]++
		if t.Repo == nil && t.Chart == nil {
			paths[t.Path] = true
		}
	}
	// A name that is another target's path would make FindTarget refuse both: it
	// collides as a shared name does.
	for _, t := range ts {
		if count[t.Name] == 1 && t.Name != t.Path && paths[t.Name] {
			count[t.Name]++
		}
	}
	taken := map[string]bool{}
	for _, t := range ts {
		if count[t.Name] == 1 {
			taken[t.Name] = true
		}
	}
	for i := range ts {
		if count[ts[i].Name] == 1 {
			continue
		}
		name := pathName(ts[i])
		for n := 2; taken[name]; n++ {
			name = pathName(ts[i]) + "-" + strconv.Itoa(n)
		}
		taken[name] = true
		ts[i].Name = name
	}
	SortTargets(ts)
}

// pathName names a target by where it is written.
func pathName(t Target) string {
	if t.DefinedIn != "" {
		return strings.TrimSuffix(t.DefinedIn, path.Ext(t.DefinedIn)) + "/" + t.Name
	}
	switch {
	case t.Kind == Helm && len(t.ValueFiles) > 0:
		vf := t.ValueFiles[0]
		return t.Path + "/" + strings.TrimSuffix(path.Base(vf), path.Ext(vf))
	case t.Kind == Tekton:
		return strings.TrimSuffix(t.Path, path.Ext(t.Path))
	}
	return t.Path
}

// appProbe answers whether a target may render an Argo CD Application: whether any
// file it reads mentions one (kind: Application or ApplicationSet). Files are read once.
type appProbe struct {
	repo  Repo
	deps  *depsCache
	files map[string]bool
}

func newAppProbe(repo Repo) *appProbe {
	return &appProbe{repo: repo, deps: newDepsCache(repo.FS), files: map[string]bool{}}
}

func (p *appProbe) filter(ts []Target) []Target {
	var out []Target
	for _, t := range ts {
		if t.Kind != Tekton && p.mayRenderApps(t) {
			out = append(out, t)
		}
	}
	return out
}

func (p *appProbe) mayRenderApps(t Target) bool {
	for _, dep := range p.deps.deps(t) {
		if dir, ok := strings.CutSuffix(dep, "/"); ok {
			found := false
			_ = fs.WalkDir(p.repo.FS, dir, func(f string, e fs.DirEntry, err error) error {
				if err != nil || found {
					return fs.SkipAll
				}
				if !e.IsDir() && p.file(f) {
					found = true
					return fs.SkipAll
				}
				return nil
			})
			if found {
				return true
			}
		} else if p.file(dep) {
			return true
		}
	}
	return false
}

func (p *appProbe) file(f string) bool {
	if v, ok := p.files[f]; ok {
		return v
	}
	v := false
	if isYAML(f) || strings.HasSuffix(f, ".tpl") || strings.HasSuffix(f, ".jsonnet") || strings.HasSuffix(f, ".libsonnet") {
		v = p.read(f)
	}
	p.files[f] = v
	return v
}

// read reports whether the file f (within the size limit) mentions an Application; one
// open, its size taken from the open file.
func (p *appProbe) read(f string) bool {
	file, err := p.repo.FS.Open(f)
	if err != nil {
		return false
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil || !info.Mode().IsRegular() || p.repo.MaxFileSize > 0 && info.Size() > p.repo.MaxFileSize {
		return false
	}
	data, err := io.ReadAll(file)
	return err == nil && mentionsApp(data)
}

// RenderPlan renders a plan's targets on workers goroutines, as All does (with a sink,
// each target is handed to it as it renders and only its Applications are kept in the
// result); the targets Plan rendered to find Applications are not rendered again.
func RenderPlan(ctx context.Context, repo Repo, d *Discovery, workers int, progress func(done, total int), sink func(Rendered)) []Rendered {
	return d.render(ctx, repo, d.Targets, workers, progress, sink)
}

// render is RenderPlan of some of the plan's targets.
func (d *Discovery) render(ctx context.Context, repo Repo, targets []Target, workers int, progress func(done, total int), sink func(Rendered)) []Rendered {
	out := make([]Rendered, len(targets))
	var rest []Target
	var at []int
	done := 0
	for i, t := range targets {
		r, ok := d.rendered[sourceKey(t)]
		if !ok {
			rest = append(rest, t)
			at = append(at, i)
			continue
		}
		r.Target = t // the plan's name and DeployedBy
		if sink != nil {
			sink(r)
			r.Resources = ChildApps(r.Resources)
		}
		out[i] = r
		done++
	}
	d.rendered = nil
	total := len(targets)
	if progress != nil && done > 0 {
		progress(done, total)
	}
	var inner func(int, int)
	if progress != nil {
		inner = func(n, _ int) { progress(done+n, total) }
	}
	for k, r := range All(ctx, repo, rest, workers, inner, sink) {
		out[at[k]] = r
	}
	return out
}

// FindTarget picks the target a user named, by name or by path (a directory or file of
// the repository, slash-separated). An argument that is one target's name and another's
// path is an error naming both; a path several targets render from (a chart with values
// per environment) is an error listing their names.
func FindTarget(ts []Target, arg string) (Target, error) {
	rel := path.Clean(strings.TrimPrefix(filepath.ToSlash(arg), "./"))
	var byName *Target
	var byPath []Target
	for i, t := range ts {
		if t.Name == arg {
			byName = &ts[i]
		}
		if t.Path == rel {
			byPath = append(byPath, t)
		}
	}
	switch {
	case byName != nil:
		for _, t := range byPath {
			if t.Name != byName.Name {
				return Target{}, fmt.Errorf("%q is the name of target %s and the path of target %s: rename one of them, or name the target by the other", arg, byName, t)
			}
		}
		return *byName, nil
	case len(byPath) == 1:
		return byPath[0], nil
	case len(byPath) > 1:
		var names []string
		for _, t := range byPath {
			names = append(names, t.Name)
		}
		return Target{}, fmt.Errorf("%s is the path of %d targets: name one of them (%s)", arg, len(byPath), strings.Join(names, ", "))
	}
	return Target{}, fmt.Errorf("%s: %w; 'gitgate targets' lists them", arg, ErrNoTarget)
}

// ErrNoTarget is FindTarget's answer for an argument that names no target.
var ErrNoTarget = errors.New("no such target")
