package runner

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gitgate/gitgate/policy"
)

// Record is a finished run, shaped like a tekton.dev/v1 PipelineRun with its status
// (plus the TaskRuns' statuses inline, and the gate's findings), so tools that read
// PipelineRun status can read it.
type Record struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   RecordMetadata `json:"metadata"`
	Spec       RecordSpec     `json:"spec"`
	Status     RunStatus      `json:"status"`

	order []row // summary rows, in the order tasks finished or were skipped
}

// RecordMetadata names the run.
type RecordMetadata struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// RecordSpec is what ran: the Pipeline, params and workspaces.
type RecordSpec struct {
	PipelineRef *TaskRef          `json:"pipelineRef,omitempty"`
	Params      []Param           `json:"params,omitempty"`
	Workspaces  []RecordWorkspace `json:"workspaces,omitempty"`
}

// RecordWorkspace is a workspace bound to a host directory.
type RecordWorkspace struct {
	Name     string `json:"name"`
	HostPath string `json:"hostPath"`
}

// Condition is Tekton's Succeeded condition.
type Condition struct {
	Type               string    `json:"type"`
	Status             string    `json:"status"`
	Reason             string    `json:"reason"`
	Message            string    `json:"message,omitempty"`
	LastTransitionTime time.Time `json:"lastTransitionTime"`
}

// RunStatus is a PipelineRun's status.
type RunStatus struct {
	Conditions      []Condition         `json:"conditions"`
	StartTime       time.Time           `json:"startTime"`
	CompletionTime  time.Time           `json:"completionTime"`
	Results         []RunResult         `json:"results,omitempty"`
	ChildReferences []ChildReference    `json:"childReferences,omitempty"`
	SkippedTasks    []SkippedTask       `json:"skippedTasks,omitempty"`
	TaskRuns        map[string]*TaskRun `json:"taskRuns,omitempty"`
	PipelineSpec    *PipelineSpec       `json:"pipelineSpec,omitempty"`
	// Gate is the gate's verdict before the run (the Pipeline and its Tasks).
	Gate *GateRecord `json:"gate,omitempty"`
}

// GateRecord is what the gate found; only findings are kept.
type GateRecord struct {
	Blocking bool            `json:"blocking"`
	Findings []policy.Result `json:"findings,omitempty"`
}

// RunResult is a pipeline result.
type RunResult struct {
	Name  string     `json:"name"`
	Value ParamValue `json:"value"`
}

// ChildReference points at a TaskRun of the run.
type ChildReference struct {
	APIVersion       string `json:"apiVersion"`
	Kind             string `json:"kind"`
	Name             string `json:"name"`
	PipelineTaskName string `json:"pipelineTaskName"`
}

// SkippedTask is a task that did not run, and why.
type SkippedTask struct {
	Name            string           `json:"name"`
	Reason          string           `json:"reason"`
	WhenExpressions []WhenExpression `json:"whenExpressions,omitempty"`
}

// Task statuses, as the summary shows them.
const (
	StatusSucceeded = "Succeeded"
	StatusFailed    = "Failed"
	StatusSkipped   = "Skipped"
	StatusCancelled = "Cancelled"
	StatusTimedOut  = "TimedOut"
	// StatusBlocked is a task whose change to the GitOps workspace the gate refused.
	StatusBlocked = "Blocked"
)

// TaskRun is one pipeline task's run.
type TaskRun struct {
	Name             string        `json:"name"`
	PipelineTaskName string        `json:"pipelineTaskName"`
	TaskRef          string        `json:"taskRef,omitempty"`
	Finally          bool          `json:"finally,omitempty"`
	Status           TaskRunStatus `json:"status"`
}

// TaskRunStatus is a TaskRun's status.
type TaskRunStatus struct {
	Conditions     []Condition       `json:"conditions"`
	StartTime      *time.Time        `json:"startTime,omitempty"`
	CompletionTime *time.Time        `json:"completionTime,omitempty"`
	Steps          []StepState       `json:"steps,omitempty"`
	Results        []RunResult       `json:"results,omitempty"`
	RetriesStatus  []TaskRunStatus   `json:"retriesStatus,omitempty"`
	Params         map[string]string `json:"params,omitempty"`
	// ChangeGate is the gate's verdict on the task's change to the GitOps workspace.
	ChangeGate *ChangeRecord `json:"changeGate,omitempty"`
}

// ChangeRecord is the gate between stages: what a task changed in the GitOps
// workspace and what the gate said about it.
type ChangeRecord struct {
	Workspace string          `json:"workspace"`
	Files     []string        `json:"files"`
	Blocking  bool            `json:"blocking"`
	Changes   *policy.Changes `json:"changes,omitempty"`
	Findings  []policy.Result `json:"findings,omitempty"`
	Error     string          `json:"error,omitempty"`
}

// StepState is one step's outcome, as a container's terminated state.
type StepState struct {
	Name       string          `json:"name"`
	Container  string          `json:"container"`
	Image      string          `json:"image,omitempty"`
	Terminated *StepTerminated `json:"terminated,omitempty"`
}

// StepTerminated is how a step ended.
type StepTerminated struct {
	ExitCode   int       `json:"exitCode"`
	Reason     string    `json:"reason"`
	Message    string    `json:"message,omitempty"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
}

// Outcome is the run's outcome: Succeeded, Completed (some tasks skipped), Failed or
// Cancelled, and whether that is a success.
func (r *Record) Outcome() (reason string, ok bool) {
	if len(r.Status.Conditions) == 0 {
		return "Unknown", false
	}
	c := r.Status.Conditions[0]
	return c.Reason, c.Status == "True"
}

// Succeeded reports whether the run succeeded.
func (r *Record) Succeeded() bool { _, ok := r.Outcome(); return ok }

// taskStatus is the summary status of a TaskRun.
func taskStatus(tr *TaskRun) string {
	if len(tr.Status.Conditions) == 0 {
		return "Unknown"
	}
	c := tr.Status.Conditions[0]
	if c.Status == "True" {
		return StatusSucceeded
	}
	switch c.Reason {
	case "TaskRunCancelled":
		return StatusCancelled
	case "TaskRunTimeout":
		return StatusTimedOut
	case "Blocked":
		return StatusBlocked
	case "Skipped":
		return StatusSkipped
	}
	return StatusFailed
}

// Tasks is the run's TaskRuns in run order (tasks, then finally), skipped ones included.
func (r *Record) Tasks() []*TaskRun {
	out := make([]*TaskRun, 0, len(r.Status.TaskRuns))
	for _, tr := range r.Status.TaskRuns {
		out = append(out, tr)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Finally != b.Finally {
			return !a.Finally
		}
		as, bs := a.Status.StartTime, b.Status.StartTime
		switch {
		case as == nil && bs == nil:
			return a.PipelineTaskName < b.PipelineTaskName
		case as == nil:
			return false
		case bs == nil:
			return true
		case !as.Equal(*bs):
			return as.Before(*bs)
		}
		return a.PipelineTaskName < b.PipelineTaskName
	})
	return out
}

// WriteSummary prints the table: task, status, duration, results (or why it did not
// succeed); then the run's outcome.
func WriteSummary(w io.Writer, r *Record) error {
	rows := r.order
	if len(rows) == 0 { // a record read back from JSON
		for _, tr := range r.Tasks() {
			rows = append(rows, row{name: tr.PipelineTaskName, finally: tr.Finally})
		}
		for _, s := range r.Status.SkippedTasks {
			rows = append(rows, row{name: s.Name, skipped: s.Reason})
		}
	}
	sorted := make([]row, 0, len(rows))
	for _, fin := range []bool{false, true} {
		for _, rw := range rows {
			if rw.finally == fin {
				sorted = append(sorted, rw)
			}
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tSTATUS\tDURATION\tRESULTS")
	for _, rw := range sorted {
		name := rw.name
		if rw.finally {
			name += " (finally)"
		}
		if rw.skipped != "" {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, StatusSkipped, "-", abbrev(rw.skipped, 100))
			continue
		}
		tr := r.Status.TaskRuns[rw.name]
		if tr == nil {
			continue
		}
		dur := "-"
		if tr.Status.StartTime != nil && tr.Status.CompletionTime != nil {
			dur = formatDuration(tr.Status.CompletionTime.Sub(*tr.Status.StartTime))
		}
		status := taskStatus(tr)
		if n := len(tr.Status.RetriesStatus); n > 0 {
			status += fmt.Sprintf(" (%d retries)", n)
		}
		var res []string
		for _, rr := range tr.Status.Results {
			res = append(res, rr.Name+"="+abbrev(rr.Value.String(), 40))
		}
		if c := tr.Status.Conditions; len(c) > 0 && c[0].Status != "True" {
			res = []string{abbrev(c[0].Message, 100)}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, status, dur, strings.Join(res, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	reason, _ := r.Outcome()
	msg := ""
	if len(r.Status.Conditions) > 0 {
		msg = r.Status.Conditions[0].Message
	}
	_, err := fmt.Fprintf(w, "%s %s in %s: %s\n", r.Metadata.Name, reason, formatDuration(r.Status.CompletionTime.Sub(r.Status.StartTime)), msg)
	return err
}

func formatDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func abbrev(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// WriteRecord writes the record as indented JSON.
func WriteRecord(w io.Writer, r *Record) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Refused is the record of a run the gate refused before anything ran.
func (p *Plan) Refused(gate *GateRecord) *Record {
	now := time.Now()
	rec := &Record{
		APIVersion: APIVersion,
		Kind:       "PipelineRun",
		Metadata:   RecordMetadata{Name: p.RunName, Namespace: p.Namespace},
	}
	if !p.synthetic {
		rec.Spec.PipelineRef = &TaskRef{Name: p.Pipeline.Name}
	}
	spec := p.Pipeline.Spec
	rec.Status = RunStatus{
		StartTime: now, CompletionTime: now, PipelineSpec: &spec, Gate: gate,
		Conditions: []Condition{{Type: "Succeeded", Status: "False", Reason: "Blocked",
			Message: "the gate refused the pipeline: Enforce violations in its tasks; nothing ran", LastTransitionTime: now}},
	}
	return rec
}
