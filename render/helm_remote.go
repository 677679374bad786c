package render

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"sigs.k8s.io/yaml"

	"github.com/gitgate/gitgate/internal/remote"
)

// loadRemote fetches a chart through remotes and loads it from its archive; its files
// are named chart@version:path in findings and errors.
func (l *helmLoader) loadRemote(ctx context.Context, remotes Remotes, ref remote.ChartRef) (*chart.Chart, string, error) {
	if remotes == nil {
		return nil, "", fmt.Errorf("helm chart %s: %w", ref.Name, &RemoteError{URL: ref.Repo, Allow: remote.AllowEntry(ref.Repo, false)})
	}
	c, err := remotes.Chart(ctx, ref)
	if err != nil {
		return nil, "", fmt.Errorf("helm chart %s: %w", ref, err)
	}
	ch, err := loader.LoadArchive(bytes.NewReader(c.Archive))
	if err != nil {
		return nil, "", fmt.Errorf("helm chart %s@%s from %s (%s): %w", ref.Name, c.Version, c.URL, c.Digest, err)
	}
	name := ref.Name + "@" + c.Version
	l.indexRemote(ch, name+":")
	return ch, name, nil
}

// indexRemote records the sources of a fetched chart's files (prefix is chart@version:,
// then charts/<sub>/ for the subcharts in its archive) and the dependencies it declares
// but does not carry.
func (l *helmLoader) indexRemote(ch *chart.Chart, prefix string) {
	for _, f := range append(append([]*chart.File{}, ch.Templates...), ch.Files...) {
		l.sources[f] = helmSource{file: prefix + f.Name, data: f.Data}
	}
	for _, d := range ch.Dependencies() {
		l.indexRemote(d, prefix+"charts/"+d.Name()+"/")
	}
	for _, req := range ch.Metadata.Dependencies {
		if req != nil && !helmHasDependency(ch, req.Name) {
			l.missing = append(l.missing, helmMissing{chartFile: prefix + "Chart.yaml", req: req, parent: ch})
		}
	}
}

// fetchMissing fetches the declared dependencies that are neither vendored nor local
// and come from a Helm repository or an OCI registry, as `helm dependency build` does:
// at the version Chart.lock pins when the chart has a lock in step with Chart.yaml (a
// lock out of step is refused, as Helm refuses it), else the newest version the
// dependency's constraint allows. What remotes cannot fetch is left for checkMissing,
// which names it. Dependencies of fetched charts are followed too.
func (l *helmLoader) fetchMissing(ctx context.Context, remotes Remotes) error {
	if remotes == nil {
		return nil
	}
	checked := map[*chart.Chart]bool{}
	for round := 0; round < maxAppDepth && len(l.missing) > 0; round++ {
		var rest []helmMissing
		fetched := false
		cur := l.missing
		for _, m := range cur {
			repoURL := m.req.Repository
			alias := strings.HasPrefix(repoURL, "@") || strings.HasPrefix(repoURL, "alias:")
			if !alias && !strings.Contains(repoURL, "://") || strings.HasPrefix(repoURL, "file://") {
				rest = append(rest, m) // vendored-only, or file:// in an archive
				continue
			}
			version := m.req.Version
			if lock := m.parent.Lock; lock != nil {
				if !checked[m.parent] {
					checked[m.parent] = true
					if sum, err := helmHashReq(m.parent.Metadata.Dependencies, lock.Dependencies); err != nil || sum != lock.Digest {
						return fmt.Errorf("%s: the lock file (Chart.lock) is out of sync with the dependencies file (Chart.yaml); run 'helm dependency update' and commit Chart.lock", path.Join(path.Dir(m.chartFile), "Chart.lock"))
					}
				}
				for _, d := range lock.Dependencies {
					if d != nil && d.Name == m.req.Name {
						version = d.Version
						break
					}
				}
			}
			ref := remote.ChartRef{Repo: repoURL, Name: m.req.Name, Version: version}
			c, err := remotes.Chart(ctx, ref)
			if err != nil {
				return fmt.Errorf("%s: dependency %q: %w", m.chartFile, m.req.Name, err)
			}
			sub, err := loader.LoadArchive(bytes.NewReader(c.Archive))
			if err != nil {
				return fmt.Errorf("%s: dependency %q: %s@%s from %s (%s): %w", m.chartFile, m.req.Name, ref.Name, c.Version, c.URL, c.Digest, err)
			}
			if sub.Name() != m.req.Name {
				return fmt.Errorf("%s: dependency %q: %s holds a chart named %q", m.chartFile, m.req.Name, c.URL, sub.Name())
			}
			m.parent.AddDependency(sub)
			l.indexRemote(sub, sub.Name()+"@"+c.Version+":")
			fetched = true
		}
		// indexRemote appended the fetched charts' own missing dependencies after the
		// ones this round looked at: those are the next round's.
		l.missing = append(rest, l.missing[len(cur):]...)
		if !fetched {
			break
		}
	}
	return nil
}

// helmHashReq is Helm's Chart.lock digest of the dependencies (internal/resolver.HashReq,
// which Helm does not export).
func helmHashReq(req, lock []*chart.Dependency) (string, error) {
	data, err := json.Marshal([2][]*chart.Dependency{req, lock})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// helmChartValueFiles merges the values files inside a fetched chart that an Argo CD
// source names (helm.valueFiles without $ref), in order.
func helmChartValueFiles(ch *chart.Chart, rc *RemoteChart, name string) (map[string]any, error) {
	out := map[string]any{}
	for _, vf := range rc.ValueFiles {
		var data []byte
		found := false
		for _, f := range ch.Raw {
			if f.Name == vf {
				data, found = f.Data, true
				break
			}
		}
		if !found {
			if rc.IgnoreMissingValueFiles {
				continue
			}
			return nil, fmt.Errorf("helm chart %s: values file %s is not in the chart; fix helm.valueFiles or set ignoreMissingValueFiles", name, vf)
		}
		m := map[string]any{}
		if err := yaml.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("helm chart %s: values file %s: %w", name, vf, err)
		}
		out = helmMergeMaps(out, m)
	}
	return out, nil
}
