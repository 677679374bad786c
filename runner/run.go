package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/policy"
)

// ChangeGate judges a task's change to the GitOps workspace: before is a copy of the
// workspace taken before the task ran, after is the workspace itself. A report that is
// Blocking (in merge-request form, with Changes set: a new Enforce finding) fails the
// task before any later task runs. An error means the change could not be judged, and
// fails the task too.
type ChangeGate func(ctx context.Context, before, after string) (*policy.Report, error)

// Options configure a run. Start from DefaultOptions.
type Options struct {
	// Parallel is how many tasks run at once; default: GOMAXPROCS.
	Parallel int
	// Log receives the steps' output, each line prefixed with [task/step], and the
	// runner's own notes ([task] ...).
	Log io.Writer
	// ChangeGate, when set, judges every change a task makes to a GitOps workspace.
	ChangeGate ChangeGate
	// KeepRefusedChanges leaves a change the gate refused in the workspace (for
	// debugging); by default it is undone so no later stage, finally included, sees it.
	KeepRefusedChanges bool
	// GitOpsWorkspaces name the pipeline workspaces that hold a GitOps repository.
	// With none, a bound workspace with a .gitgate.yaml at its root is one.
	GitOpsWorkspaces []string
	// ScratchDir holds the run's scripts, results and snapshots (a fresh directory
	// under it, removed afterwards); default: the system temp dir.
	ScratchDir string
	// Kill, when closed, cancels the finally tasks too (a second Ctrl-C). Cancelling
	// Run's context stops the tasks and still runs finally.
	Kill <-chan struct{}
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// DefaultOptions runs GOMAXPROCS tasks at once and discards the log.
func DefaultOptions() Options {
	return Options{Parallel: runtime.GOMAXPROCS(0), Log: io.Discard, Now: time.Now}
}

// runner is one run in progress.
type runner struct {
	plan    *Plan
	opts    Options
	log     *lockedWriter
	scratch string
	gitops  map[string]bool // pipeline workspace names holding a GitOps repo

	mu sync.Mutex // guards pv and rec
	pv *vars
	// gitopsMu serialises the tasks that bind a GitOps workspace, from the snapshot
	// to the gate's verdict, so each change is judged alone.
	gitopsMu sync.Mutex
	rec      *Record
}

// Run executes the plan: tasks in DAG order, up to Parallel at once, then finally. It
// returns the record of the run; an error means the run could not start (a scratch
// directory, a bad GitOps workspace name). A failed task is a record whose status is
// Failed, not an error.
func Run(ctx context.Context, plan *Plan, opts Options) (*Record, error) {
	def := DefaultOptions()
	if opts.Parallel <= 0 {
		opts.Parallel = def.Parallel
	}
	if opts.Log == nil {
		opts.Log = def.Log
	}
	if opts.Now == nil {
		opts.Now = def.Now
	}
	r := &runner{plan: plan, opts: opts, log: &lockedWriter{w: opts.Log}, gitops: map[string]bool{}}
	for _, name := range opts.GitOpsWorkspaces {
		if _, ok := plan.Workspaces[name]; !ok {
			return nil, fmt.Errorf("--gitops-workspace %s: no bound workspace %s (bound: %s)", name, name, names(plan.Workspaces))
		}
		r.gitops[name] = true
	}
	if len(opts.GitOpsWorkspaces) == 0 {
		for name, dir := range plan.Workspaces {
			if _, err := os.Stat(filepath.Join(dir, policy.ConfigFile)); err == nil {
				r.gitops[name] = true
			}
		}
	}
	for _, name := range sortedKeys(plan.Workspaces) {
		if err := os.MkdirAll(plan.Workspaces[name], 0o777); err != nil {
			return nil, fmt.Errorf("workspace %s: %w", name, err)
		}
	}
	scratch, err := os.MkdirTemp(opts.ScratchDir, "gitgate-run-")
	if err != nil {
		return nil, fmt.Errorf("create the run's scratch directory: %w", err)
	}
	defer os.RemoveAll(scratch)
	r.scratch = scratch
	r.pv = plan.pipelineVars(false)
	r.rec = r.newRecord()
	if len(r.gitops) > 0 && opts.ChangeGate != nil {
		r.note(plan.RunName, "GitOps workspace %s: every task's change to it must pass the gate", strings.Join(r.gitopsNames(), ", "))
	}
	r.runTasks(ctx)
	r.runFinally(ctx)
	r.finish(ctx)
	return r.rec, nil
}

// gitopsNames lists the workspaces the run treats as GitOps repositories.
func (r *runner) gitopsNames() []string { return sortedKeys(r.gitops) }

func (r *runner) newRecord() *Record {
	p := r.plan
	rec := &Record{
		APIVersion: APIVersion,
		Kind:       "PipelineRun",
		Metadata:   RecordMetadata{Name: p.RunName, Namespace: p.Namespace},
		Status: RunStatus{
			StartTime: r.opts.Now(),
			TaskRuns:  map[string]*TaskRun{},
		},
	}
	if !p.synthetic {
		rec.Spec.PipelineRef = &TaskRef{Name: p.Pipeline.Name}
	}
	spec := p.Pipeline.Spec
	rec.Status.PipelineSpec = &spec
	for _, k := range sortedKeys(p.Params) {
		rec.Spec.Params = append(rec.Spec.Params, Param{Name: k, Value: p.Params[k]})
	}
	for _, k := range sortedKeys(p.Workspaces) {
		rec.Spec.Workspaces = append(rec.Spec.Workspaces, RecordWorkspace{Name: k, HostPath: p.Workspaces[k]})
	}
	rec.Status.Conditions = []Condition{{Type: "Succeeded", Status: "Unknown", Reason: "Running", LastTransitionTime: rec.Status.StartTime}}
	return rec
}

type taskState int

const (
	pending taskState = iota
	running
	done
)

// outcome is a finished task, as the scheduler sees it.
type outcome struct {
	task *PlannedTask
	run  *TaskRun
}

// runTasks runs the DAG. When a task fails (or the context is cancelled) no new task
// starts, as Tekton's "PipelineRun stopping": running tasks finish, the rest are
// skipped.
func (r *runner) runTasks(ctx context.Context) {
	r.schedule(ctx, r.plan.Tasks, false)
}

// runFinally runs the finally tasks, even after a failure or a cancellation: under a
// context that only Options.Kill cancels.
func (r *runner) runFinally(ctx context.Context) {
	if len(r.plan.Finally) == 0 {
		return
	}
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	if r.opts.Kill != nil {
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			select {
			case <-r.opts.Kill:
				cancel()
			case <-stop:
			}
		}()
	}
	r.mu.Lock()
	r.pv.finally = true
	r.pv.tasksStatus = r.aggregateStatus()
	r.mu.Unlock()
	r.schedule(fctx, r.plan.Finally, true)
}

// aggregateStatus is $(tasks.status): Failed when a task failed, Completed when some
// were skipped, else Succeeded. Callers hold r.mu.
func (r *runner) aggregateStatus() string {
	status := "Succeeded"
	for _, t := range r.plan.Tasks {
		tr, ok := r.rec.Status.TaskRuns[t.Name]
		if !ok {
			status = "Completed"
			continue
		}
		if taskStatus(tr) != StatusSucceeded {
			return "Failed"
		}
	}
	return status
}

func (r *runner) schedule(ctx context.Context, tasks []*PlannedTask, finally bool) {
	state := map[string]taskState{}
	for _, t := range tasks {
		state[t.Name] = pending
	}
	isDone := func(name string) bool {
		s, ok := state[name]
		return !ok || s == done // a finally task's deps are all main tasks, done by now
	}
	results := make(chan outcome)
	inflight := 0
	stopping := false
	for {
		for progressed := true; progressed; {
			progressed = false
			for _, t := range tasks {
				if state[t.Name] != pending {
					continue
				}
				ready := true
				for _, d := range t.Deps {
					if !isDone(d) {
						ready = false
						break
					}
				}
				if !ready {
					continue
				}
				if !finally && (stopping || ctx.Err() != nil) {
					reason := "PipelineRun was stopping"
					if ctx.Err() != nil {
						reason = "PipelineRun was cancelled"
					}
					r.skip(t, reason, nil)
					state[t.Name] = done
					progressed = true
					continue
				}
				if inflight >= r.opts.Parallel {
					continue
				}
				params, skipReason, err := r.prepare(t)
				switch {
				case skipReason != "":
					r.skip(t, skipReason, t.When)
					state[t.Name] = done
					progressed = true
					continue
				case err != nil:
					r.record(t, r.failedRun(t, "InvalidParamValue", err.Error()))
					state[t.Name] = done
					stopping = true
					progressed = true
					continue
				}
				state[t.Name] = running
				inflight++
				progressed = true
				go func(t *PlannedTask, params map[string]ParamValue, pv *vars) {
					results <- outcome{task: t, run: r.runTask(ctx, t, params, pv)}
				}(t, params, r.frozenVars())
			}
		}
		if inflight == 0 {
			return
		}
		o := <-results
		inflight--
		state[o.task.Name] = done
		r.record(o.task, o.run)
		if taskStatus(o.run) != StatusSucceeded {
			stopping = true
		}
	}
}

// frozenVars is a copy of the pipeline scope for a task's goroutine: embedded specs
// resolve $(tasks...) and propagated params from it while other tasks finish.
func (r *runner) frozenVars() *vars {
	r.mu.Lock()
	defer r.mu.Unlock()
	cp := *r.pv
	cp.tasks = map[string]*taskVars{}
	for k, tv := range r.pv.tasks {
		c := *tv
		c.values = map[string]ParamValue{}
		for rk, rv := range tv.values {
			c.values[rk] = rv
		}
		cp.tasks[k] = &c
	}
	cp.used = nil
	return &cp
}

// prepare evaluates a task's when expressions and params in pipeline scope. A missing
// result skips the task ("Results were missing"), as Tekton does.
func (r *runner) prepare(t *PlannedTask) (map[string]ParamValue, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pv := r.pv
	pv.finally = t.Finally
	for _, w := range t.When {
		in, err := substitute(w.Input, pv.resolve)
		if err != nil {
			return skipOrErr(err)
		}
		vals, err := substituteList(w.Values, pv.resolve, pv.array)
		if err != nil {
			return skipOrErr(err)
		}
		found := false
		for _, v := range vals {
			if v == in {
				found = true
			}
		}
		if found != (w.Operator == "in") {
			return nil, "When Expressions evaluated to false", nil
		}
	}
	params := map[string]ParamValue{}
	for _, ps := range t.Spec.Params {
		if ps.Default != nil {
			d := *ps.Default
			if d.Type == "" {
				d.Type = declaredType(ps)
			}
			params[ps.Name] = d
		}
	}
	for _, p := range t.Params {
		v, err := pv.value(p.Value)
		if err != nil {
			return skipOrErr(fmt.Errorf("param %s: %w", p.Name, err))
		}
		params[p.Name] = v
	}
	for _, ps := range t.Spec.Params {
		if err := checkEnum(ps, params[ps.Name]); err != nil {
			return nil, "", fmt.Errorf("param %s: %w", ps.Name, err)
		}
	}
	return params, "", nil
}

func skipOrErr(err error) (map[string]ParamValue, string, error) {
	var mr *missingResultError
	if errors.As(err, &mr) {
		return nil, "Results were missing: " + mr.Error(), nil
	}
	return nil, "", err
}

func (r *runner) skip(t *PlannedTask, reason string, when []WhenExpression) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rec.Status.SkippedTasks = append(r.rec.Status.SkippedTasks, SkippedTask{Name: t.Name, Reason: reason, WhenExpressions: when})
	r.rec.order = append(r.rec.order, row{name: t.Name, finally: t.Finally, skipped: reason})
	if tv := r.pv.tasks[t.Name]; tv != nil {
		tv.skipped = reason
	}
	r.note(t.Name, "skipped: %s", reason)
}

func (r *runner) note(task, format string, args ...any) {
	r.log.writeLine("["+task+"] ", []byte(fmt.Sprintf(format, args...)))
}

func (r *runner) failedRun(t *PlannedTask, reason, msg string) *TaskRun {
	now := r.opts.Now()
	tr := r.newTaskRun(t)
	tr.Status.StartTime, tr.Status.CompletionTime = &now, &now
	tr.Status.Conditions = []Condition{{Type: "Succeeded", Status: "False", Reason: reason, Message: msg, LastTransitionTime: now}}
	r.note(t.Name, "failed: %s", msg)
	return tr
}

func (r *runner) newTaskRun(t *PlannedTask) *TaskRun {
	return &TaskRun{Name: r.plan.RunName + "-" + t.Name, PipelineTaskName: t.Name, TaskRef: t.TaskName, Finally: t.Finally}
}

// record stores a finished task and publishes its results and status.
func (r *runner) record(t *PlannedTask, tr *TaskRun) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rec.Status.TaskRuns[t.Name] = tr
	r.rec.order = append(r.rec.order, row{name: t.Name, finally: t.Finally})
	r.rec.Status.ChildReferences = append(r.rec.Status.ChildReferences, ChildReference{APIVersion: APIVersion, Kind: "TaskRun", Name: tr.Name, PipelineTaskName: t.Name})
	tv := r.pv.tasks[t.Name]
	if tv == nil {
		return
	}
	switch taskStatus(tr) {
	case StatusSucceeded:
		tv.status = "Succeeded"
	default:
		tv.status = "Failed"
	}
	for _, res := range tr.Status.Results {
		tv.values[res.Name] = res.Value
	}
}

// finish computes the run's condition and the pipeline results.
func (r *runner) finish(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.rec
	now := r.opts.Now()
	rec.Status.CompletionTime = now
	var failed, cancelled, succeeded int
	for _, tr := range rec.Status.TaskRuns {
		switch taskStatus(tr) {
		case StatusSucceeded:
			succeeded++
		case StatusCancelled:
			cancelled++
		default:
			failed++
		}
	}
	skipped := len(rec.Status.SkippedTasks)
	msg := fmt.Sprintf("Tasks Completed: %d (Failed: %d, Cancelled %d), Skipped: %d", succeeded+failed+cancelled, failed, cancelled, skipped)
	cond := Condition{Type: "Succeeded", Status: "True", Reason: "Succeeded", Message: msg, LastTransitionTime: now}
	switch {
	case ctx.Err() != nil:
		cond.Status, cond.Reason = "False", "Cancelled"
		cond.Message = "PipelineRun cancelled; finally tasks ran. " + msg
	case failed+cancelled > 0:
		cond.Status, cond.Reason = "False", "Failed"
	case skipped > 0:
		cond.Reason = "Completed"
	}
	rec.Status.Conditions = []Condition{cond}
	if cond.Status == "True" {
		r.pv.finally = true
		for _, pr := range r.plan.Pipeline.Spec.Results {
			v, err := r.pv.value(pr.Value)
			if err != nil {
				continue // a result of a skipped task: left out, as Tekton does
			}
			rec.Status.Results = append(rec.Status.Results, RunResult{Name: pr.Name, Value: v})
		}
	}
	sort.Slice(rec.Status.ChildReferences, func(i, j int) bool { return rec.Status.ChildReferences[i].Name < rec.Status.ChildReferences[j].Name })
}

// runTask runs a task's attempts (1 + retries), each under the task's timeout, and
// then, if it changed a GitOps workspace, the change gate.
func (r *runner) runTask(ctx context.Context, t *PlannedTask, params map[string]ParamValue, pv *vars) *TaskRun {
	tr := r.newTaskRun(t)
	start := r.opts.Now()
	tr.Status.StartTime = &start
	tr.Status.Params = map[string]string{}
	for k, v := range params {
		tr.Status.Params[k] = v.String()
	}
	snaps, release, err := r.snapshotGitOps(t)
	if err != nil {
		return r.failedRun(t, "SnapshotFailed", err.Error())
	}
	defer release()
	var st TaskRunStatus
	for attempt := 0; ; attempt++ {
		st = r.attempt(ctx, t, params, pv, attempt)
		if st.Conditions[0].Status == "True" || ctx.Err() != nil || attempt >= t.Retries {
			break
		}
		r.note(t.Name, "attempt %d of %d failed (%s); retrying", attempt+1, t.Retries+1, st.Conditions[0].Message)
		tr.Status.RetriesStatus = append(tr.Status.RetriesStatus, st)
	}
	retries := tr.Status.RetriesStatus
	tr.Status = st
	tr.Status.RetriesStatus = retries
	tr.Status.StartTime = &start
	tr.Status.Params = map[string]string{}
	for k, v := range params {
		tr.Status.Params[k] = v.String()
	}
	r.gateChanges(ctx, t, tr, snaps)
	end := r.opts.Now()
	tr.Status.CompletionTime = &end
	tr.Status.Conditions[0].LastTransitionTime = end
	if c := tr.Status.Conditions[0]; c.Status != "True" && c.Reason != "Blocked" {
		r.note(t.Name, "%s: %s", c.Reason, c.Message)
	}
	return tr
}

// bindings are a task's workspaces: Task workspace name -> host dir ("" unbound) and
// the pipeline workspace it binds.
func (r *runner) bindings(t *PlannedTask) map[string][2]string {
	out := map[string][2]string{}
	for _, b := range t.Workspaces {
		target := b.Workspace
		if target == "" {
			target = b.Name
		}
		dir, ok := r.plan.Workspaces[target]
		if !ok {
			out[b.Name] = [2]string{"", target}
			continue
		}
		if b.SubPath != "" {
			dir = filepath.Join(dir, b.SubPath)
		}
		out[b.Name] = [2]string{dir, target}
	}
	return out
}

// attempt runs the steps once, in a fresh results directory.
func (r *runner) attempt(ctx context.Context, t *PlannedTask, params map[string]ParamValue, pv *vars, attempt int) TaskRunStatus {
	start := r.opts.Now()
	st := TaskRunStatus{StartTime: &start}
	dir := filepath.Join(r.scratch, t.Name, strconv.Itoa(attempt))
	resultsDir := filepath.Join(dir, "results")
	fail := func(reason, msg string) TaskRunStatus {
		now := r.opts.Now()
		st.CompletionTime = &now
		st.Conditions = []Condition{{Type: "Succeeded", Status: "False", Reason: reason, Message: msg, LastTransitionTime: now}}
		return st
	}
	for _, d := range []string{resultsDir, filepath.Join(dir, "scripts"), filepath.Join(dir, "work")} {
		if err := os.MkdirAll(d, 0o777); err != nil {
			return fail("TaskRunFailed", err.Error())
		}
	}
	tv := r.plan.taskVars(t, params, pv, false)
	tv.context["task.retry-count"] = strconv.Itoa(attempt)
	for name := range tv.results {
		tv.results[name] = filepath.Join(resultsDir, name)
	}
	binds := r.bindings(t)
	for _, w := range t.Spec.Workspaces {
		b, ok := binds[w.Name]
		if !ok || b[0] == "" {
			tv.workspaces[w.Name] = wsVar{}
			continue
		}
		if err := os.MkdirAll(b[0], 0o777); err != nil {
			return fail("TaskRunFailed", fmt.Sprintf("workspace %s: %v", w.Name, err))
		}
		tv.workspaces[w.Name] = wsVar{path: b[0], bound: true}
	}
	tctx := ctx
	if t.Timeout != nil && t.Timeout.Duration > 0 {
		var cancel context.CancelFunc
		tctx, cancel = context.WithTimeout(ctx, t.Timeout.Duration)
		defer cancel()
	}
	var failed *Condition
	for i, s := range t.Spec.Steps {
		if failed != nil || tctx.Err() != nil {
			st.Steps = append(st.Steps, StepState{Name: s.Name, Container: "step-" + s.Name, Image: s.Image,
				Terminated: &StepTerminated{ExitCode: 1, Reason: "Skipped", Message: "an earlier step failed", StartedAt: r.opts.Now(), FinishedAt: r.opts.Now()}})
			continue
		}
		ss := r.step(tctx, t, i, tv, dir)
		st.Steps = append(st.Steps, ss)
		if ss.Terminated.ExitCode != 0 && s.OnError != "continue" {
			msg := fmt.Sprintf("step %s: %s", s.Name, ss.Terminated.Message)
			failed = &Condition{Reason: "Failed", Message: msg}
		}
	}
	switch {
	case ctx.Err() != nil:
		return fail("TaskRunCancelled", "cancelled: the pipeline run was interrupted")
	case tctx.Err() != nil:
		return fail("TaskRunTimeout", fmt.Sprintf("timed out after %s", t.Timeout.Duration))
	case failed != nil:
		return fail(failed.Reason, failed.Message)
	}
	res, err := readResults(t.Spec.Results, resultsDir)
	if err != nil {
		return fail("InvalidTaskResultReference", err.Error())
	}
	st.Results = res
	now := r.opts.Now()
	st.CompletionTime = &now
	st.Conditions = []Condition{{Type: "Succeeded", Status: "True", Reason: "Succeeded", Message: "All Steps have completed executing", LastTransitionTime: now}}
	return st
}

// maxResultSize bounds a result file (Tekton's default limit is 4 KiB per TaskRun).
const maxResultSize = 1 << 20

// readResults reads the declared results the steps wrote. A result not written is left
// out; a task that needs it is skipped.
func readResults(decl []TaskResult, dir string) ([]RunResult, error) {
	var out []RunResult
	for _, d := range decl {
		p := filepath.Join(dir, d.Name)
		st, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("result %s: %w", d.Name, err)
		}
		if st.Size() > maxResultSize {
			return nil, fmt.Errorf("result %s is %d bytes, over the %d-byte limit; write large outputs to a workspace", d.Name, st.Size(), maxResultSize)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("result %s: %w", d.Name, err)
		}
		v := ParamValue{Type: ParamTypeString, StringVal: string(data)}
		switch typeOf(d.Type) {
		case ParamTypeArray, ParamTypeObject:
			if err := json.Unmarshal(data, &v); err != nil || v.Type != typeOf(d.Type) {
				return nil, fmt.Errorf("result %s is declared %s but %s holds %q; write it as JSON", d.Name, typeOf(d.Type), p, abbrev(string(data), 60))
			}
		}
		out = append(out, RunResult{Name: d.Name, Value: v})
	}
	return out, nil
}

// row is one line of the summary, in the order tasks finished or were skipped.
type row struct {
	name    string
	finally bool
	skipped string
}

// TaskStatus is the summary status of a pipeline task: Succeeded, Failed, TimedOut,
// Cancelled, Blocked, Skipped, or "" when the run did not reach it.
func (r *Record) TaskStatus(name string) string {
	if tr, ok := r.Status.TaskRuns[name]; ok {
		return taskStatus(tr)
	}
	for _, s := range r.Status.SkippedTasks {
		if s.Name == name {
			return StatusSkipped
		}
	}
	return ""
}

// Result is a task's result value, and whether it produced it.
func (r *Record) Result(task, name string) (string, bool) {
	tr, ok := r.Status.TaskRuns[task]
	if !ok {
		return "", false
	}
	for _, res := range tr.Status.Results {
		if res.Name == name {
			return res.Value.String(), true
		}
	}
	return "", false
}

// stepLabel is the [task/step] log prefix.
func stepLabel(task, step string) string {
	var b strings.Builder
	b.WriteString("[")
	b.WriteString(task)
	b.WriteString("/")
	b.WriteString(step)
	b.WriteString("] ")
	return b.String()
}
