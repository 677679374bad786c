package render

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gitgate/gitgate/internal/repopath"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/strvals"
	"sigs.k8s.io/yaml"
)

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
