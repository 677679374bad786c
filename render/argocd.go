package render

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/internal/git"
	"github.com/gitgate/gitgate/internal/kustomization"
	"github.com/gitgate/gitgate/internal/repopath"
	"github.com/gitgate/gitgate/policy"
	"sigs.k8s.io/yaml"
)

// This file turns Argo CD Applications and ApplicationSets into render targets, the way
// Argo CD's applicationset-controller and repo-server would, offline: generators are
// evaluated over the local checkout and the clusters named in .gitgate.yaml, templates are
// rendered with Argo CD's two template languages, and every source that lives in this
// repository becomes a Target. Nothing is rendered here; App-of-apps is the caller's loop
// over ChildApps.

// AppOptions configure AppTargets. The zero value is ready to use.
type AppOptions struct {
	// RepoURLs identify this repository (https, ssh and scp-like forms of one URL are the
	// same repository: scheme, user, port, letter case, a trailing ".git" or "/" do not
	// count). Sources and git generators with another repoURL are reported as notices
	// ("not in this repository"), not errors; a source of this repository whose path does
	// not exist is an error.
	//
	// Empty: the repository's URLs are inferred. A repoURL counts as this repository when
	// one of its sources names a path other than the root that exists here as a directory,
	// or a git generator with that repoURL matched something here. Every other source of
	// that repoURL is then checked like one of this repository (a missing path is an error);
	// sources of any other repoURL are notices. Git generators scan this checkout whatever
	// their repoURL.
	RepoURLs []string
	// NewGitFileGlobbing mirrors Argo CD's applicationsetcontroller.enable.new.git.file.globbing:
	// git files generator paths where "*" stays inside one directory and "**" spans any
	// number of them. Off (Argo CD's default), "*" matches across directories too.
	NewGitFileGlobbing bool
	// Context bounds the fetches of sources in other Git repositories (nil: none).
	Context context.Context
}

// AppError is an Application or ApplicationSet that could not be turned into targets, or
// one of its sources that could not.
type AppError struct {
	// Origin is the file of the Application or ApplicationSet, with the line of the field
	// at fault when the decoder kept positions.
	Origin policy.Origin
	// Object is Kind/namespace/name of the Application or ApplicationSet in that file.
	Object string
	// App is the name of the generated Application when Object is an ApplicationSet.
	App string
	Err error
}

func (e *AppError) Error() string {
	var b strings.Builder
	b.WriteString(e.Origin.String())
	b.WriteString(": ")
	b.WriteString(e.Object)
	if e.App != "" {
		b.WriteString(": Application ")
		b.WriteString(e.App)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *AppError) Unwrap() error { return e.Err }

// AppTargets turns the Argo CD Applications and ApplicationSets of a repository into
// render targets: one per source of each Application (written or generated) that lives in
// this repository. Sources elsewhere (another repoURL, a chart from a Helm repository, a
// config management plugin) and generators that need a live Argo CD (pullRequest,
// scmProvider, clusterDecisionResource, plugin; clusters when repo.Clusters is empty) are
// notices. Errors name the file, line and object; every other Application is still
// listed. Objects other than argoproj.io Applications and ApplicationSets are ignored.
//
// Target names are the Application's name, or <name>/<source index> for a multi-source
// Application with more than one source rendered from this repository. Targets come
// back sorted with SortTargets.
func AppTargets(repo Repo, apps []policy.Resource, opts AppOptions) (targets []Target, notices []string, errs []error) {
	repo = repo.confined()
	d := &argoDiscovery{repo: repo, opts: opts, urls: map[string]bool{}, seenNotice: map[string]bool{}}
	for _, u := range opts.RepoURLs {
		d.urls[argoNormalizeURL(u)] = true
	}
	d.inferred = len(opts.RepoURLs) == 0

	var list []argoApp
	for _, r := range apps {
		switch argoKind(r) {
		case "Application":
			if a, ok := d.writtenApp(r); ok {
				list = append(list, a)
			}
		case "ApplicationSet":
			list = append(list, d.expandSet(r)...)
		}
	}
	if d.inferred {
		d.inferRepoURLs(list)
	}
	seen := map[string]argoApp{}
	for _, a := range list {
		key := a.namespace + "/" + a.name
		if prev, ok := seen[key]; ok {
			d.fail(a, []string{"metadata", "name"}, fmt.Errorf("Application %s is also defined by %s (%s); Argo CD keeps only one of them", key, prev.object, prev.src.Origin))
			continue
		}
		seen[key] = a
		targets = append(targets, d.appTargets(a)...)
	}
	SortTargets(targets)
	if len(d.noClusters) > 0 {
		sets := slices.Sorted(maps.Keys(d.noClusters))
		d.notices = append(d.notices, fmt.Sprintf("the clusters generator of %d ApplicationSet(s) is skipped: it needs the clusters listed in .gitgate.yaml (clusters:), so the Applications it would generate are not checked: %s", len(sets), listSome(sets, 5)))
	}
	return targets, d.notices, d.errs
}

// ChildApps returns the Argo CD Applications and ApplicationSets among a target's rendered
// resources (the app-of-apps pattern), for the caller to feed back into AppTargets.
func ChildApps(rendered []policy.Resource) []policy.Resource {
	var out []policy.Resource
	for _, r := range rendered {
		if k := argoKind(r); k == "Application" || k == "ApplicationSet" {
			out = append(out, r)
		}
	}
	return out
}

func argoKind(r policy.Resource) string {
	if r.Object == nil {
		return ""
	}
	gvk := r.Object.GroupVersionKind()
	if gvk.Group != "argoproj.io" {
		return ""
	}
	return gvk.Kind
}

// argoApp is one Application, written in a file or generated by an ApplicationSet.
type argoApp struct {
	name, namespace string
	spec            map[string]any
	src             policy.Resource // the Application, or the ApplicationSet that generated it
	object          string          // Kind/namespace/name of src
	generated       bool
	specAt          []string // where spec is in src, for positions
}

type argoDiscovery struct {
	repo     Repo
	opts     AppOptions
	urls     map[string]bool // normalised URLs of this repository
	inferred bool

	scanned bool
	dirs    []string // every directory of the checkout but the root and hidden ones, sorted
	files   []string // every file but those under .git, sorted
	scanErr error

	notices    []string
	seenNotice map[string]bool
	errs       []error
	// noClusters are the ApplicationSets (file:line object) with a clusters generator
	// skipped for want of clusters in .gitgate.yaml.
	noClusters map[string]bool
}

func (d *argoDiscovery) notice(o policy.Origin, object, app, format string, args ...any) {
	msg := o.String() + ": " + object
	if app != "" {
		msg += ": Application " + app
	}
	msg += ": " + fmt.Sprintf(format, args...)
	if !d.seenNotice[msg] {
		d.seenNotice[msg] = true
		d.notices = append(d.notices, msg)
	}
}

func (d *argoDiscovery) fail(a argoApp, at []string, err error) {
	app := ""
	if a.generated {
		app = a.name
	}
	d.errs = append(d.errs, &AppError{Origin: argoPos(a.src, slices.Concat(a.specAt[:len(a.specAt)-1], at)), Object: a.object, App: app, Err: err})
}

func (d *argoDiscovery) note(a argoApp, at []string, format string, args ...any) {
	app := ""
	if a.generated {
		app = a.name
	}
	d.notice(argoPos(a.src, slices.Concat(a.specAt[:len(a.specAt)-1], at)), a.object, app, format, args...)
}

// argoPos is the position of the deepest field of at that the resource's locator knows.
func argoPos(r policy.Resource, at []string) policy.Origin { return r.FieldOrigin(at) }

func argoID(r policy.Resource) string {
	return policy.FormatID(r.Object.GetKind(), r.Object.GetNamespace(), r.Object.GetName())
}

func (d *argoDiscovery) writtenApp(r policy.Resource) (argoApp, bool) {
	a := argoApp{
		name: r.Object.GetName(), namespace: r.Object.GetNamespace(),
		src: r, object: argoID(r), specAt: []string{"spec"},
	}
	spec, ok := r.Object.Object["spec"].(map[string]any)
	if !ok {
		d.fail(a, nil, errors.New("has no spec"))
		return a, false
	}
	if a.name == "" {
		d.fail(a, []string{"metadata"}, errors.New("has no metadata.name"))
		return a, false
	}
	a.spec = spec
	return a, true
}

// ---- repository identity ----

// argoNormalizeURL reduces a Git URL to host/path: https://Host:443/org/repo.git,
// ssh://git@host:22/org/repo and git@host:org/repo are all host/org/repo.
func argoNormalizeURL(u string) string {
	s := strings.ToLower(strings.TrimSpace(u))
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	} else if c := strings.Index(s, ":"); c >= 0 && (strings.Index(s, "/") < 0 || c < strings.Index(s, "/")) {
		s = s[:c] + "/" + s[c+1:] // scp-like git@host:org/repo
	}
	host, rest, _ := strings.Cut(s, "/")
	if at := strings.LastIndex(host, "@"); at >= 0 {
		host = host[at+1:]
	}
	if c := strings.LastIndex(host, ":"); c >= 0 && !strings.Contains(host[c:], "]") {
		host = host[:c]
	}
	rest = strings.Trim(rest, "/")
	rest = strings.TrimSuffix(rest, ".git")
	return host + "/" + strings.Trim(rest, "/")
}

func (d *argoDiscovery) isThisRepo(repoURL string) bool {
	return d.urls[argoNormalizeURL(repoURL)]
}

// inferRepoURLs applies the rule of AppOptions.RepoURLs for an empty list.
func (d *argoDiscovery) inferRepoURLs(list []argoApp) {
	for _, a := range list {
		for _, src := range argoSources(a.spec) {
			repoURL, _ := src["repoURL"].(string)
			p, _ := src["path"].(string)
			if repoURL == "" || argoString(src["chart"]) != "" {
				continue
			}
			clean, err := repopath.Clean(p)
			if p == "" || clean == "." || err != nil {
				continue
			}
			if st, err := fs.Stat(d.repo.FS, clean); err == nil && st.IsDir() {
				d.urls[argoNormalizeURL(repoURL)] = true
			}
		}
	}
}

func argoSources(spec map[string]any) []map[string]any {
	var out []map[string]any
	if ss, ok := spec["sources"].([]any); ok && len(ss) > 0 {
		for _, s := range ss {
			m, _ := s.(map[string]any)
			out = append(out, m) // nil for a malformed entry, reported by appTargets
		}
		return out
	}
	if s, ok := spec["source"].(map[string]any); ok {
		out = append(out, s)
	}
	return out
}

// ---- Applications to targets ----

func (d *argoDiscovery) appTargets(a argoApp) []Target {
	multi := false
	if ss, ok := a.spec["sources"].([]any); ok && len(ss) > 0 {
		multi = true
	}
	sources := argoSources(a.spec)
	if len(sources) == 0 {
		d.fail(a, []string{"spec"}, errors.New("spec has neither source nor sources"))
		return nil
	}
	refs := map[string]map[string]any{}
	if multi {
		for _, s := range sources {
			if ref := argoString(s["ref"]); ref != "" && s != nil {
				refs["$"+ref] = s
			}
		}
	}
	dest, _ := a.spec["destination"].(map[string]any)
	namespace := argoString(dest["namespace"])

	var ts []Target
	var idx []int
	for i, src := range sources {
		at := []string{"spec", "source"}
		if multi {
			at = []string{"spec", "sources", strconv.Itoa(i)}
		}
		if src == nil {
			d.fail(a, at, fmt.Errorf("%s is not a mapping", argoField(at)))
			continue
		}
		t, ok := d.sourceTarget(a, src, at, multi, refs)
		if !ok {
			continue
		}
		if d := (Destination{Server: argoString(dest["server"]), Name: argoString(dest["name"])}); !d.Local() {
			t.Destination = d // zero is the local cluster
		}
		if t.Namespace == "" {
			t.Namespace = namespace
		}
		ts = append(ts, t)
		idx = append(idx, i)
	}
	if len(ts) > 1 {
		for k := range ts {
			ts[k].Name = a.name + "/" + strconv.Itoa(idx[k])
		}
	}
	return ts
}

// argoField prints a field path the way users write it: spec.sources[1].path.
func argoField(at []string) string { return policy.FieldPath(at) }

func (d *argoDiscovery) sourceTarget(a argoApp, src map[string]any, at []string, multi bool, refs map[string]map[string]any) (Target, bool) {
	repoURL := argoString(src["repoURL"])
	p, hasPath := src["path"].(string)
	field := argoField(at)
	if chart := argoString(src["chart"]); chart != "" {
		// A chart from a Helm repository or an OCI registry: rendered through
		// Repo.Remotes, or reported as not rendered (a remote source) without it.
		if repoURL == "" {
			d.fail(a, at, fmt.Errorf("%s has chart %s but no repoURL", field, chart))
			return Target{}, false
		}
		t := Target{Name: a.name, Kind: Helm, DefinedIn: d.definedIn(a.src.Origin.File),
			Chart: &RemoteChart{Repo: repoURL, Name: chart, Version: argoString(src["targetRevision"])}}
		if !d.helmTarget(a, src, at, refs, &t) {
			return Target{}, false
		}
		return t, true
	}
	if multi && argoString(src["ref"]) != "" && p == "" {
		return Target{}, false // a source of value files only
	}
	if repoURL == "" {
		d.fail(a, at, fmt.Errorf("%s has no repoURL", field))
		return Target{}, false
	}
	if !hasPath || p == "" {
		d.fail(a, at, fmt.Errorf("%s has neither path nor chart; set %s.path (\".\" for the repository root)", field, field))
		return Target{}, false
	}
	// A source in another Git repository: its files come through Repo.Remotes (the tree
	// is fetched here to tell its kind; without it the target is still listed and its
	// render names the remotes.allow entry to add).
	fsys := d.repo.FS
	var other *RemoteRepo
	if !d.isThisRepo(repoURL) {
		if d.inferred { // once per Application or ApplicationSet and repoURL
			d.notice(argoPos(a.src, slices.Concat(a.specAt[:len(a.specAt)-1], at, []string{"repoURL"})), a.object, "", "%s: repoURL %s: another repository (no repoURLs configured and none of its paths exists here; list this repository's URLs in .gitgate.yaml if it is this one)", field, repoURL)
		}
		other = &RemoteRepo{URL: repoURL, Revision: argoString(src["targetRevision"])}
		fsys = nil
		if d.repo.Remotes != nil && d.repo.Remotes.Check(repoURL) == nil {
			ctx := d.opts.Context
			if ctx == nil {
				ctx = context.Background()
			}
			if tree, err := d.repo.Remotes.Git(ctx, repoURL, other.Revision); err == nil {
				fsys = repopath.DirFS(tree.Dir)
			}
		}
	}
	dir, err := d.repoPath(p)
	if other != nil {
		dir, err = repopath.Clean(p)
	}
	if err != nil {
		d.fail(a, append(at, "path"), fmt.Errorf("%s.path %s: %w", field, p, err))
		return Target{}, false
	}
	if fsys == nil {
		// Not fetched: nothing to look at. The render says why.
	} else if st, err := fs.Stat(fsys, dir); err != nil {
		where := "this repository"
		if other != nil {
			where = git.Redact(other.URL) + " at " + cmp.Or(other.Revision, "its default branch")
		}
		msg := fmt.Errorf("%s.path %s does not exist in %s", field, dir, where)
		if strings.Contains(p, "{{") {
			msg = fmt.Errorf("%s.path %s does not exist in %s (a template parameter in it was not set by the generators)", field, p, where)
		}
		d.fail(a, append(at, "path"), msg)
		return Target{}, false
	} else if !st.IsDir() {
		d.fail(a, append(at, "path"), fmt.Errorf("%s.path %s is not a directory", field, dir))
		return Target{}, false
	}

	var explicit []string
	for _, k := range []string{"kustomize", "helm", "directory", "plugin"} {
		if _, ok := src[k]; ok {
			explicit = append(explicit, k)
		}
	}
	if len(explicit) > 1 {
		d.fail(a, at, fmt.Errorf("%s: multiple application sources defined: %s; keep one", field, strings.Join(explicit, ",")))
		return Target{}, false
	}
	kind := Directory
	if len(explicit) == 1 {
		switch explicit[0] {
		case "kustomize":
			kind = Kustomize
		case "helm":
			kind = Helm
		case "plugin":
			kind = Plugin
		}
	} else if fsys != nil {
		kind = detectKind(fsys, dir)
	}

	t := Target{Name: a.name, Kind: kind, Path: dir, DefinedIn: d.definedIn(a.src.Origin.File), Repo: other}
	switch kind {
	case Helm:
		if !d.helmTarget(a, src, at, refs, &t) {
			return Target{}, false
		}
	case Kustomize:
		d.kustomizeTarget(a, src, at, &t)
	case Directory:
		dm, _ := src["directory"].(map[string]any)
		t.Recurse, _ = dm["recurse"].(bool)
		t.Include = argoString(dm["include"])
		t.Exclude = argoString(dm["exclude"])
		if _, ok := src["directory"]; ok && dm == nil && src["directory"] != nil {
			d.fail(a, append(at, "directory"), fmt.Errorf("%s.directory is not a mapping", field))
			return Target{}, false
		}
		opts, ok := d.jsonnetOptions(a, src, at, dm["jsonnet"])
		if !ok {
			return Target{}, false
		}
		t.Jsonnet = opts
	}
	return t, true
}

// jsonnetOptions reads spec.source.directory.jsonnet (libs, extVars, tlas) as Argo CD's
// ApplicationSourceJsonnet, with the build environment substituted in the values as
// its repo-server does.
func (d *argoDiscovery) jsonnetOptions(a argoApp, src map[string]any, at []string, v any) (*JsonnetOptions, bool) {
	field := argoField(at) + ".directory.jsonnet"
	jat := append(slices.Clone(at), "directory", "jsonnet")
	opts := &JsonnetOptions{}
	if v == nil {
		return opts, true
	}
	j, ok := v.(map[string]any)
	if !ok {
		d.fail(a, jat, fmt.Errorf("%s is not a mapping (libs, extVars, tlas)", field))
		return nil, false
	}
	for k := range j {
		if k != "libs" && k != "extVars" && k != "tlas" {
			d.note(a, append(slices.Clone(jat), k), "%s.%s: unknown field, ignored as Argo CD's schema drops it (libs, extVars and tlas are known)", field, k)
		}
	}
	if j["libs"] != nil {
		libs, ok := j["libs"].([]any)
		if !ok {
			d.fail(a, append(slices.Clone(jat), "libs"), fmt.Errorf("%s.libs is not a list of paths", field))
			return nil, false
		}
		for i, l := range libs {
			s, ok := l.(string)
			lat := append(slices.Clone(jat), "libs", strconv.Itoa(i))
			if !ok || s == "" {
				d.fail(a, lat, fmt.Errorf("%s.libs[%d] is not a path", field, i))
				return nil, false
			}
			// Argo CD resolves a lib against the repository root, symbolic links followed,
			// and refuses the source when it leaves the repository.
			if _, err := d.repoPath(strings.TrimPrefix(s, "/")); err != nil {
				d.fail(a, lat, fmt.Errorf("%s.libs[%d] %s: %w (libs are relative to the repository root)", field, i, s, err))
				return nil, false
			}
			opts.Libs = append(opts.Libs, s)
		}
	}
	dest, _ := a.spec["destination"].(map[string]any)
	env := map[string]string{
		"ARGOCD_APP_NAME":                   a.name,
		"ARGOCD_APP_NAMESPACE":              argoString(dest["namespace"]),
		"ARGOCD_APP_PROJECT_NAME":           argoString(a.spec["project"]),
		"ARGOCD_APP_SOURCE_PATH":            argoString(src["path"]),
		"ARGOCD_APP_SOURCE_REPO_URL":        argoString(src["repoURL"]),
		"ARGOCD_APP_SOURCE_TARGET_REVISION": argoString(src["targetRevision"]),
	}
	for _, key := range []string{"extVars", "tlas"} {
		if j[key] == nil {
			continue
		}
		list, ok := j[key].([]any)
		if !ok {
			d.fail(a, append(slices.Clone(jat), key), fmt.Errorf("%s.%s is not a list of {name, value, code}", field, key))
			return nil, false
		}
		for i, e := range list {
			eat := append(slices.Clone(jat), key, strconv.Itoa(i))
			m, ok := e.(map[string]any)
			name, _ := m["name"].(string)
			if !ok || name == "" {
				d.fail(a, eat, fmt.Errorf("%s.%s[%d] has no name", field, key, i))
				return nil, false
			}
			value, ok := m["value"].(string)
			if !ok && m["value"] != nil {
				d.fail(a, append(eat, "value"), fmt.Errorf("%s.%s[%d].value is not a string (quote it; with code: true it is jsonnet code)", field, key, i))
				return nil, false
			}
			code, ok := m["code"].(bool)
			if !ok && m["code"] != nil {
				d.fail(a, append(eat, "code"), fmt.Errorf("%s.%s[%d].code is not true or false", field, key, i))
				return nil, false
			}
			if strings.Contains(value, "ARGOCD_APP_REVISION") {
				d.note(a, append(eat, "value"), "%s.%s[%d]: the revision ARGOCD_APP_REVISION* names is not known offline: substituted with an empty string", field, key, i)
			}
			jv := JsonnetVar{Name: name, Value: jsonnetEnv(value, env), Code: code}
			if key == "extVars" {
				opts.ExtVars = append(opts.ExtVars, jv)
			} else {
				opts.TLAs = append(opts.TLAs, jv)
			}
		}
	}
	return opts, true
}

// repoPath cleans a repo-relative path and refuses one that leaves the repository,
// also through a symbolic link when the repository is on disk.
func (d *argoDiscovery) repoPath(p string) (string, error) {
	clean, err := repopath.Clean(p)
	if err != nil {
		return "", err
	}
	if d.repo.Dir != "" {
		if root, err := repopath.Open(d.repo.Dir); err == nil {
			if _, err := root.Resolve(clean); err != nil {
				return "", err
			}
		}
	}
	return clean, nil
}

func (d *argoDiscovery) definedIn(file string) string {
	if d.repo.Dir != "" && filepath.IsAbs(file) {
		if r, err := filepath.Rel(d.repo.Dir, file); err == nil && !strings.HasPrefix(r, "..") {
			return filepath.ToSlash(r)
		}
	}
	return file
}

// detectKind is Argo CD's discovery for a source without an explicit type: a
// kustomization wins over a Chart.yaml; otherwise plain manifests.
func detectKind(fsys fs.FS, dir string) Kind {
	if kustomization.Has(fsys, dir) {
		return Kustomize
	}
	if _, err := fs.Stat(fsys, path.Join(dir, "Chart.yaml")); err == nil {
		return Helm
	}
	return Directory
}

func (d *argoDiscovery) helmTarget(a argoApp, src map[string]any, at []string, refs map[string]map[string]any, t *Target) bool {
	field := argoField(at)
	h, _ := src["helm"].(map[string]any)
	t.ReleaseName = argoString(h["releaseName"])
	if t.ReleaseName == "" {
		t.ReleaseName = a.name
	}
	ignoreMissing, _ := h["ignoreMissingValueFiles"].(bool)
	if t.Chart != nil {
		t.Chart.IgnoreMissingValueFiles = ignoreMissing
	}
	if t.Repo != nil {
		t.Repo.IgnoreMissingValueFiles = ignoreMissing
	}
	dest, _ := a.spec["destination"].(map[string]any)
	env := map[string]string{
		"ARGOCD_APP_NAME":                   a.name,
		"ARGOCD_APP_NAMESPACE":              argoString(dest["namespace"]),
		"ARGOCD_APP_PROJECT_NAME":           argoString(a.spec["project"]),
		"ARGOCD_APP_SOURCE_PATH":            t.Path,
		"ARGOCD_APP_SOURCE_REPO_URL":        argoString(src["repoURL"]),
		"ARGOCD_APP_SOURCE_TARGET_REVISION": argoString(src["targetRevision"]),
	}
	vfs, _ := h["valueFiles"].([]any)
	for i, v := range vfs {
		vf := argoString(v)
		vfAt := append(slices.Clone(at), "helm", "valueFiles", strconv.Itoa(i))
		var file string
		if ref, rest, _ := strings.Cut(vf, "/"); strings.HasPrefix(vf, "$") && refs[ref] != nil {
			refURL := argoString(refs[ref]["repoURL"])
			if !d.isThisRepo(refURL) {
				// A file of another repository, read through Repo.Remotes when it renders.
				clean, err := repopath.Clean(rest)
				if err != nil {
					d.fail(a, vfAt, fmt.Errorf("%s.helm.valueFiles: %s: %w", field, vf, err))
					return false
				}
				if t.Refs == nil {
					t.Refs = map[string]RemoteRepo{}
				}
				t.Refs[ref] = RemoteRepo{URL: refURL, Revision: argoString(refs[ref]["targetRevision"]), IgnoreMissingValueFiles: ignoreMissing}
				t.ValueFiles = append(t.ValueFiles, ref+"/"+clean)
				continue
			}
			var err error
			if file, err = d.repoPath(rest); err != nil {
				d.fail(a, vfAt, fmt.Errorf("%s.helm.valueFiles: %s: %w", field, vf, err))
				return false
			}
		} else {
			vf = argoExpandEnv(vf, env)
			if isRemote(vf) {
				d.note(a, vfAt, "%s.helm.valueFiles: %s: not in this repository; rendered without it", field, vf)
				continue
			}
			if strings.HasPrefix(vf, "$") {
				d.fail(a, vfAt, fmt.Errorf("%s.helm.valueFiles: %s: no source has ref: %s", field, vf, strings.TrimPrefix(ref, "$")))
				return false
			}
			if t.Chart != nil { // a file inside the chart, read when it is fetched
				t.Chart.ValueFiles = append(t.Chart.ValueFiles, strings.TrimPrefix(path.Clean(vf), "/"))
				continue
			}
			if t.Repo != nil { // a file of the other repository, read when it renders
				rel := path.Join(t.Path, vf)
				if path.IsAbs(vf) {
					rel = strings.TrimPrefix(path.Clean(vf), "/")
				}
				clean, err := repopath.Clean(rel)
				if err != nil {
					d.fail(a, vfAt, fmt.Errorf("%s.helm.valueFiles: %s: %w", field, vf, err))
					return false
				}
				t.Repo.ValueFiles = append(t.Repo.ValueFiles, clean)
				continue
			}
			rel := path.Join(t.Path, vf)
			if path.IsAbs(vf) {
				rel = strings.TrimPrefix(path.Clean(vf), "/") // Argo CD: absolute means from the repository root
			}
			var err error
			if file, err = d.repoPath(rel); err != nil {
				d.fail(a, vfAt, fmt.Errorf("%s.helm.valueFiles: %s: %w", field, vf, err))
				return false
			}
		}
		if _, err := fs.Stat(d.repo.FS, file); err != nil {
			if ignoreMissing {
				continue
			}
			d.fail(a, vfAt, fmt.Errorf("%s.helm.valueFiles: %s (%s) does not exist in this repository; fix the path or set ignoreMissingValueFiles", field, vf, file))
			return false
		}
		t.ValueFiles = append(t.ValueFiles, file)
	}
	if vo, ok := h["valuesObject"].(map[string]any); ok {
		t.Values = copyJSON(vo).(map[string]any) // Argo CD: valuesObject wins over values
	} else if s := argoString(h["values"]); strings.TrimSpace(s) != "" {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			d.fail(a, append(at, "helm", "values"), fmt.Errorf("%s.helm.values: %w", field, err))
			return false
		}
		t.Values = m
	}
	ps, _ := h["parameters"].([]any)
	for _, p := range ps {
		pm, _ := p.(map[string]any)
		name := argoString(pm["name"])
		if name == "" {
			continue
		}
		if t.Parameters == nil {
			t.Parameters = map[string]string{}
		}
		t.Parameters[name] = argoScalar(pm["value"])
	}
	var unsupported []string
	for _, k := range []string{"fileParameters", "namespace", "kubeVersion", "apiVersions"} {
		if !argoEmpty(h[k]) {
			unsupported = append(unsupported, k)
		}
	}
	if len(unsupported) > 0 {
		d.note(a, append(at, "helm"), "%s.helm: %s not applied offline", field, strings.Join(unsupported, ", "))
	}
	return true
}

func (d *argoDiscovery) kustomizeTarget(a argoApp, src map[string]any, at []string, t *Target) {
	k, _ := src["kustomize"].(map[string]any)
	imgs, _ := k["images"].([]any)
	for _, img := range imgs {
		if s := argoScalar(img); s != "" {
			t.Images = append(t.Images, s)
		}
	}
	t.NamePrefix = argoString(k["namePrefix"])
	t.NameSuffix = argoString(k["nameSuffix"])
	if labels, ok := k["commonLabels"].(map[string]any); ok && len(labels) > 0 {
		t.CommonLabels = map[string]string{}
		for lk, lv := range labels {
			t.CommonLabels[lk] = argoScalar(lv)
		}
	}
	if ns := argoString(k["namespace"]); ns != "" {
		t.Namespace = ns
	}
	var unsupported []string
	for _, key := range []string{"commonAnnotations", "forceCommonLabels", "forceCommonAnnotations", "replicas", "patches", "components", "labelWithoutSelector"} {
		if !argoEmpty(k[key]) {
			unsupported = append(unsupported, key)
		}
	}
	if len(unsupported) > 0 {
		d.note(a, append(at, "kustomize"), "%s.kustomize: %s not applied offline", argoField(at), strings.Join(unsupported, ", "))
	}
}

var argoEnvRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// argoExpandEnv substitutes Argo CD's build environment in a value file path; unknown
// variables stay as they are.
func argoExpandEnv(s string, env map[string]string) string {
	return argoEnvRef.ReplaceAllStringFunc(s, func(m string) string {
		name := strings.Trim(m, "${}")
		if v, ok := env[name]; ok {
			return v
		}
		return m
	})
}
