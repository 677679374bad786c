// Package pool is the one bounded worker pool: rendering targets (render.All),
// checking files and resources (policy), syncing and reporting apps (reconcile).
package pool

import (
	"context"
	"sync"
	"sync/atomic"
)

// ForEach calls fn(0) ... fn(n-1) on at most workers goroutines (at least one) and
// waits for them. Items are handed out in index order; once ctx is done no further
// item starts (those running finish). Results go where fn puts them, typically out[i],
// so they are in item order whatever the scheduling.
func ForEach(ctx context.Context, n, workers int, fn func(i int)) {
	ForEachWorker(ctx, n, workers, func() struct{} { return struct{}{} }, func(_ struct{}, i int) { fn(i) }, nil)
}

// ForEachWorker is ForEach with per-worker state: each worker goroutine starts with
// init(), passes it to fn for every item it takes, and hands it to finish (when not
// nil) once there is no item left, so results can be gathered without a lock per item.
func ForEachWorker[S any](ctx context.Context, n, workers int, init func() S, fn func(s S, i int), finish func(s S)) {
	workers = max(min(workers, n), 1)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			s := init()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					break
				}
				fn(s, i)
			}
			if finish != nil {
				finish(s)
			}
		})
	}
	wg.Wait()
}
