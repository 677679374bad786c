package main

import (
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sync"

	"github.com/gitgate/gitgate/internal/remote"
	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
	"github.com/spf13/cobra"
)

func newFetchCmd(stdout, stderr io.Writer) *cobra.Command {
	var rf repoFlags
	cmd := &cobra.Command{
		Use:   "fetch [DIR]",
		Short: "Fill the cache with the remote sources a repository renders from",
		Long: `Fetch renders every target of the repository once, so that every remote source it
uses — charts from Helm repositories and OCI registries, Chart.yaml dependencies, kustomize
helmCharts with a repo, Argo CD sources in other Git repositories — is resolved, verified and
stored in the cache. Only what remotes.allow in .gitgate.yaml names is fetched. It prints each
source as resolved; afterwards 'gitgate check --offline' needs no network. In CI, run it in
the cache step and keep the cache directory (--cache-dir, default $XDG_CACHE_HOME/gitgate)
between jobs.

Exit codes: 0 everything rendered, 2 a target did not (its error says why).`,
		Example: `  gitgate fetch .
  gitgate fetch --cache-dir .cache/gitgate ~/src/gitops && gitgate check --offline --cache-dir .cache/gitgate ~/src/gitops`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set, repo, err := rf.openArg(args)
			if err != nil {
				fmt.Fprintf(stderr, "gitgate fetch: %v\n", err)
				return exitCodeError{exitError}
			}
			if set.remotes == nil {
				fmt.Fprintf(stderr, "gitgate fetch: remotes.allow in %s names nothing: nothing may be fetched\n", filepath.Join(rf.repo, policy.ConfigFile))
				return nil
			}
			d := render.Plan(cmd.Context(), repo, set.discover(), 0)
			var progressFn func(done, total int)
			if isTerminal(stderr) {
				progressFn = progress(stderr, "rendered", "targets")
			}
			var mu sync.Mutex
			var errs []error
			render.RenderPlan(cmd.Context(), repo, d, 0, progressFn, func(r render.Rendered) {
				mu.Lock()
				errs = append(errs, r.Errors()...)
				mu.Unlock()
			})
			if progressFn != nil {
				fmt.Fprint(stderr, "\r\033[K")
			}
			errs = append(errs, d.Errors...)
			for _, e := range errs {
				fmt.Fprintf(stderr, "%v\n", e)
			}
			got := set.remotes.Resolved()
			for _, r := range got {
				fmt.Fprintln(stdout, resolutionLine(r))
			}
			dir := set.remotes.CacheDir()
			fmt.Fprintf(stdout, "%d remote sources in %s (%.1f MiB)\n", len(got), dir, float64(dirSize(dir))/(1<<20))
			if len(errs) > 0 {
				return exitCodeError{exitError}
			}
			return nil
		},
	}
	rf.BindFlags(cmd.Flags())
	rf.bindRemote(cmd.Flags(), false)
	return cmd
}

// resolutionLine is a resolved remote source in a few words, as check's report names it.
func resolutionLine(r remote.Resolution) string {
	s := policy.RemoteSource{URL: r.URL, Name: r.Name, Requested: r.Constraint, Resolved: r.Version, Digest: r.Digest}
	switch {
	case r.Commit != "":
		s.Kind, s.Resolved = "git", r.Commit
	case r.Name != "":
		s.Kind = "chart"
	default:
		s.Kind = "file"
	}
	line := s.String()
	if s.Digest != "" {
		line += " (" + s.Digest + ")"
	}
	return line
}

// dirSize is the size of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
