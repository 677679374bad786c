package admission

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/gitgate/gitgate/policy"
	"github.com/go-logr/logr"
)

// DefaultPollInterval is how often sources are polled; a directory is also watched, so
// its changes land at once.
const DefaultPollInterval = 10 * time.Second

// ReloaderOptions say what the gate is built from. Start from DefaultReloaderOptions.
type ReloaderOptions struct {
	// Gate holds the settings of the command line: NoBuiltin, Registries, Values and any
	// static PolicyDirs. A Git source's .gitgate.yaml adds to them the way it does in
	// `gitgate check`: flags win; registries, values and noBuiltin come from the file
	// when the flags leave them unset.
	Gate policy.GateOptions
	// Sources are polled (and watched, for directories) for changes.
	Sources []Source
	// Interval between polls.
	Interval time.Duration
	// Log receives reloads, gate warnings and load errors.
	Log logr.Logger
	// Now is the clock (tests inject it).
	Now func() time.Time
}

// DefaultReloaderOptions polls every 10 s.
func DefaultReloaderOptions() ReloaderOptions {
	return ReloaderOptions{Interval: DefaultPollInterval, Log: logr.Discard(), Now: time.Now}
}

// ReloadStatus is what /readyz shows about the policy set.
type ReloadStatus struct {
	// Version and Policies describe the set that serves; Loaded is when it was built.
	Version  string
	Policies int
	Loaded   time.Time
	// LastAttempt is the last reload that found a change; LastError its error, when it
	// failed and the previous set kept serving.
	LastAttempt time.Time
	LastError   string
	// Reloads and Failures count reload attempts that found a change.
	Reloads, Failures int
}

// Reloader keeps the current gate: it snapshots every source, rebuilds the gate when a
// snapshot changed, and swaps it in atomically. A build that fails leaves the last good
// gate serving; the error is logged, counted and reported by Check.
type Reloader struct {
	opts    ReloaderOptions
	current atomic.Pointer[Gate]
	trigger chan struct{}

	mu       sync.Mutex // serialises reloads and guards status and versions
	versions []string
	status   ReloadStatus
}

// NewReloader returns a Reloader; call Reload once to load, then Start to follow changes.
func NewReloader(opts ReloaderOptions) *Reloader {
	def := DefaultReloaderOptions()
	if opts.Interval <= 0 {
		opts.Interval = def.Interval
	}
	if opts.Log.GetSink() == nil {
		opts.Log = def.Log
	}
	if opts.Now == nil {
		opts.Now = def.Now
	}
	return &Reloader{opts: opts, trigger: make(chan struct{}, 1)}
}

// Gate returns the gate that serves now (nil before the first successful load).
func (r *Reloader) Gate() *Gate { return r.current.Load() }

// Status returns the reload status.
func (r *Reloader) Status() ReloadStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Reload snapshots the sources and, when any changed, builds and swaps in a new gate.
// It returns whether a new gate serves, and the error when a changed set did not load
// (the previous gate keeps serving).
func (r *Reloader) Reload(ctx context.Context) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	snaps := make([]*Snapshot, 0, len(r.opts.Sources))
	versions := make([]string, 0, len(r.opts.Sources))
	for _, s := range r.opts.Sources {
		snap, err := s.Snapshot(ctx)
		if err != nil {
			loadErrorsTotal.WithLabelValues(s.String()).Inc()
			return false, r.failed(err)
		}
		snaps = append(snaps, snap)
		versions = append(versions, snap.Version)
	}
	if r.current.Load() != nil && slices.Equal(versions, r.versions) {
		return false, nil
	}
	r.status.LastAttempt = r.opts.Now()
	gate, err := Build(r.opts.Gate, snaps)
	if err != nil {
		loadErrorsTotal.WithLabelValues("policies").Inc()
		r.versions = versions // the same broken content is not rebuilt on every poll
		return false, r.failed(err)
	}
	version := strings.Join(append([]string{"builtin"}, versions...), "+")
	if r.opts.Gate.NoBuiltin {
		version = strings.Join(versions, "+")
	}
	g := NewGate(gate, version, r.opts.Now())
	r.current.Store(g)
	r.versions = versions
	r.status.Reloads++
	r.status.LastError = ""
	r.status.Version, r.status.Policies, r.status.Loaded = g.Version, g.Policies(), g.Loaded
	reloadsTotal.WithLabelValues("success").Inc()
	lastReloadOK.Set(1)
	policiesLoaded.Set(float64(g.Policies()))
	for _, w := range gate.Warnings {
		r.opts.Log.Info("policy set warning", "warning", w)
	}
	r.opts.Log.Info("policy set loaded", "version", g.Version, "policies", g.Policies())
	return true, nil
}

func (r *Reloader) failed(err error) error {
	r.status.Reloads++
	r.status.Failures++
	r.status.LastAttempt = r.opts.Now()
	r.status.LastError = err.Error()
	reloadsTotal.WithLabelValues("error").Inc()
	lastReloadOK.Set(0)
	if r.current.Load() != nil {
		r.opts.Log.Error(err, "policy reload failed; the last good policy set keeps serving", "version", r.status.Version)
	} else {
		r.opts.Log.Error(err, "policy load failed; not ready until the policies load")
	}
	return err
}

// Build makes a gate from the command line's options and the source snapshots.
func Build(base policy.GateOptions, snaps []*Snapshot) (*policy.Gate, error) {
	// The snapshots' .gitgate.yaml files as one: registries and actions joined, noBuiltin
	// from any, the first values file. Then the one rule check uses, with the command
	// line on top (policy.Config.GateOptions): actions: apply here as in check.
	merged := &policy.Config{Actions: map[string]policy.ActionOverride{}}
	opts := base
	opts.PolicyDirs = append([]policy.Source{}, base.PolicyDirs...)
	for _, s := range snaps {
		opts.PolicyDirs = append(opts.PolicyDirs, policy.Source{FS: s.Policies, Root: ".", Display: s.Display})
		if s.Config == nil {
			continue
		}
		merged.Registries = append(merged.Registries, s.Config.Registries...)
		merged.NoBuiltin = merged.NoBuiltin || s.Config.NoBuiltin
		for k, v := range s.Config.Actions {
			merged.Actions[k] = v
		}
		if opts.Values == nil {
			opts.Values = s.Values
		}
	}
	return policy.OpenGate(merged.GateOptions(opts))
}

// Trigger asks for a reload soon (a watched file changed).
func (r *Reloader) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Start follows changes until ctx ends: a poll every Interval, and at once when a watched
// directory changes. It implements controller-runtime's manager.Runnable.
func (r *Reloader) Start(ctx context.Context) error {
	if r.current.Load() == nil {
		_, _ = r.Reload(ctx) // logged and counted; retried below
	}
	var dirs []string
	for _, s := range r.opts.Sources {
		switch s := s.(type) {
		case DirSource:
			dirs = append(dirs, s.Path)
		case interface{ WatchPaths() []string }:
			dirs = append(dirs, s.WatchPaths()...)
		}
	}
	if len(dirs) > 0 {
		if err := r.watch(ctx, dirs); err != nil {
			r.opts.Log.Error(err, "cannot watch policy directories; polling only", "interval", r.opts.Interval)
		}
	}
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-r.trigger:
			// let a burst of events (a ConfigMap update is several) settle
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
		}
		_, _ = r.Reload(ctx)
	}
}

// NeedLeaderElection: every replica keeps its own gate.
func (r *Reloader) NeedLeaderElection() bool { return false }

// watch triggers a reload on any change in the directories (and their subdirectories,
// which a ConfigMap volume's symlink swap replaces as a whole).
func (r *Reloader) watch(ctx context.Context, dirs []string) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range dirs {
		st, err := os.Stat(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !st.IsDir() {
			d = filepath.Dir(d)
		}
		if err := w.Add(d); err != nil {
			errs = append(errs, fmt.Errorf("watch %s: %w", d, err))
		}
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				_ = w.Add(filepath.Join(d, e.Name()))
			}
		}
	}
	go func() {
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Has(fsnotify.Create) {
					if st, err := os.Stat(ev.Name); err == nil && st.IsDir() && !strings.HasPrefix(filepath.Base(ev.Name), ".") {
						_ = w.Add(ev.Name)
					}
				}
				r.Trigger()
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				r.opts.Log.Error(err, "policy directory watch error")
			}
		}
	}()
	return errors.Join(errs...)
}

// Check is the readiness check of the policy set: an error until a set has loaded.
// After a failed reload it stays ready (the last good set serves) and Detail says why.
func (r *Reloader) Check(_ *http.Request) error {
	if r.current.Load() == nil {
		st := r.Status()
		if st.LastError != "" {
			return fmt.Errorf("no policy set loaded: %s", st.LastError)
		}
		return errors.New("no policy set loaded yet")
	}
	return nil
}

// Detail is one line about the serving set and the last reload, for /readyz.
func (r *Reloader) Detail() string {
	st := r.Status()
	if r.current.Load() == nil {
		return "policies: none loaded"
	}
	s := fmt.Sprintf("policies: %d loaded, version %s, since %s", st.Policies, st.Version, st.Loaded.UTC().Format(time.RFC3339))
	if st.LastError != "" {
		// The error text (paths, parse errors, URLs) goes to the log and Status, not here:
		// Detail is served on the probe port.
		s += fmt.Sprintf("; last reload at %s failed (the reason is in the log), the last good set keeps serving", st.LastAttempt.UTC().Format(time.RFC3339))
	}
	return s
}
