package render

import (
	"bytes"
	"encoding/json"
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
	"text/template"

	"github.com/Masterminds/sprig/v3"
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
		d.note(a, append(at, "chart"), "%s: chart %s from %s: not in this repository; not rendered", field, chart, repoURL)
		return Target{}, false
	}
	if multi && argoString(src["ref"]) != "" && p == "" {
		return Target{}, false // a source of value files only
	}
	if repoURL == "" {
		d.fail(a, at, fmt.Errorf("%s has no repoURL", field))
		return Target{}, false
	}
	if !d.isThisRepo(repoURL) {
		hint := ""
		if d.inferred {
			hint = " (no repoURLs configured and none of its paths exists here; list this repository's URLs in .gitgate.yaml if it is this one)"
		}
		d.note(a, append(at, "repoURL"), "%s: repoURL %s: not in this repository; not rendered%s", field, repoURL, hint)
		return Target{}, false
	}
	if !hasPath || p == "" {
		d.fail(a, at, fmt.Errorf("%s has neither path nor chart; set %s.path (\".\" for the repository root)", field, field))
		return Target{}, false
	}
	dir, err := d.repoPath(p)
	if err != nil {
		d.fail(a, append(at, "path"), fmt.Errorf("%s.path %s: %w", field, p, err))
		return Target{}, false
	}
	if st, err := fs.Stat(d.repo.FS, dir); err != nil {
		msg := fmt.Errorf("%s.path %s does not exist in this repository", field, dir)
		if strings.Contains(p, "{{") {
			msg = fmt.Errorf("%s.path %s does not exist in this repository (a template parameter in it was not set by the generators)", field, p)
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
			d.note(a, append(at, "plugin"), "%s: config management plugin: not rendered offline", field)
			return Target{}, false
		}
	} else {
		kind = d.detectKind(dir)
	}

	t := Target{Name: a.name, Kind: kind, Path: dir, DefinedIn: d.definedIn(a.src.Origin.File)}
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
		if j, ok := dm["jsonnet"].(map[string]any); ok && len(j) > 0 {
			d.note(a, append(at, "directory", "jsonnet"), "%s.directory.jsonnet is not applied offline", field)
		}
	}
	return t, true
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
func (d *argoDiscovery) detectKind(dir string) Kind {
	if kustomization.Has(d.repo.FS, dir) {
		return Kustomize
	}
	if _, err := fs.Stat(d.repo.FS, path.Join(dir, "Chart.yaml")); err == nil {
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
				d.note(a, vfAt, "%s.helm.valueFiles: %s comes from %s, not in this repository; rendered without it", field, vf, refURL)
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

// ---- ApplicationSets ----

// argoSet is one ApplicationSet being expanded.
type argoSet struct {
	d          *argoDiscovery
	res        policy.Resource
	object     string
	goTemplate bool
	options    []string
	cache      map[string]*template.Template
}

func (s *argoSet) fail(at []string, err error) {
	s.d.errs = append(s.d.errs, &AppError{Origin: argoPos(s.res, at), Object: s.object, Err: err})
}

func (s *argoSet) notice(at []string, format string, args ...any) {
	s.d.notice(argoPos(s.res, at), s.object, "", format, args...)
}

func (d *argoDiscovery) expandSet(r policy.Resource) []argoApp {
	s := &argoSet{d: d, res: r, object: argoID(r), cache: map[string]*template.Template{}}
	spec, ok := r.Object.Object["spec"].(map[string]any)
	if !ok {
		s.fail(nil, errors.New("has no spec"))
		return nil
	}
	s.goTemplate, _ = spec["goTemplate"].(bool)
	opts, _ := spec["goTemplateOptions"].([]any)
	for _, o := range opts {
		opt := argoString(o)
		switch opt {
		case "missingkey=default", "missingkey=invalid", "missingkey=zero", "missingkey=error":
			s.options = append(s.options, opt)
		default:
			s.fail([]string{"spec", "goTemplateOptions"}, fmt.Errorf("goTemplateOptions: unknown option %q; use missingkey=default|zero|error", opt))
			return nil
		}
	}
	tmpl, _ := spec["template"].(map[string]any)
	patch := argoString(spec["templatePatch"])
	if patch != "" && !s.goTemplate {
		s.fail([]string{"spec", "templatePatch"}, errors.New("templatePatch needs goTemplate: true"))
		return nil
	}
	gens, _ := spec["generators"].([]any)
	if len(gens) == 0 {
		s.fail([]string{"spec", "generators"}, errors.New("spec.generators is empty"))
		return nil
	}
	var out []argoApp
	names := map[string]bool{}
	for i, g := range gens {
		at := []string{"spec", "generators", strconv.Itoa(i)}
		gm, ok := g.(map[string]any)
		if !ok {
			s.fail(at, fmt.Errorf("%s is not a mapping", argoField(at)))
			continue
		}
		params, err := s.generate(gm, at, nil)
		if err != nil {
			s.fail(at, fmt.Errorf("%s: %w", argoField(at), err))
			continue
		}
		t := tmpl
		tAt := []string{"spec", "template"}
		if gt, ok := gm["template"].(map[string]any); ok && len(gt) > 0 {
			t = argoMerge(copyJSON(gt).(map[string]any), tmpl, false)
		}
		for _, p := range params {
			app, err := s.renderApp(t, patch, p)
			if err != nil {
				s.fail(tAt, err)
				continue
			}
			if names[app.namespace+"/"+app.name] {
				s.fail(tAt, fmt.Errorf("generates Application %s twice; make metadata.name unique per parameter set", app.name))
				continue
			}
			names[app.namespace+"/"+app.name] = true
			out = append(out, app)
		}
	}
	return out
}

func (s *argoSet) renderApp(tmpl map[string]any, patch string, params map[string]any) (argoApp, error) {
	v, err := s.renderValue(copyJSON(tmpl), params)
	if err != nil {
		return argoApp{}, err
	}
	app, _ := v.(map[string]any)
	if patch != "" {
		p, err := s.render(patch, params)
		if err != nil {
			return argoApp{}, fmt.Errorf("templatePatch: %w", err)
		}
		var pm map[string]any
		if err := yaml.Unmarshal([]byte(p), &pm); err != nil {
			return argoApp{}, fmt.Errorf("templatePatch renders invalid YAML: %w", err)
		}
		app = argoMerge(app, pm, true)
	}
	meta, _ := app["metadata"].(map[string]any)
	name := argoString(meta["name"])
	if name == "" {
		return argoApp{}, fmt.Errorf("template renders no metadata.name for parameters %s", argoParamsString(params))
	}
	ns := argoString(meta["namespace"])
	if ns == "" {
		ns = s.res.Object.GetNamespace()
	}
	spec, _ := app["spec"].(map[string]any)
	if spec == nil {
		return argoApp{}, fmt.Errorf("template renders no spec for Application %s", name)
	}
	return argoApp{
		name: name, namespace: ns, spec: spec, src: s.res, object: s.object,
		generated: true, specAt: []string{"spec", "template", "spec"},
	}, nil
}

func argoParamsString(p map[string]any) string {
	b, _ := json.Marshal(p)
	return string(b)
}

// generate evaluates one generator (with its optional selector) into parameter sets.
// parent, when set, are the parameters a matrix's first child produced: the generator is
// rendered with them first, so it may refer to them.
func (s *argoSet) generate(g map[string]any, at []string, parent map[string]any) ([]map[string]any, error) {
	if len(parent) > 0 {
		v, err := s.renderValue(copyJSON(g), parent)
		if err != nil {
			return nil, err
		}
		g = v.(map[string]any)
	}
	var out []map[string]any
	found := false
	for _, kind := range []string{"list", "matrix", "merge", "git", "clusters"} {
		v, ok := g[kind]
		if !ok {
			continue
		}
		found = true
		m, _ := v.(map[string]any)
		var ps []map[string]any
		var err error
		kAt := append(slices.Clone(at), kind)
		switch kind {
		case "list":
			ps, err = s.list(m)
		case "matrix":
			ps, err = s.matrix(m, kAt)
		case "merge":
			ps, err = s.merge(m, kAt)
		case "git":
			ps, err = s.git(m, kAt)
		case "clusters":
			ps, err = s.clusters(m, kAt)
		}
		if err != nil {
			return nil, fmt.Errorf("%s generator: %w", kind, err)
		}
		out = append(out, ps...)
	}
	for _, kind := range []string{"pullRequest", "scmProvider", "clusterDecisionResource", "plugin"} {
		if _, ok := g[kind]; ok {
			found = true
			s.notice(append(slices.Clone(at), kind), "%s generator needs a live Argo CD and its services; skipped", kind)
		}
	}
	if !found {
		return nil, errors.New("no known generator (list, matrix, merge, git, clusters, pullRequest, scmProvider, clusterDecisionResource, plugin)")
	}
	if sel, ok := g["selector"].(map[string]any); ok && len(out) > 0 {
		var kept []map[string]any
		for _, p := range out {
			flat := map[string]string{}
			argoFlatten("", p, flat)
			ok, err := argoSelects(sel, flat)
			if err != nil {
				return nil, fmt.Errorf("selector: %w", err)
			}
			if ok {
				kept = append(kept, p)
			}
		}
		out = kept
	}
	return out, nil
}

func (s *argoSet) list(m map[string]any) ([]map[string]any, error) {
	var out []map[string]any
	elements, _ := m["elements"].([]any)
	for i, e := range elements {
		em, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("elements[%d] is not a mapping", i)
		}
		if s.goTemplate {
			out = append(out, copyJSON(em).(map[string]any))
			continue
		}
		p := map[string]any{}
		for k, v := range em {
			if vm, ok := v.(map[string]any); ok && k == "values" {
				for vk, vv := range vm {
					str, ok := vv.(string)
					if !ok {
						return nil, fmt.Errorf("elements[%d].values.%s is %s, not a string; without goTemplate Argo CD takes only strings: quote it", i, vk, argoTypeName(vv))
					}
					p["values."+vk] = str
				}
				continue
			}
			str, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("elements[%d].%s is %s, not a string; without goTemplate Argo CD takes only strings: quote it", i, k, argoTypeName(v))
			}
			p[k] = str
		}
		out = append(out, p)
	}
	if ey := argoString(m["elementsYaml"]); strings.TrimSpace(ey) != "" {
		var more []map[string]any
		if err := yaml.Unmarshal([]byte(ey), &more); err != nil {
			return nil, fmt.Errorf("elementsYaml: %w", err)
		}
		out = append(out, more...)
	}
	return out, nil
}

func argoTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case int64, float64, int:
		return "a number"
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("a %T", v)
}

func (s *argoSet) matrix(m map[string]any, at []string) ([]map[string]any, error) {
	children, _ := m["generators"].([]any)
	if len(children) != 2 {
		return nil, fmt.Errorf("needs exactly two child generators, has %d", len(children))
	}
	c0, ok0 := children[0].(map[string]any)
	c1, ok1 := children[1].(map[string]any)
	if !ok0 || !ok1 {
		return nil, errors.New("child generators must be mappings")
	}
	first, err := s.generate(c0, append(slices.Clone(at), "generators", "0"), nil)
	if err != nil {
		return nil, fmt.Errorf("generators[0]: %w", err)
	}
	var out []map[string]any
	for _, a := range first {
		second, err := s.generate(c1, append(slices.Clone(at), "generators", "1"), a)
		if err != nil {
			return nil, fmt.Errorf("generators[1]: %w", err)
		}
		for _, b := range second {
			if s.goTemplate {
				out = append(out, argoMerge(argoMerge(map[string]any{}, b, true), a, true))
				continue
			}
			p := maps.Clone(a)
			for k, v := range b {
				if old, ok := p[k]; ok && old != v {
					return nil, fmt.Errorf("parameter %q is %v in generators[0] and %v in generators[1]; rename one", k, old, v)
				}
				p[k] = v
			}
			out = append(out, p)
		}
	}
	return out, nil
}

func (s *argoSet) merge(m map[string]any, at []string) ([]map[string]any, error) {
	var keys []string
	ks, _ := m["mergeKeys"].([]any)
	for _, k := range ks {
		if str := argoString(k); str != "" && !slices.Contains(keys, str) {
			keys = append(keys, str)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("mergeKeys is empty")
	}
	children, _ := m["generators"].([]any)
	if len(children) < 2 {
		return nil, fmt.Errorf("needs at least two child generators, has %d", len(children))
	}
	var base []map[string]any
	var baseIdx map[string]int
	for i, c := range children {
		cm, ok := c.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("generators[%d] is not a mapping", i)
		}
		ps, err := s.generate(cm, append(slices.Clone(at), "generators", strconv.Itoa(i)), nil)
		if err != nil {
			return nil, fmt.Errorf("generators[%d]: %w", i, err)
		}
		idx := map[string]int{}
		for j, p := range ps {
			key := map[string]any{}
			for _, k := range keys {
				key[k] = p[k]
			}
			b, _ := json.Marshal(key)
			if _, dup := idx[string(b)]; dup {
				return nil, fmt.Errorf("generators[%d]: two parameter sets have the merge keys %s; they must be unique", i, b)
			}
			idx[string(b)] = j
		}
		if i == 0 {
			base, baseIdx = ps, idx
			continue
		}
		for k, j := range idx {
			bi, ok := baseIdx[k]
			if !ok {
				continue
			}
			if s.goTemplate {
				base[bi] = argoMerge(base[bi], ps[j], true)
			} else {
				merged := maps.Clone(base[bi])
				maps.Copy(merged, ps[j])
				base[bi] = merged
			}
		}
	}
	return base, nil
}

// ---- git generator ----

func (d *argoDiscovery) scan() error {
	if d.scanned {
		return d.scanErr
	}
	d.scanned = true
	if d.repo.FS == nil {
		d.scanErr = errors.New("no repository checkout to scan")
		return d.scanErr
	}
	d.scanErr = fs.WalkDir(d.repo.FS, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if p == "." {
				return nil
			}
			if e.Name() == ".git" {
				return fs.SkipDir
			}
			if !strings.Contains("/"+p, "/.") {
				d.dirs = append(d.dirs, p)
			}
			return nil
		}
		d.files = append(d.files, p)
		return nil
	})
	return d.scanErr
}

func (s *argoSet) git(m map[string]any, at []string) ([]map[string]any, error) {
	repoURL := argoString(m["repoURL"])
	if !s.d.inferred && !s.d.isThisRepo(repoURL) {
		s.notice(append(slices.Clone(at), "repoURL"), "git generator repoURL %s: not in this repository; skipped", repoURL)
		return nil, nil
	}
	if err := s.d.scan(); err != nil {
		return nil, fmt.Errorf("scanning the checkout: %w", err)
	}
	prefix := argoString(m["pathParamPrefix"])
	values := map[string]string{}
	if vm, ok := m["values"].(map[string]any); ok {
		for k, v := range vm {
			values[k] = argoScalar(v)
		}
	}
	var out []map[string]any
	var what string
	if dirs, _ := m["directories"].([]any); len(dirs) > 0 {
		what = "directories"
		items, err := argoGitItems(dirs, "directories")
		if err != nil {
			return nil, err
		}
		for _, dir := range s.d.dirs {
			in, ex := false, false
			for _, it := range items {
				ok, err := path.Match(it.path, dir)
				if err != nil {
					return nil, fmt.Errorf("directories path %q: %w", it.path, err)
				}
				if ok && it.exclude {
					ex = true
				} else if ok {
					in = true
				}
			}
			if in && !ex {
				out = append(out, s.pathParams(dir, "", prefix))
			}
		}
	} else if files, _ := m["files"].([]any); len(files) > 0 {
		what = "files"
		items, err := argoGitItems(files, "files")
		if err != nil {
			return nil, err
		}
		// Argo CD's default hands the pattern to git ls-files, where "*" also matches
		// "/"; the new globbing keeps "*" inside a directory and lets "**" span them.
		res := make([]*regexp.Regexp, len(items))
		for i, it := range items {
			if res[i], err = argoGlobRegexp(it.path, !s.d.opts.NewGitFileGlobbing); err != nil {
				return nil, fmt.Errorf("files[%d]: %w", i, err)
			}
		}
		for _, f := range s.d.files {
			in, ex := false, false
			for i, it := range items {
				if res[i].MatchString(f) {
					if it.exclude {
						ex = true
					} else {
						in = true
					}
				}
			}
			if !in || ex {
				continue
			}
			ps, err := s.fileParams(f, prefix)
			if err != nil {
				return nil, err
			}
			out = append(out, ps...)
		}
	} else {
		return nil, errors.New("needs directories or files")
	}
	if len(out) == 0 {
		s.notice(at, "git %s generator matched nothing in this checkout", what)
		return nil, nil
	}
	if s.d.inferred && repoURL != "" {
		s.d.urls[argoNormalizeURL(repoURL)] = true
	}
	for _, p := range out {
		if err := s.addValues(p, values); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type argoGitItem struct {
	path    string
	exclude bool
}

func argoGitItems(list []any, field string) ([]argoGitItem, error) {
	var items []argoGitItem
	for i, it := range list {
		im, ok := it.(map[string]any)
		if !ok || argoString(im["path"]) == "" {
			return nil, fmt.Errorf("%s[%d] needs a path", field, i)
		}
		ex, _ := im["exclude"].(bool)
		items = append(items, argoGitItem{path: argoString(im["path"]), exclude: ex})
	}
	return items, nil
}

// pathParams are the git generator's path parameters for a directory, or for the
// directory of a file.
func (s *argoSet) pathParams(dir, file, prefix string) map[string]any {
	p := map[string]any{}
	name := "path"
	if prefix != "" {
		name = prefix + ".path"
	}
	segments := strings.Split(dir, "/")
	if s.goTemplate {
		pm := map[string]any{
			"path":               dir,
			"basename":           path.Base(dir),
			"basenameNormalized": argoSanitizeName(path.Base(dir)),
			"segments":           segments,
		}
		if file != "" {
			pm["filename"] = path.Base(file)
			pm["filenameNormalized"] = argoSanitizeName(path.Base(file))
		}
		if prefix != "" {
			p[prefix] = map[string]any{"path": pm}
		} else {
			p["path"] = pm
		}
		return p
	}
	p[name] = dir
	p[name+".basename"] = path.Base(dir)
	p[name+".basenameNormalized"] = argoSanitizeName(path.Base(dir))
	if file != "" {
		p[name+".filename"] = path.Base(file)
		p[name+".filenameNormalized"] = argoSanitizeName(path.Base(file))
	}
	for i, seg := range segments {
		if seg != "" {
			p[name+"["+strconv.Itoa(i)+"]"] = seg
		}
	}
	return p
}

func (s *argoSet) fileParams(file, prefix string) ([]map[string]any, error) {
	data, err := fs.ReadFile(s.d.repo.FS, file)
	if err != nil {
		return nil, err
	}
	var objs []map[string]any
	if err := yaml.Unmarshal(data, &objs); err != nil {
		var one map[string]any
		if err := yaml.Unmarshal(data, &one); err != nil {
			return nil, fmt.Errorf("files: %s: %w", file, err)
		}
		objs = []map[string]any{one}
	} else if len(objs) == 0 {
		objs = []map[string]any{{}}
	}
	var out []map[string]any
	for _, obj := range objs {
		p := map[string]any{}
		if s.goTemplate {
			maps.Copy(p, obj)
		} else {
			flat := map[string]string{}
			argoFlatten("", obj, flat)
			for k, v := range flat {
				p[k] = v
			}
		}
		maps.Copy(p, s.pathParams(path.Dir(file), file, prefix))
		out = append(out, p)
	}
	return out, nil
}

// argoGlobRegexp translates a glob (*, ?, [...], **) into a regular expression.
func argoGlobRegexp(pattern string, greedy bool) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case c == '*' && i+1 < len(pattern) && pattern[i+1] == '*':
			i++
			if i+1 < len(pattern) && pattern[i+1] == '/' {
				i++
				b.WriteString("(?:.*/)?") // **/ : zero or more directories
			} else {
				b.WriteString(".*")
			}
		case c == '*':
			if greedy {
				b.WriteString(".*")
			} else {
				b.WriteString("[^/]*")
			}
		case c == '?':
			if greedy {
				b.WriteString(".")
			} else {
				b.WriteString("[^/]")
			}
		case c == '[':
			j := strings.IndexByte(pattern[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("glob %q: unterminated [", pattern)
			}
			class := pattern[i+1 : i+j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + class + "]")
			i += j
		case c == '\\' && i+1 < len(pattern):
			i++
			b.WriteString(regexp.QuoteMeta(string(pattern[i])))
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// addValues adds a generator's values field: each value rendered with the parameters.
func (s *argoSet) addValues(p map[string]any, values map[string]string) error {
	if len(values) == 0 {
		return nil
	}
	rendered := map[string]any{}
	for k, v := range values {
		r, err := s.render(v, p)
		if err != nil {
			return fmt.Errorf("values.%s: %w", k, err)
		}
		rendered[k] = r
	}
	if s.goTemplate {
		p["values"] = rendered
		return nil
	}
	for k, v := range rendered {
		p["values."+k] = v
	}
	return nil
}

// ---- clusters generator ----

func (s *argoSet) clusters(m map[string]any, at []string) ([]map[string]any, error) {
	if len(s.d.repo.Clusters) == 0 {
		s.notice(at, "clusters generator needs clusters listed in .gitgate.yaml; skipped")
		return nil, nil
	}
	sel, _ := m["selector"].(map[string]any)
	values := map[string]string{}
	if vm, ok := m["values"].(map[string]any); ok {
		for k, v := range vm {
			values[k] = argoScalar(v)
		}
	}
	var out []map[string]any
	for _, c := range s.d.repo.Clusters {
		ok, err := argoSelects(sel, c.Labels)
		if err != nil {
			return nil, fmt.Errorf("selector: %w", err)
		}
		if !ok {
			continue
		}
		p := map[string]any{
			"name":           c.Name,
			"nameNormalized": argoSanitizeName(c.Name),
			"server":         c.Server,
			"project":        "",
		}
		if s.goTemplate {
			labels := map[string]any{}
			for k, v := range c.Labels {
				labels[k] = v
			}
			p["metadata"] = map[string]any{"labels": labels, "annotations": map[string]any{}}
		} else {
			for k, v := range c.Labels {
				p["metadata.labels."+k] = v
			}
		}
		if err := s.addValues(p, values); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		s.notice(at, "clusters generator: no cluster in .gitgate.yaml matches its selector")
	}
	return out, nil
}

// argoSelects is a Kubernetes label selector (matchLabels, matchExpressions) over labels.
// An empty or missing selector selects everything.
func argoSelects(sel map[string]any, labels map[string]string) (bool, error) {
	if ml, ok := sel["matchLabels"].(map[string]any); ok {
		for k, v := range ml {
			got, has := labels[k]
			if !has || got != argoScalar(v) {
				return false, nil
			}
		}
	}
	exprs, _ := sel["matchExpressions"].([]any)
	for i, e := range exprs {
		em, _ := e.(map[string]any)
		key := argoString(em["key"])
		var vals []string
		vs, _ := em["values"].([]any)
		for _, v := range vs {
			vals = append(vals, argoScalar(v))
		}
		got, has := labels[key]
		switch op := argoString(em["operator"]); op {
		case "In":
			if !has || !slices.Contains(vals, got) {
				return false, nil
			}
		case "NotIn":
			if has && slices.Contains(vals, got) {
				return false, nil
			}
		case "Exists":
			if !has {
				return false, nil
			}
		case "DoesNotExist":
			if has {
				return false, nil
			}
		default:
			return false, fmt.Errorf("matchExpressions[%d]: unknown operator %q; use In, NotIn, Exists or DoesNotExist", i, op)
		}
	}
	return true, nil
}

// ---- templating ----

func (s *argoSet) renderValue(v any, params map[string]any) (any, error) {
	switch t := v.(type) {
	case string:
		return s.render(t, params)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, vv := range t {
			rk, err := s.render(k, params)
			if err != nil {
				return nil, err
			}
			rv, err := s.renderValue(vv, params)
			if err != nil {
				return nil, err
			}
			out[rk] = rv
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, vv := range t {
			rv, err := s.renderValue(vv, params)
			if err != nil {
				return nil, err
			}
			out[i] = rv
		}
		return out, nil
	}
	return v, nil
}

// render renders one string of a template: Go text/template with goTemplate, Argo CD's
// fasttemplate substitution otherwise.
func (s *argoSet) render(str string, params map[string]any) (string, error) {
	if !strings.Contains(str, "{{") {
		return str, nil
	}
	if !s.goTemplate {
		return argoFastReplace(str, params)
	}
	t, ok := s.cache[str]
	if !ok {
		var err error
		t, err = template.New("").Funcs(argoFuncs).Option(s.options...).Parse(str)
		if err != nil {
			return "", fmt.Errorf("template %q: %w", str, err)
		}
		s.cache[str] = t
	}
	var b bytes.Buffer
	if err := t.Execute(&b, params); err != nil {
		return "", fmt.Errorf("template %q: %w", str, err)
	}
	return b.String(), nil
}

// argoFastReplace is Argo CD's substitution without goTemplate (valyala/fasttemplate with
// "{{" and "}}"): a tag's key is trimmed of spaces and replaced by the string parameter of
// that name; unknown keys stay as they are.
func argoFastReplace(s string, params map[string]any) (string, error) {
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		b.WriteString(rest[:i])
		rest = rest[i+2:]
		j := strings.Index(rest, "}}")
		if j < 0 {
			return "", fmt.Errorf("template %q: cannot find end tag \"}}\"", s)
		}
		tag := rest[:j]
		rest = rest[j+2:]
		key := strings.TrimSpace(tag)
		if v, ok := params[key].(string); ok && key != "" {
			b.WriteString(v)
		} else {
			b.WriteString("{{" + tag + "}}")
		}
	}
}

// argoFlatten flattens nested parameters into dotted keys (lists by index), the way Argo
// CD flattens a git file's content and selects parameter sets.
func argoFlatten(prefix string, v any, out map[string]string) {
	key := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch t := v.(type) {
	case map[string]any:
		for k, vv := range t {
			argoFlatten(key(k), vv, out)
		}
	case map[string]string:
		for k, vv := range t {
			out[key(k)] = vv
		}
	case []any:
		for i, vv := range t {
			argoFlatten(key(strconv.Itoa(i)), vv, out)
		}
	case []string:
		for i, vv := range t {
			out[key(strconv.Itoa(i))] = vv
		}
	default:
		if prefix != "" {
			out[prefix] = fmt.Sprintf("%v", v)
		}
	}
}

var argoInvalidName = regexp.MustCompile(`[^-a-z0-9.]`)

// argoSanitizeName is Argo CD's normalize: lower case, only [-a-z0-9.], at most 253
// characters, starting and ending alphanumeric.
func argoSanitizeName(name string) string {
	name = argoInvalidName.ReplaceAllString(strings.ToLower(name), "-")
	if len(name) > 253 {
		name = name[:253]
	}
	return strings.Trim(name, "-.")
}

var argoSlugInvalid = regexp.MustCompile(`[^a-z0-9]+`)

// argoSlugify is Argo CD's slugify: [maxSize [smartTruncate]] name.
func argoSlugify(args ...any) (string, error) {
	if len(args) == 0 {
		return "", errors.New("slugify needs a name")
	}
	maxSize, smart := 50, true
	name, ok := args[len(args)-1].(string)
	if !ok {
		return "", errors.New("slugify: the last argument must be a string")
	}
	if len(args) > 1 {
		switch n := args[0].(type) {
		case int:
			maxSize = n
		case int64:
			maxSize = int(n)
		case float64:
			maxSize = int(n)
		default:
			return "", fmt.Errorf("slugify: maxSize %v is not a number", args[0])
		}
	}
	if len(args) > 2 {
		smart, _ = args[1].(bool)
	}
	slug := strings.Trim(argoSlugInvalid.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if maxSize > 0 && len(slug) > maxSize {
		cut := slug[:maxSize]
		if smart {
			if i := strings.LastIndex(cut, "-"); i > 0 && slug[maxSize] != '-' {
				cut = cut[:i]
			}
		}
		slug = strings.Trim(cut, "-")
	}
	return slug, nil
}

// ---- small value helpers ----

func argoString(v any) string {
	s, _ := v.(string)
	return s
}

// argoScalar prints a scalar as YAML would write it: 3, true, text.
func argoScalar(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func argoEmpty(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case string:
		return t == ""
	case bool:
		return !t
	case map[string]any:
		return len(t) == 0
	case []any:
		return len(t) == 0
	}
	return false
}

// copyJSON deep-copies JSON-like values.
func copyJSON(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, vv := range t {
			out[k] = copyJSON(vv)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, vv := range t {
			out[i] = copyJSON(vv)
		}
		return out
	case []string:
		return slices.Clone(t)
	}
	return v
}

// argoMerge merges src into dst, recursing into mappings; with override, src's other
// values replace dst's, without, dst keeps what it has.
func argoMerge(dst, src map[string]any, override bool) map[string]any {
	if dst == nil {
		dst = map[string]any{}
	}
	for k, sv := range src {
		dv, has := dst[k]
		dm, dIsMap := dv.(map[string]any)
		sm, sIsMap := sv.(map[string]any)
		switch {
		case has && dIsMap && sIsMap:
			dst[k] = argoMerge(dm, sm, override)
		case !has || (override && !argoEmpty(sv)) || argoEmpty(dv):
			dst[k] = copyJSON(sv)
		}
	}
	return dst
}

// ---- template functions ----

// argoFuncs are the functions of goTemplate ApplicationSets, built as Argo CD builds
// them: sprig's text functions without env, expandenv and getHostByName, plus normalize,
// slugify, toYaml, fromYaml and fromYamlArray.
var argoFuncs = func() template.FuncMap {
	m := sprig.TxtFuncMap()
	delete(m, "env")
	delete(m, "expandenv")
	delete(m, "getHostByName")
	m["normalize"] = argoSanitizeName
	m["slugify"] = argoSlugify
	m["toYaml"] = func(v any) (string, error) {
		b, err := yaml.Marshal(v)
		return strings.TrimSuffix(string(b), "\n"), err
	}
	m["fromYaml"] = func(s string) (map[string]any, error) {
		var out map[string]any
		err := yaml.Unmarshal([]byte(s), &out)
		return out, err
	}
	m["fromYamlArray"] = func(s string) ([]any, error) {
		var out []any
		err := yaml.Unmarshal([]byte(s), &out)
		return out, err
	}
	return m
}()
