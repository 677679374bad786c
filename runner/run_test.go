package runner

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/policy"
)

// syncBuffer is a log shared by concurrent steps.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// plan loads YAML documents and plans them.
func plan(t *testing.T, yaml string, po PlanOptions) *Plan {
	t.Helper()
	b, err := Load([]File{{Name: "pipeline.yaml", Data: []byte(yaml)}})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	p, err := b.Plan(po)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}

// run plans and runs, returning the record and the log.
func run(t *testing.T, yaml string, po PlanOptions, opts Options) (*Record, string) {
	t.Helper()
	p := plan(t, yaml, po)
	log := &syncBuffer{}
	opts.Log = log
	if opts.Parallel == 0 {
		opts.Parallel = 4
	}
	rec, err := Run(t.Context(), p, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rec, log.String()
}

func wantStatus(t *testing.T, rec *Record, log string, want map[string]string) {
	t.Helper()
	for task, w := range want {
		if got := rec.TaskStatus(task); got != w {
			t.Errorf("task %s: status %q, want %q\nlog:\n%s", task, got, w, log)
		}
	}
}

// nanos parses a `date +%s%N` result.
func nanos(t *testing.T, rec *Record, task, result string) time.Time {
	t.Helper()
	v, ok := rec.Result(task, result)
	if !ok {
		t.Fatalf("task %s produced no result %s", task, result)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		t.Fatalf("task %s result %s = %q: %v", task, result, v, err)
	}
	return time.Unix(0, n)
}

const timedTask = `
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: timed}
spec:
  params: [{name: sleep, default: "0.4"}]
  results: [{name: start}, {name: end}]
  steps:
    - name: work
      image: harbor.example.com/library/busybox:1.36
      script: |
        date +%s%N > $(results.start.path)
        sleep $(params.sleep)
        date +%s%N > $(results.end.path)
`

// Two independent tasks overlap; the task after both waits for both. The timestamps
// are the steps' own (date +%s%N), not the runner's bookkeeping.
func TestParallelAndOrdering(t *testing.T) {
	rec, log := run(t, timedTask+`---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: fan}
spec:
  tasks:
    - {name: a, taskRef: {name: timed}}
    - {name: b, taskRef: {name: timed}}
    - {name: c, taskRef: {name: timed}, runAfter: [a, b], params: [{name: sleep, value: "0"}]}
`, PlanOptions{}, Options{Parallel: 2})
	wantStatus(t, rec, log, map[string]string{"a": StatusSucceeded, "b": StatusSucceeded, "c": StatusSucceeded})
	aStart, aEnd := nanos(t, rec, "a", "start"), nanos(t, rec, "a", "end")
	bStart, bEnd := nanos(t, rec, "b", "start"), nanos(t, rec, "b", "end")
	cStart := nanos(t, rec, "c", "start")
	if !(aStart.Before(bEnd) && bStart.Before(aEnd)) {
		t.Errorf("a [%v, %v] and b [%v, %v] did not overlap", aStart, aEnd, bStart, bEnd)
	}
	if cStart.Before(aEnd) || cStart.Before(bEnd) {
		t.Errorf("c started at %v, before a ended (%v) or b ended (%v)", cStart, aEnd, bEnd)
	}

	// With --parallel 1 the same two tasks do not overlap.
	rec, log = run(t, timedTask+`---
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: fan}
spec:
  tasks:
    - {name: a, taskRef: {name: timed}, params: [{name: sleep, value: "0.2"}]}
    - {name: b, taskRef: {name: timed}, params: [{name: sleep, value: "0.2"}]}
`, PlanOptions{}, Options{Parallel: 1})
	wantStatus(t, rec, log, map[string]string{"a": StatusSucceeded, "b": StatusSucceeded})
	aStart, aEnd = nanos(t, rec, "a", "start"), nanos(t, rec, "a", "end")
	bStart, bEnd = nanos(t, rec, "b", "start"), nanos(t, rec, "b", "end")
	if aStart.Before(bEnd) && bStart.Before(aEnd) {
		t.Errorf("--parallel 1: a [%v, %v] and b [%v, %v] overlapped", aStart, aEnd, bStart, bEnd)
	}
}

// A result flows to a later task's param and to an embedded step; the reference alone
// orders the tasks (no runAfter).
func TestResultPassing(t *testing.T) {
	rec, log := run(t, `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: results}
spec:
  results:
    - {name: greeting, value: $(tasks.consume.results.echo)}
  tasks:
    - name: consume
      params: [{name: in, value: "got $(tasks.produce.results.word)"}]
      taskSpec:
        params: [{name: in}]
        results: [{name: echo}]
        steps:
          - name: echo
            image: harbor.example.com/library/busybox:1.36
            script: |
              printf '%s/%s' "$(params.in)" "$(tasks.produce.results.word)" > $(results.echo.path)
    - name: produce
      taskSpec:
        results: [{name: word}]
        steps:
          - name: write
            image: harbor.example.com/library/busybox:1.36
            script: sleep 0.2; printf hello > $(results.word.path)
`, PlanOptions{}, Options{})
	wantStatus(t, rec, log, map[string]string{"produce": StatusSucceeded, "consume": StatusSucceeded})
	if got, _ := rec.Result("consume", "echo"); got != "got hello/hello" {
		t.Errorf("consume echo = %q, want %q", got, "got hello/hello")
	}
	if len(rec.Status.Results) != 1 || rec.Status.Results[0].Value.StringVal != "got hello/hello" {
		t.Errorf("pipeline results = %+v", rec.Status.Results)
	}
}

// Params of every type, defaults, context and workspaces.
func TestParamsAndWorkspaces(t *testing.T) {
	dir := t.TempDir()
	rec, log := run(t, `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: params}
spec:
  params:
    - {name: flags, type: array}
    - {name: who, default: world}
    - {name: cfg, type: object, properties: {region: {}, zone: {}}}
  workspaces:
    - {name: out}
    - {name: extra, optional: true}
  tasks:
    - name: show
      params:
        - {name: flags, value: ["-n", "$(params.flags[*])"]}
        - {name: who, value: $(params.who)}
        - {name: cfg, value: "$(params.cfg[*])"}
      workspaces:
        - {name: out, workspace: out, subPath: sub}
        - {name: extra, workspace: extra}
      taskSpec:
        params:
          - {name: flags, type: array}
          - {name: who}
          - {name: cfg, type: object, properties: {region: {}, zone: {}}}
          - {name: suffix, default: "!"}
        workspaces: [{name: out}, {name: extra, optional: true}]
        steps:
          - name: args
            image: harbor.example.com/library/busybox:1.36
            command: [sh, -c, 'printf "%s|" "$@" > $(workspaces.out.path)/args', argv0]
            args: ["$(params.flags[*])", "$(params.flags[1])"]
          - name: env
            image: harbor.example.com/library/busybox:1.36
            env:
              - {name: WHO, value: "$(params.who)$(params.suffix)"}
              - {name: REGION, value: $(params.cfg.region)}
            workingDir: $(workspaces.out.path)
            script: |
              #!/bin/sh
              echo "$WHO $REGION $(context.pipelineRun.name) $(context.task.name) extra=$(workspaces.extra.bound)" > env
`, PlanOptions{
		Params:     map[string]string{"flags": "a,b", "cfg": "region:eu,zone:1"},
		Workspaces: map[string]string{"out": dir},
		RunName:    "run-7",
	}, Options{})
	wantStatus(t, rec, log, map[string]string{"show": StatusSucceeded})
	got, _ := os.ReadFile(filepath.Join(dir, "sub", "args"))
	if want := "-n|a|b|a|"; string(got) != want {
		t.Errorf("args = %q, want %q", got, want)
	}
	got, _ = os.ReadFile(filepath.Join(dir, "sub", "env"))
	if want := "world! eu run-7 show extra=false\n"; string(got) != want {
		t.Errorf("env = %q, want %q", got, want)
	}
}

func TestLogPrefix(t *testing.T) {
	_, log := run(t, `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: logs}
spec:
  tasks:
    - name: talk
      taskSpec:
        steps:
          - name: say
            image: harbor.example.com/library/busybox:1.36
            script: |
              echo one
              echo two >&2
              printf partial
`, PlanOptions{}, Options{})
	for _, want := range []string{"[talk/say] one\n", "[talk/say] two\n", "[talk/say] partial\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// when: in/notin skip the guarded task only; a task consuming a skipped task's result
// is skipped; the others run.
func TestWhenSkips(t *testing.T) {
	rec, log := run(t, `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: when}
spec:
  params: [{name: env, default: dev}]
  tasks:
    - name: prod-only
      when: [{input: $(params.env), operator: in, values: [production]}]
      taskSpec:
        results: [{name: r}]
        steps: [{name: s, image: harbor.example.com/x/y:1, script: printf x > $(results.r.path)}]
    - name: not-prod
      when: [{input: $(params.env), operator: notin, values: [production]}]
      taskSpec:
        steps: [{name: s, image: harbor.example.com/x/y:1, script: "true"}]
    - name: after-skipped
      runAfter: [prod-only]
      taskSpec:
        steps: [{name: s, image: harbor.example.com/x/y:1, script: "true"}]
    - name: uses-result
      params: [{name: v, value: $(tasks.prod-only.results.r)}]
      taskSpec:
        params: [{name: v}]
        steps: [{name: s, image: harbor.example.com/x/y:1, script: "true"}]
`, PlanOptions{}, Options{})
	wantStatus(t, rec, log, map[string]string{
		"prod-only":     StatusSkipped,
		"not-prod":      StatusSucceeded,
		"after-skipped": StatusSucceeded,
		"uses-result":   StatusSkipped,
	})
	if !rec.Succeeded() {
		t.Errorf("run did not succeed: %+v", rec.Status.Conditions)
	}
	if reason, _ := rec.Outcome(); reason != "Completed" {
		t.Errorf("outcome %s, want Completed (tasks were skipped)", reason)
	}
}

const finallyPipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: fin}
spec:
  params: [{name: fail, default: "no"}]
  workspaces: [{name: out}]
  tasks:
    - name: first
      params: [{name: fail, value: $(params.fail)}]
      taskSpec:
        params: [{name: fail}]
        steps: [{name: s, image: harbor.example.com/x/y:1, script: 'test "$(params.fail)" = no'}]
    - name: second
      runAfter: [first]
      workspaces: [{name: out, workspace: out}]
      taskSpec:
        workspaces: [{name: out}]
        steps: [{name: s, image: harbor.example.com/x/y:1, script: touch $(workspaces.out.path)/second-ran}]
  finally:
    - name: report
      params: [{name: status, value: $(tasks.status)}, {name: first, value: $(tasks.first.status)}]
      workspaces: [{name: out, workspace: out}]
      taskSpec:
        params: [{name: status}, {name: first}]
        workspaces: [{name: out}]
        steps: [{name: s, image: harbor.example.com/x/y:1, script: 'echo "$(params.status) $(params.first)" > $(workspaces.out.path)/finally'}]
`

func TestFinally(t *testing.T) {
	for _, tc := range []struct {
		fail, want, second, outcome string
	}{
		{"no", "Succeeded Succeeded\n", StatusSucceeded, "Succeeded"},
		{"yes", "Failed Failed\n", StatusSkipped, "Failed"},
	} {
		t.Run("fail="+tc.fail, func(t *testing.T) {
			dir := t.TempDir()
			rec, log := run(t, finallyPipeline, PlanOptions{Params: map[string]string{"fail": tc.fail}, Workspaces: map[string]string{"out": dir}}, Options{})
			wantStatus(t, rec, log, map[string]string{"second": tc.second, "report": StatusSucceeded})
			got, err := os.ReadFile(filepath.Join(dir, "finally"))
			if err != nil {
				t.Fatalf("finally did not run: %v\n%s", err, log)
			}
			if string(got) != tc.want {
				t.Errorf("finally saw %q, want %q", got, tc.want)
			}
			_, err = os.Stat(filepath.Join(dir, "second-ran"))
			if ran := err == nil; ran != (tc.second == StatusSucceeded) {
				t.Errorf("second ran = %v, want status %s", ran, tc.second)
			}
			if reason, _ := rec.Outcome(); reason != tc.outcome {
				t.Errorf("outcome %s, want %s", reason, tc.outcome)
			}
		})
	}
}

// A task that fails twice then succeeds passes with retries: 2 and fails with
// retries: 1; each attempt is recorded.
func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		retries  int
		want     string
		attempts int
	}{{2, StatusSucceeded, 3}, {1, StatusFailed, 2}} {
		t.Run(strconv.Itoa(tc.retries), func(t *testing.T) {
			dir := t.TempDir()
			rec, log := run(t, `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: retry}
spec:
  workspaces: [{name: w}]
  tasks:
    - name: flaky
      retries: `+strconv.Itoa(tc.retries)+`
      workspaces: [{name: w, workspace: w}]
      taskSpec:
        workspaces: [{name: w}]
        steps:
          - name: s
            image: harbor.example.com/x/y:1
            script: |
              echo "try $(context.task.retry-count)" >> $(workspaces.w.path)/tries
              test "$(wc -l < $(workspaces.w.path)/tries)" -ge 3
`, PlanOptions{Workspaces: map[string]string{"w": dir}}, Options{})
			wantStatus(t, rec, log, map[string]string{"flaky": tc.want})
			tries, _ := os.ReadFile(filepath.Join(dir, "tries"))
			var want strings.Builder
			for i := range tc.attempts {
				want.WriteString("try " + strconv.Itoa(i) + "\n")
			}
			if string(tries) != want.String() {
				t.Errorf("attempts %q, want %q", tries, want.String())
			}
			if n := len(rec.Status.TaskRuns["flaky"].Status.RetriesStatus); n != tc.attempts-1 {
				t.Errorf("retriesStatus has %d entries, want %d", n, tc.attempts-1)
			}
		})
	}
}

// A task timeout kills the step and its children (the whole process group), quickly;
// a step timeout does the same for one step.
func TestTimeouts(t *testing.T) {
	for _, tc := range []struct{ name, task, step string }{
		{"task", "timeout: 300ms", ""},
		{"step", "", "timeout: 300ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			start := time.Now()
			rec, log := run(t, `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: slow}
spec:
  workspaces: [{name: w}]
  tasks:
    - name: slow
      `+tc.task+`
      workspaces: [{name: w, workspace: w}]
      taskSpec:
        workspaces: [{name: w}]
        steps:
          - name: s
            image: harbor.example.com/x/y:1
            `+tc.step+`
            script: |
              (sleep 3; touch $(workspaces.w.path)/child-survived) &
              sleep 30
`, PlanOptions{Workspaces: map[string]string{"w": dir}}, Options{})
			took := time.Since(start)
			want := StatusTimedOut
			if tc.name == "step" {
				want = StatusFailed
			}
			wantStatus(t, rec, log, map[string]string{"slow": want})
			if took > 5*time.Second {
				t.Errorf("run took %v after a 300ms timeout", took)
			}
			time.Sleep(3500*time.Millisecond - time.Since(start))
			if _, err := os.Stat(filepath.Join(dir, "child-survived")); err == nil {
				t.Errorf("the step's background child outlived the timeout")
			}
		})
	}
}

// Cancelling the run kills running steps, skips the rest, and still runs finally.
func TestCancelRunsFinally(t *testing.T) {
	dir := t.TempDir()
	p := plan(t, `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: cancel}
spec:
  workspaces: [{name: w}]
  tasks:
    - name: long
      taskSpec:
        steps: [{name: s, image: harbor.example.com/x/y:1, script: sleep 30}]
    - name: later
      runAfter: [long]
      taskSpec:
        steps: [{name: s, image: harbor.example.com/x/y:1, script: "true"}]
  finally:
    - name: cleanup
      workspaces: [{name: w, workspace: w}]
      taskSpec:
        workspaces: [{name: w}]
        steps: [{name: s, image: harbor.example.com/x/y:1, script: 'echo $(tasks.status) > $(workspaces.w.path)/cleanup'}]
`, PlanOptions{Workspaces: map[string]string{"w": dir}})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	log := &syncBuffer{}
	rec, err := Run(ctx, p, Options{Log: log, Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("cancelled run took %v", took)
	}
	wantStatus(t, rec, log.String(), map[string]string{"long": StatusCancelled, "later": StatusSkipped, "cleanup": StatusSucceeded})
	got, _ := os.ReadFile(filepath.Join(dir, "cleanup"))
	if string(got) != "Failed\n" {
		t.Errorf("finally saw tasks.status %q, want Failed", got)
	}
	if reason, _ := rec.Outcome(); reason != "Cancelled" {
		t.Errorf("outcome %s, want Cancelled", reason)
	}
}

// The gate between stages: a change to the GitOps workspace is judged against a
// snapshot taken before the task; a blocking verdict fails the task and no later task
// runs; a passing one lets them run.
func TestChangeGate(t *testing.T) {
	const pipeline = `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: deploy}
spec:
  params: [{name: image}]
  workspaces: [{name: gitops}, {name: out}]
  tasks:
    - name: update
      params: [{name: image, value: $(params.image)}]
      workspaces: [{name: repo, workspace: gitops}]
      taskSpec:
        params: [{name: image}]
        workspaces: [{name: repo}]
        steps:
          - name: s
            image: harbor.example.com/x/y:1
            script: |
              echo "image: $(params.image)" > $(workspaces.repo.path)/app.yaml
              mkdir -p $(workspaces.repo.path)/new/sub && touch $(workspaces.repo.path)/new/sub/f.yaml
              rm $(workspaces.repo.path)/old.yaml
    - name: push
      runAfter: [update]
      workspaces: [{name: out, workspace: out}]
      taskSpec:
        workspaces: [{name: out}]
        steps: [{name: s, image: harbor.example.com/x/y:1, script: 'touch $(workspaces.out.path)/pushed'}]
`
	for _, tc := range []struct {
		image  string
		block  bool
		keep   bool
		update string
	}{
		{"docker.io/evil:1", true, false, StatusBlocked},
		{"docker.io/evil:1", true, true, StatusBlocked},
		{"harbor.example.com/app:2", false, false, StatusSucceeded},
	} {
		t.Run(tc.image+"/keep="+strconv.FormatBool(tc.keep), func(t *testing.T) {
			repo, out := t.TempDir(), t.TempDir()
			if err := os.WriteFile(filepath.Join(repo, "app.yaml"), []byte("image: harbor.example.com/app:1\n"), 0o666); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(repo, "old.yaml"), []byte("old\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			var calls int
			var before, after string
			gate := func(ctx context.Context, b, a string) (*policy.Report, error) {
				calls++
				bb, _ := os.ReadFile(filepath.Join(b, "app.yaml"))
				ab, _ := os.ReadFile(filepath.Join(a, "app.yaml"))
				before, after = string(bb), string(ab)
				rep := &policy.Report{Changes: &policy.Changes{}}
				if strings.Contains(after, "docker.io") {
					r := policy.Result{Kind: "Deployment", Name: "app", Policy: "restrict-image-registries", Rule: "r", Status: policy.StatusFail, Action: policy.Enforce, Baseline: policy.BaselineNew, Message: "unapproved registry"}
					rep.Results = append(rep.Results, r)
					rep.Changes.CountBaselines(rep.Results)
				}
				return rep, nil
			}
			rec, log := run(t, pipeline, PlanOptions{
				Params:     map[string]string{"image": tc.image},
				Workspaces: map[string]string{"gitops": repo, "out": out},
			}, Options{ChangeGate: gate, GitOpsWorkspaces: []string{"gitops"}, KeepRefusedChanges: tc.keep})
			if calls != 1 {
				t.Fatalf("change gate called %d times, want 1\n%s", calls, log)
			}
			if before != "image: harbor.example.com/app:1\n" || after != "image: "+tc.image+"\n" {
				t.Errorf("gate saw before %q after %q", before, after)
			}
			push := StatusSucceeded
			if tc.block {
				push = StatusSkipped
			}
			wantStatus(t, rec, log, map[string]string{"update": tc.update, "push": push})
			_, err := os.Stat(filepath.Join(out, "pushed"))
			if pushed := err == nil; pushed == tc.block {
				t.Errorf("pushed = %v with a blocking gate = %v", pushed, tc.block)
			}
			if tc.block && !strings.Contains(log, "[update] gate: ") {
				t.Errorf("log does not print the blocking finding:\n%s", log)
			}
			// A refused change is undone (unless kept): modified, added and removed paths.
			undone := tc.block && !tc.keep
			app, _ := os.ReadFile(filepath.Join(repo, "app.yaml"))
			if got := string(app) == "image: harbor.example.com/app:1\n"; got != undone {
				t.Errorf("app.yaml = %q; undone = %v, want %v", app, got, undone)
			}
			_, err = os.Stat(filepath.Join(repo, "new"))
			if got := os.IsNotExist(err); got != undone {
				t.Errorf("added directory new/ removed = %v, want %v", got, undone)
			}
			st, err := os.Stat(filepath.Join(repo, "old.yaml"))
			if got := err == nil; got != undone {
				t.Errorf("removed old.yaml restored = %v, want %v", got, undone)
			} else if undone && st.Mode().Perm() != 0o600 {
				t.Errorf("old.yaml restored with mode %v, want 0600", st.Mode().Perm())
			}
		})
	}
}

// A .gitgate.yaml at a workspace's root declares it a GitOps workspace.
func TestGitOpsWorkspaceDetected(t *testing.T) {
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, policy.ConfigFile), []byte("registries: [harbor.example.com]\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	calls := 0
	gate := func(ctx context.Context, b, a string) (*policy.Report, error) { calls++; return &policy.Report{}, nil }
	rec, log := run(t, `
apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: detect}
spec:
  workspaces: [{name: repo}]
  tasks:
    - name: read
      workspaces: [{name: repo, workspace: repo}]
      taskSpec:
        workspaces: [{name: repo}]
        steps: [{name: s, image: harbor.example.com/x/y:1, script: 'cat $(workspaces.repo.path)/.gitgate.yaml'}]
    - name: write
      runAfter: [read]
      workspaces: [{name: repo, workspace: repo}]
      taskSpec:
        workspaces: [{name: repo}]
        steps: [{name: s, image: harbor.example.com/x/y:1, script: 'echo x > $(workspaces.repo.path)/new.yaml'}]
`, PlanOptions{Workspaces: map[string]string{"repo": repo}}, Options{ChangeGate: gate})
	wantStatus(t, rec, log, map[string]string{"read": StatusSucceeded, "write": StatusSucceeded})
	if calls != 1 {
		t.Errorf("gate called %d times, want 1 (only write changed the workspace)", calls)
	}
	if cg := rec.Status.TaskRuns["write"].Status.ChangeGate; cg == nil || len(cg.Files) != 1 || cg.Files[0] != "new.yaml" {
		t.Errorf("write's change record = %+v", cg)
	}
}

// A lone Task runs as a one-task pipeline.
func TestTaskAlone(t *testing.T) {
	dir := t.TempDir()
	rec, log := run(t, `
apiVersion: tekton.dev/v1
kind: Task
metadata: {name: alone}
spec:
  params: [{name: msg}, {name: list, type: array, default: [x, y]}]
  workspaces: [{name: out}]
  steps:
    - name: s
      image: harbor.example.com/x/y:1
      command: [sh, -c, 'echo "$0 $1 $2" > $(workspaces.out.path)/msg', "$(params.msg)", "$(params.list[*])"]
`, PlanOptions{Params: map[string]string{"msg": "hi"}, Workspaces: map[string]string{"out": dir}}, Options{})
	wantStatus(t, rec, log, map[string]string{"alone": StatusSucceeded})
	got, _ := os.ReadFile(filepath.Join(dir, "msg"))
	if string(got) != "hi x y\n" {
		t.Errorf("got %q", got)
	}
}

func TestSummary(t *testing.T) {
	dir := t.TempDir()
	rec, _ := run(t, finallyPipeline, PlanOptions{Params: map[string]string{"fail": "yes"}, Workspaces: map[string]string{"out": dir}}, Options{})
	var b bytes.Buffer
	if err := WriteSummary(&b, rec); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"TASK", "STATUS", "DURATION", "RESULTS", "first", "Failed", "second", "Skipped", "report (finally)", "Succeeded", "fin-run Failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	var j bytes.Buffer
	if err := WriteRecord(&j, rec); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"kind": "PipelineRun"`, `"type": "Succeeded"`, `"status": "False"`, `"skippedTasks"`, `"childReferences"`, `"pipelineTaskName": "report"`} {
		if !strings.Contains(j.String(), want) {
			t.Errorf("record lacks %s", want)
		}
	}
}

// Many scripts written and started at once all run: exec'ing a just-written script
// while other goroutines fork fails with "text file busy", so scripts are handed to
// their interpreter instead (regression test).
func TestManyScriptsAtOnce(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {name: many}\nspec:\n  tasks:\n")
	for i := range 40 {
		b.WriteString("    - {name: t" + strconv.Itoa(i) + ", taskSpec: {results: [{name: r}], steps: [{name: a, image: x/y:1, script: \"printf ok > $(results.r.path)\"}, {name: b, image: x/y:1, script: \"#!/usr/bin/env sh\\ntrue\"}]}}\n")
	}
	for range 3 {
		rec, log := run(t, b.String(), PlanOptions{}, Options{Parallel: 40})
		if !rec.Succeeded() {
			t.Fatalf("run failed:\n%s", log)
		}
		for i := range 40 {
			if v, _ := rec.Result("t"+strconv.Itoa(i), "r"); v != "ok" {
				t.Errorf("t%d: result %q", i, v)
			}
		}
	}
}
