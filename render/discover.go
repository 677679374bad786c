package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/gitgate/gitgate/internal/kustomization"
	"github.com/gitgate/gitgate/internal/repopath"
	"github.com/gitgate/gitgate/policy"
)

// Discovery is what a repository holds to render.
type Discovery struct {
	// NeedsRendering is set when a target must be rendered (a kustomization, a chart, an
	// Argo CD Application); otherwise the repository is plain manifests.
	NeedsRendering bool
	Targets        []Target
	// Apps are the Argo CD Applications and ApplicationSets found (the input of AppTargets).
	Apps []policy.Resource
	// Notices are things skipped on purpose (a generator with no data, a source in
	// another repository).
	Notices []string
	// Errors are inputs that could not be understood; every other target is still listed.
	Errors []error

	considered, leftOut int            // targets the filter saw and dropped
	filterNotice        int            // 1 + the index of the filter's notice in Notices
	jsonnetDirs         map[string]int // see jsonnetCandidates
	jsonnetNotice       int            // 1 + the index of noteJsonnet's notice in Notices

	// rendered are the targets Plan rendered to find Applications, by sourceKey, for
	// RenderPlan.
	rendered map[string]Rendered
	// deps are the plan's target dependencies (its Application probe's), for DepsOf.
	deps *depsCache
	// appFiles: what discovery read of each file it read whole, for Plan's probe.
	appFiles map[string]bool
	// opaqueRender: Plan rendered a target to find Applications that read files other
	// than through Repo.FS (kustomize, Helm, jsonnet, a remote source), so PlanWithMemo
	// does not store the plan, even when keepUnder dropped the renders.
	opaqueRender bool
}

// DiscoverOptions configure Discover.
type DiscoverOptions struct {
	// Exclude lists repo-relative directories that are not manifests (policy directories).
	Exclude []string
	// RepoURLs identify this repository in Applications' sources (see AppOptions).
	RepoURLs []string
	// Environments, when set, are the only environments a chart is rendered for
	// (values-<env>.yaml, environments/<env>/<chart>/values.yaml).
	Environments []string
	// Include, when set, keeps only the targets it accepts (.gitgate.yaml targets:),
	// those found by following app-of-apps too.
	Include func(name string) bool
	// Under, when set, is a repo-relative directory: Plan keeps the targets whose source
	// is in it, or, when none is, the targets that read files in it (a base, a chart's
	// values). Everything is discovered and named as for the whole repository.
	Under string
}

// filter drops the targets Include refuses. One notice in d says how many over the
// whole discovery, app-of-apps children included: it is rewritten, not repeated.
func (o DiscoverOptions) filter(d *Discovery, ts []Target) []Target {
	if o.Include == nil {
		return ts
	}
	n := len(ts)
	ts = slices.DeleteFunc(ts, func(t Target) bool { return !o.Include(t.Name) })
	d.considered += n
	d.leftOut += n - len(ts)
	if d.leftOut > 0 {
		msg := fmt.Sprintf("%d of %d targets left out by the target filter (targets: in .gitgate.yaml)", d.leftOut, d.considered)
		if d.filterNotice > 0 {
			d.Notices[d.filterNotice-1] = msg
		} else {
			d.Notices = append(d.Notices, msg)
			d.filterNotice = len(d.Notices)
		}
	}
	return ts
}

func (o DiscoverOptions) environment(env string) bool {
	return len(o.Environments) == 0 || slices.Contains(o.Environments, env)
}

// repoScan is one walk of the repository.
type repoScan struct {
	kustomizations map[string]bool     // dir -> has a kustomization
	referenced     map[string]bool     // dirs another kustomization uses as a base or component
	components     map[string]bool     // dirs whose kustomization is a kind: Component
	refs           map[string][]string // kustomization dir -> the dirs it builds on
	inflated       map[string]bool     // chart dirs a kustomization's helmCharts renders
	charts         map[string]bool     // chart dirs
	manifests      map[string][]string
	tekton         map[string]bool // files holding Tekton objects
	jsonnet        map[string]int  // dir -> number of .jsonnet files in it
	apps           []policy.Resource
	errs           []error
	// appFiles are the files the scan read whole (within the size limit), each true when
	// it mentions an Application (mentionsApp): Plan's probe does not read them again.
	appFiles map[string]bool
}

// Discover walks the repository once and lists its targets: the Argo CD Applications'
// sources, every leaf kustomization (one no other
// kustomization references) not reached otherwise, every Helm chart not reached
// otherwise (default values, each values-<env>.yaml beside it, and
// environments/<env>/<chart>/values.yaml), and the plain manifest directories and Tekton
// files left over. It needs no configuration for a repository shaped like the seed's.
func Discover(ctx context.Context, repo Repo, opts DiscoverOptions) *Discovery {
	repo = repo.confined()
	sc := scanRepo(repo, opts)
	d := &Discovery{Apps: sc.apps, Errors: sc.errs, appFiles: sc.appFiles}
	reached := map[string]bool{}
	if len(sc.apps) > 0 {
		ts, notices, errs := AppTargets(repo, sc.apps, AppOptions{RepoURLs: opts.RepoURLs})
		setDeployedBy(ts)
		d.Targets = append(d.Targets, ts...)
		d.Notices = append(d.Notices, notices...)
		d.Errors = append(d.Errors, errs...)
		for _, t := range ts {
			if t.Repo == nil && t.Chart == nil { // a path of this repository
				reached[t.Path] = true
			}
		}
	}
	// Kustomizations: leaves only; a base is rendered through its overlays. A Component
	// is a fragment even when no kustomization uses it (kustomize cannot build most on
	// their own): said once, never a target.
	var unused []string
	for dir := range sc.kustomizations {
		if sc.referenced[dir] || reached[dir] || underAny(dir, sc.charts) {
			continue
		}
		if sc.components[dir] {
			unused = append(unused, dir)
			continue
		}
		d.Targets = append(d.Targets, Target{Name: kustomizeName(dir), Kind: Kustomize, Path: dir})
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		d.Notices = append(d.Notices, fmt.Sprintf("%d kustomize Component(s) that no kustomization uses are not checked on their own (a Component is checked through the kustomizations that use it): %s", len(unused), listSome(unused, 5)))
	}
	for _, dir := range sc.orphans(reached) {
		// Referenced only from a cycle: no leaf builds it, so it would go unchecked; its
		// render names the cycle at the line that closes it.
		d.Targets = append(d.Targets, Target{Name: kustomizeName(dir), Kind: Kustomize, Path: dir})
	}
	// Charts: defaults, values-<env>.yaml beside, environments/<env>/<chart>/values.yaml.
	for dir := range sc.charts {
		if reached[dir] || sc.inflated[dir] || underAny(path.Dir(dir), sc.charts) && path.Base(path.Dir(dir)) == "charts" {
			continue // reached by an Application, rendered by a kustomization's helmCharts, or a subchart rendered with its parent
		}
		name := path.Base(dir)
		d.Targets = append(d.Targets, Target{Name: name, Kind: Helm, Path: dir})
		entries, _ := fs.ReadDir(repo.FS, dir)
		for _, e := range entries {
			n := e.Name()
			if env, ok := strings.CutPrefix(n, "values-"); ok && !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
				env = strings.TrimSuffix(strings.TrimSuffix(env, ".yaml"), ".yml")
				if !opts.environment(env) {
					continue
				}
				d.Targets = append(d.Targets, Target{Name: name + "/" + env, Kind: Helm, Path: dir, ValueFiles: []string{path.Join(dir, n)}})
			}
		}
		envs, _ := fs.ReadDir(repo.FS, "environments")
		for _, e := range envs {
			vf := path.Join("environments", e.Name(), name, "values.yaml")
			if _, err := fs.Stat(repo.FS, vf); err == nil && opts.environment(e.Name()) {
				d.Targets = append(d.Targets, Target{Name: name + "/" + e.Name(), Kind: Helm, Path: dir, ValueFiles: []string{vf}, Namespace: e.Name()})
			}
		}
	}
	// Plain manifests and Tekton: whatever no kustomization, chart or Application covers.
	for dir, files := range sc.manifests {
		if reached[dir] || underAny(dir, sc.kustomizations) || underAny(dir, sc.charts) {
			continue // a kustomization's files and patches are rendered through it
		}
		var plain, tekton []string
		for _, f := range files {
			if sc.tekton[f] {
				tekton = append(tekton, f)
			} else {
				plain = append(plain, f)
			}
		}
		if len(plain) > 0 {
			d.Targets = append(d.Targets, Target{Name: dir, Kind: Directory, Path: dir})
		}
		for _, f := range tekton {
			d.Targets = append(d.Targets, Target{Name: strings.TrimSuffix(strings.TrimSuffix(f, ".yaml"), ".yml"), Kind: Tekton, Path: f})
		}
	}
	d.jsonnetDirs = jsonnetCandidates(sc)
	d.noteJsonnet()
	uniqueNames(d.Targets)
	d.Targets = opts.filter(d, d.Targets)
	for _, t := range d.Targets {
		if t.Kind == Kustomize || t.Kind == Helm {
			d.NeedsRendering = true
		}
	}
	d.NeedsRendering = d.NeedsRendering || len(d.Apps) > 0
	return d
}

// orphans are the kustomizations no target builds: referenced, but only from
// kustomizations in a cycle (a -> b -> a), so neither is a leaf. One per group, the first
// in path order, so each cycle is rendered, and reported, once.
func (sc *repoScan) orphans(reached map[string]bool) []string {
	built := map[string]bool{}
	var mark func(dir string)
	mark = func(dir string) {
		if built[dir] {
			return
		}
		built[dir] = true
		for _, r := range sc.refs[dir] {
			mark(r)
		}
	}
	var rest []string
	for dir := range sc.kustomizations {
		switch {
		case underAny(dir, sc.charts):
		case !sc.referenced[dir] || reached[dir]:
			mark(dir)
		default:
			rest = append(rest, dir)
		}
	}
	sort.Strings(rest)
	var out []string
	for _, dir := range rest {
		if !built[dir] {
			out = append(out, dir)
			mark(dir)
		}
	}
	return out
}

// jsonnetCandidates are the directories holding .jsonnet files that no kustomization or
// chart covers and no Application names as its path (an Application that names one and
// fails says why in its own error), with their number of .jsonnet files.
func jsonnetCandidates(sc *repoScan) map[string]int {
	named := map[string]bool{}
	for _, a := range sc.apps {
		if spec, ok := a.Object.Object["spec"].(map[string]any); ok {
			for _, src := range argoSources(spec) {
				if p, err := repopath.Clean(argoString(src["path"])); err == nil {
					named[p] = true
				}
			}
		}
	}
	out := map[string]int{}
	for dir, n := range sc.jsonnet {
		if !named[dir] && !underAny(dir, sc.kustomizations) && !underAny(dir, sc.charts) {
			out[dir] = n
		}
	}
	return out
}

// noteJsonnet keeps one notice naming the candidate directories no target renders
// the jsonnet of: gitgate evaluates jsonnet as Argo CD does, for an Application whose
// directory source gives its libs, extVars and TLAs, and does not guess them. Plan calls
// it again once app-of-apps has added targets; the notice is rewritten or dropped.
func (d *Discovery) noteJsonnet() {
	var dirs []string
	files := 0
	for dir, n := range d.jsonnetDirs {
		covered := false
		for _, t := range d.Targets {
			// A plugin target renders its directory its own way (and is reported as not
			// rendered): its jsonnet is not left over.
			if t.Repo == nil && (t.Kind == Directory && t.Jsonnet != nil && (t.Path == dir || t.Recurse && (t.Path == "." || strings.HasPrefix(dir, t.Path+"/"))) || t.Kind == Plugin && (t.Path == dir || strings.HasPrefix(dir, t.Path+"/"))) {
				covered = true
				break
			}
		}
		if !covered {
			dirs = append(dirs, dir)
			files += n
		}
	}
	if len(dirs) == 0 {
		if d.jsonnetNotice > 0 { // drop it, keeping the filter's notice index right
			i := d.jsonnetNotice - 1
			d.Notices = slices.Delete(d.Notices, i, i+1)
			if d.filterNotice > d.jsonnetNotice {
				d.filterNotice--
			}
			d.jsonnetNotice = 0
		}
		return
	}
	sort.Strings(dirs)
	msg := fmt.Sprintf("%d .jsonnet file(s) in %s: not rendered: no Argo CD Application renders them (gitgate evaluates jsonnet for an Application's directory source, which gives its libs, extVars and TLAs)", files, listSome(dirs, 5))
	if d.jsonnetNotice > 0 {
		d.Notices[d.jsonnetNotice-1] = msg
		return
	}
	d.Notices = append(d.Notices, msg)
	d.jsonnetNotice = len(d.Notices)
}

func underAny(dir string, set map[string]bool) bool {
	for p := dir; p != "." && p != "/" && p != ""; p = path.Dir(p) {
		if set[p] {
			return true
		}
	}
	return false
}

// kustomizeName names apps/<svc>/overlays/<env> as <svc>/<env>, else the directory.
func kustomizeName(dir string) string {
	parts := strings.Split(dir, "/")
	if n := len(parts); n >= 3 && parts[n-2] == "overlays" {
		return parts[n-3] + "/" + parts[n-1]
	}
	return dir
}

func scanRepo(repo Repo, opts DiscoverOptions) *repoScan {
	sc := &repoScan{
		kustomizations: map[string]bool{}, referenced: map[string]bool{}, components: map[string]bool{}, refs: map[string][]string{}, inflated: map[string]bool{}, charts: map[string]bool{},
		manifests: map[string][]string{}, tekton: map[string]bool{}, jsonnet: map[string]int{}, appFiles: map[string]bool{},
	}
	read := func(p string, data []byte) {
		if repo.MaxFileSize <= 0 || int64(len(data)) <= repo.MaxFileSize {
			sc.appFiles[p] = mentionsApp(data)
		}
	}
	excluded := func(p string) bool {
		for _, x := range opts.Exclude {
			if p == x || strings.HasPrefix(p, strings.TrimSuffix(x, "/")+"/") {
				return true
			}
		}
		return false
	}
	_ = fs.WalkDir(repo.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			sc.errs = append(sc.errs, &policy.InputError{Origin: policy.Origin{File: p}, Err: err})
			return nil
		}
		name := d.Name()
		if d.IsDir() {
			if p != "." && (strings.HasPrefix(name, ".") || name == "node_modules" || excluded(p)) {
				return fs.SkipDir
			}
			if _, err := fs.Stat(repo.FS, path.Join(p, "Chart.yaml")); err == nil {
				sc.charts[p] = true
			}
			for _, k := range kustomization.FileNames {
				data, err := fs.ReadFile(repo.FS, path.Join(p, k))
				if err == nil {
					read(path.Join(p, k), data)
					sc.kustomizations[p] = true
					if kustomizeComponent.Match(data) {
						sc.components[p] = true
					}
					for _, ref := range kustomizeRefs(data) {
						r := path.Clean(path.Join(p, ref))
						sc.referenced[r] = true
						sc.refs[p] = append(sc.refs[p], r)
					}
					if bytes.Contains(data, []byte("helmCharts")) {
						if k, err := kustomization.Parse(data); err == nil {
							home := k.HelmGlobals.ChartHome
							if home == "" {
								home = "charts"
							}
							for _, h := range k.HelmCharts {
								if h.Repo == "" && h.Name != "" {
									sc.inflated[path.Clean(path.Join(p, home, h.Name))] = true
								}
							}
						}
					}
					break
				}
				var esc *repopath.EscapeError
				if errors.As(err, &esc) {
					// A kustomization file that is a link out of the repository: still a
					// kustomization (its files are not plain manifests), whose render
					// refuses the link by name.
					sc.kustomizations[p] = true
					break
				}
			}
			return nil
		}
		if isJsonnet(name) && !strings.HasPrefix(name, ".") && !excluded(p) {
			sc.jsonnet[path.Dir(p)]++
			return nil
		}
		if strings.HasPrefix(name, ".") || kustomization.IsFileName(name) || !isYAML(name) || excluded(p) {
			return nil
		}
		dir := path.Dir(p)
		if underAny(dir, sc.charts) {
			return nil // chart templates and values are rendered with the chart
		}
		info, err := d.Info()
		if err != nil || repo.MaxFileSize > 0 && info.Size() > repo.MaxFileSize {
			sc.manifests[dir] = append(sc.manifests[dir], p) // the check reports the size
			return nil
		}
		data, err := fs.ReadFile(repo.FS, p)
		if err != nil {
			var esc *repopath.EscapeError
			if errors.As(err, &esc) {
				// A link out of the repository: its directory's target refuses it by name.
				sc.manifests[dir] = append(sc.manifests[dir], p)
			}
			return nil
		}
		read(p, data)
		// A kustomization's own files are rendered through it: only an Application or a
		// Tekton object among them matters here, so the rest are not decoded (most of
		// a monorepo's files, and most of discovery's time).
		if underAny(dir, sc.kustomizations) && !mayHoldAppOrTekton(data) {
			return nil
		}
		rs, err := policy.Decode(p, data)
		if len(rs) == 0 && err == nil {
			return nil // values files, configuration
		}
		// A file that does not decode stays a manifest: its target reports the error.
		for _, r := range rs {
			gvk := r.Object.GroupVersionKind()
			switch {
			case gvk.Group == "argoproj.io" && (gvk.Kind == "Application" || gvk.Kind == "ApplicationSet"):
				sc.apps = append(sc.apps, r)
			case gvk.Group == "tekton.dev":
				sc.tekton[p] = true
			}
		}
		sc.manifests[dir] = append(sc.manifests[dir], p)
		return nil
	})
	return sc
}

// appKind finds a kind: Application or ApplicationSet line (YAML, JSON or jsonnet).
var appKind = regexp.MustCompile(`(?m)^\s*(?:-\s+)?["']?kind["']?\s*:\s*["']?Application(?:Set)?\b`)

// mentionsApp is appKind.Match, its regular expression run only on files that hold the
// word at all.
func mentionsApp(data []byte) bool {
	return bytes.Contains(data, []byte("Application")) && appKind.Match(data)
}

// mayHoldAppOrTekton is a cheap test that a file may hold an Argo CD Application or a
// Tekton object; false means it certainly does not.
func mayHoldAppOrTekton(data []byte) bool {
	return bytes.Contains(data, []byte("tekton.dev/")) || bytes.Contains(data, []byte("Application")) && appKind.Match(data)
}

func isYAML(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml") || strings.HasSuffix(name, ".json")
}

// kustomizeRefs are the directories a kustomization builds on.
func kustomizeRefs(data []byte) []string {
	var out []string
	for _, r := range kustomization.Refs(data) {
		if !isRemote(r) && !isYAML(r) {
			out = append(out, r)
		}
	}
	return out
}

// kustomizeComponent matches a kustomization file declaring kind: Component.
var kustomizeComponent = regexp.MustCompile(`(?m)^kind:[ \t]*["']?Component["']?[ \t]*(#.*)?\r?$`)

// listSome is the first n items, and how many more.
func listSome(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
