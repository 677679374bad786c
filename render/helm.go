package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/strvals"
	"sigs.k8s.io/yaml"

	"github.com/gitgate/gitgate/internal/repopath"
	"github.com/gitgate/gitgate/policy"
)

// DefaultKubeVersion is .Capabilities.KubeVersion when the repository names none.
const DefaultKubeVersion = "v1.36.3"

// TemplateError is a chart template that could not be parsed or executed, or whose
// output is not YAML. File is the template's path relative to the repository (for a
// subchart vendored as an archive, the archive's path, and Line and Col are 0); Line and
// Col are 1-based positions in that file, 0 when Helm did not report them.
type TemplateError struct {
	File      string
	Line, Col int
	Err       error
}

func (e *TemplateError) Error() string {
	return policy.Origin{File: e.File, Line: e.Line, Col: e.Col}.String() + ": " + e.Err.Error()
}

func (e *TemplateError) Unwrap() error { return e.Err }

// renderHelm templates a chart in the repository with Helm's own engine, offline, as
// `helm template --include-crds` does: the chart at t.Path with its dependencies (vendored
// under charts/, or file:// paths inside the repository), values from the chart, then
// t.ValueFiles in order, then t.Values, then t.Parameters (like --set), release t.ReleaseName
// (default: the chart directory's name) in namespace t.Namespace (default "default").
//
// Resources come in the order `helm template` prints them: CRDs from crds/ directories,
// the manifests sorted by kind in install order, then hooks. Each resource's Origin names
// the repository path of the file that produced it and t.Name as the target:
//
//   - CRDs, and documents that appear verbatim in their template (no template action
//     inside them), have exact positions: Line and Col of the object in the file, and a
//     Fields locator into it.
//   - Other documents point at the first line of their template's YAML document when the
//     template's "---" sections correspond one to one with what it rendered, else at line
//     1; Col is 0 and Fields is nil, since positions in the rendered text would point at
//     wrong lines of the template.
//   - Subcharts vendored as archives are named by the archive's path, with Line 0.
//
// Errors: a template that fails to parse or execute is a *TemplateError naming the
// template file and line; a dependency on a chart repository that is not vendored is a
// *RemoteError; a values file or file:// dependency outside the repository is refused.
func renderHelm(ctx context.Context, repo Repo, t Target) ([]policy.Resource, error) {
	out, err := renderHelmChart(ctx, repo, t)
	if err != nil {
		return nil, err
	}
	return out.resources(t.Name)
}

// HelmYAML returns what `helm template --include-crds` prints for the target:
// every document under a "---" line and a "# Source: <chart>/<path>" comment.
func HelmYAML(ctx context.Context, repo Repo, t Target) ([]byte, error) {
	out, err := renderHelmChart(ctx, repo, t)
	if err != nil {
		return nil, err
	}
	return out.yaml(), nil
}

// helmOutput is a rendered chart: what `helm template` prints, plus where each template
// came from.
type helmOutput struct {
	crds      []chart.CRD
	manifests []releaseutil.Manifest
	hooks     []*release.Hook
	// rendered is the engine's output by template name (<chart>/templates/x.yaml).
	rendered map[string]string
	// templates and files map Helm's names and files to their sources in the repository.
	templates map[string]helmSource
	files     map[*chart.File]helmSource
}

// helmSource is the file in the repository a chart file was read from.
type helmSource struct {
	// file is repo-relative: the template itself, or the archive holding it.
	file    string
	archive bool
	data    []byte
}

func (o *helmOutput) yaml() []byte {
	// As action.Configuration.renderResources and `helm template` (cmd/helm/template.go)
	// assemble their output.
	var manifests bytes.Buffer
	for _, crd := range o.crds {
		fmt.Fprintf(&manifests, "---\n# Source: %s\n%s\n", crd.Filename, string(crd.File.Data))
	}
	for _, m := range o.manifests {
		fmt.Fprintf(&manifests, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	var b bytes.Buffer
	fmt.Fprintln(&b, strings.TrimSpace(manifests.String()))
	for _, h := range o.hooks {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", h.Path, h.Manifest)
	}
	return b.Bytes()
}

func (o *helmOutput) resources(target string) ([]policy.Resource, error) {
	var out []policy.Resource
	for _, crd := range o.crds {
		src, ok := o.files[crd.File]
		if !ok {
			src = helmSource{file: crd.Filename}
		}
		rs, err := policy.Decode(src.file, crd.File.Data)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			if src.archive {
				r.Origin.Line, r.Origin.Col, r.Fields = 0, 0, nil
			}
			r.Origin.Target = target
			out = append(out, r)
		}
	}

	positions := map[string]*helmDocs{}
	add := func(name, content string) error {
		docs := positions[name]
		if docs == nil {
			docs = newHelmDocs(o.rendered[name], o.templates[name], name)
			positions[name] = docs
		}
		rs, err := docs.decode(content, target)
		out = append(out, rs...)
		return err
	}
	for _, m := range o.manifests {
		if err := add(m.Name, m.Content); err != nil {
			return nil, err
		}
	}
	for _, h := range o.hooks {
		if err := add(h.Path, h.Manifest); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// helmDocs maps the documents one template rendered to positions in the template.
type helmDocs struct {
	src  helmSource
	docs []string // as releaseutil.SplitManifests split them, in order
	pos  []helmDocPos
	used []bool
}

type helmDocPos struct {
	// exact: the document is in the template verbatim, starting after offset lines.
	exact  bool
	offset int
	line   int
}

func newHelmDocs(rendered string, src helmSource, name string) *helmDocs {
	if src.file == "" {
		src.file = name
	}
	split := releaseutil.SplitManifests(rendered)
	keys := make([]string, 0, len(split))
	for k := range split {
		keys = append(keys, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))
	d := &helmDocs{src: src, docs: make([]string, len(keys)), used: make([]bool, len(keys))}
	for i, k := range keys {
		d.docs[i] = split[k]
	}
	d.pos = helmDocPositions(string(src.data), d.docs)
	return d
}

// helmDocPositions finds each rendered document in the template text. A document found
// verbatim at the start of a line has an exact position. For the others: if the
// template's "---"-separated sections that hold anything correspond one to one with the
// rendered documents, the first line of the matching section, else line 1.
func helmDocPositions(text string, docs []string) []helmDocPos {
	sections := helmSections(text)
	out := make([]helmDocPos, len(docs))
	cursor := 0
	for k, doc := range docs {
		p := helmDocPos{line: 1}
		if len(sections) == len(docs) {
			p.line = sections[k]
		}
		if i := strings.Index(text[cursor:], doc); i >= 0 && doc != "" {
			at := cursor + i
			if at == 0 || text[at-1] == '\n' {
				n := strings.Count(text[:at], "\n")
				p = helmDocPos{exact: true, offset: n, line: n + 1}
				cursor = at + len(doc)
			}
		}
		out[k] = p
	}
	return out
}

// helmSections returns the first non-blank line of every non-blank section of a
// template, splitting where releaseutil.SplitManifests would: lines starting with "---".
func helmSections(text string) []int {
	var out []int
	start := 0 // first non-blank line of the current section, 0 if none yet
	for i, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "---"):
			if start > 0 {
				out = append(out, start)
			}
			start = 0
		case start == 0 && strings.TrimSpace(line) != "":
			start = i + 1
		}
	}
	if start > 0 {
		out = append(out, start)
	}
	return out
}

func (d *helmDocs) decode(content, target string) ([]policy.Resource, error) {
	k := -1
	for i, doc := range d.docs {
		if !d.used[i] && doc == content {
			k = i
			break
		}
	}
	p := helmDocPos{line: 1}
	if k >= 0 {
		d.used[k] = true
		p = d.pos[k]
	}
	if d.src.archive {
		p = helmDocPos{}
	}
	rs, err := policy.Decode(d.src.file, []byte(content))
	var ie *policy.InputError
	if errors.As(err, &ie) {
		if p.exact {
			ie.Origin.Line += p.offset
		} else {
			err = &TemplateError{File: d.src.file, Line: p.line,
				Err: fmt.Errorf("rendered document, line %d: %w", ie.Origin.Line, ie.Err)}
		}
	}
	for i := range rs {
		r := &rs[i]
		r.Origin.Target = target
		switch {
		case p.exact:
			r.Origin.Line += p.offset
			r.Fields = helmShiftedLocator{r.Fields, p.offset}
		default:
			r.Origin.Line, r.Origin.Col, r.Fields = p.line, 0, nil
		}
	}
	return rs, err
}

// helmShiftedLocator moves the positions of a document decoded on its own to where the
// document starts in its file.
type helmShiftedLocator struct {
	l     policy.Locator
	lines int
}

func (s helmShiftedLocator) Locate(p []string) (int, int, bool) {
	if s.l == nil {
		return 0, 0, false
	}
	line, col, ok := s.l.Locate(p)
	if !ok {
		return 0, 0, false
	}
	return line + s.lines, col, true
}

// renderHelmChart does what `helm template --include-crds` does without a cluster:
// cmd/helm/install.go runInstall, action.Install.RunWithContext with ClientOnly and
// DryRun, and action.Configuration.renderResources.
func renderHelmChart(ctx context.Context, repo Repo, t Target) (*helmOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if repo.Dir == "" {
		return nil, fmt.Errorf("helm chart %s: the repository has no directory on disk", t.Path)
	}
	chartPath, err := repopath.Clean(t.Path)
	if err != nil {
		return nil, fmt.Errorf("helm chart %w", err)
	}
	l, err := newHelmLoader(repo.Dir)
	if err != nil {
		return nil, err
	}
	l.trace = repo.trace
	ch, err := l.load(chartPath)
	if err != nil {
		return nil, err
	}
	switch ch.Metadata.Type {
	case "", "application":
	default:
		return nil, fmt.Errorf("helm chart %s: %s charts are not installable", chartPath, ch.Metadata.Type)
	}

	vals, err := helmValues(repo, t)
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", chartPath, err)
	}
	if err := chartutil.ProcessDependenciesWithMerge(ch, vals); err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", chartPath, err)
	}
	if err := l.checkMissing(ch); err != nil {
		return nil, err
	}

	caps, err := helmCapabilities(repo)
	if err != nil {
		return nil, err
	}
	if ch.Metadata.KubeVersion != "" && !chartutil.IsCompatibleRange(ch.Metadata.KubeVersion, caps.KubeVersion.String()) {
		return nil, fmt.Errorf("helm chart %s requires kubeVersion: %s which is incompatible with Kubernetes %s",
			chartPath, ch.Metadata.KubeVersion, caps.KubeVersion.String())
	}

	name := t.ReleaseName
	if name == "" {
		name = path.Base(chartPath)
		if chartPath == "." {
			name = filepath.Base(l.dir)
		}
	}
	if err := chartutil.ValidateReleaseName(name); err != nil {
		return nil, fmt.Errorf("helm chart %s: release name %q: %w", chartPath, name, err)
	}
	namespace := t.Namespace
	if namespace == "" {
		namespace = "default"
	}
	options := chartutil.ReleaseOptions{Name: name, Namespace: namespace, Revision: 1, IsInstall: true}
	// Helm's own schema check may fetch $refs over HTTP or read any local file: validate
	// with the same library, offline.
	top, err := chartutil.ToRenderValuesWithSchemaValidation(ch, vals, options, caps, true)
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", chartPath, err)
	}
	if values, ok := top["Values"].(chartutil.Values); ok {
		if err := helmValidateSchemas(ch, values); err != nil {
			return nil, fmt.Errorf("helm chart %s: %w", chartPath, err)
		}
	}

	out := &helmOutput{templates: map[string]helmSource{}, files: l.sources}
	helmWalk(ch, func(c *chart.Chart) {
		full := c.ChartFullPath()
		for _, f := range c.Templates {
			if f != nil {
				out.templates[path.Join(full, f.Name)] = l.sources[f]
			}
		}
	})

	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Helm's engine, bounded in time, output and depth (helmengine.go): no cluster
	// (lookup returns nothing), no DNS (getHostByName returns "").
	files, err := renderHelmTemplates(ctx, ch, top, repo.Helm)
	if err != nil {
		return nil, out.templateError(chartPath, err)
	}
	for name := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			delete(files, name)
		}
	}
	out.rendered = files
	out.hooks, out.manifests, err = releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return nil, out.yamlError(chartPath, err)
	}
	out.crds = ch.CRDObjects()
	return out, nil
}

func helmWalk(c *chart.Chart, fn func(*chart.Chart)) {
	fn(c)
	for _, d := range c.Dependencies() {
		helmWalk(d, fn)
	}
}

var (
	// Helm's cleaned-up errors: "parse error at (mychart/templates/x.yaml:5): msg" and
	// "execution error at (mychart/templates/x.yaml:12:3): msg".
	helmCleanErr = regexp.MustCompile(`(?s)^(?:parse|execution) error at \(([^()]+?):(\d+)(?::(\d+))?\): (.*)$`)
	// text/template's: "template: mychart/templates/x.yaml:12:3: executing ...".
	helmTplErr = regexp.MustCompile(`(?s)^template: ([^\s:]+):(\d+)(?::(\d+))?: (.*)$`)
	// Without a position: "parse error in (mychart/templates/x.yaml): msg".
	helmNoPosErr = regexp.MustCompile(`(?s)^(?:parse|execution) error in \(([^()]+)\): (.*)$`)
)

// templateError turns the engine's error into a *TemplateError naming the template file.
func (o *helmOutput) templateError(chartPath string, err error) error {
	msg := err.Error()
	var name, line, col string
	if m := helmCleanErr.FindStringSubmatch(msg); m != nil {
		name, line, col, msg = m[1], m[2], m[3], m[4]
	} else if m := helmTplErr.FindStringSubmatch(msg); m != nil {
		name, line, col, msg = m[1], m[2], m[3], m[4]
	} else if m := helmNoPosErr.FindStringSubmatch(msg); m != nil {
		name, msg = m[1], m[2]
	}
	src, ok := o.templates[name]
	if !ok {
		return fmt.Errorf("helm chart %s: %w", chartPath, err)
	}
	te := &TemplateError{File: src.file, Err: &helmMessage{msg: msg, err: err}}
	if src.archive {
		te.Err = &helmMessage{msg: name + ": " + msg, err: err}
		return te
	}
	te.Line, _ = strconv.Atoi(line) // "" (no position) leaves 0
	te.Col, _ = strconv.Atoi(col)
	return te
}

// yamlError names the template whose output releaseutil.SortManifests could not parse:
// "YAML parse error on mychart/templates/x.yaml: error converting YAML to JSON: ...".
func (o *helmOutput) yamlError(chartPath string, err error) error {
	msg := err.Error()
	rest, ok := strings.CutPrefix(msg, "YAML parse error on ")
	if ok {
		if name, detail, ok := strings.Cut(rest, ": "); ok {
			if src, ok := o.templates[name]; ok {
				return &TemplateError{File: src.file,
					Err: &helmMessage{msg: "rendered output is not valid YAML: " + detail, err: err}}
			}
		}
	}
	return fmt.Errorf("helm chart %s: %w", chartPath, err)
}

// helmMessage is Helm's error message without the position it began with.
type helmMessage struct {
	msg string
	err error
}

func (m *helmMessage) Error() string { return m.msg }
func (m *helmMessage) Unwrap() error { return m.err }

func helmCapabilities(repo Repo) (*chartutil.Capabilities, error) {
	v := repo.KubeVersion
	if v == "" {
		v = DefaultKubeVersion
	}
	kv, err := chartutil.ParseKubeVersion(v)
	if err != nil {
		return nil, fmt.Errorf("kube version %q: %w", v, err)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *kv
	// A fresh slice: appending to DefaultVersionSet's could write into Helm's global.
	apis := make(chartutil.VersionSet, 0, len(chartutil.DefaultVersionSet)+len(repo.APIVersions))
	apis = append(apis, chartutil.DefaultVersionSet...)
	caps.APIVersions = append(apis, repo.APIVersions...)
	return caps, nil
}

// helmValues merges the target's values as `helm template -f ... --set ...` does
// (pkg/cli/values.Options.MergeValues); the chart's own values are coalesced later.
func helmValues(repo Repo, t Target) (map[string]any, error) {
	base := map[string]any{}
	if len(t.ValueFiles) > 0 {
		confine, err := repopath.Open(repo.Dir)
		if err != nil {
			return nil, err
		}
		root, err := os.OpenRoot(confine.Dir())
		if err != nil {
			return nil, err
		}
		defer root.Close()
		for _, vf := range t.ValueFiles {
			if isRemote(vf) {
				return nil, fmt.Errorf("values file %s: %w", vf, &RemoteError{URL: vf})
			}
			if _, err := confine.Resolve(vf); err != nil {
				return nil, fmt.Errorf("values file %w", err)
			}
			p, _ := repopath.Clean(vf)
			if fi, err := root.Stat(filepath.FromSlash(p)); err == nil && repo.MaxFileSize > 0 && fi.Size() > repo.MaxFileSize {
				return nil, fmt.Errorf("values file %s is %d bytes, over the %d-byte limit", vf, fi.Size(), repo.MaxFileSize)
			}
			data, err := root.ReadFile(filepath.FromSlash(p))
			repo.trace(p)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("values file %s: %w", vf, fs.ErrNotExist)
			}
			if err != nil {
				return nil, fmt.Errorf("values file %s: %w", vf, err)
			}
			m := map[string]any{}
			if err := yaml.Unmarshal(data, &m); err != nil {
				return nil, fmt.Errorf("values file %s: %w", vf, err)
			}
			base = helmMergeMaps(base, m)
		}
	}
	if len(t.Values) > 0 {
		base = helmMergeMaps(base, copyJSON(t.Values).(map[string]any))
	}
	keys := make([]string, 0, len(t.Parameters))
	for k := range t.Parameters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := strvals.ParseInto(k+"="+helmEscapeSet(t.Parameters[k]), base); err != nil {
			return nil, fmt.Errorf("parameter %s: %w", k, err)
		}
	}
	return base, nil
}

// helmEscapeSet escapes the commas of a --set value, which would otherwise split it into
// several assignments, unless the value is a {a,b} list; Argo CD does the same.
func helmEscapeSet(v string) string {
	if strings.HasPrefix(v, "{") && strings.HasSuffix(v, "}") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == ',' && (i == 0 || v[i-1] != '\\') {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// helmMergeMaps is pkg/cli/values' mergeMaps: b's values win, maps merge recursively.
func helmMergeMaps(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if v, ok := v.(map[string]any); ok {
			if bv, ok := out[k].(map[string]any); ok {
				out[k] = helmMergeMaps(bv, v)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// helmLoader loads charts from the repository on disk and remembers the repository
// file each chart file came from.
type helmLoader struct {
	confine *repopath.Root
	dir     string // the repository root, confine.Dir()
	// sources maps every template and file of the loaded charts to its source.
	sources map[*chart.File]helmSource
	// missing are declared dependencies neither vendored nor on a file:// path.
	missing []helmMissing
	loading map[string]bool
	trace   func(file string)
}

type helmMissing struct {
	chartFile string // repo-relative Chart.yaml (or archive) declaring it
	req       *chart.Dependency
}

func newHelmLoader(dir string) (*helmLoader, error) {
	confine, err := repopath.Open(dir)
	if err != nil {
		return nil, err
	}
	return &helmLoader{confine: confine, dir: confine.Dir(), sources: map[*chart.File]helmSource{}, loading: map[string]bool{}}, nil
}

// load reads the chart directory (or archive) at the repo-relative path rel, with its
// dependencies.
func (l *helmLoader) load(rel string) (*chart.Chart, error) {
	if l.loading[rel] {
		return nil, fmt.Errorf("helm chart %s depends on itself", rel)
	}
	l.loading[rel] = true
	defer delete(l.loading, rel)

	disk := filepath.Join(l.dir, filepath.FromSlash(rel))
	fi, err := os.Stat(disk)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("helm chart %s: %w", rel, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("helm chart %s: %w", rel, err)
	}
	if err := l.confined(rel, disk); err != nil {
		return nil, err
	}
	ch, err := loader.Load(disk)
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", rel, err)
	}
	if err := l.index(ch, rel, !fi.IsDir()); err != nil {
		return nil, err
	}
	return ch, nil
}

// confined refuses a chart whose path, or any symlink inside it, leads out of the
// repository: Helm's loader follows symlinks.
func (l *helmLoader) confined(rel, disk string) error {
	if err := l.confine.Check(disk); err != nil {
		return fmt.Errorf("helm chart %s: %w", rel, err)
	}
	real, err := filepath.EvalSymlinks(disk)
	if err != nil {
		return fmt.Errorf("helm chart %s: %w", rel, err)
	}
	seen := map[string]bool{}
	var walk func(dir string) error
	walk = func(dir string) error {
		if seen[dir] {
			return nil
		}
		seen[dir] = true
		return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.Type()&fs.ModeSymlink == 0 {
				return err
			}
			if err := l.confine.Check(p); err != nil {
				return fmt.Errorf("helm chart %s: %w", rel, err)
			}
			target, err := filepath.EvalSymlinks(p)
			if err != nil {
				return fmt.Errorf("helm chart %s: %w", rel, err)
			}
			if fi, err := os.Stat(target); err == nil && fi.IsDir() {
				return walk(target)
			}
			return nil
		})
	}
	if fi, err := os.Stat(real); err == nil && fi.IsDir() {
		return walk(real)
	}
	return nil
}

// index records the sources of a loaded chart's files, matches its dependencies with
// the entries of its charts/ directory, resolves file:// dependencies that are not
// vendored, and records the other missing ones.
func (l *helmLoader) index(ch *chart.Chart, rel string, archive bool) error {
	if l.trace != nil {
		if archive {
			l.trace(rel)
		}
		for _, f := range ch.Raw {
			if !archive {
				l.trace(path.Join(rel, f.Name))
			}
		}
	}
	for _, f := range append(append([]*chart.File{}, ch.Templates...), ch.Files...) {
		if archive {
			l.sources[f] = helmSource{file: rel, archive: true}
		} else {
			l.sources[f] = helmSource{file: path.Join(rel, f.Name), data: f.Data}
		}
	}
	chartFile := rel
	if !archive {
		chartFile = path.Join(rel, "Chart.yaml")
	}

	var entries map[*chart.Chart]string
	if !archive {
		entries = l.vendored(ch, rel)
	}
	for _, d := range ch.Dependencies() {
		sub, ok := entries[d]
		switch {
		case archive:
			sub = rel
		case !ok:
			sub = path.Join(rel, "charts", d.Name())
		}
		if err := l.index(d, sub, archive || strings.HasSuffix(sub, ".tgz")); err != nil {
			return err
		}
	}

	for _, req := range ch.Metadata.Dependencies {
		if req == nil || helmHasDependency(ch, req.Name) {
			continue
		}
		repoURL := req.Repository
		if !strings.HasPrefix(repoURL, "file://") || archive {
			l.missing = append(l.missing, helmMissing{chartFile: chartFile, req: req})
			continue
		}
		subRel, err := l.filePath(rel, strings.TrimPrefix(repoURL, "file://"))
		if err != nil {
			return fmt.Errorf("%s: dependency %q: %w", chartFile, req.Name, err)
		}
		sub, err := l.load(subRel)
		if err != nil {
			return fmt.Errorf("%s: dependency %q: %w", chartFile, req.Name, err)
		}
		if sub.Name() != req.Name {
			return fmt.Errorf("%s: dependency %q: the chart at %s is named %q", chartFile, req.Name, repoURL, sub.Name())
		}
		if req.Version != "" && !chartutil.IsCompatibleRange(req.Version, sub.Metadata.Version) {
			return fmt.Errorf("%s: dependency %q: the chart at %s has version %s, which does not satisfy %s",
				chartFile, req.Name, repoURL, sub.Metadata.Version, req.Version)
		}
		ch.AddDependency(sub)
	}

	// The loader adds charts/ entries in map order: sort them so output is stable.
	deps := append([]*chart.Chart{}, ch.Dependencies()...)
	sort.SliceStable(deps, func(i, j int) bool {
		if deps[i].Name() != deps[j].Name() {
			return deps[i].Name() < deps[j].Name()
		}
		return deps[i].Metadata.Version < deps[j].Metadata.Version
	})
	ch.SetDependencies(deps...)
	return nil
}

func helmHasDependency(ch *chart.Chart, name string) bool {
	for _, d := range ch.Dependencies() {
		if d.Name() == name {
			return true
		}
	}
	return false
}

// filePath resolves a file:// dependency path against the chart directory rel; the
// result must stay inside the repository.
func (l *helmLoader) filePath(rel, p string) (string, error) {
	var disk string
	if filepath.IsAbs(p) {
		disk = filepath.Clean(p)
	} else {
		disk = filepath.Join(l.dir, filepath.FromSlash(rel), filepath.FromSlash(p))
	}
	out, ok := l.confine.Rel(disk)
	if !ok {
		return "", &repopath.EscapeError{Path: "file://" + p, Reason: repopath.Parent}
	}
	return out, nil
}

// vendored matches a chart's dependencies with the entries of its charts/ directory
// (subchart directories and .tgz archives), as the loader read them, by name and version.
func (l *helmLoader) vendored(ch *chart.Chart, rel string) map[*chart.Chart]string {
	out := map[*chart.Chart]string{}
	dirents, err := os.ReadDir(filepath.Join(l.dir, filepath.FromSlash(rel), "charts"))
	if err != nil {
		return out
	}
	type entry struct {
		rel           string
		name, version string
	}
	var entries []entry
	for _, de := range dirents {
		n := de.Name()
		if strings.IndexAny(n, "_.") == 0 {
			continue
		}
		p := path.Join(rel, "charts", n)
		disk := filepath.Join(l.dir, filepath.FromSlash(p))
		var md *chart.Metadata
		switch fi, err := os.Stat(disk); {
		case err != nil:
			continue
		case fi.IsDir():
			md, _ = chartutil.LoadChartfile(filepath.Join(disk, "Chart.yaml"))
		case filepath.Ext(n) == ".tgz":
			if c, err := loader.Load(disk); err == nil {
				md = c.Metadata
			}
		}
		if md != nil {
			entries = append(entries, entry{rel: p, name: md.Name, version: md.Version})
		}
	}
	used := make([]bool, len(entries))
	for _, d := range ch.Dependencies() {
		for i, e := range entries {
			if !used[i] && e.name == d.Name() && e.version == d.Metadata.Version {
				used[i] = true
				out[d] = e.rel
				break
			}
		}
	}
	return out
}

// checkMissing fails for the dependencies that are neither vendored nor local and that
// the values enable (after chartutil.ProcessDependencies, the enabled ones are those left
// in the charts' metadata); disabled ones are not needed to render.
func (l *helmLoader) checkMissing(ch *chart.Chart) error {
	if len(l.missing) == 0 {
		return nil
	}
	enabled := map[*chart.Dependency]bool{}
	helmWalk(ch, func(c *chart.Chart) {
		for _, r := range c.Metadata.Dependencies {
			enabled[r] = true
		}
	})
	for _, m := range l.missing {
		if !enabled[m.req] {
			continue
		}
		if m.req.Repository == "" {
			return fmt.Errorf("%s: dependency %q is not in charts/ and has no repository; vendor it into charts/", m.chartFile, m.req.Name)
		}
		if strings.HasPrefix(m.req.Repository, "file://") {
			return fmt.Errorf("%s: dependency %q: file:// dependencies of a chart archive are not resolved; vendor it into the archive's charts/", m.chartFile, m.req.Name)
		}
		// A chart repository URL, an OCI registry or a repository alias (@name).
		return fmt.Errorf("%s: dependency %q: %w", m.chartFile, m.req.Name, &RemoteError{URL: m.req.Repository})
	}
	return nil
}

// helmValidateSchemas is chartutil.ValidateAgainstSchema without its HTTP and file
// loaders: a values.schema.json may only refer to itself and to the JSON Schema
// metaschemas; a remote $ref is a *RemoteError.
func helmValidateSchemas(ch *chart.Chart, values map[string]any) error {
	var sb strings.Builder
	var remote error
	var validate func(c *chart.Chart, values map[string]any)
	validate = func(c *chart.Chart, values map[string]any) {
		if c.Schema != nil {
			err := helmValidateSchema(values, c.Schema)
			var re *RemoteError
			if errors.As(err, &re) && remote == nil {
				remote = fmt.Errorf("values.schema.json of chart %s: %w", c.Name(), re)
			}
			if err != nil {
				fmt.Fprintf(&sb, "%s:\n%s", c.Name(), err.Error())
			}
		}
		for _, sub := range c.Dependencies() {
			raw, ok := values[sub.Name()]
			if !ok || raw == nil {
				continue
			}
			subValues, ok := raw.(map[string]any)
			if !ok {
				fmt.Fprintf(&sb, "%s:\ninvalid type for values: expected object (map), got %T\n", sub.Name(), raw)
				continue
			}
			validate(sub, subValues)
		}
	}
	validate(ch, values)
	if remote != nil {
		return remote
	}
	if sb.Len() > 0 {
		return fmt.Errorf("values don't meet the specifications of the schema(s) in the following chart(s):\n%s", sb.String())
	}
	return nil
}

func helmValidateSchema(values map[string]any, schemaJSON []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("unable to validate schema: %v", r)
		}
	}()
	schema, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return err
	}
	ld := &helmSchemaLoader{}
	c := jsonschema.NewCompiler()
	c.UseLoader(ld)
	const loc = "file:///values.schema.json"
	if err := c.AddResource(loc, schema); err != nil {
		return err
	}
	v, err := c.Compile(loc)
	if ld.remote != "" {
		return &RemoteError{URL: ld.remote}
	}
	if err != nil {
		return err
	}
	if err := v.Validate(map[string]any(values)); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "jsonschema validation failed with 'file:///values.schema.json#'\n") + "\n")
	}
	return nil
}

// helmSchemaLoader loads nothing: urn: references get Helm's permissive schema, other
// references are refused (and http(s) ones remembered as remote).
type helmSchemaLoader struct{ remote string }

func (l *helmSchemaLoader) Load(url string) (any, error) {
	switch {
	case strings.HasPrefix(url, "urn:"):
		return true, nil
	case strings.HasPrefix(url, "http://"), strings.HasPrefix(url, "https://"):
		if l.remote == "" {
			l.remote = url
		}
		return nil, &RemoteError{URL: url}
	}
	return nil, fmt.Errorf("%s: only references inside values.schema.json are resolved", url)
}
