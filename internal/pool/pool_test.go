package pool

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestForEachBoundedAndComplete(t *testing.T) {
	const n, workers = 200, 3
	out := make([]int, n)
	var running, peak atomic.Int64
	ForEach(context.Background(), n, workers, func(i int) {
		r := running.Add(1)
		for {
			p := peak.Load()
			if r <= p || peak.CompareAndSwap(p, r) {
				break
			}
		}
		time.Sleep(100 * time.Microsecond)
		out[i] = i * i
		running.Add(-1)
	})
	for i, v := range out {
		if v != i*i {
			t.Fatalf("item %d: got %d", i, v)
		}
	}
	if p := peak.Load(); p > workers || p < 1 {
		t.Errorf("peak concurrency %d, want 1..%d", p, workers)
	}
}

func TestForEachStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var ran atomic.Int64
	ForEach(ctx, 1000, 2, func(i int) {
		if ran.Add(1) == 5 {
			cancel()
		}
	})
	if r := ran.Load(); r < 5 || r > 7 {
		t.Errorf("%d items ran after cancelling at the 5th with 2 workers; want 5 to 7", r)
	}
}

func TestForEachWorkerState(t *testing.T) {
	var mu sync.Mutex
	total, finished, inits := 0, 0, 0
	ForEachWorker(context.Background(), 100, 4, func() *int {
		mu.Lock()
		inits++
		mu.Unlock()
		return new(int)
	}, func(sum *int, i int) { *sum += i }, func(sum *int) {
		mu.Lock()
		total += *sum
		finished++
		mu.Unlock()
	})
	if total != 4950 || finished != inits || inits != 4 {
		t.Errorf("total %d, %d workers started, %d finished; want 4950, 4, 4", total, inits, finished)
	}
	// No items: still one worker, no call of fn, finish called.
	calls := 0
	ForEachWorker(context.Background(), 0, 8, func() int { return 0 }, func(int, int) { calls++ }, func(int) { finished++ })
	if calls != 0 || finished != 5 {
		t.Errorf("n=0: %d calls, finish called %d times in all", calls, finished)
	}
}
