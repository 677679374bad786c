package render

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gitgate/gitgate/internal/remote"
	"github.com/gitgate/gitgate/internal/repopath"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
)

func helmWalk(c *chart.Chart, fn func(*chart.Chart)) {
	fn(c)
	for _, d := range c.Dependencies() {
		helmWalk(d, fn)
	}
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
	parent    *chart.Chart // the chart declaring it
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
			l.missing = append(l.missing, helmMissing{chartFile: chartFile, req: req, parent: ch})
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
		re := &RemoteError{URL: m.req.Repository}
		if strings.Contains(m.req.Repository, "://") {
			re.Allow = remote.AllowEntry(m.req.Repository, false) // an alias (@name) names no host
		}
		return fmt.Errorf("%s: dependency %q: %w", m.chartFile, m.req.Name, re)
	}
	return nil
}
