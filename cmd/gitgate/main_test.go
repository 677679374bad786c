package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gitgate/gitgate/render"
	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/testscript"
)

// update rewrites the golden files instead of comparing with them:
//
//	go test ./cmd/gitgate -run TestGoldenSeed -update
var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const (
	// seedDir is the seed GitOps repository, relative to this package.
	seedDir = "../../testdata/seed"
	// goldenDir holds the repository's golden files, relative to this package.
	goldenDir = "../../testdata/golden"
	// seedGolden is the text report of the seed check; see TestGoldenSeed.
	seedGolden = "check-seed.txt"
)

// seedArgs is the check the seed golden file records. It runs from the directory that
// holds seed/, so the paths it prints are relative and the same on every machine.
var seedArgs = []string{"check", "--plain", "--registry", "harbor.internal.company.com", "seed"}

// TestMain makes the test binary double as the gitgate command: testscript installs it
// in $PATH as "gitgate", and when it runs under that name it is the real CLI.
// The tests' default cache directory (the verdict cache and remote sources, for runs
// without --cache-dir) is one under the system's temporary directory, never the user's
// own ~/.cache/gitgate: a test run leaves what the user had as it was.
func TestMain(m *testing.M) {
	if os.Getenv("GITGATE_TEST_CACHE_HOME") == "" {
		dir := filepath.Join(os.TempDir(), "gitgate-test-cache")
		os.Setenv("GITGATE_TEST_CACHE_HOME", dir)
		os.Setenv("XDG_CACHE_HOME", dir)
	}
	testscript.Main(m, map[string]func(){
		"gitgate": func() { // as main runs it
			stderr, flush := render.FilterKustomizeWarnings()
			code := run(context.Background(), os.Args[1:], os.Stdout, stderr)
			flush()
			writePeakRSS()
			os.Exit(code)
		},
	})
}

// TestScripts runs the end-to-end CLI scripts in testdata/script. Each script's $WORK
// also holds a copy of the seed repository ($WORK/seed) and of the seed golden file
// ($WORK/golden/check-seed.txt), which scripts cannot reach otherwise.
//
// Besides testscript's built-in commands the scripts can use:
//
//	exits [-within DURATION] CODE PROG [ARGS...]
//
// which runs PROG like exec and requires it to exit with exactly CODE ("! exec" cannot
// tell gitgate's 1, violations, from 2, could not check), and, with -within, to finish
// within DURATION.
func TestScripts(t *testing.T) {
	seed, err := filepath.Abs(seedDir)
	if err != nil {
		t.Fatal(err)
	}
	golden, err := filepath.Abs(filepath.Join(goldenDir, seedGolden))
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		// Keep going after a failed assertion, so one failure does not hide the rest.
		ContinueOnError: true,
		Setup: func(env *testscript.Env) error {
			if err := os.CopyFS(filepath.Join(env.WorkDir, "seed"), os.DirFS(seed)); err != nil {
				return fmt.Errorf("copy the seed repository: %w", err)
			}
			// A missing golden file fails check_seed's cmp, not every script;
			// TestGoldenSeed says how to create it.
			if data, err := os.ReadFile(golden); err == nil {
				if err := os.MkdirAll(filepath.Join(env.WorkDir, "golden"), 0o777); err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(env.WorkDir, "golden", seedGolden), data, 0o666); err != nil {
					return err
				}
			}
			// Progress is never drawn for a pipe, but CI also turns it off; be explicit.
			env.Setenv("CI", "1")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits": cmdExits,
		},
	})
}

// cmdExits implements "exits [-within DURATION] CODE PROG [ARGS...]".
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	const usage = "usage: exits [-within DURATION] CODE PROG [ARGS...]"
	if neg {
		ts.Fatalf("exits does not take '!': give the exit code it must return")
	}
	var limit time.Duration
	if len(args) > 1 && args[0] == "-within" {
		d, err := time.ParseDuration(args[1])
		if err != nil {
			ts.Fatalf("%s: %v", usage, err)
		}
		limit, args = d, args[2:]
	}
	if len(args) < 2 {
		ts.Fatalf("%s", usage)
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("%s: %v", usage, err)
	}
	start := time.Now()
	err = ts.Exec(args[1], args[2:]...)
	elapsed := time.Since(start)
	got := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s did not run: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
	if limit > 0 && elapsed > limit {
		ts.Fatalf("%s took %v, want at most %v", args[1], elapsed.Round(time.Millisecond), limit)
	}
}

// TestGoldenSeed checks the seed repository in process and compares the text report
// with testdata/golden/check-seed.txt; with -update it rewrites the golden file.
// check_seed.txtar makes the same comparison through the installed binary.
func TestGoldenSeed(t *testing.T) {
	golden(t, filepath.Dir(seedDir), seedArgs, filepath.Join(goldenDir, seedGolden))
}

// TestGoldenExample checks the bundled example repository (testdata/gitops) in
// repository mode: ApplicationSet, kustomize overlays, a Helm chart with per-environment
// values and Tekton tasks, rendered and gated. It is what make example prints.
func TestGoldenExample(t *testing.T) {
	golden(t, filepath.Join(filepath.Dir(seedDir)), []string{"check", "gitops"}, filepath.Join(goldenDir, "check-example.txt"))
}

// golden runs gitgate in dir and compares stdout with the golden file (-update rewrites it).
func golden(t *testing.T, dir string, args []string, file string) {
	t.Helper()
	goldenFile, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, &stdout, &stderr)
	if code != exitViolations {
		t.Errorf("gitgate %v: exit code %d, want %d; stderr:\n%s", args, code, exitViolations, stderr.String())
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(goldenFile), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenFile, stdout.Bytes(), 0o666); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", goldenFile)
		return
	}
	want, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatalf("%v (create it with -update)", err)
	}
	if diff := cmp.Diff(string(want), stdout.String()); diff != "" {
		t.Errorf("gitgate %v: stdout differs from %s (-want +got):\n%s\nIf the change is intended, run: go test ./cmd/gitgate -run %s -update",
			args, goldenFile, diff, t.Name())
	}
}
