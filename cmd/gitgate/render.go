package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/gitgate/gitgate/internal/kustomization"
	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

type repoFlags struct {
	repo        string
	maxFileSize int64
	remote      remoteFlags
}

// bindRemote binds --cache-dir, and --offline unless the command always connects.
func (f *repoFlags) bindRemote(fs *pflag.FlagSet, offline bool) {
	f.remote.bind(fs, offline)
}

func (f *repoFlags) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.repo, "repo", ".", "repository root")
	f.bindMaxFileSize(fs)
}

func (f *repoFlags) bindMaxFileSize(fs *pflag.FlagSet) {
	fs.Int64Var(&f.maxFileSize, "max-file-size", policy.DefaultMaxFileSize, "refuse files larger than this many bytes")
}

// openArg is open of the repository a command's [DIR] argument names (default ".").
func (f *repoFlags) openArg(args []string) (*settings, render.Repo, error) {
	f.repo = "."
	if len(args) == 1 {
		f.repo = args[0]
	}
	return f.open()
}

// open reads the repository's settings (.gitgate.yaml, as check reads them) and the
// repository to render.
func (f *repoFlags) open() (*settings, render.Repo, error) {
	abs, err := filepath.Abs(f.repo)
	if err != nil {
		return nil, render.Repo{}, err
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return nil, render.Repo{}, fmt.Errorf("--repo %s: not a directory", f.repo)
	}
	set, err := loadSettings(f.repo, gateFlags{remote: f.remote}, f.maxFileSize)
	if err != nil {
		return nil, render.Repo{}, err
	}
	return set, set.repo(abs), nil
}

func newTargetsCmd(stdout, stderr io.Writer) *cobra.Command {
	var output string
	var rf repoFlags
	cmd := &cobra.Command{
		Use:   "targets [DIR]",
		Short: "List the render targets of a GitOps repository",
		Long: `Targets discovers what a repository renders, with no configuration for a repository
shaped like apps/<svc>/base + overlays/<env>: every leaf kustomization (one no other
kustomization references), every Helm chart with its default values, each values-<env>.yaml
beside it and environments/<env>/<chart>/values.yaml, and the plain manifest directories and
Tekton files left over; then the Argo CD Applications and ApplicationSets, including those
that targets render (app-of-apps). This is exactly the list check, render, sync and report
use: a source several Applications deploy alike is one target naming them all (DEPLOYED BY),
and every name is unique and can be given to 'gitgate render' (as can a target's path).`,
		Example: `  gitgate targets .
  gitgate targets -o json ~/src/gitops`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set, repo, err := rf.openArg(args)
			if err != nil {
				fmt.Fprintf(stderr, "gitgate targets: %v\n", err)
				return exitCodeError{exitError}
			}
			d := render.Plan(cmd.Context(), repo, set.discover(), 0)
			for _, n := range d.Notices {
				fmt.Fprintf(stderr, "notice: %s\n", n)
			}
			for _, e := range d.Errors {
				fmt.Fprintf(stderr, "%v\n", e)
			}
			if output != "json" && output != "text" {
				fmt.Fprintf(stderr, "gitgate targets: unknown output format %q; use text or json\n", output)
				return exitCodeError{exitError}
			}
			// Each target's remote sources, resolved (from the cache when warm,
			// from it only with --offline): what its render will use.
			listed := make([]listedTarget, len(d.Targets))
			failed := len(d.Errors) > 0
			for i, t := range d.Targets {
				listed[i].Target = t
				rs, err := render.ResolveRemotes(cmd.Context(), repo, t)
				listed[i].Remotes = rs
				if err != nil {
					fmt.Fprintf(stderr, "%s: %v\n", t.Name, err)
					failed = true
				}
			}
			switch output {
			case "json":
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(listed); err != nil {
					return err
				}
			case "text":
				// A REMOTES column when a target has remote sources.
				remotes := make([]string, len(listed))
				header := "NAME\tKIND\tPATH\tVALUES\tDEPLOYED BY"
				for i, t := range listed {
					var rs []string
					for _, r := range t.Remotes {
						rs = append(rs, r.Short())
					}
					if len(rs) > 0 {
						remotes[i] = "\t" + strings.Join(rs, ",")
						header = "NAME\tKIND\tPATH\tVALUES\tDEPLOYED BY\tREMOTES"
					}
				}
				tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, header)
				for i, t := range listed {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s%s\n", t.Name, t.Kind, t.Source(), strings.Join(t.ValueFiles, ","), strings.Join(t.DeployedBy, ","), remotes[i])
				}
				tw.Flush()
			}
			printResolved(stderr, set)
			if failed {
				return exitCodeError{exitError}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	rf.bindMaxFileSize(cmd.Flags())
	rf.bindRemote(cmd.Flags(), true)
	return cmd
}

// listedTarget is a target as `targets` lists it: with its remote sources resolved.
type listedTarget struct {
	render.Target
	Remotes []policy.RemoteSource `json:"remotes,omitempty"`
}

// printResolved names on stderr the remote sources a command resolved (the version a
// chart constraint picked, the commit a ref is at).
func printResolved(w io.Writer, set *settings) {
	if set.remotes == nil {
		return
	}
	for _, r := range set.remotes.Resolved() {
		fmt.Fprintf(w, "remote: %s\n", resolutionLine(r))
	}
}

func newRenderCmd(stdout, stderr io.Writer) *cobra.Command {
	rf := &repoFlags{}
	var mutated bool
	cmd := &cobra.Command{
		Use:   "render TARGET|DIR",
		Short: "Print what a target renders to, as kustomize build or helm template would",
		Long: `Render prints a target's rendered YAML. TARGET is a name from 'gitgate targets'
(order-service/production) or a directory of the repository holding a kustomization.
Rendering is in-process; remote charts and repositories come only from what remotes.allow
in .gitgate.yaml names, through the verified cache (--offline: the cache only), and the
version or commit each resolved to is printed on stderr. With --mutated, the policies'
mutate rules are applied to every object first, as check does before it validates and as
the cluster's admission chain (gitgate serve's /mutate) would: what the API server stores.`,
		Example: `  gitgate render order-service/production
  gitgate render --mutated order-service/production
  gitgate render --repo ~/src/gitops apps/api/overlays/dev
  gitgate render --offline cert-manager`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set, repo, err := rf.open()
			if err != nil {
				fmt.Fprintf(stderr, "gitgate render: %v\n", err)
				return exitCodeError{exitError}
			}
			t, err := findTarget(cmd, set, repo, args[0])
			if err != nil {
				fmt.Fprintf(stderr, "gitgate render: %v\n", err)
				return exitCodeError{exitError}
			}
			var out []byte
			switch {
			case mutated:
				out, err = renderMutated(cmd.Context(), set, repo, t, stderr)
			case t.Kind == render.Kustomize:
				out, err = render.KustomizeYAML(cmd.Context(), repo, t)
			case t.Kind == render.Helm:
				out, err = render.HelmYAML(cmd.Context(), repo, t)
			default:
				rs, rerr := render.Render(cmd.Context(), repo, t)
				err = rerr
				for i, r := range rs {
					y, merr := yaml.Marshal(r.Object.Object)
					if merr != nil {
						err = merr
						break
					}
					if i > 0 {
						out = append(out, "---\n"...)
					}
					out = append(out, y...)
				}
			}
			printResolved(stderr, set)
			if err != nil {
				fmt.Fprintf(stderr, "gitgate render: %s: %v\n", t.Name, err)
				return exitCodeError{exitError}
			}
			_, err = stdout.Write(out)
			return err
		},
	}
	rf.BindFlags(cmd.Flags())
	rf.bindRemote(cmd.Flags(), true)
	cmd.Flags().BoolVar(&mutated, "mutated", false, "print what the cluster would store: the mutate rules of the policies check loads (the built-in bundle, policies/, .gitgate.yaml's policies:) applied")
	return cmd
}

// renderMutated renders t and applies the gate's mutate rules to every object, as
// check does before it validates and the cluster's admission chain would: the YAML
// the API server would store. A mutate rule that fails is named on stderr and the
// object is printed as far as the rules before it took it.
func renderMutated(ctx context.Context, set *settings, repo render.Repo, t render.Target, stderr io.Writer) ([]byte, error) {
	gate, err := set.openGate(stderr)
	if err != nil {
		return nil, err
	}
	rs, rerr := render.Render(ctx, repo, t)
	var out []byte
	for i, r := range rs {
		results, patched, err := gate.Mutate(ctx, r, policy.Request{})
		if err != nil {
			return nil, err
		}
		for _, m := range results {
			if m.Status == policy.StatusFail || m.Status == policy.StatusError {
				fmt.Fprintln(stderr, policy.FindingLine(m))
			}
		}
		y, err := yaml.Marshal(patched.Object)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out = append(out, "---\n"...)
		}
		out = append(out, y...)
	}
	return out, rerr
}

// findTarget resolves a target name or path (render.FindTarget), or a directory of the
// repository holding a kustomization that no target builds alone (a base).
func findTarget(cmd *cobra.Command, set *settings, repo render.Repo, arg string) (render.Target, error) {
	d := render.Plan(cmd.Context(), repo, set.discover(), 0)
	t, err := render.FindTarget(d.Targets, arg)
	if !errors.Is(err, render.ErrNoTarget) {
		return t, err
	}
	rel := filepath.ToSlash(filepath.Clean(arg))
	for _, k := range kustomization.FileNames {
		if _, err := os.Stat(filepath.Join(repo.Dir, arg, k)); err == nil {
			return render.Target{Name: rel, Kind: render.Kustomize, Path: rel}, nil
		}
	}
	return render.Target{}, err
}
