package render

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/gitgate/gitgate/internal/pool"
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
}

// Errors turns the render error into input errors with repo-relative paths: a bad
// manifest keeps its own file:line, anything else is reported against the target.
func (r Rendered) Errors() []error {
	if r.Err == nil {
		return nil
	}
	var errs, plain []error
	for _, e := range unjoinErr(r.Err) {
		var ie *policy.InputError
		var nr *NotRenderedError
		if errors.As(e, &nr) && nr.File != "" {
			// Where it is asked for, and why it is not rendered, once.
			errs = append(errs, &policy.InputError{Origin: policy.Origin{File: nr.File, Line: nr.Line, Target: r.Target.Name}, Err: notRenderedAt{nr}})
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

func unjoinErr(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
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
		rs, err := Render(ctx, repo, t)
		out[i] = Rendered{Target: t, Resources: rs, Err: err, Notices: KustomizeNotices(repo, t)}
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

// maxAppDepth bounds app-of-apps: an Application rendering Applications rendering ...
const maxAppDepth = 5

// appKey is an Application's identity and where it is written.
func appKey(a policy.Resource) string {
	return a.ID() + "@" + a.Origin.File + ":" + strconv.Itoa(a.Origin.Line)
}

// Discovered renders a discovery's targets and follows app-of-apps: Applications and
// ApplicationSets found in rendered output become targets too (Argo CD would apply and
// then sync them), to a depth of 5. Targets already rendered are not rendered twice.
func Discovered(ctx context.Context, repo Repo, d *Discovery, opts DiscoverOptions, workers int, progress func(done, total int), sink func(Rendered)) []Rendered {
	repo = repo.confined()
	seen := map[string]bool{}
	for _, t := range d.Targets {
		seen[t.Name+"|"+t.Path] = true
	}
	// An Application read once is not read again: the directory of Application files
	// renders them as they were discovered (their errors and notices were said then), and
	// an app-of-apps that deploys itself stops here.
	known := map[string]bool{}
	for _, a := range d.Apps {
		known[appKey(a)] = true
	}
	out := All(ctx, repo, d.Targets, workers, progress, sink)
	next := out
	for depth := 0; depth < maxAppDepth && ctx.Err() == nil; depth++ {
		var apps []policy.Resource
		for _, r := range next {
			for _, a := range ChildApps(r.Resources) {
				if k := appKey(a); !known[k] {
					known[k] = true
					apps = append(apps, a)
				}
			}
		}
		if len(apps) == 0 {
			return out
		}
		ts, notices, errs := AppTargets(repo, apps, AppOptions{RepoURLs: opts.RepoURLs})
		d.Notices = append(d.Notices, notices...)
		d.Errors = append(d.Errors, errs...)
		var fresh []Target
		for _, t := range ts {
			if key := t.Name + "|" + t.Path; !seen[key] {
				seen[key] = true
				fresh = append(fresh, t)
			}
		}
		fresh = opts.filter(d, fresh)
		if len(fresh) == 0 {
			return out
		}
		d.Targets = append(d.Targets, fresh...)
		next = All(ctx, repo, fresh, workers, progress, sink)
		out = append(out, next...)
	}
	if len(next) > 0 && ctx.Err() == nil {
		d.Notices = append(d.Notices, fmt.Sprintf("app-of-apps deeper than %d levels not followed", maxAppDepth))
	}
	return out
}
