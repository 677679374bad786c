package render

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/gitgate/gitgate/policy"
)

// Render renders one target into resources carrying their origin. Objects without a
// namespace get the target's destination namespace, as Argo CD applies it, unless their
// kind is cluster-scoped.
func Render(ctx context.Context, repo Repo, t Target) ([]policy.Resource, error) {
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
	case Directory, Tekton:
		rs, err = renderFiles(repo, t) // a bad file spoils only itself: keep the others
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
// recurse, include and exclude globs.
func renderFiles(repo Repo, t Target) ([]policy.Resource, error) {
	var out []policy.Resource
	var errs []error
	st, err := fs.Stat(repo.FS, t.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Path, err)
	}
	read := func(p string) {
		if info, err := fs.Stat(repo.FS, p); err == nil && repo.MaxFileSize > 0 && info.Size() > repo.MaxFileSize {
			errs = append(errs, &policy.InputError{Origin: policy.Origin{File: p}, Err: fmt.Errorf("file is %d bytes, over the %d-byte limit; raise it with --max-file-size if the file is legitimate", info.Size(), repo.MaxFileSize)})
			return
		}
		data, err := fs.ReadFile(repo.FS, p)
		repo.trace(p)
		if err != nil {
			errs = append(errs, &policy.InputError{Origin: policy.Origin{File: p}, Err: err})
			return
		}
		rs, err := policy.Decode(p, data)
		out = append(out, rs...)
		if err != nil {
			errs = append(errs, err) // an *policy.InputError with the line
		}
	}
	if !st.IsDir() {
		read(t.Path)
	} else {
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
			if !isYAML(d.Name()) || strings.HasPrefix(d.Name(), ".") {
				return nil
			}
			rel := strings.TrimPrefix(strings.TrimPrefix(p, t.Path), "/")
			if t.Include != "" && !globAny(t.Include, rel) || t.Exclude != "" && globAny(t.Exclude, rel) {
				return nil
			}
			read(p)
			return nil
		})
	}
	return out, errors.Join(errs...)
}

// globAny matches Argo CD's include/exclude: a glob or {a,b} list of globs.
func globAny(pattern, name string) bool {
	pattern = strings.TrimSuffix(strings.TrimPrefix(pattern, "{"), "}")
	for _, p := range strings.Split(pattern, ",") {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
		if ok, _ := path.Match(p, path.Base(name)); ok {
			return true
		}
	}
	return false
}
