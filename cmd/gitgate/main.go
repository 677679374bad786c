// Command gitgate keeps a GitOps repository, and the clusters it feeds, inside policy.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/gitgate/gitgate/render"
)

func main() {
	// kustomize prints its deprecation warnings to os.Stderr itself, with no file;
	// check reports them as notices with the kustomization's file and line instead.
	stderr, flush := render.FilterKustomizeWarnings()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first SIGINT or SIGTERM cancels ctx: commands stop starting work, and running
	// renders and evaluations stop at their next step (check then reports what it has,
	// marked incomplete, see watchInterrupt). A second signal gets Go's default and ends
	// the process, unless a command listens for it itself (run's finally tasks).
	go func() {
		<-ctx.Done()
		stop()
	}()
	// GITGATE_CPUPROFILE=FILE writes a CPU profile of the run, for performance work.
	if p := os.Getenv("GITGATE_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			if err := pprof.StartCPUProfile(f); err != nil {
				fmt.Fprintf(stderr, "gitgate: GITGATE_CPUPROFILE: %v\n", err)
			}
			defer f.Close()
		}
	}
	code := run(ctx, os.Args[1:], os.Stdout, stderr)
	pprof.StopCPUProfile()
	stop()
	flush()
	os.Exit(code)
}
