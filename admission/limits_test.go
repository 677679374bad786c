package admission

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/policy"
)

// stuckHook blocks the evaluation of objects named "stuck*" until release is closed
// (an engine that ignores its context), and evaluates everything else for real.
func stuckHook(release <-chan struct{}, started chan<- string) func(context.Context, *Gate, policy.Resource, policy.Request) []policy.Result {
	return func(ctx context.Context, g *Gate, r policy.Resource, q policy.Request) []policy.Result {
		if strings.HasPrefix(r.Object.GetName(), "stuck") {
			if started != nil {
				started <- r.Object.GetName()
			}
			<-release
			return nil
		}
		return g.Evaluate(ctx, r, q)
	}
}

// A stuck evaluation is denied at its deadline even with --fail-open, hands its slot to
// the next request, and a normal request is judged at once.
func TestStuckEvaluationDoesNotBlock(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock()
	opts := DefaultHandlerOptions()
	opts.Timeout = 300 * time.Millisecond
	opts.MaxConcurrent = 1
	opts.FailOpen = true
	h := NewHandler(func() *Gate { return mustBuiltin(t) }, opts)
	h.evalHook = stuckHook(release, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()

	start := time.Now()
	resp := post(t, srv.URL, review(t, deployment("stuck", nil), reviewOpts{}))
	if resp.Allowed {
		t.Fatalf("a stuck evaluation was admitted under --fail-open: %+v", resp)
	}
	if resp.Result.Code != http.StatusGatewayTimeout || !strings.Contains(resp.Result.Message, "did not finish within 300ms") {
		t.Errorf("result %+v, want 504 naming the timeout", resp.Result)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the stuck request took %s, want about 300ms", d)
	}
	if h.Overdue() != 1 {
		t.Errorf("overdue = %d, want 1", h.Overdue())
	}
	// The only slot was handed on: a normal request is judged (allowed: it passes every policy).
	start = time.Now()
	if resp := post(t, srv.URL, review(t, deployment("web", nil), reviewOpts{})); !resp.Allowed || len(resp.Warnings) > 0 {
		t.Fatalf("normal request behind a stuck one: %+v", resp)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("normal request took %s behind a stuck evaluation", d)
	}
	// and one that breaks a policy is denied by it, not by a timeout
	priv := deployment("priv", func(_, c map[string]any) { c["securityContext"] = map[string]any{"privileged": true} })
	if resp := post(t, srv.URL, review(t, priv, reviewOpts{})); resp.Allowed || resp.Result.Code == http.StatusGatewayTimeout {
		t.Fatalf("privileged Deployment behind a stuck one: %+v", resp)
	}
	unblock()
	waitFor(t, func() bool { return h.Overdue() == 0 }, "the overdue count to drop when the evaluation ends")
}

// Past MaxOverdue, an overdue evaluation keeps its slot: at most MaxConcurrent+MaxOverdue
// evaluations ever run at once, and requests beyond are denied, not admitted.
func TestOverdueBound(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock()
	opts := DefaultHandlerOptions()
	opts.Timeout = 200 * time.Millisecond
	opts.MaxConcurrent, opts.MaxOverdue = 1, 1
	opts.FailOpen = true
	h := NewHandler(func() *Gate { return mustBuiltin(t) }, opts)
	started := make(chan string, 4)
	h.evalHook = stuckHook(release, started)
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, name := range []string{"stuck-1", "stuck-2"} {
		if resp := post(t, srv.URL, review(t, deployment(name, nil), reviewOpts{})); resp.Allowed {
			t.Fatalf("%s admitted", name)
		}
	}
	if got := len(started); got != 2 {
		t.Fatalf("%d stuck evaluations started, want 2", got)
	}
	if h.Overdue() != 1 {
		t.Fatalf("overdue = %d, want 1 (the bound)", h.Overdue())
	}
	resp := post(t, srv.URL, review(t, deployment("web", nil), reviewOpts{}))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "no evaluation slot") {
		t.Fatalf("with the slot held by the second stuck evaluation: %+v, want denied for no slot", resp)
	}
	unblock()
	waitFor(t, func() bool {
		r := post(t, srv.URL, review(t, deployment("web", nil), reviewOpts{}))
		return r.Allowed
	}, "a normal request to be judged after the stuck ones end")
	waitFor(t, func() bool { return h.Overdue() == 0 }, "no overdue evaluations")
}

// Requests wait for their share of the memory budget; one over it within the timeout is
// denied with the reason, and the share comes back when the evaluation ends.
func TestMemoryBudget(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock()
	opts := DefaultHandlerOptions()
	opts.Timeout = 300 * time.Millisecond
	opts.MaxConcurrent = 4
	opts.FailOpen = true
	pad := strings.Repeat("x", 100<<10) // 100 KiB object: about 4.3 MiB of budget
	big := func(name string) map[string]any {
		return deployment(name, func(pod, _ map[string]any) {
			pod["metadata"] = map[string]any{"annotations": map[string]any{"pad": pad}}
		})
	}
	opts.MemoryBudget = 6 << 20 // room for one such evaluation, not two
	h := NewHandler(func() *Gate { return mustBuiltin(t) }, opts)
	started := make(chan string, 4)
	h.evalHook = stuckHook(release, started)
	srv := httptest.NewServer(h)
	defer srv.Close()

	first := make(chan bool, 1)
	go func() {
		resp := post(t, srv.URL, review(t, big("stuck-big"), reviewOpts{}))
		first <- resp.Allowed
	}()
	<-started // the first holds its share
	// The second is refused before its body is read (no request UID yet, so an HTTP
	// error: the API server applies the failurePolicy, Fail in deploy/).
	if code, body := rawPost(t, srv.URL, review(t, big("second"), reviewOpts{})); code != http.StatusServiceUnavailable || !strings.Contains(body, "over the memory budget") {
		t.Fatalf("second large request while the first holds the budget: HTTP %d %s", code, body)
	}
	// A small request still fits beside it.
	if resp := post(t, srv.URL, review(t, deployment("small", nil), reviewOpts{})); !resp.Allowed {
		t.Fatalf("small request beside a large one: %+v", resp.Result)
	}
	if allowed := <-first; allowed {
		t.Fatal("the stuck large request was admitted")
	}
	// The stuck one timed out but still runs: its share is still held.
	if code, _ := rawPost(t, srv.URL, review(t, big("third"), reviewOpts{})); code != http.StatusServiceUnavailable {
		t.Fatalf("a large request got HTTP %d while an overdue evaluation still held its share", code)
	}
	unblock()
	waitFor(t, func() bool {
		code, _ := rawPost(t, srv.URL, review(t, big("fourth"), reviewOpts{}))
		return code == http.StatusOK
	}, "the share to come back once the evaluation ended")
	if resp := post(t, srv.URL, review(t, big("fifth"), reviewOpts{})); !resp.Allowed {
		t.Fatalf("large request alone: %+v", resp.Result)
	}
}

func rawPost(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// /readyz says not ready, and that a reload failed, without the error text (a path, a
// parse error): that goes to the log.
func TestReadyzHidesErrors(t *testing.T) {
	dir := t.TempDir()
	secretPath := filepath.Join(dir, "secret-location-4f1c")
	r := NewReloader(ReloaderOptions{Sources: []Source{DirSource{Path: secretPath}}})
	if _, err := r.Reload(context.Background()); err == nil {
		t.Fatal("a missing directory loaded")
	}
	started := make(chan struct{})
	close(started)
	ready := &readiness{reloader: r, started: started}
	ok, lines := ready.check()
	body := strings.Join(lines, "\n")
	if ok || !strings.Contains(body, "[-]policies: not ready") {
		t.Errorf("readiness %v:\n%s\nwant not ready", ok, body)
	}
	if strings.Contains(body, "secret-location-4f1c") {
		t.Errorf("/readyz shows the error text:\n%s", body)
	}
	// a good set, then a broken update: ready, the failure mentioned, not its text
	writeFile(t, filepath.Join(secretPath, "p.yaml"), denyKindPolicy("p", "ConfigMap", "no"))
	if _, err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(secretPath, "p.yaml"), "kind: ClusterPolicy\nmetadata: {name: [broken-4f1c\n")
	if _, err := r.Reload(context.Background()); err == nil {
		t.Fatal("a broken policy loaded")
	}
	ok, lines = ready.check()
	body = strings.Join(lines, "\n")
	if !ok || !strings.Contains(body, "last good set keeps serving") || strings.Contains(body, "4f1c") {
		t.Errorf("after a broken update: ready=%v\n%s\nwant ready, the failure mentioned without its text", ok, body)
	}
}

// /metrics beyond loopback (unauthenticated) is refused at start.
func TestMetricsAddrNeedsAuth(t *testing.T) {
	for _, tt := range []struct {
		addr string
		ok   bool
	}{{"127.0.0.1:8080", true}, {"localhost:1", true}, {"[::1]:1", true}, {":8080", false}, {"0.0.0.0:8080", false}, {"10.0.0.1:8080", false}} {
		if got := loopback(tt.addr); got != tt.ok {
			t.Errorf("loopback(%q) = %v, want %v", tt.addr, got, tt.ok)
		}
	}
	o := DefaultServeOptions()
	o.MetricsAddr = ":8080"
	o.Reloader = NewReloader(ReloaderOptions{})
	err := Serve(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "bind it to 127.0.0.1") {
		t.Fatalf("Serve with metrics on every interface: %v, want refused", err)
	}
}
