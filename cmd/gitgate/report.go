package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gitgate/gitgate/reconcile"
	"github.com/gitgate/gitgate/report"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// reportOptions are gitgate report's flags.
type reportOptions struct {
	gate         gateFlags
	source       sourceFlags
	cluster      clusterFlags
	outputs      []string
	policyReport bool
	noCache      bool
}

// reportClock, when set (tests), is the report's clock.
var reportClock func() time.Time

func (o *reportOptions) BindFlags(fs *pflag.FlagSet) {
	o.gate.BindFlags(fs)
	o.source.BindFlags(fs)
	o.cluster.BindFlags(fs)
	fs.StringArrayVarP(&o.outputs, "output", "o", nil, "report format, repeatable: FORMAT on stdout or FORMAT=FILE (written atomically); formats: "+strings.Join(report.DriftFormats().Names(), ", ")+" (default text), e.g. -o text -o html=report.html")
	fs.BoolVar(&o.policyReport, "write-policyreports", false, "create or update wgpolicyk8s.io/v1alpha2 PolicyReports (gitgate-<app>) in the cluster")
	bindNoCache(fs, &o.noCache)
}

func newReportCmd(stdout, stderr io.Writer) *cobra.Command {
	o := &reportOptions{}
	cmd := &cobra.Command{
		Use:   "report [REPO]",
		Short: "Report drift between Git and the cluster, and policy results on the live objects",
		Long: `report fetches REPO (as gitgate sync does), renders each app and compares it with the
cluster: objects missing from the cluster, extra (in the app's inventory, no longer in Git),
and modified (compared after a server-side dry-run apply of Git's object, so API defaults
are not drift; the Application's ignoreDifferences jsonPointers and managedFieldsManagers,
and --ignore-manager fields such as an HPA's replicas, do not count). The live objects are
judged by the same gate; drift that breaks a policy Git's version passes is marked.
Secret values are masked in every format.

Git's side of each app (its rendered objects, and the gate's verdict on them) comes from
the verdict cache in --cache-dir when nothing it depends on changed, under the keys
'gitgate check' uses (--no-cache: render and judge everything); the cluster's side (live
objects, dry-run applies, their policy results, drift) is computed every time.

-o FORMAT writes to stdout, -o FORMAT=FILE to a file (replaced whole, atomically);
repeatable, at most one format on stdout.

Exit codes: 0 in sync and no enforced violation on live objects, 1 drift or violations,
2 error.`,
		Example: `  gitgate report . -o text
  gitgate report https://git.example.com/platform/gitops.git --git-token-env GIT_TOKEN -o html=drift.html -o json=drift.json
  gitgate report . --app 'api-*' -o markdown --write-policyreports`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.source.src.URL = "."
			if len(args) == 1 {
				o.source.src.URL = args[0]
			}
			outs, err := report.DriftFormats().Parse(o.outputs, report.Options{})
			if err != nil {
				fmt.Fprintf(stderr, "gitgate report: %v\n", err)
				return exitCodeError{exitError}
			}
			c, _, err := o.cluster.client()
			if err != nil {
				fmt.Fprintf(stderr, "gitgate report: %v\n", err)
				return exitCodeError{exitError}
			}
			ctx := cmd.Context()
			co, err := load(ctx, &o.source, &o.gate, &o.cluster, c, stderr)
			if err != nil {
				fmt.Fprintf(stderr, "gitgate report: %v\n", err)
				return exitCodeError{exitError}
			}
			for _, n := range co.notes {
				fmt.Fprintf(stderr, "notice: %s\n", n)
			}
			opts := o.cluster.opts
			opts.Check.KubeVersion = co.kube
			opts.Check.CRDs = co.crds
			if reportClock != nil {
				opts.Now = reportClock
			}
			fleet := &reconcile.Fleet{Clusters: co.clusters, Gate: co.gate, Opts: opts}
			warn := func(w string) { fmt.Fprintf(stderr, "warning: %s\n", w) }
			vc := openVerdictCache(&checkOptions{gate: o.gate, noCache: o.noCache}, warn)
			if vc != nil {
				if run, err := runKey(vc, co.set, keyedGate(co.gate, co.repo.Dir), opts.Check); err != nil {
					warn(fmt.Sprintf("verdict cache off for this run: %v", err))
				} else {
					fleet.Cache = newReportCache(ctx, vc, run, co.repo, co.apps, opts.Workers)
				}
			}
			rep := fleet.Report(ctx, co.repo, co.rev, co.apps)
			if vc != nil {
				vc.Close()
				if _, _, _, failed := vc.Stats(); failed > 0 {
					warn(fmt.Sprintf("verdict cache: %d entries could not be stored in %s; check --cache-dir (or pass --no-cache)", failed, vc.Dir()))
				}
			}
			if o.policyReport {
				for _, err := range fleet.WritePolicyReports(ctx, rep) {
					rep.Errors = append(rep.Errors, err.Error())
				}
			}
			if err := report.Write(stdout, rep, outs); err != nil {
				fmt.Fprintf(stderr, "gitgate report: %v\n", err)
				return exitCodeError{exitError}
			}
			return exitCodeError{rep.ExitCode()}
		},
	}
	o.BindFlags(cmd.Flags())
	return cmd
}
