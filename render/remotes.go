package render

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"sync"

	"github.com/gitgate/gitgate/internal/git"
	"github.com/gitgate/gitgate/internal/remote"
	"github.com/gitgate/gitgate/internal/repopath"
	"github.com/gitgate/gitgate/policy"
)

// recorder is a target's Remotes: it passes every call on and records what resolved,
// for the target's status, `render` and the merge-request comment.
type recorder struct {
	inner Remotes
	mu    sync.Mutex
	got   []policy.RemoteSource
}

func (r *recorder) Chart(ctx context.Context, ref remote.ChartRef) (*remote.Chart, error) {
	c, err := r.inner.Chart(ctx, ref)
	if err == nil {
		r.add(policy.RemoteSource{Kind: "chart", URL: git.Redact(ref.Repo), Name: ref.Name, Requested: ref.Version, Resolved: c.Version, Digest: c.Digest})
	}
	return c, err
}

func (r *recorder) Git(ctx context.Context, url, ref string) (*remote.GitTree, error) {
	tree, err := r.inner.Git(ctx, url, ref)
	if err == nil {
		r.add(policy.RemoteSource{Kind: "git", URL: git.Redact(url), Requested: ref, Resolved: tree.Commit})
	}
	return tree, err
}

func (r *recorder) File(ctx context.Context, url string) ([]byte, error) {
	data, err := r.inner.File(ctx, url)
	if err == nil {
		sum := sha256.Sum256(data)
		r.add(policy.RemoteSource{Kind: "file", URL: git.Redact(url), Digest: "sha256:" + hex.EncodeToString(sum[:])})
	}
	return data, err
}

func (r *recorder) Check(url string) error { return r.inner.Check(url) }

func (r *recorder) add(s policy.RemoteSource) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.got, s) {
		r.got = append(r.got, s)
	}
}

// sources are the recorded sources in a stable order.
func (r *recorder) sources() []policy.RemoteSource {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.got)
	slices.SortFunc(out, func(a, b policy.RemoteSource) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.URL, b.URL), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Resolved, b.Resolved))
	})
	return out
}

// renderRecorded is Render with what the target fetched recorded.
func renderRecorded(ctx context.Context, repo Repo, t Target) ([]policy.Resource, []policy.RemoteSource, error) {
	if repo.Remotes == nil {
		rs, err := Render(ctx, repo, t)
		return rs, nil, err
	}
	rec := &recorder{inner: repo.Remotes}
	repo.Remotes = rec
	rs, err := Render(ctx, repo, t)
	return rs, rec.sources(), err
}

// renderOtherRepo renders a target whose source is in another Git repository: the tree
// at the revision comes through repo.Remotes (refused, naming the remotes.allow entry to
// add, without it), the target renders there with this repository's settings, and its
// objects' origins are url@commit:file.
func renderOtherRepo(ctx context.Context, repo Repo, t Target) ([]policy.Resource, error) {
	sub, prefix, err := otherRepo(ctx, repo, t)
	if err != nil {
		return nil, err
	}
	rs, err := Render(ctx, sub, t)
	for i := range rs {
		rs[i].Origin.File = prefix + rs[i].Origin.File
	}
	return rs, err
}

// otherRepo is the repository a target of another Git repository renders in (its tree
// at the revision, with this repository's settings; this one kept for its $ref values
// files), and the prefix of its files in origins (url@commit:). Without Remotes it is
// refused, naming the remotes.allow entry to add.
func otherRepo(ctx context.Context, repo Repo, t Target) (Repo, string, error) {
	url := t.Repo.URL
	if repo.Remotes == nil {
		return Repo{}, "", &RemoteError{URL: git.Redact(url), Allow: remote.AllowEntry(url, false)}
	}
	if err := repo.Remotes.Check(url); err != nil {
		return Repo{}, "", err
	}
	tree, err := repo.Remotes.Git(ctx, url, t.Repo.Revision)
	if err != nil {
		return Repo{}, "", err
	}
	here := repo.confined()
	sub := repo
	sub.FS, sub.Dir, sub.Trace, sub.stage, sub.here = nil, tree.Dir, nil, nil, &here
	return sub, git.Redact(url) + "@" + shortCommit(tree.Commit) + ":", nil
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// ResolveRemotes resolves, without rendering, the remote sources a target names: its
// chart, its other repository, the repositories of its $ref values files, the remote
// entries of its kustomization graph and the dependencies of its chart that Chart.lock
// or Chart.yaml name in a chart repository. What it fetches is kept in the cache for the
// render. Sources of a fetched chart or another repository's own kustomizations show
// when the target renders (render, fetch, check).
func ResolveRemotes(ctx context.Context, repo Repo, t Target) ([]policy.RemoteSource, error) {
	if repo.Remotes == nil {
		return nil, nil
	}
	repo = repo.confined()
	rec := &recorder{inner: repo.Remotes}
	var errs []error
	if t.Chart != nil {
		if _, err := rec.Chart(ctx, t.Chart.ref()); err != nil {
			errs = append(errs, err)
		}
	}
	if t.Repo != nil {
		if _, err := rec.Git(ctx, t.Repo.URL, t.Repo.Revision); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(t.Refs)) {
		if _, err := rec.Git(ctx, t.Refs[name].URL, t.Refs[name].Revision); err != nil {
			errs = append(errs, err)
		}
	}
	if t.Repo == nil && t.Chart == nil && repo.Dir != "" {
		switch t.Kind {
		case Kustomize:
			if root, err := repopath.Open(repo.Dir); err == nil {
				if _, err := scanKustomization(ctx, root, t.Path, repo.MaxFileSize, rec); err != nil {
					errs = append(errs, err)
				}
			}
		case Helm:
			if l, err := newHelmLoader(repo.Dir); err == nil {
				if _, err := l.load(t.Path); err == nil {
					if err := l.fetchMissing(ctx, rec); err != nil {
						errs = append(errs, err)
					}
				}
			}
		}
	}
	return rec.sources(), errors.Join(errs...)
}
