package render

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-jsonnet"
)

// The jsonnet evaluator runs in a child process: this binary again, started with
// jsonnetWorkerEnv set, which init turns into the worker before main runs (in gitgate
// and in any test binary that links this package). The child gets everything on stdin
// (the files the imports can reach, already read through the confined view, and the
// settings), touches no file and no network, and writes one result per file on stdout.
// The parent kills it at the target's deadline; the child stops itself when its heap
// passes the memory bound. A child that dies takes only the file it was evaluating with
// it: the parent starts another for the files after it.

const jsonnetWorkerEnv = "GITGATE_INTERNAL_JSONNET_WORKER"

func init() {
	if os.Getenv(jsonnetWorkerEnv) == "1" {
		os.Exit(jsonnetWorkerMain(os.Stdin, os.Stdout))
	}
}

// jsonnetJob is the worker's input.
type jsonnetJob struct {
	Files     map[string][]byte `json:"files"`
	Refused   map[string]string `json:"refused,omitempty"`
	JPaths    []string          `json:"jpaths"`
	ExtVars   []JsonnetVar      `json:"extVars,omitempty"`
	TLAs      []JsonnetVar      `json:"tlas,omitempty"`
	Entries   []string          `json:"entries"`
	MaxStack  int               `json:"maxStack"`
	MaxMemory int64             `json:"maxMemory"`
	// Timeout ends the worker by itself (the parent kills it first, unless the parent
	// itself was killed and the worker is left orphaned).
	Timeout time.Duration `json:"timeout"`
}

// jsonnetResult is one file's outcome, as the worker writes it.
type jsonnetResult struct {
	File   string          `json:"file"`
	Output json.RawMessage `json:"output,omitempty"`
	Error  *jsonnetFailure `json:"error,omitempty"`
	// Memory is set when the worker stopped itself over its memory bound.
	Memory bool `json:"memory,omitempty"`
}

// jsonnetOutcome is one file's outcome, as the parent sees it.
type jsonnetOutcome struct {
	output  []byte
	failure *jsonnetFailure
	err     error
}

// memImporter resolves imports like go-jsonnet's FileImporter over the files the parent
// read (jsonnetResolve); one Contents per file, as go-jsonnet's import cache requires.
type memImporter struct {
	files   map[string]jsonnet.Contents
	refused map[string]string
	jpaths  []string
}

func (m *memImporter) Import(from, imp string) (jsonnet.Contents, string, error) {
	r := jsonnetResolve(from, imp, m.jpaths, func(p string) (bool, error) {
		if why, ok := m.refused[p]; ok {
			return false, errors.New(why)
		}
		_, ok := m.files[p]
		return ok, nil
	})
	if r.err != nil {
		return jsonnet.Contents{}, "", r.err
	}
	if r.found == "" {
		return jsonnet.Contents{}, "", fmt.Errorf("couldn't open import %q: no match locally or in the Jsonnet library paths (%s)", imp, strings.Join(m.jpaths, ", "))
	}
	return m.files[r.found], r.found, nil
}

func jsonnetWorkerMain(in io.Reader, out io.Writer) int {
	var job jsonnetJob
	if err := json.NewDecoder(in).Decode(&job); err != nil {
		fmt.Fprintln(os.Stderr, "jsonnet worker: bad job:", err)
		return 2
	}
	if job.Timeout > 0 {
		time.AfterFunc(job.Timeout+time.Second, func() { os.Exit(3) })
	}
	var mu sync.Mutex // one result at a time on out
	enc := json.NewEncoder(out)
	var current atomic.Value
	current.Store("")
	var base atomic.Int64 // the resident set before the current file
	if job.MaxMemory > 0 {
		// The heap bytes count objects not yet collected too: no GC memory limit is set,
		// so allocation runs at full speed until the bound (a memory limit makes the
		// collector run ever more often, and a runaway file take seconds longer).
		// The resident set is watched too (where the system tells it): go-jsonnet can ask
		// for a terabyte string at once, and the runtime's bookkeeping for such a heap
		// grows outside the heap's own count.
		base.Store(residentBytes())
		go func() {
			sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
			for range time.Tick(20 * time.Millisecond) {
				metrics.Read(sample)
				heap := int64(sample[0].Value.Uint64())
				if b := base.Load(); heap > job.MaxMemory || b > 0 && residentBytes()-b > job.MaxMemory {
					mu.Lock() // never released: the process ends
					_ = enc.Encode(jsonnetResult{File: current.Load().(string), Memory: true})
					os.Exit(0)
				}
			}
		}()
	}
	imp := &memImporter{files: map[string]jsonnet.Contents{}, refused: job.Refused, jpaths: job.JPaths}
	for p, data := range job.Files {
		imp.files[p] = jsonnet.MakeContentsRaw(data)
	}
	for _, f := range job.Entries {
		current.Store(f)
		vm := jsonnet.MakeVM()
		vm.MaxStack = job.MaxStack
		vm.SetTraceOut(io.Discard)
		vm.Importer(imp)
		for _, v := range job.ExtVars {
			if v.Code {
				vm.ExtCode(v.Name, v.Value)
			} else {
				vm.ExtVar(v.Name, v.Value)
			}
		}
		for _, v := range job.TLAs {
			if v.Code {
				vm.TLACode(v.Name, v.Value)
			} else {
				vm.TLAVar(v.Name, v.Value)
			}
		}
		res := jsonnetResult{File: f}
		node, err := jsonnet.SnippetToAST(f, string(job.Files[f]))
		if err == nil {
			var s string
			if s, err = vm.Evaluate(node); err == nil {
				res.Output = json.RawMessage(s)
			}
		}
		if err != nil {
			res.Error = newJsonnetFailure(vm.ErrorFormatter.Format(err))
		}
		mu.Lock()
		err = enc.Encode(res)
		mu.Unlock()
		if err != nil {
			return 2
		}
		if job.MaxMemory > 0 {
			// Each file has the whole bound: what the last one left is collected and
			// handed back to the system before the next one starts.
			debug.FreeOSMemory()
			base.Store(residentBytes())
		}
	}
	return 0
}

// residentBytes is the process's resident set size from /proc/self/statm, 0 where there
// is none.
func residentBytes() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// runJsonnetJobs evaluates entries in workers, under the target's time and output
// budget: one outcome per entry.
func runJsonnetJobs(ctx context.Context, job jsonnetJob, entries []string, limits HelmLimits) []jsonnetOutcome {
	res := make([]jsonnetOutcome, len(entries))
	tctx, cancel := context.WithTimeout(ctx, limits.Timeout)
	defer cancel()
	budget := limits.MaxOutput
	next := 0
	spent := "" // the file that ran out the time budget
	for next < len(entries) {
		if tctx.Err() != nil {
			for ; next < len(entries); next++ {
				if ctx.Err() != nil {
					res[next].err = fmt.Errorf("not evaluated: %w", context.Cause(ctx))
				} else {
					res[next].err = fmt.Errorf("not evaluated: the target's time budget of %s ran out (while evaluating %s)", limits.Timeout, cmp.Or(spent, "the files before it"))
				}
			}
			break
		}
		job.Entries = entries[next:]
		if dl, ok := tctx.Deadline(); ok {
			job.Timeout = time.Until(dl)
		}
		done, err := runJsonnetWorker(tctx, job, &budget, limits, func(i int, o jsonnetOutcome) { res[next+i] = o })
		next += done
		if err != nil && next < len(entries) {
			if ctx.Err() != nil {
				err = fmt.Errorf("not evaluated: %w", context.Cause(ctx))
			} else if le := (*JsonnetLimitError)(nil); errors.As(err, &le) && le.What == "time" {
				spent = entries[next]
			}
			res[next].err = err
			next++
		}
	}
	return res
}

// runJsonnetWorker runs one worker over job.Entries, handing each result to got as it
// arrives; it returns how many entries have a result, and why the worker stopped early.
func runJsonnetWorker(ctx context.Context, job jsonnetJob, budget *int64, limits HelmLimits, got func(int, jsonnetOutcome)) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("cannot start the jsonnet evaluator: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = []string{jsonnetWorkerEnv + "=1", "GOTRACEBACK=none"}
	cmd.Dir = os.TempDir()
	cmd.WaitDelay = 2 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, fmt.Errorf("cannot start the jsonnet evaluator: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, fmt.Errorf("cannot start the jsonnet evaluator: %w", err)
	}
	stderr := &headBuffer{max: 4096}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("cannot start the jsonnet evaluator: %w", err)
	}
	go func() {
		_ = json.NewEncoder(stdin).Encode(job)
		_ = stdin.Close()
	}()
	lr := &limitReader{r: stdout, n: *budget}
	dec := json.NewDecoder(lr)
	done := 0
	memory := false
	started := time.Now() // of the file being evaluated
	for done < len(job.Entries) {
		var r jsonnetResult
		if err := dec.Decode(&r); err != nil {
			break
		}
		if r.File != job.Entries[done] {
			break // the worker is confused: stop it
		}
		if r.Memory {
			memory = true
			break
		}
		got(done, jsonnetOutcome{output: r.Output, failure: r.Error})
		done++
		started = time.Now()
	}
	*budget = lr.n
	if done < len(job.Entries) && cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
	werr := cmd.Wait()
	if done == len(job.Entries) {
		return done, nil
	}
	mib := fmt.Sprintf("%d MiB", job.MaxMemory>>20)
	switch {
	case memory:
		return done, &JsonnetLimitError{What: "memory", Limit: mib}
	case lr.over:
		return done, &JsonnetLimitError{What: "output", Limit: fmt.Sprintf("%d bytes", limits.MaxOutput)}
	case ctx.Err() != nil:
		return done, &JsonnetLimitError{What: "time", Limit: limits.Timeout.String(), Ran: time.Since(started)}
	}
	msg := stderr.String()
	switch {
	case strings.Contains(msg, "out of memory"):
		return done, &JsonnetLimitError{What: "memory", Limit: mib}
	case strings.Contains(msg, "stack overflow") || strings.Contains(msg, "stack exceeds"):
		return done, errors.New("the evaluation overflowed the evaluator's stack (values nested too deeply?) and was stopped")
	}
	first, _, _ := strings.Cut(strings.TrimSpace(msg), "\n")
	if first != "" {
		first = ": " + first
	}
	return done, fmt.Errorf("the jsonnet evaluator stopped unexpectedly (%v)%s", werr, first)
}

// limitReader reads at most n bytes and records an attempt to read more.
type limitReader struct {
	r    io.Reader
	n    int64
	over bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		l.over = true
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// headBuffer keeps the first max bytes written to it.
type headBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room := h.max - len(h.buf); room > 0 {
		h.buf = append(h.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (h *headBuffer) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return string(h.buf)
}
