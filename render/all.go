package render

import (
	"context"
	"sync"

	"github.com/gitgate/gitgate/policy"
)

// Rendered is one target's output, or the error that stopped it.
type Rendered struct {
	Target    Target
	Resources []policy.Resource
	Err       error
}

// RenderAll renders targets on workers goroutines; the result is in target order. One
// target failing never stops the others.
func RenderAll(ctx context.Context, repo Repo, targets []Target, workers int, progress func(done, total int)) []Rendered {
	out := make([]Rendered, len(targets))
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				t := targets[i]
				rs, err := Render(ctx, repo, t)
				out[i] = Rendered{Target: t, Resources: rs, Err: err}
				if progress != nil {
					mu.Lock()
					done++
					progress(done, len(targets))
					mu.Unlock()
				}
			}
		}()
	}
	for i := range targets {
		if ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return out
}
