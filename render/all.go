package render

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/gitgate/gitgate/internal/pool"
	"github.com/gitgate/gitgate/internal/remote"
	"github.com/gitgate/gitgate/internal/repopath"
	"github.com/gitgate/gitgate/policy"
)

// Rendered is one target's output, or the error that stopped it.
type Rendered struct {
	Target    Target
	Resources []policy.Resource
	Err       error
	// Notices are what the user should know about the target's sources that is not an
	// error (kustomize's deprecation warnings, with file:line). The same notice comes
	// from every target that builds the same file: print them deduplicated.
	Notices []string
	// Remotes are the sources outside the repository it rendered from, as resolved.
	Remotes []policy.RemoteSource
}

// Errors turns the render error into input errors with repo-relative paths: a bad
// manifest keeps its own file:line, anything else is reported against the target.
func (r Rendered) Errors() []error {
	if r.Err == nil {
		return nil
	}
	var errs, plain []error
	for _, e := range policy.Unjoin(r.Err) {
		var ie *policy.InputError
		var nr *NotRenderedError
		if errors.As(e, &nr) && nr.File != "" {
			// Where it is asked for, and why it is not rendered, once.
			errs = append(errs, &policy.InputError{Origin: policy.Origin{File: nr.File, Line: nr.Line, Target: r.Target.Name}, Err: notRenderedAt{nr}})
		} else if nr != nil {
			errs = append(errs, nr)
		} else if errors.As(e, &ie) {
			ie.Origin.Target = r.Target.Name
			errs = append(errs, ie)
		} else {
			plain = append(plain, e)
		}
	}
	if len(plain) > 0 {
		errs = append(errs, &policy.InputError{
			Origin: policy.Origin{File: r.Target.Path, Target: r.Target.Name},
			Err:    fmt.Errorf("target %s (%s) does not render: %w", r.Target.Name, r.Target.Kind, errors.Join(plain...)),
		})
	}
	return errs
}

// notRenderedAt is a *NotRenderedError printed after its file and line: without them.
type notRenderedAt struct{ e *NotRenderedError }

func (n notRenderedAt) Error() string {
	c := *n.e
	c.File, c.Line = "", 0
	return c.Error()
}
func (n notRenderedAt) Unwrap() error { return n.e }

// Status is the target's line in a check's report: what it is, how many objects it
// rendered, and, when it did not render (or only in part), why in a few words.
func (r Rendered) Status() policy.TargetStatus {
	t := r.Target
	st := policy.TargetStatus{Name: t.Name, Kind: string(t.Kind), Path: t.Path, DefinedIn: t.DefinedIn, DeployedBy: t.DeployedBy, Objects: len(r.Resources), Rendered: r.Err == nil, Remotes: r.Remotes}
	if r.Err != nil {
		st.Reason = notRenderedReason(r.Err)
	}
	return st
}

// Judge gates one rendered target for a check: the gate's findings, the render errors a
// user must fix (Secret values masked), what gitgate leaves out by design (not rendered:
// notices, counted, never exit 2), a notice when it rendered nothing (nothing of it was
// checked: never a silent pass) and its status line. The target's own Notices are left
// to the caller, which prints each once however many targets build the file. The CRDs
// the target rendered join opts.CRDs before its objects are checked (CheckResources).
func Judge(ctx context.Context, gate *policy.Gate, r Rendered, opts policy.CheckOptions) *policy.Report {
	part := gate.CheckResources(ctx, r.Resources, opts)
	errs, skipped := SplitNotRendered(r.Errors())
	part.Errors = append(part.Errors, policy.MaskErrors(errs, r.Resources)...)
	for _, e := range skipped {
		part.Notices = append(part.Notices, e.Error())
	}
	if r.Err == nil && len(r.Resources) == 0 && ctx.Err() == nil {
		part.Notices = append(part.Notices, fmt.Sprintf("%s: target %s (%s) rendered no objects: nothing of it was checked", r.Target.Path, r.Target.Name, r.Target.Kind))
	}
	part.Targets = append(part.Targets, r.Status())
	return part
}

// notRenderedReason sorts a render error into the reasons a check's summary counts.
func notRenderedReason(err error) string {
	var (
		nr      *NotRenderedError
		remoteE *RemoteError
		refused *remote.RefusedError
		offline *remote.OfflineError
		esc     *repopath.EscapeError
		cycle   *CycleError
		limit   *HelmLimitError
		input   *policy.InputError
	)
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return "interrupted"
	case errors.As(err, &nr):
		return nr.Reason
	case errors.As(err, &refused):
		return "remote source refused"
	case errors.As(err, &offline):
		return "not in the cache (offline)"
	case errors.As(err, &remoteE):
		return "remote source"
	case errors.As(err, &esc):
		return "outside the repository"
	case errors.As(err, &cycle):
		return "kustomization cycle"
	case errors.As(err, &limit):
		return "over a limit"
	case errors.As(err, &input):
		return "invalid input"
	}
	return "render error"
}

// All renders targets on workers goroutines; the result is in target order. One
// target failing never stops the others. With a sink, each target is handed to it as
// soon as it renders (from the worker's goroutine) and only its Argo CD Applications
// are kept in the result, so a huge repository is never held in memory at once.
func All(ctx context.Context, repo Repo, targets []Target, workers int, progress func(done, total int), sink func(Rendered)) []Rendered {
	repo = repo.confined()
	out := make([]Rendered, len(targets))
	var mu sync.Mutex
	done := 0
	pool.ForEach(ctx, len(targets), workers, func(i int) {
		t := targets[i]
		rs, remotes, err := renderRecorded(ctx, repo, t)
		out[i] = Rendered{Target: t, Resources: rs, Err: err, Notices: KustomizeNotices(repo, t), Remotes: remotes}
		if sink != nil {
			sink(out[i])
			out[i].Resources = ChildApps(rs)
		}
		if progress != nil {
			mu.Lock()
			done++
			progress(done, len(targets))
			mu.Unlock()
		}
	})
	return out
}
