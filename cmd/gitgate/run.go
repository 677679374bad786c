package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"

	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
	"github.com/gitgate/gitgate/runner"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type runOptions struct {
	gate       gateFlags
	files      []string
	params     []string
	workspaces []string
	pipeline   string
	task       string
	name       string
	parallel   int
	gitops     []string
	record     string
	keep       bool
}

func (o *runOptions) BindFlags(fs *pflag.FlagSet) {
	o.gate.BindFlags(fs)
	fs.StringArrayVarP(&o.files, "filename", "f", nil, "Pipeline or Task file, or a directory of them (repeatable)")
	fs.StringArrayVarP(&o.params, "param", "p", nil, "pipeline param NAME=VALUE; arrays as a,b,c or JSON, objects as k:v,k:v or JSON (repeatable)")
	fs.StringArrayVarP(&o.workspaces, "workspace", "w", nil, "bind pipeline workspace NAME=DIR, a host directory (repeatable; created if missing)")
	fs.StringVar(&o.pipeline, "pipeline", "", "the Pipeline to run when the files define several")
	fs.StringVar(&o.task, "task", "", "with no Pipeline in the files: the Task to run alone")
	fs.StringVar(&o.name, "name", "", "the run's name, $(context.pipelineRun.name) (default: PIPELINE-run)")
	fs.IntVar(&o.parallel, "parallel", runtime.GOMAXPROCS(0), "tasks run at once")
	fs.StringArrayVar(&o.gitops, "gitops-workspace", nil, "workspace holding a GitOps repository: every task's change to it must pass the gate (default: bound workspaces with a .gitgate.yaml at their root)")
	fs.StringVar(&o.record, "record", "", "write the run record (a PipelineRun with its status, as JSON) to FILE")
	fs.BoolVar(&o.keep, "keep-refused-changes", false, "leave a change the gate refused in the GitOps workspace (default: undo it, so no later stage can push it)")
}

func newRunCmd(stdout, stderr io.Writer) *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run -f PIPELINE.yaml [-f TASKS...] [--param k=v]... [--workspace name=DIR]...",
		Short: "Run a Tekton pipeline locally, every stage behind the gate",
		Long: `run executes a tekton.dev/v1 Pipeline (or a lone Task) on this machine: each step is a
process on the host (its script, or its command and args), the step's image is recorded and
judged but not pulled. Tasks run in DAG order (runAfter and result references), up to
--parallel at once; finally tasks always run, even after Ctrl-C (a second Ctrl-C stops them).

Before anything runs, the Pipeline and every Task it uses pass the gate: the built-in Tekton
policies (allowed registries, non-root, no privilege escalation, no :latest) and the
repository's policies, with the same flags and .gitgate.yaml as check. An Enforce violation
refuses the run, naming the task, the step and the rule.

Between stages: a workspace holding a GitOps repository (--gitops-workspace, or any bound
workspace with a .gitgate.yaml at its root) is copied before each task that binds it; if
the task changed it, the change is rendered and checked against that copy, as check --base
does for a merge request, under the policies the workspace had before the task. A new
Enforce violation fails the task before any later task (a push) runs, and the refused
change is undone (--keep-refused-changes leaves it, for debugging).

Step output is streamed to stderr as [task/step] lines; the summary (task, status,
duration, results) goes to stdout.

Exit codes: 0 the run succeeded, 1 a task failed or was blocked (or the gate refused the
run), 2 could not run (bad input, usage).`,
		Example: `  # The seed's build-and-deploy pipeline with local stand-ins, against a GitOps checkout:
  cp -r testdata/gitops /tmp/gitops
  gitgate run -f testdata/pipelines/build-and-deploy --registry harbor.example.com \
    --param git-url=https://gitlab.example.com/apps/worker-inventory-001.git --param image-tag=3.2.7 \
    --workspace shared-workspace=/tmp/shared --workspace gitops=/tmp/gitops --record run.json

  # One Task alone, as a TaskRun:
  gitgate run -f task.yaml -p url=https://example.com/repo.git -w output=./out`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, args, stdout, stderr)
		},
	}
	o.BindFlags(cmd.Flags())
	return cmd
}

func (o *runOptions) run(cmd *cobra.Command, args []string, stdout, stderr io.Writer) error {
	fail := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "gitgate run: "+format+"\n", a...)
		return exitCodeError{exitError}
	}
	files := append(append([]string{}, o.files...), args...)
	if len(files) == 0 {
		return fail("no pipeline given; pass -f PIPELINE.yaml (and -f for the Tasks it references)")
	}
	params, err := keyValues("--param", o.params)
	if err != nil {
		return fail("%v", err)
	}
	workspaces, err := keyValues("--workspace", o.workspaces)
	if err != nil {
		return fail("%v", err)
	}
	if o.parallel < 1 {
		return fail("--parallel %d: must be at least 1", o.parallel)
	}
	input, err := runner.ReadFiles(files)
	if err != nil {
		return fail("%v", err)
	}
	bundle, err := runner.Load(input)
	if err != nil {
		return fail("%s", indentErrors(err))
	}
	for _, n := range bundle.Notices {
		fmt.Fprintf(stderr, "notice: %s\n", n)
	}
	plan, err := bundle.Plan(runner.PlanOptions{Pipeline: o.pipeline, Task: o.task, Params: params, Workspaces: workspaces, RunName: o.name})
	if err != nil {
		return fail("%s", indentErrors(err))
	}

	// The gate before anything runs: the Pipeline and every Task it uses, once each.
	set, err := loadSettings(".", o.gate, 0)
	var gate *policy.Gate
	if err == nil {
		gate, err = set.openGate(stderr)
	}
	if err != nil {
		return fail("%v", err)
	}
	opts := set.checkOptions()
	rep := gate.CheckResources(cmd.Context(), plan.Resources, opts)
	gateRec := &runner.GateRecord{Blocking: rep.Blocking()}
	for _, r := range rep.Results {
		if !r.Finding() {
			continue
		}
		gateRec.Findings = append(gateRec.Findings, r)
		fmt.Fprintln(stderr, plan.Describe(r))
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(stderr, "%v\n", e)
	}
	if len(rep.Errors) > 0 {
		return fail("the gate could not check the pipeline")
	}
	if rep.Blocking() {
		fmt.Fprintf(stderr, "gitgate run: refused: %d Enforce violation(s) in the pipeline's tasks; nothing ran (fix them, or add a PolicyException)\n", rep.Summary.Blocking)
		if o.record != "" {
			if err := writeRefusedRecord(o.record, plan, gateRec); err != nil {
				return fail("%v", err)
			}
		}
		return exitCodeError{exitViolations}
	}

	// Ctrl-C cancels the run's context (main's NotifyContext): the steps are killed and
	// finally runs. A second Ctrl-C stops finally too.
	kill := make(chan struct{})
	stopSignals := secondInterrupt(cmd.Context(), kill)
	defer stopSignals()
	ropts := runner.DefaultOptions()
	ropts.Parallel = o.parallel
	ropts.Log = stderr
	ropts.GitOpsWorkspaces = o.gitops
	ropts.Kill = kill
	ropts.ChangeGate = o.changeGate()
	ropts.KeepRefusedChanges = o.keep
	rec, err := runner.Run(cmd.Context(), plan, ropts)
	if err != nil {
		return fail("%v", err)
	}
	rec.Status.Gate = gateRec
	if err := runner.WriteSummary(stdout, rec); err != nil {
		return err
	}
	if o.record != "" {
		if err := writeRecord(o.record, rec); err != nil {
			return fail("%v", err)
		}
	}
	if !rec.Succeeded() {
		return exitCodeError{exitViolations}
	}
	return nil
}

// secondInterrupt closes kill on an interrupt that arrives after ctx was cancelled
// (the first Ctrl-C). The returned func stops listening.
func secondInterrupt(ctx context.Context, kill chan struct{}) func() {
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sig)
		select {
		case <-sig:
			close(kill)
		case <-done:
		}
	}()
	return func() { close(done) }
}

// changeGate is the gate between stages: render.Compare of the workspace before the
// task (base) and after it (head), both judged by the policies the workspace had
// before the task, so a task cannot loosen the gate by editing policies/ or
// .gitgate.yaml. Flags (--policies, --registry, ...) win as in check.
func (o *runOptions) changeGate() runner.ChangeGate {
	return func(ctx context.Context, before, after string) (*policy.Report, error) {
		set, err := loadSettings(before, o.gate, 0)
		var gate *policy.Gate
		if err == nil {
			gate, err = set.openGate(io.Discard)
		}
		if err != nil {
			return nil, fmt.Errorf("the GitOps workspace's policies: %w", err)
		}
		opts := set.checkOptions()
		base, head := set.repo(before), set.repo(after)
		rep := render.Compare(ctx, base, head, render.CompareOptions{
			Discover: set.discover(),
			Workers:  opts.Workers,
			Check:    opts,
			BaseGate: gate,
			HeadGate: gate,
		})
		if rep.Changes != nil {
			rep.Changes.Base = "the workspace before the task"
		}
		display := after
		if wd, err := os.Getwd(); err == nil {
			if rel, err := filepath.Rel(wd, after); err == nil && !strings.HasPrefix(rel, "..") {
				display = rel
			}
		}
		display = filepath.ToSlash(display)
		show := shownFrom(display)
		showResults(rep.Results, show)
		for _, e := range rep.Errors {
			var ie *policy.InputError
			if errors.As(e, &ie) {
				ie.Origin.File = show(ie.Origin.File)
			}
		}
		return rep, nil
	}
}

// keyValues parses repeated NAME=VALUE flags.
func keyValues(flag string, list []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q: want NAME=VALUE", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}

// indentErrors prints joined errors one per line.
func indentErrors(err error) string {
	lines := strings.Split(err.Error(), "\n")
	if len(lines) == 1 {
		return lines[0]
	}
	sort.Strings(lines)
	return fmt.Sprintf("%d problems, nothing ran:\n  %s", len(lines), strings.Join(lines, "\n  "))
}

func writeRecord(file string, rec *runner.Record) error {
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("--record: %w", err)
	}
	if err := runner.WriteRecord(f, rec); err != nil {
		f.Close()
		return fmt.Errorf("--record %s: %w", file, err)
	}
	return f.Close()
}

// writeRefusedRecord records a run the gate refused: nothing ran.
func writeRefusedRecord(file string, plan *runner.Plan, gateRec *runner.GateRecord) error {
	rec := plan.Refused(gateRec)
	return writeRecord(file, rec)
}
