package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/runner"
)

const (
	// buildAndDeploy is the seed's pipeline with local stand-ins, relative to this package.
	buildAndDeploy = "../../testdata/pipelines/build-and-deploy"
	// exampleRepo is the seed-shaped GitOps repository update-manifest edits (a copy).
	exampleRepo = "../../testdata/gitops"
)

// The seed's build-and-deploy pipeline, end to end through the CLI with the real gate
// between stages (render.Compare of the GitOps workspace before and after each task):
// update-manifest moving gateway-session-002 to an unapproved registry is blocked and
// push never runs; the same stage with an approved image passes and push runs.
func TestRunBuildAndDeploy(t *testing.T) {
	for _, tc := range []struct {
		name     string
		registry string
		extra    []string
		code     int
		pushed   bool
		stderr   []string
		summary  []string
	}{
		{
			name:     "approved image",
			registry: "harbor.example.com/release",
			code:     exitClean,
			pushed:   true,
			stderr:   []string{"[update-manifest] gate: the change to workspace gitops passes", "[push/git-push] pushed apps/gateway-session-002/overlays/production/kustomization.yaml"},
			summary:  []string{"update-manifest", "push ", "Succeeded", "build-and-deploy-run Succeeded"},
		},
		{
			name:     "unapproved registry",
			registry: "docker.io/library",
			extra:    []string{"--gitops-workspace", "gitops"},
			code:     exitViolations,
			pushed:   false,
			stderr: []string{
				"[update-manifest] gate: gitops/apps/gateway-session-002/overlays/production/kustomization.yaml:",
				"Deployment/gateway-session-002-production/gateway-session-002: restrict-image-registries/",
				"[update-manifest] blocked: the gate refused the change to workspace gitops",
				"[update-manifest] the refused change to workspace gitops was undone (2 paths restored)",
				"[push] skipped: PipelineRun was stopping",
				"[notify/send-notification] Pipeline Failed",
			},
			summary: []string{"Blocked", "Skipped", "build-and-deploy-run Failed"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			gitops, shared := filepath.Join(work, "gitops"), filepath.Join(work, "shared")
			if err := os.CopyFS(gitops, os.DirFS(exampleRepo)); err != nil {
				t.Fatal(err)
			}
			pipeline, err := filepath.Abs(buildAndDeploy)
			if err != nil {
				t.Fatal(err)
			}
			orig, err := os.ReadFile(filepath.Join(exampleRepo, "apps/gateway-session-002/overlays/production/kustomization.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			t.Chdir(work) // findings are shown relative to where the user stands
			record := filepath.Join(work, "run.json")
			args := append([]string{"run", "-f", pipeline, "--registry", "harbor.example.com",
				"-p", "git-url=https://gitlab.example.com/apps/gateway-session-002.git", "-p", "image-tag=3.2.7",
				"-p", "image-registry=" + tc.registry,
				"-w", "shared-workspace=" + shared, "-w", "gitops=" + gitops, "--record", record}, tc.extra...)
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), args, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			for _, want := range tc.stderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
			for _, want := range tc.summary {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("summary lacks %q:\n%s", want, stdout.String())
				}
			}
			_, err = os.Stat(filepath.Join(shared, "pushed"))
			if pushed := err == nil; pushed != tc.pushed {
				t.Errorf("push ran = %v, want %v", pushed, tc.pushed)
			}
			overlay, err := os.ReadFile(filepath.Join(gitops, "apps/gateway-session-002/overlays/production/kustomization.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			// A refused change is undone: the overlay is as it was before the pipeline.
			want := "newName: " + tc.registry + "/gateway-session-002\n  newTag: \"3.2.7\""
			if !tc.pushed {
				want = string(orig)
			}
			if !strings.Contains(string(overlay), want) {
				t.Errorf("the overlay lacks %q:\n%s", want, overlay)
			}
			data, err := os.ReadFile(record)
			if err != nil {
				t.Fatal(err)
			}
			var rec runner.Record
			if err := json.Unmarshal(data, &rec); err != nil {
				t.Fatalf("record: %v", err)
			}
			um := rec.Status.TaskRuns["update-manifest"]
			if um == nil || um.Status.ChangeGate == nil {
				t.Fatalf("record has no change gate for update-manifest:\n%s", data)
			}
			if um.Status.ChangeGate.Blocking != !tc.pushed {
				t.Errorf("record: change gate blocking = %v", um.Status.ChangeGate.Blocking)
			}
			if _, ok := rec.Status.TaskRuns["push"]; ok != tc.pushed {
				t.Errorf("record: push TaskRun present = %v, want %v", ok, tc.pushed)
			}
		})
	}
}

// The seed's kaniko-build Task, as the article wrote it (runAsUser: 0, an image from a
// registry that is not allowed here), is refused before anything runs: not even the
// task before it starts.
func TestRunRefusesSeedKaniko(t *testing.T) {
	work := t.TempDir()
	kaniko, err := filepath.Abs(filepath.Join(seedDir, "tekton", "task-kaniko-build.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pipeline := filepath.Join(work, "pipeline.yaml")
	if err := os.WriteFile(pipeline, []byte(`apiVersion: tekton.dev/v1
kind: Pipeline
metadata: {name: build}
spec:
  workspaces: [{name: src}]
  tasks:
    - name: prepare
      workspaces: [{name: src, workspace: src}]
      taskSpec:
        workspaces: [{name: src}]
        stepTemplate:
          securityContext: {runAsNonRoot: true, runAsUser: 65532, allowPrivilegeEscalation: false}
        steps:
          - {name: marker, image: harbor.example.com/library/busybox:1.36, script: 'touch $(workspaces.src.path)/prepared'}
    - name: build
      runAfter: [prepare]
      taskRef: {name: kaniko-build}
      params: [{name: image, value: harbor.example.com/apps/demo:1.0.0}]
      workspaces: [{name: source, workspace: src}]
`), 0o666); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(work, "src")
	record := filepath.Join(work, "run.json")
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"run", "-f", pipeline, "-f", kaniko, "--registry", "harbor.example.com", "-w", "src=" + src, "--record", record}, &stdout, &stderr)
	if code != exitViolations {
		t.Fatalf("exit %d, want %d\nstderr:\n%s", code, exitViolations, stderr.String())
	}
	for _, want := range []string{
		"task-kaniko-build.yaml:59:7: Task/tekton-pipelines/kaniko-build: task build (Task kaniko-build), step build-and-push: tekton-require-non-root/task-run-as-non-root: ",
		"step build-and-push runs as runAsUser 0 (root)",
		"task-kaniko-build.yaml:60:7: Task/tekton-pipelines/kaniko-build: task build (Task kaniko-build), step build-and-push: tekton-restrict-image-registries/task-allowed-registries: ",
		"gitgate run: refused: ",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if _, err := os.Stat(src); err == nil {
		t.Errorf("the workspace directory was created although the gate refused the pipeline")
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout: %s", stdout.String())
	}
	data, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	var rec runner.Record
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	if reason, ok := rec.Outcome(); ok || reason != "Blocked" || rec.Status.Gate == nil || !rec.Status.Gate.Blocking || len(rec.Status.TaskRuns) != 0 {
		t.Errorf("record: outcome %s %v, gate %+v, %d task runs", reason, ok, rec.Status.Gate, len(rec.Status.TaskRuns))
	}
}
