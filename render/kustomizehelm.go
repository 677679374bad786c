package render

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"github.com/gitgate/gitgate/internal/kustomization"
	"github.com/gitgate/gitgate/internal/remote"
	"github.com/gitgate/gitgate/internal/repopath"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// helmInflatedPrefix names the in-memory file that stands for a kustomization's
// helmCharts entry: kustomize reads the chart's rendered output from it as a resource.
const helmInflatedPrefix = ".gitgate-helm-"

// inflateHelmCharts renders a kustomization's helmCharts in-process with Helm's engine,
// as kustomize's HelmChartInflationGenerator would with the helm binary (which it runs
// and which may fetch charts): each entry becomes an in-memory resource file, served by
// the confined filesystem, and the entry is dropped from the kustomization. Charts come
// from the repository only (helmGlobals.chartHome, default charts/ beside the
// kustomization, or chartHome/name-version/name for a versioned entry with a repo, as
// kustomize's generator looks); an entry with a repo whose chart is not there is
// fetched through Repo.Remotes, or without it is a *RemoteError.
func (c *confinedFS) inflateHelmCharts(dir string, k map[string]any) error {
	raw, ok := k["helmCharts"]
	if !ok {
		return nil
	}
	data, err := yaml.Marshal(map[string]any{"helmCharts": raw, "helmGlobals": k["helmGlobals"]})
	if err != nil {
		return err
	}
	var spec struct {
		HelmCharts  []types.HelmChart  `json:"helmCharts"`
		HelmGlobals *types.HelmGlobals `json:"helmGlobals"`
	}
	if err := yaml.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("%s: helmCharts: %w", rel(c.root, dir), err)
	}
	home := "charts"
	if spec.HelmGlobals != nil && spec.HelmGlobals.ChartHome != "" {
		home = spec.HelmGlobals.ChartHome
	}
	relDir := rel(c.root, dir)
	resources, _ := k["resources"].([]any)
	for i, h := range spec.HelmCharts {
		// As kustomize's generator: the chart in chartHome (chartHome/name-version for a
		// versioned chart of a repo) when it is there, else pulled from repo.
		local := path.Join(relDir, home, h.Name)
		if h.Version != "" && h.Repo != "" {
			local = path.Join(relDir, home, h.Name+"-"+h.Version, h.Name)
		}
		chart, err := repopath.Clean(local)
		if err != nil {
			return fmt.Errorf("%s: helmCharts %s: chart %w", relDir, h.Name, err)
		}
		t := Target{Name: c.t.Name, Kind: Helm, Path: chart, ReleaseName: h.ReleaseName, Namespace: h.Namespace}
		if h.Repo != "" {
			if st, err := fs.Stat(c.confine.FS(), chart); err != nil || !st.IsDir() {
				if c.remotes == nil {
					return &RemoteError{URL: h.Repo, Allow: remote.AllowEntry(h.Repo, false)}
				}
				t.Path, t.Chart = "", &RemoteChart{Repo: h.Repo, Name: h.Name, Version: h.Version}
			}
		}
		if t.ReleaseName == "" {
			t.ReleaseName = h.Name // kustomize would pass --generate-name: a random name
		}
		var files []string
		if h.ValuesFile != "" {
			files = append(files, h.ValuesFile)
		}
		files = append(files, h.AdditionalValuesFiles...)
		for _, f := range files {
			if isRemote(f) {
				return &RemoteError{URL: f}
			}
			p, err := repopath.Clean(path.Join(relDir, f))
			if err != nil {
				return fmt.Errorf("%s: helmCharts %s: values file %w", relDir, h.Name, &repopath.EscapeError{Path: f, Reason: repopath.Parent})
			}
			t.ValueFiles = append(t.ValueFiles, p)
		}
		switch h.ValuesMerge {
		case "", "override":
			t.Values = h.ValuesInline
		case "replace":
			if len(h.ValuesInline) > 0 {
				t.ValueFiles, t.Values = nil, h.ValuesInline
			}
		case "merge": // the values files win over the inline values
			if len(h.ValuesInline) > 0 {
				base, err := helmValues(context.Background(), Repo{Dir: c.root, MaxFileSize: c.maxSize, Trace: c.trace}, Target{ValueFiles: t.ValueFiles}, nil)
				if err != nil {
					return fmt.Errorf("%s: helmCharts %s: %w", relDir, h.Name, err)
				}
				t.ValueFiles, t.Values = nil, helmMergeMaps(copyJSON(h.ValuesInline).(map[string]any), base)
			}
		default:
			return fmt.Errorf("%s: helmCharts %s: valuesMerge %q is not merge, override or replace", relDir, h.Name, h.ValuesMerge)
		}
		repo := Repo{Dir: c.root, MaxFileSize: c.maxSize, Trace: c.trace, KubeVersion: h.KubeVersion, APIVersions: h.ApiVersions, Helm: c.helm, Remotes: c.remotes}
		ctx := c.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		out, err := renderHelmChart(ctx, repo, t)
		if err != nil {
			return fmt.Errorf("%s: helmCharts %s: %w", relDir, h.Name, err)
		}
		if !h.IncludeCRDs {
			out.crds = nil
		}
		if h.SkipHooks {
			out.hooks = nil
		}
		name := fmt.Sprintf("%s%d-%s.yaml", helmInflatedPrefix, i, strings.ReplaceAll(h.Name, "/", "-"))
		data := out.yaml()
		if c.annotate != nil { // findings in the chart point at the kustomization naming it
			k := path.Join(relDir, kustomization.FileNames[0])
			data = annotateDocs(data, func(int) string { return k + ":0" })
		}
		c.mu.Lock()
		c.virtual[filepath.Join(dir, name)] = data
		c.mu.Unlock()
		resources = append(resources, name)
	}
	k["resources"] = resources
	delete(k, "helmCharts")
	delete(k, "helmGlobals")
	return nil
}
