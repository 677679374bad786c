package render

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"

	"github.com/gitgate/gitgate/internal/repopath"
	"github.com/gitgate/gitgate/policy"
)

// DefaultKubeVersion is .Capabilities.KubeVersion when the repository names none.
const DefaultKubeVersion = policy.DefaultKubeVersion

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
	if t.Repo != nil && repo.here == nil {
		var err error
		if repo, _, err = otherRepo(ctx, repo, t); err != nil {
			return nil, err
		}
	}
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
	// values are the values this repository set, by value (nil: none).
	values *valueIndex
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
		if o.values != nil {
			for i := range rs {
				rs[i].Values = valueLocator{x: o.values, obj: rs[i].Object.Object}
			}
		}
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
	l, err := newHelmLoader(repo.Dir)
	if err != nil {
		return nil, err
	}
	l.trace = repo.trace
	var (
		ch        *chart.Chart
		chartPath string         // in messages: the chart's directory, or chart@version
		first     map[string]any // values applied before the target's own: files inside a fetched chart, or of the other repository
	)
	if t.Chart != nil {
		if ch, chartPath, err = l.loadRemote(ctx, repo.Remotes, t.Chart.ref()); err != nil {
			return nil, err
		}
		if first, err = helmChartValueFiles(ch, t.Chart, chartPath); err != nil {
			return nil, err
		}
	} else {
		if chartPath, err = repopath.Clean(t.Path); err != nil {
			return nil, fmt.Errorf("helm chart %w", err)
		}
		if ch, err = l.load(chartPath); err != nil {
			return nil, err
		}
	}
	if err := l.fetchMissing(ctx, repo.Remotes); err != nil {
		return nil, err
	}
	switch ch.Metadata.Type {
	case "", "application":
	default:
		return nil, fmt.Errorf("helm chart %s: %s charts are not installable", chartPath, ch.Metadata.Type)
	}

	valuesRepo := repo // the target's own ValueFiles: this repository's
	if repo.here != nil {
		valuesRepo = *repo.here
		// the other repository's values files, which come first
		var files []string
		for _, f := range t.Repo.ValueFiles {
			if _, err := fs.Stat(repo.confined().FS, f); err == nil || !t.Repo.IgnoreMissingValueFiles {
				files = append(files, f)
			}
		}
		if first, err = helmValues(ctx, repo, Target{ValueFiles: files}, nil); err != nil {
			return nil, fmt.Errorf("helm chart %s: %w", chartPath, err)
		}
	}
	// The values this repository sets, for findings to name the line a value came
	// from: a chart of this repository's own values.yaml, then the target's files.
	leaves := &valueLeaves{}
	if t.Chart == nil && t.Repo == nil {
		for _, f := range ch.Raw {
			if f.Name == chartutil.ValuesfileName {
				leaves.addFile(path.Join(chartPath, f.Name), f.Data)
			}
		}
	}
	vals, err := helmValues(ctx, valuesRepo, t, leaves)
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", chartPath, err)
	}
	if first != nil {
		vals = helmMergeMaps(first, vals)
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
		if t.Chart != nil {
			name = ch.Name()
		} else if chartPath == "." {
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
	out := &helmOutput{templates: map[string]helmSource{}, files: l.sources}
	if values, ok := top["Values"].(chartutil.Values); ok {
		if err := helmValidateSchemas(ch, values); err != nil {
			return nil, fmt.Errorf("helm chart %s: %w", chartPath, err)
		}
		out.values = leaves.index(map[string]any(values))
	}

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
