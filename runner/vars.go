package runner

import (
	"fmt"
	"sort"
	"strings"
)

// vars is what $(...) can name in one place: a Task's steps (task scope) or a
// Pipeline's task params, when expressions and results (pipeline scope). Validation
// resolves the same variables with placeholder values, so a reference that would fail
// at run time fails before anything runs.
type vars struct {
	pipeline bool // pipeline scope
	// params by name: a Task's (task scope) or the Pipeline's (pipeline scope).
	params map[string]ParamValue
	// outer is the pipeline scope of an embedded taskSpec: params it does not declare
	// propagate from the Pipeline, and it may name $(tasks.t.results.r).
	outer *vars
	// results are the result paths of a Task (task scope).
	results map[string]string
	// workspaces of the Task (task scope) or the Pipeline (pipeline scope, .bound only).
	workspaces map[string]wsVar
	// tasks are the pipeline tasks whose results may be named (pipeline scope).
	tasks map[string]*taskVars
	// context are context.* values: "pipelineRun.name" -> value.
	context map[string]string
	// finally: $(tasks.status) and $(tasks.t.status) are valid.
	finally     bool
	tasksStatus string
	// validating: placeholder values; indexes out of range are not errors.
	validating bool
	// used records the tasks whose results were named (implicit DAG edges).
	used map[string]bool
}

type wsVar struct {
	path  string
	bound bool
}

// taskVars is what a pipeline task exposes to later tasks.
type taskVars struct {
	declared map[string]ParamType // result name -> type
	values   map[string]ParamValue
	status   string // Succeeded, Failed, None
	// finally is set for finally tasks: they cannot be named by tasks.
	finally bool
	// skipped says why the task produced no results.
	skipped string
}

func names[V any](m map[string]V) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// resolve returns a variable's value in string context.
func (v *vars) resolve(r ref) (string, bool, error) {
	n := r.names()
	switch r.root() {
	case "params":
		if len(n) < 2 {
			return "", false, fmt.Errorf("%s names no param", r.text)
		}
		p, ok := v.params[n[1]]
		if !ok {
			if v.outer != nil {
				return v.outer.resolve(r)
			}
			return "", false, fmt.Errorf("%s: unknown param %q (declared: %s)", r.text, n[1], names(v.params))
		}
		return v.paramString(r, n, p)
	case "results":
		if v.pipeline {
			return "", false, fmt.Errorf("%s: $(results...) is only valid in a Task's steps; a Pipeline names $(tasks.<task>.results.<result>)", r.text)
		}
		if len(n) != 3 || n[2] != "path" {
			return "", false, fmt.Errorf("%s: write a result to $(results.<name>.path)", r.text)
		}
		p, ok := v.results[n[1]]
		if !ok {
			return "", false, fmt.Errorf("%s: unknown result %q (declared: %s)", r.text, n[1], names(v.results))
		}
		return p, true, nil
	case "workspaces":
		if len(n) != 3 {
			return "", false, fmt.Errorf("%s: use $(workspaces.<name>.path) or .bound", r.text)
		}
		w, ok := v.workspaces[n[1]]
		if !ok {
			if v.outer != nil && n[2] == "bound" {
				return v.outer.resolve(r)
			}
			return "", false, fmt.Errorf("%s: unknown workspace %q (declared: %s)", r.text, n[1], names(v.workspaces))
		}
		switch n[2] {
		case "path":
			if v.pipeline {
				return "", false, fmt.Errorf("%s: a Pipeline can only ask whether a workspace is .bound", r.text)
			}
			return w.path, true, nil
		case "bound":
			return fmt.Sprint(w.bound), true, nil
		case "claim", "volume":
			if v.pipeline {
				return "", false, fmt.Errorf("%s: a Pipeline can only ask whether a workspace is .bound", r.text)
			}
			return "", true, nil // host directories have neither
		}
		return "", false, fmt.Errorf("%s: unknown workspace field %q (path, bound, claim, volume)", r.text, n[2])
	case "context":
		key := strings.Join(n[1:], ".")
		if val, ok := v.context[key]; ok {
			return val, true, nil
		}
		if v.outer != nil {
			return v.outer.resolve(r)
		}
		return "", false, fmt.Errorf("%s: unknown context variable (known here: %s)", r.text, names(v.context))
	case "tasks":
		if !v.pipeline {
			if v.outer != nil {
				return v.outer.resolve(r)
			}
			return "", false, fmt.Errorf("%s: a Task cannot name pipeline tasks; pass the value in as a param", r.text)
		}
		return v.taskRef(r, n)
	}
	return "", false, fmt.Errorf("%s: $(%s...) is not supported by gitgate run", r.text, r.root())
}

func (v *vars) paramString(r ref, n []string, p ParamValue) (string, bool, error) {
	switch typeOf(p.Type) {
	case ParamTypeArray:
		if i, ok := r.index(); ok && len(n) == 2 {
			if i >= len(p.ArrayVal) {
				if v.validating {
					return "", true, nil
				}
				return "", false, fmt.Errorf("%s: index %d out of range: array param %s has %d elements", r.text, i, n[1], len(p.ArrayVal))
			}
			return p.ArrayVal[i], true, nil
		}
		if r.star() {
			return "", false, fmt.Errorf("%s: an array can only be expanded as a whole element of command, args or an array param value", r.text)
		}
		return "", false, fmt.Errorf("%s: param %s is an array; use $(params.%s[*]) as a whole element of command or args, or $(params.%s[i])", r.text, n[1], n[1], n[1])
	case ParamTypeObject:
		if len(n) == 3 && !r.star() {
			val, ok := p.ObjectVal[n[2]]
			if !ok && !v.validating {
				return "", false, fmt.Errorf("%s: object param %s has no key %q (keys: %s)", r.text, n[1], n[2], names(p.ObjectVal))
			}
			return val, true, nil
		}
		return "", false, fmt.Errorf("%s: param %s is an object; use $(params.%s.<key>)", r.text, n[1], n[1])
	}
	if len(n) != 2 || r.star() {
		return "", false, fmt.Errorf("%s: param %s is a string; use $(params.%s)", r.text, n[1], n[1])
	}
	if _, ok := r.index(); ok {
		return "", false, fmt.Errorf("%s: param %s is a string, not an array", r.text, n[1])
	}
	return p.StringVal, true, nil
}

// taskRef resolves $(tasks.status), $(tasks.t.status) and $(tasks.t.results.r...).
func (v *vars) taskRef(r ref, n []string) (string, bool, error) {
	if len(n) == 2 && n[1] == "status" {
		if !v.finally {
			return "", false, fmt.Errorf("%s: $(tasks.status) is only valid in finally tasks", r.text)
		}
		return v.tasksStatus, true, nil
	}
	if len(n) < 3 {
		return "", false, fmt.Errorf("%s: use $(tasks.<task>.results.<result>)", r.text)
	}
	t, ok := v.tasks[n[1]]
	if !ok {
		return "", false, fmt.Errorf("%s: unknown task %q (tasks: %s)", r.text, n[1], names(v.tasks))
	}
	if len(n) == 3 && (n[2] == "status" || n[2] == "reason") {
		if !v.finally {
			return "", false, fmt.Errorf("%s: $(tasks.<task>.status) is only valid in finally tasks", r.text)
		}
		return t.status, true, nil
	}
	if n[2] != "results" || len(n) < 4 {
		return "", false, fmt.Errorf("%s: use $(tasks.<task>.results.<result>)", r.text)
	}
	if t.finally {
		return "", false, fmt.Errorf("%s: results of finally task %s cannot be used by other tasks", r.text, n[1])
	}
	typ, ok := t.declared[n[3]]
	if !ok {
		return "", false, fmt.Errorf("%s: task %s declares no result %q (results: %s)", r.text, n[1], n[3], names(t.declared))
	}
	if v.used != nil {
		v.used[n[1]] = true
	}
	val, ok := t.values[n[3]]
	if !ok {
		if v.validating {
			val = placeholder(typ, n[3], nil)
		} else {
			why := "it did not write it"
			if t.skipped != "" {
				why = "it was skipped: " + t.skipped
			}
			return "", false, &missingResultError{text: r.text, task: n[1], result: n[3], why: why}
		}
	}
	switch typeOf(typ) {
	case ParamTypeArray:
		if i, ok := r.index(); ok && len(n) == 4 {
			if i >= len(val.ArrayVal) {
				if v.validating {
					return "", true, nil
				}
				return "", false, fmt.Errorf("%s: index %d out of range: result has %d elements", r.text, i, len(val.ArrayVal))
			}
			return val.ArrayVal[i], true, nil
		}
		return "", false, fmt.Errorf("%s: result %s is an array; use [*] as a whole array param value, or [i]", r.text, n[3])
	case ParamTypeObject:
		if len(n) == 5 && !r.star() {
			return val.ObjectVal[n[4]], true, nil
		}
		return "", false, fmt.Errorf("%s: result %s is an object; use .<key>", r.text, n[3])
	}
	if len(n) != 4 || r.star() {
		return "", false, fmt.Errorf("%s: result %s is a string", r.text, n[3])
	}
	return val.StringVal, true, nil
}

// missingResultError is a result a task needs that its producer did not produce: the
// task is skipped, as Tekton does, instead of failing.
type missingResultError struct{ text, task, result, why string }

func (e *missingResultError) Error() string {
	return fmt.Sprintf("%s: task %s has no result %s (%s)", e.text, e.task, e.result, e.why)
}

// array returns the elements of a whole-element $(x[*]): an array param or result.
func (v *vars) array(r ref) ([]string, bool, error) {
	n := r.names()
	switch r.root() {
	case "params":
		if len(n) != 2 {
			return nil, false, nil
		}
		p, ok := v.params[n[1]]
		if !ok {
			if v.outer != nil {
				return v.outer.array(r)
			}
			return nil, false, fmt.Errorf("%s: unknown param %q (declared: %s)", r.text, n[1], names(v.params))
		}
		if typeOf(p.Type) != ParamTypeArray {
			return nil, false, nil // an object's [*], or a mistake resolve names
		}
		return p.ArrayVal, true, nil
	case "tasks":
		if !v.pipeline {
			if v.outer != nil {
				return v.outer.array(r)
			}
			return nil, false, nil
		}
		if len(n) != 4 || n[2] != "results" {
			return nil, false, nil
		}
		t, ok := v.tasks[n[1]]
		if !ok || typeOf(t.declared[n[3]]) != ParamTypeArray {
			return nil, false, nil // resolve names the error
		}
		if v.used != nil {
			v.used[n[1]] = true
		}
		val, ok := t.values[n[3]]
		if !ok {
			if v.validating {
				return []string{"<" + n[3] + ">"}, true, nil
			}
			why := "it did not write it"
			if t.skipped != "" {
				why = "it was skipped: " + t.skipped
			}
			return nil, false, &missingResultError{text: r.text, task: n[1], result: n[3], why: why}
		}
		return val.ArrayVal, true, nil
	}
	return nil, false, nil
}

// object returns the value of a whole $(params.x[*]) or $(tasks.t.results.r[*]) object.
func (v *vars) object(r ref) (map[string]string, bool, error) {
	n := r.names()
	if !r.star() {
		return nil, false, nil
	}
	switch r.root() {
	case "params":
		if len(n) != 2 {
			return nil, false, nil
		}
		p, ok := v.params[n[1]]
		if !ok || typeOf(p.Type) != ParamTypeObject {
			return nil, false, nil
		}
		return p.ObjectVal, true, nil
	case "tasks":
		if len(n) != 4 || n[2] != "results" {
			return nil, false, nil
		}
		t, ok := v.tasks[n[1]]
		if !ok || typeOf(t.declared[n[3]]) != ParamTypeObject {
			return nil, false, nil
		}
		if v.used != nil {
			v.used[n[1]] = true
		}
		val, ok := t.values[n[3]]
		if !ok {
			if v.validating {
				return map[string]string{}, true, nil
			}
			return nil, false, &missingResultError{text: r.text, task: n[1], result: n[3], why: "it did not write it"}
		}
		return val.ObjectVal, true, nil
	}
	return nil, false, nil
}

// placeholder is a value of type t for validation: a declared default when there is one.
func placeholder(t ParamType, name string, props map[string]PropertySpec) ParamValue {
	switch typeOf(t) {
	case ParamTypeArray:
		return ParamValue{Type: ParamTypeArray, ArrayVal: []string{"<" + name + ">"}}
	case ParamTypeObject:
		o := map[string]string{}
		for k := range props {
			o[k] = "<" + name + "." + k + ">"
		}
		return ParamValue{Type: ParamTypeObject, ObjectVal: o}
	}
	return ParamValue{Type: ParamTypeString, StringVal: "<" + name + ">"}
}

// value evaluates a param value given in a Pipeline (a pipeline task's param or a
// pipeline result) in pipeline scope: strings are substituted, a string that is one
// whole $(x[*]) becomes that array or object, arrays expand their [*] elements.
func (v *vars) value(pv ParamValue) (ParamValue, error) {
	switch typeOf(pv.Type) {
	case ParamTypeArray:
		a, err := substituteList(pv.ArrayVal, v.resolve, v.array)
		return ParamValue{Type: ParamTypeArray, ArrayVal: a}, err
	case ParamTypeObject:
		o := map[string]string{}
		for k, s := range pv.ObjectVal {
			val, err := substitute(s, v.resolve)
			if err != nil {
				return ParamValue{}, err
			}
			o[k] = val
		}
		return ParamValue{Type: ParamTypeObject, ObjectVal: o}, nil
	}
	if refs, err := findRefs(pv.StringVal); err == nil && len(refs) == 1 && refs[0].text == strings.TrimSpace(pv.StringVal) && refs[0].star() {
		if a, ok, err := v.array(refs[0]); err != nil || ok {
			return ParamValue{Type: ParamTypeArray, ArrayVal: a}, err
		}
		if o, ok, err := v.object(refs[0]); err != nil || ok {
			return ParamValue{Type: ParamTypeObject, ObjectVal: o}, err
		}
	}
	s, err := substitute(pv.StringVal, v.resolve)
	return ParamValue{Type: ParamTypeString, StringVal: s}, err
}
