package runner

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/policy"
)

// location is the pipeline task and step a gate finding is about.
type location struct {
	where  string        // "task build (Task kaniko-build), step build-and-push"
	origin policy.Origin // the step's position, when the finding had none more precise
	ok     bool
}

// stepInMessage finds "step NAME", "sidecar NAME" and "of task NAME" in a rule's
// message: rules that iterate over steps (foreach) name no field path, only the step.
var stepInMessage = regexp.MustCompile(`\b(step|sidecar|of task) ([A-Za-z0-9][A-Za-z0-9_.-]*)`)

// messageNames returns the names a message puts after "step", "sidecar" and "of
// task", in order; callers keep the first that is a real step or task ("every step and
// sidecar" names none).
func messageNames(msg, kind string) []string {
	var out []string
	for _, m := range stepInMessage.FindAllStringSubmatch(msg, -1) {
		if m[1] == kind {
			out = append(out, m[2])
		}
	}
	return out
}

// stepIn finds the step (or sidecar) of spec a path or message names; field is
// "steps" or "sidecars".
func stepIn(spec TaskSpec, rest []string, msg string) (label, field string, index int) {
	if len(rest) >= 2 {
		if i, err := strconv.Atoi(rest[1]); err == nil {
			switch {
			case rest[0] == "steps" && i < len(spec.Steps):
				return ", step " + spec.Steps[i].Name, "steps", i
			case rest[0] == "sidecars" && i < len(spec.Sidecars):
				return ", sidecar " + spec.Sidecars[i].Name, "sidecars", i
			}
		}
	}
	if len(rest) >= 1 && rest[0] == "stepTemplate" {
		return ", stepTemplate", "", -1
	}
	if len(rest) > 1 {
		return "", "", -1
	}
	for _, name := range messageNames(msg, "step") {
		for i, s := range spec.Steps {
			if s.Name == name {
				return ", step " + s.Name, "steps", i
			}
		}
	}
	for _, name := range messageNames(msg, "sidecar") {
		for i, s := range spec.Sidecars {
			if s.Name == name {
				return ", sidecar " + s.Name, "sidecars", i
			}
		}
	}
	return "", "", -1
}

func (p *Plan) locate(r policy.Result) location {
	segs := splitFieldPath(r.Path)
	switch r.Kind {
	case "Task":
		res, ok := p.taskRes[r.Name]
		if !ok {
			return location{}
		}
		var task Task
		data, _ := json.Marshal(res.Object.Object)
		if err := json.Unmarshal(data, &task); err != nil {
			return location{}
		}
		loc := location{where: "Task " + r.Name, origin: r.Origin, ok: true}
		if users := p.tasksUsing[r.Name]; len(users) > 0 {
			loc.where = "task " + strings.Join(users, ", ") + " (Task " + r.Name + ")"
		}
		var rest []string
		if len(segs) > 0 && segs[0] == "spec" {
			rest = segs[1:]
		}
		label, field, i := stepIn(task.Spec, rest, r.Message)
		loc.where += label
		if field != "" && r.Path == "" {
			loc.origin = res.FieldOrigin([]string{"spec", field, strconv.Itoa(i)})
		}
		return loc
	case "Pipeline":
		list, idx := "", -1
		var rest []string
		if len(segs) >= 3 && segs[0] == "spec" {
			if i, err := strconv.Atoi(segs[2]); err == nil {
				list, idx = segs[1], i
				rest = segs[3:]
			}
		}
		if idx < 0 {
			for _, task := range messageNames(r.Message, "of task") {
				for _, l := range []string{"tasks", "finally"} {
					for i, pt := range p.pipelineList(l) {
						if pt.Name == task && idx < 0 {
							list, idx = l, i
						}
					}
				}
			}
		}
		tasks := p.pipelineList(list)
		if idx < 0 || idx >= len(tasks) {
			return location{}
		}
		pt := tasks[idx]
		loc := location{where: "task " + pt.Name, origin: r.Origin, ok: true}
		if pt.TaskSpec == nil {
			return loc
		}
		if len(rest) > 0 && rest[0] == "taskSpec" {
			rest = rest[1:]
		}
		label, field, i := stepIn(pt.TaskSpec.TaskSpec, rest, r.Message)
		loc.where += label
		if field != "" && r.Path == "" {
			loc.origin = p.at("spec", list, strconv.Itoa(idx), "taskSpec", field, strconv.Itoa(i))
		}
		return loc
	}
	return location{}
}

func (p *Plan) pipelineList(name string) []PipelineTask {
	switch name {
	case "tasks":
		return p.Pipeline.Spec.Tasks
	case "finally":
		return p.Pipeline.Spec.Finally
	}
	return nil
}

// Describe is a gate finding as a line, with the task and step inserted after the
// resource and, for a finding that named only the resource, the step's position:
// file:line:col: Task/ns/name: task build (Task kaniko-build), step build-and-push:
// policy/rule: message.
func (p *Plan) Describe(r policy.Result) string {
	loc := p.locate(r)
	if !loc.ok {
		return policy.FindingLine(r)
	}
	r.Origin = loc.origin
	line := policy.FindingLine(r)
	prefix := r.Origin.String() + ": " + r.ResourceID() + ": "
	if !strings.HasPrefix(line, prefix) {
		return line
	}
	return prefix + loc.where + ": " + line[len(prefix):]
}
