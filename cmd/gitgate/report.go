package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gitgate/gitgate/reconcile"
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
}

func (o *reportOptions) BindFlags(fs *pflag.FlagSet) {
	o.gate.BindFlags(fs)
	o.source.BindFlags(fs)
	o.cluster.BindFlags(fs)
	fs.StringArrayVarP(&o.outputs, "output", "o", []string{"text"}, "format["+"=FILE] ("+strings.Join(reconcile.FormatNames(), ", ")+"); repeatable, e.g. -o text -o html=report.html")
	fs.BoolVar(&o.policyReport, "write-policyreports", false, "create or update wgpolicyk8s.io/v1alpha2 PolicyReports (gitgate-<app>) in the cluster")
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
			type out struct {
				write func(io.Writer, *reconcile.DriftReport) error
				file  string
			}
			var outs []out
			for _, spec := range o.outputs {
				name, file, _ := strings.Cut(spec, "=")
				w, ok := reconcile.ReportFormats[name]
				if !ok {
					fmt.Fprintf(stderr, "gitgate report: -o %s: want one of %s\n", name, strings.Join(reconcile.FormatNames(), ", "))
					return exitCodeError{exitError}
				}
				outs = append(outs, out{w, file})
			}
			c, _, err := o.cluster.client()
			if err != nil {
				fmt.Fprintf(stderr, "gitgate report: %v\n", err)
				return exitCodeError{exitError}
			}
			ctx := cmd.Context()
			co, err := load(ctx, &o.source, &o.gate, stderr)
			if err != nil {
				fmt.Fprintf(stderr, "gitgate report: %v\n", err)
				return exitCodeError{exitError}
			}
			for _, n := range co.notes {
				fmt.Fprintf(stderr, "notice: %s\n", n)
			}
			rp := &reconcile.Reporter{Client: c, Gate: co.gate, Opts: o.cluster.opts}
			rep := rp.Report(ctx, co.repo, co.rev, co.apps)
			if o.policyReport {
				if err := reconcile.WritePolicyReports(ctx, c, reconcile.PolicyReports(rep)); err != nil {
					rep.Errors = append(rep.Errors, err.Error())
				}
			}
			for _, x := range outs {
				w := stdout
				if x.file != "" {
					f, err := os.Create(x.file)
					if err != nil {
						fmt.Fprintf(stderr, "gitgate report: %v\n", err)
						return exitCodeError{exitError}
					}
					err = x.write(f, rep)
					if cerr := f.Close(); err == nil {
						err = cerr
					}
					if err != nil {
						fmt.Fprintf(stderr, "gitgate report: write %s: %v\n", x.file, err)
						return exitCodeError{exitError}
					}
					continue
				}
				if err := x.write(w, rep); err != nil {
					fmt.Fprintf(stderr, "gitgate report: %v\n", err)
					return exitCodeError{exitError}
				}
			}
			return exitCodeError{rep.ExitCode()}
		},
	}
	o.BindFlags(cmd.Flags())
	return cmd
}
