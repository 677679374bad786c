package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// When the test binary is started with GITGATE_SIGNAL_TEST_MAIN=1 it is gitgate's real
// main, with its signal handling, for TestCheckStopsOnSignal.
func init() {
	if os.Getenv("GITGATE_SIGNAL_TEST_MAIN") == "1" {
		main()
	}
}

// TestCheckStopsOnSignal sends SIGTERM (and SIGINT) to a check busy with a chart whose
// templates would spin for hours, as a Helm target and inside a kustomize build (kustomize
// takes no context): it must stop within a second or so, exit 2, and say the report is
// incomplete, naming the target it did not evaluate.
func TestCheckStopsOnSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts gitgate as a process")
	}
	for _, c := range []struct {
		sig       syscall.Signal
		kustomize bool
	}{{syscall.SIGTERM, false}, {syscall.SIGINT, false}, {syscall.SIGTERM, true}} {
		sig := c.sig
		name, target := sig.String(), "spin"
		if c.kustomize {
			name, target = name+" in kustomize helmCharts", "app"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(name, data string) {
				p := filepath.Join(dir, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			chart := "charts/spin/"
			if c.kustomize {
				chart = "app/charts/spin/"
				write("app/kustomization.yaml", "helmCharts:\n- name: spin\n  releaseName: spin\n")
			}
			write(chart+"Chart.yaml", "apiVersion: v2\nname: spin\nversion: 0.1.0\n")
			write(chart+"templates/cm.yaml", "{{- $l := until 20000 }}{{ range $l }}{{ range $l }}{{ range $l }}{{ end }}{{ end }}{{ end }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: spin\n")
			write(".gitgate.yaml", "limits:\n  helmTimeout: 10m\n")

			cmd := exec.Command(os.Args[0], "check", "--workers", "1", ".")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GITGATE_SIGNAL_TEST_MAIN=1")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * time.Second) // the gate loads, the chart starts spinning
			sent := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			took := time.Since(sent)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitError {
				t.Errorf("exit: %v, want %d\nstderr: %s", err, exitError, stderr.String())
			}
			// A second is the goal; the machine running the tests may be busy.
			if took > 2*time.Second {
				t.Errorf("stopped %s after the signal", took)
			}
			for _, want := range []string{"interrupted", "the report is incomplete", "1 of 1 targets not evaluated: " + target} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
			if strings.Contains(stderr.String(), "stopping now") {
				t.Errorf("check did not wind down by itself:\n%s", stderr.String())
			}
			t.Logf("stopped %s after %s", took.Round(time.Millisecond), sig)
		})
	}
}
