package render

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gitgate/gitgate/internal/git"
	"github.com/gitgate/gitgate/internal/remote"
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
// Values files are this repository's, or, for an entry naming a ref: source of another
// repository (Target.Refs), that repository's at its revision, fetched through
// repo.Remotes. When leaves is not nil, every value set by a values file is added to it
// with its position, for findings to name the line a value came from.
func helmValues(ctx context.Context, repo Repo, t Target, leaves *valueLeaves) (map[string]any, error) {
	base := map[string]any{}
	for _, vf := range t.ValueFiles {
		data, shown, err := readValuesFile(ctx, repo, t, vf)
		if err != nil {
			return nil, fmt.Errorf("values file %w", err)
		}
		if data == nil {
			continue // a missing file of a ref: source with ignoreMissingValueFiles
		}
		m := map[string]any{}
		if err := yaml.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("values file %s: %w", shown, err)
		}
		base = helmMergeMaps(base, m)
		if leaves != nil {
			leaves.addFile(shown, data)
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

// readValuesFile reads one of t.ValueFiles, confined to its repository, and returns the
// name it is shown by: the repo-relative path, or url@commit:path for a file of another
// repository. Errors start with that name. A missing file of a ref: source whose
// Application sets ignoreMissingValueFiles is (nil, name, nil).
func readValuesFile(ctx context.Context, repo Repo, t Target, vf string) ([]byte, string, error) {
	dir, name, shown, ignoreMissing := repo.Dir, vf, vf, false
	if rr, rel, ok := t.refFile(vf); ok {
		if repo.Remotes == nil {
			return nil, vf, fmt.Errorf("%s: %w", vf, &RemoteError{URL: git.Redact(rr.URL), Allow: remote.AllowEntry(rr.URL, false)})
		}
		if err := repo.Remotes.Check(rr.URL); err != nil {
			return nil, vf, fmt.Errorf("%s: %w", vf, err)
		}
		tree, err := repo.Remotes.Git(ctx, rr.URL, rr.Revision)
		if err != nil {
			return nil, vf, fmt.Errorf("%s: %w", vf, err)
		}
		dir, name, ignoreMissing = tree.Dir, rel, rr.IgnoreMissingValueFiles
		shown = git.Redact(rr.URL) + "@" + shortCommit(tree.Commit) + ":" + rel
	} else if isRemote(vf) {
		return nil, vf, fmt.Errorf("%s: %w", vf, &RemoteError{URL: vf})
	}
	confine, err := repopath.Open(dir)
	if err != nil {
		return nil, shown, err
	}
	if _, err := confine.Resolve(name); err != nil {
		return nil, shown, err
	}
	root, err := os.OpenRoot(confine.Dir())
	if err != nil {
		return nil, shown, err
	}
	defer root.Close()
	p, _ := repopath.Clean(name)
	if fi, err := root.Stat(filepath.FromSlash(p)); err == nil && repo.MaxFileSize > 0 && fi.Size() > repo.MaxFileSize {
		return nil, shown, fmt.Errorf("%s is %d bytes, over the %d-byte limit", shown, fi.Size(), repo.MaxFileSize)
	}
	data, err := root.ReadFile(filepath.FromSlash(p))
	if dir == repo.Dir {
		repo.trace(p)
	}
	if errors.Is(err, fs.ErrNotExist) {
		if ignoreMissing {
			return nil, shown, nil
		}
		return nil, shown, fmt.Errorf("%s: %w", shown, fs.ErrNotExist)
	}
	if err != nil {
		return nil, shown, fmt.Errorf("%s: %w", shown, err)
	}
	return data, shown, nil
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
