package runner

import (
	"strings"
	"testing"

	"github.com/gitgate/gitgate/policy"
)

const okTask = `
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: build}
spec:
  params: [{name: image}, {name: args, type: array, default: []}]
  workspaces: [{name: source}]
  results: [{name: digest}]
  steps:
    - name: compile
      image: harbor.example.com/library/golang:1.22
      workingDir: $(workspaces.source.path)
      args: ["$(params.args[*])"]
      command: [go, build]
    - name: digest
      image: harbor.example.com/library/bash:5.2
      script: echo -n sha256:1 > $(results.digest.path)
`

// Bad input is refused before anything runs, naming file:line, task, step and field.
func TestPlanErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		po   PlanOptions
		want []string
	}{
		{
			name: "cycle",
			yaml: `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: loop}
spec:
  tasks:
    - {name: a, runAfter: [c], taskSpec: {steps: [{name: s, image: x/y:1, script: "true"}]}}
    - {name: b, runAfter: [a], taskSpec: {steps: [{name: s, image: x/y:1, script: "true"}]}}
    - {name: c, runAfter: [b], taskSpec: {steps: [{name: s, image: x/y:1, script: "true"}]}}
`,
			want: []string{"pipeline.yaml:", "dependency cycle: a -> b -> c -> a"},
		},
		{
			name: "cycle through a result",
			yaml: `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: loop}
spec:
  tasks:
    - name: a
      params: [{name: p, value: $(tasks.b.results.r)}]
      taskSpec: {params: [{name: p}], results: [{name: r}], steps: [{name: s, image: x/y:1, script: "true"}]}
    - {name: b, runAfter: [a], taskSpec: {results: [{name: r}], steps: [{name: s, image: x/y:1, script: "true"}]}}
`,
			want: []string{"dependency cycle: a -> b -> a"},
		},
		{
			name: "unknown param in a referenced Task's step",
			yaml: okTask + `
    - name: oops
      image: harbor.example.com/library/bash:5.2
      env: [{name: HOME, value: $(params.userHome)}]
---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  workspaces: [{name: ws}]
  tasks:
    - {name: compile, taskRef: {name: build}, params: [{name: image, value: x}], workspaces: [{name: source, workspace: ws}]}
`,
			po:   PlanOptions{Workspaces: map[string]string{"ws": "TMP"}},
			want: []string{"pipeline.yaml:21:", "task compile (Task build), step oops, field env HOME", `unknown param "userHome"`},
		},
		{
			name: "unknown result",
			yaml: okTask + `---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  workspaces: [{name: ws}]
  tasks:
    - {name: compile, taskRef: {name: build}, params: [{name: image, value: x}], workspaces: [{name: source, workspace: ws}]}
    - name: deploy
      params: [{name: d, value: $(tasks.compile.results.DIGEST)}]
      taskSpec: {params: [{name: d}], steps: [{name: s, image: x/y:1, script: "true"}]}
`,
			po:   PlanOptions{Workspaces: map[string]string{"ws": "TMP"}},
			want: []string{"task deploy, param d", `task compile declares no result "DIGEST" (results: digest)`},
		},
		{
			name: "unknown task",
			yaml: `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  tasks:
    - name: deploy
      runAfter: [biuld]
      taskSpec:
        steps: [{name: s, image: x/y:1, script: "echo $(tasks.build.results.x)"}]
`,
			want: []string{"task deploy: runAfter biuld: no such task", "task deploy, step s, field script", `unknown task "build"`},
		},
		{
			name: "unknown workspace in a step",
			yaml: `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  tasks:
    - name: t
      taskSpec:
        steps: [{name: s, image: x/y:1, workingDir: $(workspaces.src.path), script: "true"}]
`,
			want: []string{"pipeline.yaml:9:", "task t, step s, field workingDir", `unknown workspace "src"`},
		},
		{
			name: "unknown taskRef",
			yaml: `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  tasks:
    - {name: clone, taskRef: {name: git-clone}}
`,
			want: []string{"task clone: taskRef git-clone: no Task named git-clone in the input files; pass its file with -f"},
		},
		{
			name: "missing required param and workspace",
			yaml: okTask + `---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  params: [{name: image}]
  workspaces: [{name: ws}]
  tasks:
    - {name: compile, taskRef: {name: build}, params: [{name: image, value: $(params.image)}], workspaces: [{name: source, workspace: ws}]}
`,
			want: []string{"required param image has no value and no default; pass --param image=VALUE", "required workspace ws is not bound; pass --workspace ws=DIR"},
		},
		{
			name: "task param not given",
			yaml: okTask + `---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  workspaces: [{name: ws}]
  tasks:
    - {name: compile, taskRef: {name: build}, workspaces: [{name: source, workspace: ws}]}
`,
			po:   PlanOptions{Workspaces: map[string]string{"ws": "TMP"}},
			want: []string{"task compile (Task build): required param image is not given"},
		},
		{
			name: "unknown --param",
			yaml: `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  tasks: [{name: t, taskSpec: {steps: [{name: s, image: x/y:1, script: "true"}]}}]
`,
			po:   PlanOptions{Params: map[string]string{"nope": "1"}},
			want: []string{"--param nope: Pipeline p has no param nope"},
		},
		{
			name: "array param used as a string",
			yaml: `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  tasks:
    - name: t
      taskSpec:
        params: [{name: list, type: array, default: [a]}]
        steps: [{name: s, image: x/y:1, script: "echo $(params.list)"}]
`,
			want: []string{"task t, step s, field script", "param list is an array"},
		},
		{
			name: "tasks.status outside finally",
			yaml: `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  tasks:
    - name: t
      params: [{name: s, value: $(tasks.status)}]
      taskSpec: {params: [{name: s}], steps: [{name: s, image: x/y:1, script: "true"}]}
`,
			want: []string{"only valid in finally tasks"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.po.Workspaces {
				if v == "TMP" {
					tc.po.Workspaces[k] = t.TempDir()
				}
			}
			b, err := Load([]File{{Name: "pipeline.yaml", Data: []byte(tc.yaml)}})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			_, err = b.Plan(tc.po)
			if err == nil {
				t.Fatalf("Plan succeeded, want an error containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestLoadStrict(t *testing.T) {
	_, err := Load([]File{{Name: "tasks/bad.yaml", Data: []byte(`
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: bad}
spec:
  steps:
    - name: s
      image: x/y:1
      scirpt: echo
`)}})
	if err == nil || !strings.HasPrefix(err.Error(), `tasks/bad.yaml:9:7: Task/bad: unknown field "spec.steps[0].scirpt"`) {
		t.Errorf("err = %v, want the file, the Task and the unknown field", err)
	}
	_, err = Load([]File{{Name: "old.yaml", Data: []byte("apiVersion: tekton.dev/v1beta1\nkind: Task\nmetadata: {name: old}\nspec: {}\n")}})
	if err == nil || !strings.Contains(err.Error(), "old.yaml:1:1: Task/old: apiVersion tekton.dev/v1beta1 is not supported") {
		t.Errorf("err = %v", err)
	}
}

// Where names the task and step a gate finding's field path points into.
func TestWhere(t *testing.T) {
	b, err := Load([]File{{Name: "p.yaml", Data: []byte(okTask + `---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  workspaces: [{name: ws}]
  tasks:
    - {name: compile, taskRef: {name: build}, params: [{name: image, value: x}], workspaces: [{name: source, workspace: ws}]}
    - name: inline
      taskSpec: {steps: [{name: one, image: x/y:1, script: "true"}, {name: two, image: x/y:1, script: "true"}]}
`)}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.Plan(PlanOptions{Workspaces: map[string]string{"ws": t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Resources) != 2 {
		t.Errorf("gate resources: %d, want the Pipeline and Task build once each", len(p.Resources))
	}
	for _, tc := range []struct {
		r    policy.Result
		want string
	}{
		{policy.Result{Kind: "Task", Name: "build", Path: "spec.steps[1].image"}, "task compile (Task build), step digest"},
		{policy.Result{Kind: "Pipeline", Name: "p", Path: "spec.tasks[1].taskSpec.steps[1].securityContext"}, "task inline, step two"},
		{policy.Result{Kind: "Pipeline", Name: "p", Path: "spec.tasks[0]"}, "task compile"},
		// foreach rules name no path, only the step; "every step and sidecar" names none.
		{policy.Result{Kind: "Task", Name: "build", Message: "Run every step and sidecar as non-root; step compile runs as runAsUser 0 (root)"}, "task compile (Task build), step compile"},
		{policy.Result{Kind: "Pipeline", Name: "p", Message: "Set it on every step and sidecar; step two of task inline may escalate privileges"}, "task inline, step two"},
		{policy.Result{Kind: "Task", Name: "build", Message: "step nosuch is wrong"}, "task compile (Task build)"},
	} {
		if got := p.locate(tc.r).where; got != tc.want {
			t.Errorf("Where(%s %s %q) = %q, want %q", tc.r.Kind, tc.r.Path, tc.r.Message, got, tc.want)
		}
	}
	// A finding with no field path points at the step it names.
	r := policy.Result{Kind: "Task", Name: "build", Policy: "tekton-require-non-root", Rule: "task-run-as-non-root", Status: policy.StatusFail, Action: policy.Enforce,
		Origin: policy.Origin{File: "p.yaml", Line: 2, Col: 1}, Message: "step digest runs as runAsUser 0 (root)"}
	want := "p.yaml:15:7: Task/build: task compile (Task build), step digest: tekton-require-non-root/task-run-as-non-root: step digest runs as runAsUser 0 (root)"
	if got := p.Describe(r); got != want {
		t.Errorf("Describe:\n got %s\nwant %s", got, want)
	}
}
