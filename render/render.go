package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/gobwas/glob"

	"github.com/gitgate/gitgate/policy"
)

// Render renders one target into resources carrying their origin. Objects without a
// namespace get the target's destination namespace, as Argo CD applies it, unless their
// kind is cluster-scoped.
func Render(ctx context.Context, repo Repo, t Target) ([]policy.Resource, error) {
	if repo.stage != nil {
		var err error
		if repo, err = repo.stage.repo(repo, t); err != nil {
			return nil, err
		}
	}
	if t.Repo != nil && repo.here == nil {
		return renderOtherRepo(ctx, repo, t)
	}
	repo = repo.confined()
	var (
		rs  []policy.Resource
		err error
	)
	switch t.Kind {
	case Kustomize:
		rs, err = renderKustomize(ctx, repo, t)
	case Helm:
		rs, err = renderHelm(ctx, repo, t)
	case Plugin:
		return nil, &NotRenderedError{Target: t.Name, File: t.DefinedIn, Reason: "config management plugin",
			Detail: fmt.Sprintf("Argo CD renders %s (target %s) with a plugin; gitgate never runs plugins during a check", t.Path, t.Name)}
	case Directory, Tekton:
		rs, err = renderFiles(ctx, repo, t) // a bad file spoils only itself: keep the others
	default:
		return nil, fmt.Errorf("%s: unknown target kind %q", t.Name, t.Kind)
	}
	if err != nil && t.Kind != Directory && t.Kind != Tekton {
		return nil, err
	}
	if repo.MaxObjects > 0 && len(rs) > repo.MaxObjects {
		return nil, &policy.InputError{Origin: policy.Origin{File: t.Path, Target: t.Name},
			Err: fmt.Errorf("target %s renders %d objects, over the limit of %d; if that is legitimate, raise limits.maxObjects in .gitgate.yaml or --max-objects", t.Name, len(rs), repo.MaxObjects)}
	}
	for i := range rs {
		rs[i].Origin.Target = t.Name
		if t.Namespace != "" && rs[i].Object.GetNamespace() == "" && !policy.ClusterScoped(rs[i].Object.GetKind()) {
			rs[i].Object.SetNamespace(t.Namespace)
		}
	}
	return rs, err
}

// renderFiles reads a directory target (or one file) as Argo CD's directory source does:
// recurse, include and exclude globs, files holding "+argocd:skip-file-rendering" left
// out; its .jsonnet files evaluated when the target has jsonnet options (an Argo CD
// source).
func renderFiles(ctx context.Context, repo Repo, t Target) ([]policy.Resource, error) {
	files, errs := directoryFiles(repo, t)
	if files == nil && errs != nil {
		return nil, errors.Join(errs...)
	}
	var jfiles []string
	for _, f := range files {
		if isJsonnet(f) {
			jfiles = append(jfiles, f)
		}
	}
	byFile := map[string][]policy.Resource{}
	if len(jfiles) > 0 {
		rs, jerrs := renderJsonnet(ctx, repo, t, jfiles)
		for _, r := range rs {
			byFile[r.Origin.File] = append(byFile[r.Origin.File], r)
		}
		errs = append(errs, jerrs...)
	}
	var out []policy.Resource
	for _, p := range files {
		if isJsonnet(p) {
			out = append(out, byFile[p]...)
			continue
		}
		if info, err := fs.Stat(repo.FS, p); err == nil && repo.MaxFileSize > 0 && info.Size() > repo.MaxFileSize {
			errs = append(errs, &policy.InputError{Origin: policy.Origin{File: p}, Err: fmt.Errorf("file is %d bytes, over the %d-byte limit; raise it with --max-file-size if the file is legitimate", info.Size(), repo.MaxFileSize)})
			continue
		}
		data, err := fs.ReadFile(repo.FS, p)
		repo.trace(p)
		if err != nil {
			errs = append(errs, &policy.InputError{Origin: policy.Origin{File: p}, Err: err})
			continue
		}
		if bytes.Contains(data, []byte(skipRenderingMarker)) {
			continue
		}
		rs, err := policy.Decode(p, data)
		out = append(out, rs...)
		if err != nil {
			errs = append(errs, err) // an *policy.InputError with the line
		}
	}
	return out, errors.Join(errs...)
}

// skipRenderingMarker in a file of a directory source makes Argo CD skip it.
const skipRenderingMarker = "+argocd:skip-file-rendering"

// directoryFiles lists the files a directory target renders, in walk order: YAML and
// JSON, and .jsonnet when the target has jsonnet options (Argo CD's extensions),
// hidden files left out, recurse, include and exclude applied as Argo CD does. A target
// whose path is a file is that file. Nil files with errors: the path does not exist.
func directoryFiles(repo Repo, t Target) (files []string, errs []error) {
	st, err := fs.Stat(repo.FS, t.Path)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", t.Path, err)}
	}
	if !st.IsDir() {
		return []string{t.Path}, nil
	}
	files = []string{}
	_ = fs.WalkDir(repo.FS, t.Path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, &policy.InputError{Origin: policy.Origin{File: p}, Err: err})
			return nil
		}
		if d.IsDir() {
			if p != t.Path && !t.Recurse {
				return fs.SkipDir
			}
			return nil
		}
		if !(isYAML(d.Name()) || t.Jsonnet != nil && isJsonnet(d.Name())) || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, t.Path), "/")
		if t.Include != "" && !globAny(t.Include, rel) || t.Exclude != "" && globAny(t.Exclude, rel) {
			return nil
		}
		files = append(files, p)
		return nil
	})
	return files, errs
}

// globAny matches Argo CD's include/exclude as its repo-server does: the pattern (a
// gobwas glob, {a,b} alternatives included, "*" crossing "/") against the file's path
// relative to the source directory. A pattern that does not compile matches nothing.
func globAny(pattern, name string) bool {
	g, err := glob.Compile(pattern)
	if err != nil {
		return false
	}
	return g.Match(name)
}
