package runner

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/policy"
)

func checkParamSpec(ps ParamSpec) error {
	switch ps.Type {
	case "", ParamTypeString, ParamTypeArray, ParamTypeObject:
	default:
		return fmt.Errorf("type %q is not string, array or object", ps.Type)
	}
	if ps.Default != nil && ps.Type != "" && typeOf(ps.Default.Type) != ps.Type {
		return fmt.Errorf("default is a %s but the param is a %s", typeOf(ps.Default.Type), ps.Type)
	}
	return nil
}

func checkEnum(ps ParamSpec, v ParamValue) error {
	if len(ps.Enum) == 0 || typeOf(v.Type) != ParamTypeString {
		return nil
	}
	for _, e := range ps.Enum {
		if e == v.StringVal {
			return nil
		}
	}
	return fmt.Errorf("value %q is not one of %s", v.StringVal, strings.Join(ps.Enum, ", "))
}

// validate checks every reference of every task, and computes the DAG edges.
func (p *Plan) validate(pe *planErrors) {
	names := map[string]bool{}
	for _, t := range p.Tasks {
		names[t.Name] = true
	}
	pv := p.pipelineVars(true)
	checkedTask := map[string]bool{}
	for _, list := range [][]*PlannedTask{p.Tasks, p.Finally} {
		for _, t := range list {
			pv.finally = t.Finally
			pv.tasksStatus = "Succeeded"
			pv.used = map[string]bool{}
			p.validateTask(pe, t, pv, names, checkedTask)
			t.resultDeps = pv.used
			delete(t.resultDeps, t.Name)
			deps := map[string]bool{}
			for _, d := range t.RunAfter {
				deps[d] = true
			}
			if !t.Finally {
				for d := range t.resultDeps {
					deps[d] = true
				}
			}
			t.Deps = sortedKeys(deps)
		}
	}
	for i, r := range p.Pipeline.Spec.Results {
		o := p.at("spec", "results", strconv.Itoa(i), "value")
		pv.finally = false
		if _, err := pv.value(r.Value); err != nil {
			pe.add(o, "Pipeline %s: result %s: %v", p.Pipeline.Name, r.Name, err)
		}
	}
}

// validateTask checks one pipeline task: runAfter, timeout and retries, then each part.
func (p *Plan) validateTask(pe *planErrors, t *PlannedTask, pv *vars, taskNames map[string]bool, checkedTask map[string]bool) {
	label := "task " + t.Name
	if t.TaskName != "" {
		label += " (Task " + t.TaskName + ")"
	}
	for i, d := range t.RunAfter {
		o := p.taskOrigin(t, "runAfter", strconv.Itoa(i))
		switch {
		case d == t.Name:
			pe.add(o, "%s: runAfter names the task itself", label)
		case !taskNames[d]:
			pe.add(o, "%s: runAfter %s: no such task (tasks: %s)", label, d, names(taskNames))
		}
	}
	if t.Timeout != nil && t.Timeout.Duration < 0 {
		pe.add(p.taskOrigin(t, "timeout"), "%s: timeout %s is negative", label, t.Timeout.Duration)
	}
	if t.Retries < 0 {
		pe.add(p.taskOrigin(t, "retries"), "%s: retries %d is negative", label, t.Retries)
	}
	p.validateParams(pe, t, label, pv)
	p.validateWhen(pe, t, label, pv)
	specWs := p.validateWorkspaces(pe, t, label)
	// A referenced Task's steps are checked once; an embedded spec per pipeline task (it
	// sees the Pipeline's params and results).
	if t.TaskName != "" {
		if checkedTask[t.TaskName] {
			return
		}
		checkedTask[t.TaskName] = true
	}
	p.validateSteps(pe, t, label, pv, specWs)
}

// validateParams: every param known, typed, and every required one given.
func (p *Plan) validateParams(pe *planErrors, t *PlannedTask, label string, pv *vars) {
	specParams := map[string]ParamSpec{}
	for _, ps := range t.Spec.Params {
		specParams[ps.Name] = ps
		if err := checkParamSpec(ps); err != nil {
			pe.add(p.stepOrigin(t, "params"), "%s: param %s: %v", label, ps.Name, err)
		}
	}
	given := map[string]ParamValue{}
	for i, prm := range t.Params {
		o := p.taskOrigin(t, "params", strconv.Itoa(i), "value")
		v, err := pv.value(prm.Value)
		given[prm.Name] = v
		if err != nil {
			pe.add(o, "%s, param %s: %v", label, prm.Name, err)
			continue
		}
		ps, ok := specParams[prm.Name]
		if !ok {
			continue // Tekton passes extra params through; embedded specs may use them
		}
		if want := declaredType(ps); typeOf(v.Type) != want {
			pe.add(o, "%s, param %s: the Task declares a %s but is given a %s", label, prm.Name, want, typeOf(v.Type))
		}
	}
	var missing []string
	for _, ps := range t.Spec.Params {
		if _, ok := given[ps.Name]; !ok && ps.Default == nil {
			missing = append(missing, ps.Name)
		}
	}
	if len(missing) > 0 {
		pe.add(p.taskOrigin(t, "params"), "%s: required %s %s not given (and %s no default)", label, plural(len(missing), "param", "params"), strings.Join(missing, ", ")+plural(len(missing), " is", " are"), plural(len(missing), "has", "have"))
	}
}

// validateWhen checks the when expressions.
func (p *Plan) validateWhen(pe *planErrors, t *PlannedTask, label string, pv *vars) {
	for i, w := range t.When {
		o := p.taskOrigin(t, "when", strconv.Itoa(i))
		if w.CEL != "" {
			pe.add(o, "%s, when[%d]: cel expressions are not supported by gitgate run; use input/operator/values", label, i)
			continue
		}
		if w.Operator != "in" && w.Operator != "notin" {
			pe.add(o, "%s, when[%d]: operator %q is not in or notin", label, i, w.Operator)
		}
		if len(w.Values) == 0 {
			pe.add(o, "%s, when[%d]: values is empty", label, i)
		}
		if _, err := substitute(w.Input, pv.resolve); err != nil {
			pe.add(o, "%s, when[%d].input: %v", label, i, err)
		}
		if _, err := substituteList(w.Values, pv.resolve, pv.array); err != nil {
			pe.add(o, "%s, when[%d].values: %v", label, i, err)
		}
	}
}

// validateWorkspaces: every binding names a pipeline workspace, every required one is
// bound. It returns the Task's declared workspaces.
func (p *Plan) validateWorkspaces(pe *planErrors, t *PlannedTask, label string) map[string]WorkspaceDeclaration {
	specWs := map[string]WorkspaceDeclaration{}
	for _, w := range t.Spec.Workspaces {
		specWs[w.Name] = w
	}
	boundWs := map[string]bool{}
	pipeWs := map[string]bool{}
	for _, w := range p.Pipeline.Spec.Workspaces {
		pipeWs[w.Name] = true
	}
	for i, b := range t.Workspaces {
		o := p.taskOrigin(t, "workspaces", strconv.Itoa(i))
		if _, ok := specWs[b.Name]; !ok {
			pe.add(o, "%s, workspace %s: the Task declares no workspace %s (workspaces: %s)", label, b.Name, b.Name, names(specWs))
			continue
		}
		target := b.Workspace
		if target == "" {
			target = b.Name
		}
		if !pipeWs[target] {
			pe.add(o, "%s, workspace %s: Pipeline %s declares no workspace %s (workspaces: %s)", label, b.Name, p.Pipeline.Name, target, names(pipeWs))
			continue
		}
		boundWs[b.Name] = true
	}
	for _, w := range t.Spec.Workspaces {
		if !boundWs[w.Name] && !w.Optional {
			pe.add(p.taskOrigin(t, "workspaces"), "%s: the Task's workspace %s is required but the pipeline task does not bind it", label, w.Name)
		}
	}
	return specWs
}

// validateSteps: every reference in the steps and the step template resolves in task scope.
func (p *Plan) validateSteps(pe *planErrors, t *PlannedTask, label string, pv *vars, specWs map[string]WorkspaceDeclaration) {
	tv := p.taskVars(t, nil, pv, true)
	if len(t.Spec.Steps) == 0 {
		pe.add(p.stepOrigin(t, "steps"), "%s: has no steps", label)
	}
	stepNames := map[string]bool{}
	for i, s := range t.Spec.Steps {
		o := func(path ...string) policy.Origin {
			return p.stepOrigin(t, append([]string{"steps", strconv.Itoa(i)}, path...)...)
		}
		sl := fmt.Sprintf("%s, step %s", label, s.Name)
		if s.Name == "" {
			sl = fmt.Sprintf("%s, steps[%d]", label, i)
		} else if stepNames[s.Name] {
			pe.add(o("name"), "%s: step name used twice", sl)
		}
		stepNames[s.Name] = true
		if s.Script != "" && len(s.Command) > 0 {
			pe.add(o("script"), "%s: set script or command, not both", sl)
		}
		if s.OnError != "" && s.OnError != "continue" && s.OnError != "stopAndFail" {
			pe.add(o("onError"), "%s, field onError: %q is not continue or stopAndFail", sl, s.OnError)
		}
		check := func(field string, path []string, val string) {
			if _, err := substitute(val, tv.resolve); err != nil {
				pe.add(o(path...), "%s, field %s: %v", sl, field, err)
			}
		}
		checkList := func(field string, list []string) {
			for j, a := range list {
				if _, err := substituteList([]string{a}, tv.resolve, tv.array); err != nil {
					pe.add(o(field, strconv.Itoa(j)), "%s, field %s[%d]: %v", sl, field, j, err)
				}
			}
		}
		check("image", []string{"image"}, s.Image)
		check("workingDir", []string{"workingDir"}, s.WorkingDir)
		check("script", []string{"script"}, s.Script)
		checkList("command", s.Command)
		checkList("args", s.Args)
		for j, e := range s.Env {
			check("env "+e.Name, []string{"env", strconv.Itoa(j), "value"}, e.Value)
		}
		for j, w := range s.Workspaces {
			if _, ok := specWs[w.Name]; !ok {
				pe.add(o("workspaces", strconv.Itoa(j)), "%s, field workspaces[%d]: the Task declares no workspace %s", sl, j, w.Name)
			}
		}
	}
	if st := t.Spec.StepTemplate; st != nil {
		for j, e := range st.Env {
			if _, err := substitute(e.Value, tv.resolve); err != nil {
				pe.add(p.stepOrigin(t, "stepTemplate", "env", strconv.Itoa(j), "value"), "%s, stepTemplate, field env %s: %v", label, e.Name, err)
			}
		}
	}
}

// checkCycles finds a runAfter/result cycle and names it: a -> b -> a.
func (p *Plan) checkCycles() error {
	deps := map[string][]string{}
	for _, t := range p.Tasks {
		deps[t.Name] = t.Deps
	}
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var cycle []string
	var visit func(n string) bool
	visit = func(n string) bool {
		color[n] = grey
		stack = append(stack, n)
		for _, d := range deps[n] {
			switch color[d] {
			case grey:
				i := len(stack) - 1
				for stack[i] != d {
					i--
				}
				cycle = append(append([]string{}, stack[i:]...), d)
				return true
			case white:
				if visit(d) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	ordered := make([]string, 0, len(deps))
	for _, t := range p.Tasks {
		ordered = append(ordered, t.Name)
	}
	for _, n := range ordered {
		if color[n] == white && visit(n) {
			// The cycle was found walking dependencies; print it in run order.
			for i, j := 0, len(cycle)-1; i < j; i, j = i+1, j-1 {
				cycle[i], cycle[j] = cycle[j], cycle[i]
			}
			var t *PlannedTask
			for _, x := range p.Tasks {
				if x.Name == cycle[0] {
					t = x
				}
			}
			return &policy.InputError{Origin: p.taskOrigin(t, "runAfter"),
				Err: fmt.Errorf("Pipeline %s: dependency cycle: %s (runAfter and result references must form a DAG)", p.Pipeline.Name, strings.Join(cycle, " -> "))}
		}
	}
	return nil
}
