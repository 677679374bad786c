package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// Exit codes, as DESIGN.md fixes them.
const (
	exitClean      = 0
	exitViolations = 1
	exitError      = 2
)

// exitCodeError carries an exit code through cobra; its message, if any, has been printed.
type exitCodeError struct{ code int }

func (e exitCodeError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// run is main without os.Exit, so tests can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// Kyverno's packages pull in controller-runtime, which complains after 30 s when
	// nothing set its logger. gitgate's commands log through their own writers.
	ctrllog.SetLogger(logr.Discard())
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitClean
	}
	var ec exitCodeError
	if errors.As(err, &ec) {
		return ec.code
	}
	fmt.Fprintf(stderr, "gitgate: %v\n", err)
	return exitError
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "gitgate",
		Short: "Keep a GitOps repository and its clusters inside policy",
		Long: `gitgate renders, validates and enforces Kubernetes manifests with Kyverno policies:
one policy core for pre-commit checks, merge requests and policy tests.

Exit codes: 0 clean (audit findings are warnings), 1 enforced violations,
2 could not check (bad input, bad policy, usage).`,
		Example: `  gitgate check .
  gitgate check --registry harbor.example.com -o json apps/
  gitgate test policies/`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", c.CommandPath(), err, c.CommandPath())
		return exitCodeError{exitError}
	})
	root.AddCommand(newCheckCmd(stdout, stderr), newTestCmd(stdout, stderr), newTargetsCmd(stdout, stderr), newRenderCmd(stdout, stderr), newServeCmd(stdout, stderr), newRunCmd(stdout, stderr), newSyncCmd(stdout, stderr), newReportCmd(stdout, stderr), newVersionCmd(stdout), newFetchCmd(stdout, stderr), newMergeReportsCmd(stdout, stderr))
	return root
}

// isTerminal reports whether progress may be drawn on w: a terminal, and not CI.
func isTerminal(w io.Writer) bool {
	if os.Getenv("CI") != "" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// interruptGrace is how long check may take to wind down after SIGINT or SIGTERM.
const interruptGrace = 3 * time.Second

// watchInterrupt backs a command's own handling of ctx's cancellation: if the command
// is still running interruptGrace after the signal (a render that cannot be stopped
// mid-step), the process ends with exit 2 and says so. The returned func stops watching.
func watchInterrupt(ctx context.Context, stderr io.Writer) func() {
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		select {
		case <-done:
		case <-time.After(interruptGrace):
			fmt.Fprintf(stderr, "gitgate: interrupted, and still running %s later; stopping now (no report)\n", interruptGrace)
			os.Exit(exitError)
		}
	}()
	return func() { close(done) }
}
