package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/gitgate/gitgate/policy"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type checkOptions struct {
	gate        gateFlags
	output      string
	maxFileSize int64
	workers     int
	noSchema    bool
}

func (o *checkOptions) BindFlags(fs *pflag.FlagSet) {
	o.gate.BindFlags(fs)
	def := policy.DefaultCheckOptions()
	fs.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	fs.Int64Var(&o.maxFileSize, "max-file-size", def.MaxFileSize, "refuse manifest files larger than this many bytes")
	fs.IntVar(&o.workers, "workers", def.Workers, "files evaluated in parallel")
	fs.BoolVar(&o.noSchema, "no-schema", false, "skip the strict schema check of built-in kinds")
}

func newCheckCmd(stdout, stderr io.Writer) *cobra.Command {
	o := &checkOptions{}
	cmd := &cobra.Command{
		Use:   "check [PATH...]",
		Short: "Check manifests against the policies (pre-commit and CI)",
		Long: `Check decodes every Kubernetes manifest under the given files and directories
(default: the current directory), checks built-in kinds strictly against their schema, and
evaluates them with Kyverno's engine against the built-in policy bundle plus the policies/
directory of the first path, if present.

Each finding prints as file:line:col: Kind/namespace/name: policy/rule: message.
Audit findings are warnings; Enforce findings fail the check.

Exit codes: 0 clean, 1 enforced violations, 2 could not check.`,
		Example: `  gitgate check .
  gitgate check --registry harbor.example.com apps/ infrastructure/
  gitgate check --policies my-policies/ --no-builtin -o json deploy.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, args, stdout, stderr)
		},
	}
	o.BindFlags(cmd.Flags())
	return cmd
}

func (o *checkOptions) run(cmd *cobra.Command, args []string, stdout, stderr io.Writer) error {
	w, ok := policy.Formats[o.output]
	if !ok {
		fmt.Fprintf(stderr, "gitgate check: unknown output format %q; use text or json\n", o.output)
		return exitCodeError{exitError}
	}
	if len(args) == 0 {
		args = []string{"."}
	}
	tuneGC()
	gate, policyDirs, err := o.gate.open(args[0], stderr)
	if err != nil {
		fmt.Fprintf(stderr, "gitgate check: %v\n", err)
		return exitCodeError{exitError}
	}
	opts := policy.DefaultCheckOptions()
	opts.MaxFileSize = o.maxFileSize
	opts.Workers = o.workers
	opts.Schema = !o.noSchema
	opts.Exclude = policyDirs
	if isTerminal(stderr) {
		opts.Progress = progress(stderr)
	}
	var sources []policy.Source
	for _, a := range args {
		sources = append(sources, osSource(a))
	}
	rep := gate.Check(cmd.Context(), sources, opts)
	rep.Notices = append(append([]string{}, gate.Warnings...), rep.Notices...) // in the JSON report too
	if opts.Progress != nil {
		fmt.Fprint(stderr, "\r\033[K")
	}
	for _, n := range rep.Notices[len(gate.Warnings):] { // the warnings were printed when the gate opened
		fmt.Fprintf(stderr, "notice: %s\n", n)
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(stderr, "%v\n", e)
	}
	if rep.Summary.Resources == 0 && len(rep.Errors) == 0 {
		fmt.Fprintf(stderr, "gitgate check: no resources found in %s\n", strings.Join(args, " "))
		return nil
	}
	if err := w.Write(stdout, rep); err != nil {
		return err
	}
	switch {
	case len(rep.Errors) > 0:
		return exitCodeError{exitError}
	case rep.Blocking():
		return exitCodeError{exitViolations}
	}
	return nil
}

// progress draws "checked N/M files" on a terminal, at most every 1%.
func progress(w io.Writer) func(done, total int) {
	var mu sync.Mutex
	last := -1
	return func(done, total int) {
		mu.Lock()
		defer mu.Unlock()
		pct := done * 100 / max(total, 1)
		if pct == last {
			return
		}
		last = pct
		fmt.Fprintf(w, "\rchecked %d/%d files (%d%%)", done, total, pct)
	}
}

// tuneGC trades memory for speed in a short-lived check: evaluation allocates heavily
// but keeps little (files are streamed), so the collector can run far less often. A soft
// limit keeps the heap bounded on huge inputs. GOGC and GOMEMLIMIT still win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(800)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(512 << 20)
	}
}
