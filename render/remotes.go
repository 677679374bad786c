package render

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/gitgate/gitgate/internal/git"
	"github.com/gitgate/gitgate/internal/remote"
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
