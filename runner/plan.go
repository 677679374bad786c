package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/policy"
)

// PlanOptions say which Pipeline to run and with what.
type PlanOptions struct {
	// Pipeline names the Pipeline to run when the files define several. With no
	// Pipeline in the files, a single Task (or the one named by Task) runs alone.
	Pipeline string
	Task     string
	// Params are the run's param values as given on the command line; arrays and
	// objects are parsed by the param's declared type (see ParseParamValue).
	Params map[string]string
	// Workspaces bind pipeline workspaces to host directories (Run creates missing ones).
	Workspaces map[string]string
	// RunName is $(context.pipelineRun.name); default <pipeline>-run.
	RunName string
	// Namespace is $(context.pipelineRun.namespace); default the Pipeline's, else "default".
	Namespace string
}

// PlannedTask is one pipeline task, resolved and validated.
type PlannedTask struct {
	PipelineTask
	// Spec is the Task's spec (from taskRef or the embedded taskSpec).
	Spec TaskSpec
	// TaskName is the referenced Task's name; empty for an embedded taskSpec.
	TaskName string
	// File is where Spec was written.
	File string
	// Finally marks a finally task.
	Finally bool
	// Deps are the tasks that must finish first: runAfter plus the tasks whose results
	// it names.
	Deps []string
	// resultDeps are the tasks whose results it names.
	resultDeps map[string]bool
}

// Plan is a validated Pipeline run: nothing in it can fail for a reason knowable before
// the first step starts.
type Plan struct {
	Pipeline Pipeline
	// File is the Pipeline's file (the Task's when a Task runs alone).
	File    string
	Tasks   []*PlannedTask
	Finally []*PlannedTask
	// Params are the pipeline params' values (given, else defaults).
	Params map[string]ParamValue
	// Workspaces are the bound pipeline workspaces' host directories, absolute.
	Workspaces map[string]string
	RunName    string
	Namespace  string
	// Resources are the documents the gate judges before the run: the Pipeline and
	// every Task it uses, once each.
	Resources []policy.Resource

	pipelineRes *policy.Resource
	tasksUsing  map[string][]string // Task name -> pipeline tasks using it
	taskRes     map[string]policy.Resource
	// synthetic is set when a Task runs alone (no Pipeline document).
	synthetic bool
}

// planErrors collects validation errors, each naming file:line, task, step and field.
type planErrors struct{ errs []error }

func (e *planErrors) add(o policy.Origin, format string, args ...any) {
	e.errs = append(e.errs, &policy.InputError{Origin: o, Err: fmt.Errorf(format, args...)})
}

func (e *planErrors) err() error {
	if len(e.errs) == 0 {
		return nil
	}
	return errors.Join(e.errs...)
}

// Plan resolves and validates the Pipeline to run: task references, params,
// workspaces, every $(...) reference, the DAG. Every error it can find is returned at
// once, each naming the file, task, step and field.
func (b *Bundle) Plan(opts PlanOptions) (*Plan, error) {
	lp, err := b.pick(opts)
	if err != nil {
		return nil, err
	}
	p := &Plan{
		Pipeline:   lp.Pipeline,
		File:       lp.Resource.Origin.File,
		Workspaces: map[string]string{},
		tasksUsing: map[string][]string{},
		taskRes:    map[string]policy.Resource{},
		RunName:    opts.RunName,
		Namespace:  opts.Namespace,
	}
	if lp.Resource.Object != nil {
		r := lp.Resource
		p.pipelineRes = &r
		p.Resources = append(p.Resources, r)
	} else {
		p.synthetic = true
	}
	if p.RunName == "" {
		p.RunName = lp.Name + "-run"
	}
	if p.Namespace == "" {
		p.Namespace = lp.Namespace
	}
	if p.Namespace == "" {
		p.Namespace = "default"
	}
	pe := &planErrors{}
	p.params(pe, opts.Params)
	p.workspaces(pe, opts.Workspaces)
	p.resolveTasks(pe, b)
	if err := pe.err(); err != nil {
		return nil, err
	}
	p.validate(pe)
	if err := pe.err(); err != nil {
		return nil, err
	}
	if err := p.checkCycles(); err != nil {
		return nil, err
	}
	return p, nil
}

// pick chooses the Pipeline (or the lone Task, wrapped in a one-task Pipeline).
func (b *Bundle) pick(opts PlanOptions) (*LoadedPipeline, error) {
	if opts.Pipeline != "" {
		for _, p := range b.Pipelines {
			if p.Name == opts.Pipeline {
				return p, nil
			}
		}
		return nil, fmt.Errorf("no Pipeline named %s in the input files (Pipelines: %s)", opts.Pipeline, pipelineNames(b.Pipelines))
	}
	switch len(b.Pipelines) {
	case 1:
		return b.Pipelines[0], nil
	case 0:
	default:
		return nil, fmt.Errorf("the input files define %d Pipelines (%s); choose one with --pipeline", len(b.Pipelines), pipelineNames(b.Pipelines))
	}
	var t *LoadedTask
	switch {
	case opts.Task != "":
		t = b.Tasks[opts.Task]
		if t == nil {
			return nil, fmt.Errorf("no Task named %s in the input files (Tasks: %s)", opts.Task, names(b.Tasks))
		}
	case len(b.Tasks) == 1:
		for _, only := range b.Tasks {
			t = only
		}
	case len(b.Tasks) == 0:
		return nil, fmt.Errorf("the input files define no tekton.dev/v1 Pipeline or Task")
	default:
		return nil, fmt.Errorf("the input files define no Pipeline and %d Tasks (%s); choose one with --task", len(b.Tasks), names(b.Tasks))
	}
	return taskPipeline(t), nil
}

func pipelineNames(ps []*LoadedPipeline) string {
	var n []string
	for _, p := range ps {
		n = append(n, p.Name)
	}
	return strings.Join(n, ", ")
}

// taskPipeline wraps a Task in a Pipeline of one task that passes every param and
// workspace through, so a Task runs alone like a TaskRun.
func taskPipeline(t *LoadedTask) *LoadedPipeline {
	pt := PipelineTask{Name: t.Name, TaskRef: &TaskRef{Name: t.Name}}
	spec := PipelineSpec{}
	for _, ps := range t.Spec.Params {
		spec.Params = append(spec.Params, ps)
		var v ParamValue
		switch declaredType(ps) {
		case ParamTypeArray:
			v = ParamValue{Type: ParamTypeArray, ArrayVal: []string{"$(params." + ps.Name + "[*])"}}
		case ParamTypeObject:
			v = ParamValue{Type: ParamTypeString, StringVal: "$(params." + ps.Name + "[*])"}
		default:
			v = ParamValue{Type: ParamTypeString, StringVal: "$(params." + ps.Name + ")"}
		}
		pt.Params = append(pt.Params, Param{Name: ps.Name, Value: v})
	}
	for _, w := range t.Spec.Workspaces {
		spec.Workspaces = append(spec.Workspaces, PipelineWorkspaceDeclaration{Name: w.Name, Optional: w.Optional})
		pt.Workspaces = append(pt.Workspaces, WorkspacePipelineTaskBinding{Name: w.Name, Workspace: w.Name})
	}
	spec.Tasks = []PipelineTask{pt}
	lp := &LoadedPipeline{Resource: policy.Resource{Origin: t.Resource.Origin}}
	lp.Name, lp.Namespace = t.Name, t.Namespace
	lp.Spec = spec
	return lp
}

// declaredType is a param's type: declared, else its default's, else string.
func declaredType(ps ParamSpec) ParamType {
	if ps.Type != "" {
		return ps.Type
	}
	if ps.Default != nil && ps.Default.Type != "" {
		return ps.Default.Type
	}
	return ParamTypeString
}

// at is the origin of a field of the Pipeline, e.g. at("spec", "tasks", "2").
func (p *Plan) at(path ...string) policy.Origin {
	if p.pipelineRes == nil {
		return policy.Origin{File: p.File}
	}
	return p.pipelineRes.FieldOrigin(path)
}

func (p *Plan) params(pe *planErrors, given map[string]string) {
	p.Params = map[string]ParamValue{}
	declared := map[string]ParamSpec{}
	for i, ps := range p.Pipeline.Spec.Params {
		o := p.at("spec", "params", strconv.Itoa(i))
		if _, dup := declared[ps.Name]; dup {
			pe.add(o, "Pipeline %s: param %s is declared twice", p.Pipeline.Name, ps.Name)
			continue
		}
		declared[ps.Name] = ps
		if err := checkParamSpec(ps); err != nil {
			pe.add(o, "Pipeline %s: param %s: %v", p.Pipeline.Name, ps.Name, err)
		}
	}
	for _, k := range sortedKeys(given) {
		ps, ok := declared[k]
		if !ok {
			pe.add(p.at("spec", "params"), "--param %s: Pipeline %s has no param %s (params: %s)", k, p.Pipeline.Name, k, names(declared))
			continue
		}
		v, err := ParseParamValue(declaredType(ps), given[k])
		if err != nil {
			pe.add(p.at("spec", "params"), "--param %s: %v", k, err)
			continue
		}
		if err := checkEnum(ps, v); err != nil {
			pe.add(p.at("spec", "params"), "--param %s: %v", k, err)
			continue
		}
		p.Params[k] = v
	}
	var missing []string
	for _, ps := range p.Pipeline.Spec.Params {
		if _, ok := p.Params[ps.Name]; ok {
			continue
		}
		if ps.Default == nil {
			missing = append(missing, ps.Name)
			continue
		}
		d := *ps.Default
		if d.Type == "" {
			d.Type = declaredType(ps)
		}
		p.Params[ps.Name] = d
	}
	if len(missing) > 0 {
		pe.add(p.at("spec", "params"), "Pipeline %s: required %s %s no value and no default; pass --param %s=VALUE", p.Pipeline.Name, plural(len(missing), "param", "params"), strings.Join(missing, ", ")+plural(len(missing), " has", " have"), missing[0])
	}
}

func (p *Plan) workspaces(pe *planErrors, given map[string]string) {
	declared := map[string]PipelineWorkspaceDeclaration{}
	for _, w := range p.Pipeline.Spec.Workspaces {
		declared[w.Name] = w
	}
	for _, k := range sortedKeys(given) {
		if _, ok := declared[k]; !ok {
			pe.add(p.at("spec", "workspaces"), "--workspace %s: Pipeline %s has no workspace %s (workspaces: %s)", k, p.Pipeline.Name, k, names(declared))
			continue
		}
		dir, err := filepath.Abs(given[k])
		if err != nil {
			pe.add(p.at("spec", "workspaces"), "--workspace %s: %v", k, err)
			continue
		}
		if st, err := os.Stat(dir); err == nil && !st.IsDir() {
			pe.add(p.at("spec", "workspaces"), "--workspace %s: %s is not a directory", k, given[k])
			continue
		}
		p.Workspaces[k] = dir // created by Run if missing
	}
	var missing []string
	for _, w := range p.Pipeline.Spec.Workspaces {
		if _, ok := p.Workspaces[w.Name]; !ok && !w.Optional {
			missing = append(missing, w.Name)
		}
	}
	if len(missing) > 0 {
		pe.add(p.at("spec", "workspaces"), "Pipeline %s: required %s %s not bound; pass --workspace %s=DIR", p.Pipeline.Name, plural(len(missing), "workspace", "workspaces"), strings.Join(missing, ", ")+plural(len(missing), " is", " are"), missing[0])
	}
}

// resolveTasks turns taskRefs and taskSpecs into PlannedTasks.
func (p *Plan) resolveTasks(pe *planErrors, b *Bundle) {
	seen := map[string]bool{}
	for _, list := range []struct {
		field   string
		tasks   []PipelineTask
		finally bool
	}{{"tasks", p.Pipeline.Spec.Tasks, false}, {"finally", p.Pipeline.Spec.Finally, true}} {
		for i, pt := range list.tasks {
			o := p.at("spec", list.field, strconv.Itoa(i))
			if pt.Name == "" {
				pe.add(o, "Pipeline %s: %s[%d] has no name", p.Pipeline.Name, list.field, i)
				continue
			}
			if seen[pt.Name] {
				pe.add(o, "Pipeline %s: task %s is defined twice", p.Pipeline.Name, pt.Name)
				continue
			}
			seen[pt.Name] = true
			t := &PlannedTask{PipelineTask: pt, Finally: list.finally, File: p.File}
			switch {
			case pt.TaskRef != nil && pt.TaskSpec != nil:
				pe.add(o, "task %s: set taskRef or taskSpec, not both", pt.Name)
				continue
			case pt.TaskSpec != nil:
				t.Spec = pt.TaskSpec.TaskSpec
			case pt.TaskRef != nil:
				if pt.TaskRef.Kind != "" && pt.TaskRef.Kind != "Task" {
					pe.add(p.at("spec", list.field, strconv.Itoa(i), "taskRef", "kind"), "task %s: taskRef kind %s is not supported; gitgate run resolves Tasks by name", pt.Name, pt.TaskRef.Kind)
					continue
				}
				lt := b.Tasks[pt.TaskRef.Name]
				if lt == nil {
					pe.add(p.at("spec", list.field, strconv.Itoa(i), "taskRef", "name"), "task %s: taskRef %s: no Task named %s in the input files; pass its file with -f (Tasks: %s)", pt.Name, pt.TaskRef.Name, pt.TaskRef.Name, names(b.Tasks))
					continue
				}
				t.Spec, t.TaskName, t.File = lt.Spec, lt.Name, lt.Resource.Origin.File
				if _, ok := p.taskRes[lt.Name]; !ok {
					p.taskRes[lt.Name] = lt.Resource
					p.Resources = append(p.Resources, lt.Resource)
				}
				p.tasksUsing[lt.Name] = append(p.tasksUsing[lt.Name], pt.Name)
			default:
				pe.add(o, "task %s: has neither taskRef nor taskSpec", pt.Name)
				continue
			}
			if list.finally {
				if len(pt.RunAfter) > 0 {
					pe.add(p.at("spec", list.field, strconv.Itoa(i), "runAfter"), "finally task %s: finally tasks cannot use runAfter (they run after every task)", pt.Name)
				}
				p.Finally = append(p.Finally, t)
			} else {
				p.Tasks = append(p.Tasks, t)
			}
		}
	}
	if len(p.Tasks) == 0 && len(p.Finally) == 0 && len(pe.errs) == 0 {
		pe.add(p.at("spec"), "Pipeline %s has no tasks", p.Pipeline.Name)
	}
}

// origin of a pipeline task's field, or of a referenced Task's field.
func (p *Plan) taskOrigin(t *PlannedTask, path ...string) policy.Origin {
	list := "tasks"
	idx := -1
	for i, pt := range p.Pipeline.Spec.Tasks {
		if pt.Name == t.Name && !t.Finally {
			idx = i
		}
	}
	if t.Finally {
		list = "finally"
		for i, pt := range p.Pipeline.Spec.Finally {
			if pt.Name == t.Name {
				idx = i
			}
		}
	}
	return p.at(append([]string{"spec", list, strconv.Itoa(idx)}, path...)...)
}

// stepOrigin is the origin of a field of a step of t's spec.
func (p *Plan) stepOrigin(t *PlannedTask, path ...string) policy.Origin {
	if t.TaskName != "" {
		if r, ok := p.taskRes[t.TaskName]; ok {
			return r.FieldOrigin(append([]string{"spec"}, path...))
		}
	}
	return p.taskOrigin(t, append([]string{"taskSpec"}, path...)...)
}

// pipelineVars is the pipeline scope for validation (placeholders for results) or for
// a run (results filled in as tasks finish).
func (p *Plan) pipelineVars(validating bool) *vars {
	v := &vars{
		pipeline:   true,
		params:     p.Params,
		workspaces: map[string]wsVar{},
		tasks:      map[string]*taskVars{},
		context: map[string]string{
			"pipelineRun.name":      p.RunName,
			"pipelineRun.namespace": p.Namespace,
			"pipelineRun.uid":       p.RunName,
			"pipeline.name":         p.Pipeline.Name,
		},
		validating: validating,
	}
	for _, w := range p.Pipeline.Spec.Workspaces {
		_, bound := p.Workspaces[w.Name]
		v.workspaces[w.Name] = wsVar{bound: bound}
	}
	for _, list := range [][]*PlannedTask{p.Tasks, p.Finally} {
		for _, t := range list {
			tv := &taskVars{declared: map[string]ParamType{}, values: map[string]ParamValue{}, finally: t.Finally, status: "None"}
			for _, r := range t.Spec.Results {
				tv.declared[r.Name] = typeOf(r.Type)
			}
			v.tasks[t.Name] = tv
		}
	}
	return v
}

// taskVars is the task scope of t: its params (values given, else defaults; with
// values nil, placeholders), result paths under resultsDir, workspace paths.
func (p *Plan) taskVars(t *PlannedTask, params map[string]ParamValue, pv *vars, validating bool) *vars {
	v := &vars{
		params:     map[string]ParamValue{},
		results:    map[string]string{},
		workspaces: map[string]wsVar{},
		context: map[string]string{
			"task.name":             t.TaskName,
			"taskRun.name":          p.RunName + "-" + t.Name,
			"taskRun.namespace":     p.Namespace,
			"taskRun.uid":           p.RunName + "-" + t.Name,
			"pipelineRun.name":      p.RunName,
			"pipelineRun.namespace": p.Namespace,
			"pipelineRun.uid":       p.RunName,
			"pipeline.name":         p.Pipeline.Name,
			"pipelineTask.retries":  strconv.Itoa(t.Retries),
			"task.retry-count":      "0",
		},
		validating: validating,
	}
	if t.TaskName == "" {
		v.context["task.name"] = t.Name
		v.outer = pv // embedded: pipeline params propagate, $(tasks...) resolves
	}
	for _, ps := range t.Spec.Params {
		switch {
		case params != nil:
			if val, ok := params[ps.Name]; ok {
				v.params[ps.Name] = val
			}
		case ps.Default != nil:
			d := *ps.Default
			d.Type = typeOf(d.Type)
			v.params[ps.Name] = d
		default:
			v.params[ps.Name] = placeholder(declaredType(ps), ps.Name, ps.Properties)
		}
	}
	for _, r := range t.Spec.Results {
		v.results[r.Name] = "<results/" + r.Name + ">"
	}
	for _, w := range t.Spec.Workspaces {
		v.workspaces[w.Name] = wsVar{path: "<workspaces/" + w.Name + ">", bound: true}
	}
	return v
}

// splitFieldPath turns "spec.tasks[2].taskSpec.steps[0].image" into segments.
func splitFieldPath(path string) []string {
	path = strings.ReplaceAll(path, "[", ".")
	path = strings.ReplaceAll(path, "]", "")
	var out []string
	for _, s := range strings.Split(path, ".") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
