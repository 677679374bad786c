// Package admission is gitgate's validating and mutating admission webhooks: an
// AdmissionReview in, the gate's verdict (or the JSONPatch of its mutate rules) out, on the
// same policy code and policies as `gitgate check`.
//
// The Handler judges; a Reloader keeps the gate current from policy sources (a directory,
// a Git repository) and swaps it atomically; Serve runs the TLS webhook server with
// certificate reloading or rotation, and health, readiness and metrics on a separate port.
package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gitgate/gitgate/policy"
	"github.com/go-logr/logr"
	kyvernov2 "github.com/kyverno/kyverno/api/kyverno/v2"
	"golang.org/x/sync/semaphore"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	ctrladmission "sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// DefaultMaxRequestBytes is the largest AdmissionReview body accepted. The API server
// limits objects to 3 MiB in etcd; an UPDATE carries the object twice, plus the envelope.
const DefaultMaxRequestBytes = 7 << 20

// DefaultTimeout bounds one request: waiting for memory and an evaluation slot, reading
// the body and evaluating. It stays below the ValidatingWebhookConfiguration's
// timeoutSeconds (10 in deploy/) so the webhook answers before the API server gives up.
const DefaultTimeout = 8 * time.Second

// DefaultBodyTimeout bounds reading one request body. The API server sends a body at
// once; a client that trickles one in holds a connection and its memory share no longer.
const DefaultBodyTimeout = 5 * time.Second

// DefaultMemoryBudget is the memory budget when neither the flag nor a memory limit
// (GOMEMLIMIT, the container's) gives one.
const DefaultMemoryBudget = 1 << 30

// Memory estimates, in bytes of heap per byte of request, measured with
// BenchmarkHandlerMemory (testdata-free: generated Pods of many small containers and env
// entries, the densest JSON for its size; a few large strings cost far less):
//
//	bodyMemoryPerByte: the body and the AdmissionReview decoded around it (the raw
//	object is copied once);
//	evalMemoryPerByte: the object decoded into maps and judged by the engine (one policy
//	context per resource, autogen, the JSON context copies).
const (
	bodyMemoryPerByte = 3
	evalMemoryPerByte = 40
	minRequestMemory  = 256 << 10
)

// GateFunc returns the gate to judge with; a Reloader's Gate method is one.
type GateFunc func() *Gate

// HandlerOptions configure a Handler. Start from DefaultHandlerOptions.
type HandlerOptions struct {
	// MaxRequestBytes refuses larger bodies with HTTP 413.
	MaxRequestBytes int64
	// Timeout bounds one request: the wait for memory and an evaluation slot, reading the
	// body and the evaluation. An evaluation past it is denied, whatever FailOpen says.
	Timeout time.Duration
	// BodyTimeout bounds reading the request body (default DefaultBodyTimeout).
	BodyTimeout time.Duration
	// MaxConcurrent evaluations run at once (default GOMAXPROCS); the others wait their
	// turn in arrival order. Evaluation is CPU-bound: running more at once only makes
	// every request slower and the slowest ones very slow.
	MaxConcurrent int
	// MaxOverdue evaluations past their deadline may go on running aside, their slot
	// handed to the next request (default MaxConcurrent). The engine cannot be stopped
	// mid-evaluation; this keeps a stuck evaluation from holding a slot, and the number
	// of them (their CPU and memory) bounded. Past it, an overdue evaluation keeps its
	// slot until it ends.
	MaxOverdue int
	// MemoryBudget (bytes) bounds the memory of requests in flight, estimated from their
	// size: a request waits until its share is free (large objects one after another,
	// not all at once) and is refused when that does not happen within Timeout. An
	// evaluation past its deadline keeps its share until it really ends. 0: DefaultMemoryBudget.
	MemoryBudget int64
	// FailOpen admits (with a warning) a request that could not be judged because the
	// webhook is not ready: no policies loaded yet, namespace labels unreadable. It never
	// admits because judging was slow, over budget or panicked: a request that makes the
	// engine slow is denied. Rules that evaluate to an error follow their own action:
	// Enforce denies, Audit warns, exactly as in `gitgate check`.
	FailOpen bool
	// NamespaceLabels, when set, returns the labels of a namespace for Kyverno's
	// namespaceSelector; otherwise the values file's namespace entries are used, as in check.
	NamespaceLabels func(ctx context.Context, namespace string) (map[string]string, error)
	// Log receives one line per denied request and every internal error.
	Log logr.Logger
	// Now is the clock for latency metrics (tests inject it).
	Now func() time.Time
}

// DefaultHandlerOptions: 7 MiB bodies read within 5 s, an 8 s request timeout, GOMAXPROCS
// evaluations at once (as many overdue), a 1 GiB memory budget, fail closed.
func DefaultHandlerOptions() HandlerOptions {
	n := runtime.GOMAXPROCS(0)
	return HandlerOptions{
		MaxRequestBytes: DefaultMaxRequestBytes, Timeout: DefaultTimeout, BodyTimeout: DefaultBodyTimeout,
		MaxConcurrent: n, MaxOverdue: n, MemoryBudget: DefaultMemoryBudget,
		Log: logr.Discard(), Now: time.Now,
	}
}

// Handler answers AdmissionReviews with the current gate's verdict. It is an
// http.Handler (admission.k8s.io/v1 over HTTP, with HTTP 400 for bodies that are not an
// AdmissionReview) and a controller-runtime admission.Handler.
type Handler struct {
	gate   GateFunc
	opts   HandlerOptions
	slots  chan struct{} // evaluation slots; a buffered channel's waiters are served in order
	memory *semaphore.Weighted

	mu      sync.Mutex
	overdue int // evaluations past their deadline that gave their slot back

	// evalHook replaces the gate's evaluation in tests (a stuck engine on demand).
	evalHook func(context.Context, *Gate, policy.Resource, policy.Request) []policy.Result
}

var (
	_ http.Handler          = (*Handler)(nil)
	_ ctrladmission.Handler = (*Handler)(nil)
)

// NewHandler returns a Handler judging with whatever gate returns at each request.
func NewHandler(gate GateFunc, opts HandlerOptions) *Handler {
	def := DefaultHandlerOptions()
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = def.MaxRequestBytes
	}
	if opts.Timeout <= 0 {
		opts.Timeout = def.Timeout
	}
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = def.BodyTimeout
	}
	if opts.Log.GetSink() == nil {
		opts.Log = def.Log
	}
	if opts.Now == nil {
		opts.Now = def.Now
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = def.MaxConcurrent
	}
	if opts.MaxOverdue <= 0 {
		opts.MaxOverdue = opts.MaxConcurrent
	}
	if opts.MemoryBudget <= 0 {
		opts.MemoryBudget = def.MemoryBudget
	}
	return &Handler{gate: gate, opts: opts, slots: make(chan struct{}, opts.MaxConcurrent), memory: semaphore.NewWeighted(opts.MemoryBudget)}
}

// share is the budget a request of n bytes takes at factor bytes of memory per byte:
// at least minRequestMemory, at most the whole budget (a request larger than the
// budget runs alone rather than never).
func (h *Handler) share(n int64, factor int64) int64 {
	w := n * factor
	if n > 0 && w/factor != n { // overflow
		w = h.opts.MemoryBudget
	}
	w = max(w, minRequestMemory)
	return min(w, h.opts.MemoryBudget)
}

// reserve waits for w bytes of the memory budget until ctx ends.
func (h *Handler) reserve(ctx context.Context, w int64, what string) (release func(), err error) {
	if err := h.memory.Acquire(ctx, w); err != nil {
		countOverBudget()
		return nil, fmt.Errorf("over the memory budget: %s needs %d MiB of the %d MiB budget (--memory-budget), which other requests held for %s; retry later",
			what, mib(w), mib(h.opts.MemoryBudget), h.opts.Timeout)
	}
	inBudget.Add(float64(w))
	var once sync.Once
	return func() {
		once.Do(func() { inBudget.Sub(float64(w)); h.memory.Release(w) })
	}, nil
}

func mib(n int64) int64 { return (n + 1<<20 - 1) >> 20 }

// requestError is a body that is not an AdmissionReview: HTTP status and reason.
type requestError struct {
	code   int
	reason string
}

func (e *requestError) Error() string { return e.reason }

// ServeHTTP decodes an AdmissionReview, judges its request and writes the review back.
// Anything that is not a well-formed admission.k8s.io/v1 AdmissionReview with a request
// gets HTTP 400 (413 when too large, 415 for another content type, 408 when the body is
// not read within BodyTimeout, 503 when its memory share is not free within Timeout: the
// API server then applies the webhook's failurePolicy, Fail in deploy/)
// and a plain-text reason.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.serveHTTP(w, r, false)
}

func (h *Handler) serveHTTP(w http.ResponseWriter, r *http.Request, mutate bool) {
	start := h.opts.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.Timeout)
	defer cancel()
	review, share, err := h.decode(ctx, w, r)
	if share != nil {
		// handle takes the share over when it evaluates (an overdue evaluation keeps it
		// until it really ends); otherwise it is given back with the answer.
		defer func() {
			if !share.taken {
				share.release()
			}
		}()
		ctx = context.WithValue(ctx, shareKey{}, share)
	}
	if err != nil {
		var re *requestError
		if !errors.As(err, &re) {
			re = &requestError{http.StatusBadRequest, err.Error()}
		}
		observeBadRequest()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if re.code == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(re.code)
		fmt.Fprintf(w, "gitgate admission: %s\n", re.reason)
		return
	}
	var resp ctrladmission.Response
	if mutate {
		resp = h.Mutating().Handle(ctx, ctrladmission.Request{AdmissionRequest: *review.Request})
	} else {
		resp = h.Handle(ctx, ctrladmission.Request{AdmissionRequest: *review.Request})
	}
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: &resp.AdmissionResponse}
	out.Response.UID = review.Request.UID
	body, err := json.Marshal(out)
	if err != nil { // cannot happen for these types; never leave the API server hanging
		h.opts.Log.Error(err, "encode AdmissionReview response")
		http.Error(w, "gitgate admission: encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
	observeLatency(verdictOf(resp), h.opts.Now().Sub(start))
}

// reservation is a request's share of the memory budget: reserved once, before its body
// is read, for the body and the evaluation together (never a second wait while holding
// the first), released by whoever holds it last.
type reservation struct {
	release func()
	taken   bool
}

type shareKey struct{}

// decode reads and decodes the body within BodyTimeout, holding the request's share of
// the memory budget (returned, to be released once the response is written unless an
// evaluation took it over).
func (h *Handler) decode(ctx context.Context, w http.ResponseWriter, r *http.Request) (*admissionv1.AdmissionReview, *reservation, error) {
	if r.Method != http.MethodPost {
		return nil, nil, &requestError{http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed; the API server POSTs an AdmissionReview", r.Method)}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, nil, &requestError{http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q not supported; send application/json", ct)}
		}
	}
	if r.Body == nil {
		return nil, nil, &requestError{http.StatusBadRequest, "empty body; send an admission.k8s.io/v1 AdmissionReview"}
	}
	if r.ContentLength > h.opts.MaxRequestBytes {
		return nil, nil, &requestError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", h.opts.MaxRequestBytes)}
	}
	size := r.ContentLength
	if size < 0 { // chunked: as large as it may be
		size = h.opts.MaxRequestBytes
	}
	rel, err := h.reserve(ctx, h.share(size, bodyMemoryPerByte+evalMemoryPerByte), fmt.Sprintf("a request of %d bytes", size))
	if err != nil {
		return nil, nil, &requestError{http.StatusServiceUnavailable, err.Error()}
	}
	release := &reservation{release: rel}
	// The body's own deadline: a client trickling bytes in holds its connection and share
	// no longer than this. (Ignored by writers that cannot set one, e.g. in tests.)
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(h.opts.BodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxRequestBytes))
	if err == nil {
		_ = rc.SetReadDeadline(time.Time{})
	} else {
		// The deadline stays: net/http drains an unread body before it sends the
		// answer, and without a deadline a stalled client would hold it forever. The
		// connection is not reused.
		w.Header().Set("Connection", "close")
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, release, &requestError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", h.opts.MaxRequestBytes)}
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, release, &requestError{http.StatusRequestTimeout, fmt.Sprintf("body not received within %s", h.opts.BodyTimeout)}
		}
		return nil, release, &requestError{http.StatusBadRequest, fmt.Sprintf("read body: %v", err)}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, release, &requestError{http.StatusBadRequest, "empty body; send an admission.k8s.io/v1 AdmissionReview"}
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		return nil, release, &requestError{http.StatusBadRequest, fmt.Sprintf("body is not an AdmissionReview: %v", err)}
	}
	if review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview" {
		return nil, release, &requestError{http.StatusBadRequest, fmt.Sprintf("got apiVersion %q kind %q; want admission.k8s.io/v1 AdmissionReview (set admissionReviewVersions: [v1])", review.APIVersion, review.Kind)}
	}
	if review.Request == nil {
		return nil, release, &requestError{http.StatusBadRequest, "AdmissionReview has no request"}
	}
	if review.Request.UID == "" {
		return nil, release, &requestError{http.StatusBadRequest, "AdmissionReview request has no uid"}
	}
	return &review, release, nil
}

// Handle judges one admission request: Enforce failures deny it, naming every failing
// policy/rule with its message; Audit failures admit it with one warning each.
func (h *Handler) Handle(ctx context.Context, req ctrladmission.Request) ctrladmission.Response {
	resp := h.handle(ctx, req, false)
	countRequest(verdictOf(resp))
	return resp
}

// Mutating is the mutating endpoint of this handler: the same gate, limits (evaluation
// slots, memory budget, timeouts) and metrics, answering with a JSONPatch from the
// object sent to the object the gate's mutate rules make of it (Engine.Mutate, Kyverno's
// order). A mutate rule that fails or errors denies the request with its message, unless
// its policy's failurePolicy is Ignore (then a warning), as Kyverno's webhook does. No
// patch for DELETE, subresources, objects no mutate rule may match (the engine is not
// run) and mutations that change nothing. mutateExisting rules are not applied: each that
// matches is a warning saying so.
func (h *Handler) Mutating() *MutatingHandler { return &MutatingHandler{h: h} }

// MutatingHandler is Handler.Mutating: an http.Handler and a controller-runtime
// admission.Handler.
type MutatingHandler struct{ h *Handler }

var (
	_ http.Handler          = (*MutatingHandler)(nil)
	_ ctrladmission.Handler = (*MutatingHandler)(nil)
)

// ServeHTTP is Handler.ServeHTTP for the mutating endpoint.
func (m *MutatingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.h.serveHTTP(w, r, true)
}

// Handle answers one admission request with the patch of the gate's mutate rules.
func (m *MutatingHandler) Handle(ctx context.Context, req ctrladmission.Request) ctrladmission.Response {
	resp := m.h.handle(ctx, req, true)
	countRequest(verdictOf(resp))
	return resp
}

func (h *Handler) handle(ctx context.Context, req ctrladmission.Request, mutate bool) ctrladmission.Response {
	if req.SubResource != "" { // status, scale, exec...: the object's spec is judged on its own writes
		return ctrladmission.Allowed("")
	}
	if mutate && req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return ctrladmission.Allowed("") // DELETE, CONNECT: nothing to patch
	}
	gate := h.gate()
	if gate == nil || gate.Gate == nil || gate.Engine == nil {
		return h.unavailable(req, "no policies loaded yet")
	}
	ctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	// The object's memory share, held until its evaluation really ends (past a timeout,
	// an evaluation still running keeps what it uses).
	// Over HTTP, ServeHTTP reserved it with the body; called directly, reserve it here.
	var release func()
	if share, ok := ctx.Value(shareKey{}).(*reservation); ok && !share.taken {
		share.taken = true
		release = share.release
	} else {
		size := int64(len(req.Object.Raw) + len(req.OldObject.Raw))
		rel, err := h.reserve(ctx, h.share(size, evalMemoryPerByte), fmt.Sprintf("%s %s/%s (%d bytes)", req.Kind.Kind, req.Namespace, req.Name, size))
		if err != nil {
			return h.refuse(req, err.Error(), http.StatusTooManyRequests, metav1.StatusReasonTooManyRequests)
		}
		release = rel
	}
	handedOff := false
	defer func() {
		if !handedOff {
			release()
		}
	}()
	obj, err := requestObject(req)
	if err != nil {
		// Not a failure of ours: the API server sent an object we cannot read.
		return ctrladmission.Errored(http.StatusBadRequest, err)
	}
	if obj == nil {
		return ctrladmission.Allowed("")
	}
	id := policy.FormatID(obj.GetKind(), obj.GetNamespace(), obj.GetName())
	if !gate.matches(obj.GetKind()) || (mutate && !gate.mutates(obj.GetKind())) {
		return ctrladmission.Allowed("")
	}
	res := policy.Resource{Object: obj, Origin: policy.Origin{File: "admission:" + id}}
	preq := policy.Request{Operation: string(req.Operation), DryRun: req.DryRun != nil && *req.DryRun}
	preq.UserInfo = &kyvernov2.RequestInfo{AdmissionUserInfo: req.UserInfo}
	if req.Operation == admissionv1.Update || req.Operation == admissionv1.Delete {
		old, err := decodeObject(req.OldObject.Raw)
		if err != nil {
			return ctrladmission.Errored(http.StatusBadRequest, fmt.Errorf("%s: old object: %w", id, err))
		}
		preq.OldObject = old
	}
	if h.opts.NamespaceLabels != nil && obj.GetNamespace() != "" {
		labels, err := h.opts.NamespaceLabels(ctx, obj.GetNamespace())
		if err != nil {
			return h.unavailable(req, fmt.Sprintf("%s: read labels of namespace %s: %v", id, obj.GetNamespace(), err))
		}
		preq.NamespaceLabels = labels
	}
	handedOff = true
	var (
		patched   *unstructured.Unstructured
		mutateErr error
	)
	results, err := h.evaluateFunc(ctx, release, func(ctx context.Context) []policy.Result {
		if h.evalHook != nil {
			return h.evalHook(ctx, gate, res, preq)
		}
		if mutate {
			// Written before evaluateFunc receives the results, read only after.
			var rs []policy.Result
			rs, patched, mutateErr = gate.Mutate(ctx, res, preq)
			return rs
		}
		return gate.Evaluate(ctx, res, preq)
	})
	if err == nil && mutateErr != nil {
		err = fmt.Errorf("mutate: %w", mutateErr)
	}
	if err != nil {
		var te *evalError
		if errors.As(err, &te) {
			return h.refuse(req, fmt.Sprintf("%s: %v", id, err), te.code, te.reason)
		}
		return h.refuse(req, fmt.Sprintf("%s: %v", id, err), http.StatusInternalServerError, metav1.StatusReasonInternalError)
	}
	if mutate {
		return h.mutateVerdict(req, gate, id, obj, results, patched)
	}
	return verdict(id, results)
}

// mutateVerdict turns the mutate results and the mutated object into the response: a
// denial naming every failed rule of a policy whose failurePolicy is Fail (Kyverno's
// default), else allowed with a JSONPatch from the object sent to the mutated one (none
// when nothing changed) and a warning per other finding.
func (h *Handler) mutateVerdict(req ctrladmission.Request, gate *Gate, id string, obj *unstructured.Unstructured, results []policy.Result, patched *unstructured.Unstructured) ctrladmission.Response {
	var blocking, warnings []string
	for _, r := range results {
		if !r.Finding() {
			continue
		}
		switch {
		case gate.mutateExisting[r.Policy+"/"+r.Rule] && strings.Contains(r.Message, "mutateExisting"):
			warnings = append(warnings, "gitgate: "+id+": "+ruleLine(r))
			countPolicy(r.Policy, "warned")
		case (r.Status == policy.StatusFail || r.Status == policy.StatusError) && !gate.ignoreFailures[r.Policy]:
			blocking = append(blocking, ruleLine(r))
			countPolicy(r.Policy, "denied")
		default:
			warnings = append(warnings, "gitgate: "+id+": "+ruleLine(r)+" (failurePolicy Ignore: admitted)")
			countPolicy(r.Policy, "warned")
		}
	}
	sort.Strings(blocking)
	sort.Strings(warnings)
	if len(blocking) > 0 {
		resp := ctrladmission.Denied(fmt.Sprintf("gitgate: %s: mutation failed:\n%s", id, strings.Join(blocking, "\n")))
		resp.Result.Reason = "Forbidden"
		return resp.WithWarnings(warnings...)
	}
	if patched == nil || patched == obj {
		return ctrladmission.Allowed("").WithWarnings(warnings...)
	}
	ops, err := mutationPatch(req.Object.Raw, obj, patched)
	if err != nil {
		return h.refuse(req, fmt.Sprintf("%s: JSON patch of the mutation: %v", id, err), http.StatusInternalServerError, metav1.StatusReasonInternalError)
	}
	resp := ctrladmission.Allowed("").WithWarnings(warnings...)
	if len(ops) == 0 {
		return resp
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		return h.refuse(req, fmt.Sprintf("%s: encode JSON patch: %v", id, err), http.StatusInternalServerError, metav1.StatusReasonInternalError)
	}
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patches, resp.Patch, resp.PatchType = ops, raw, &pt
	return resp
}

// mutationPatch is the JSONPatch from the object the API server sent (raw) to patched.
// What requestObject filled in for the engine (kind, apiVersion, namespace, name missing
// from raw) is not added by the patch unless a mutate rule changed it.
func mutationPatch(raw []byte, filled, patched *unstructured.Unstructured) ([]jsonpatch.JsonPatchOperation, error) {
	after, err := json.Marshal(patched.Object)
	if err != nil {
		return nil, err
	}
	ops, err := jsonpatch.CreatePatch(raw, after)
	if err != nil {
		return nil, err
	}
	fills := map[string]string{
		"/apiVersion":         filled.GetAPIVersion(),
		"/kind":               filled.GetKind(),
		"/metadata/namespace": filled.GetNamespace(),
		"/metadata/name":      filled.GetName(),
	}
	out := ops[:0]
	for _, op := range ops {
		if v, ok := fills[op.Path]; ok && op.Operation == "add" && op.Value == any(v) { // a string, or unequal
			continue
		}
		out = append(out, op)
	}
	return out, nil
}

// evalError is an evaluation that did not produce results, with the status to deny with.
type evalError struct {
	code   int32
	reason metav1.StatusReason
	msg    string
}

func (e *evalError) Error() string { return e.msg }

// evaluateFunc runs eval in an evaluation slot until ctx's deadline. The engine does not
// watch its context everywhere and cannot be stopped, so it runs aside: the request never
// waits past its deadline, and the late evaluation hands its slot to the next request
// while fewer than MaxOverdue are overdue (else it keeps it until it ends). release (the
// request's memory share) is called when eval really returns. A panic in the engine is
// an error, never a crash.
func (h *Handler) evaluateFunc(ctx context.Context, release func(), eval func(context.Context) []policy.Result) ([]policy.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.Timeout) // whoever calls, never past Timeout
	defer cancel()
	type answer struct {
		results []policy.Result
		err     error
	}
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		release()
		return nil, &evalError{http.StatusTooManyRequests, metav1.StatusReasonTooManyRequests,
			fmt.Sprintf("no evaluation slot free within %s (%d evaluations running, --max-concurrent); denied, not admitted unjudged", h.opts.Timeout, h.opts.MaxConcurrent)}
	}
	var (
		mu       sync.Mutex
		finished bool
		overdue  bool
	)
	done := make(chan answer, 1)
	go func() {
		defer func() {
			release()
			mu.Lock()
			finished = true
			o := overdue
			mu.Unlock()
			if o {
				h.endOverdue()
			} else {
				<-h.slots
			}
		}()
		defer func() {
			if p := recover(); p != nil {
				done <- answer{err: fmt.Errorf("policy engine panicked: %v", p)}
			}
		}()
		done <- answer{results: eval(ctx)}
	}()
	select {
	case a := <-done:
		return a.results, a.err
	case <-ctx.Done():
		mu.Lock()
		if !finished && h.startOverdue() {
			overdue = true
			<-h.slots // ours is in the channel until the goroutine would take it back
		}
		mu.Unlock()
		return nil, &evalError{http.StatusGatewayTimeout, metav1.StatusReasonTimeout,
			fmt.Sprintf("evaluation did not finish within %s; denied: a request that makes the policy engine slow is never admitted (not even with --fail-open)", h.opts.Timeout)}
	}
}

// startOverdue counts one more evaluation running past its deadline without a slot;
// false when MaxOverdue already are.
func (h *Handler) startOverdue() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.overdue >= h.opts.MaxOverdue {
		return false
	}
	h.overdue++
	overdueEvaluations.Set(float64(h.overdue))
	return true
}

func (h *Handler) endOverdue() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.overdue--
	overdueEvaluations.Set(float64(h.overdue))
}

// Overdue is the number of evaluations running past their deadline without a slot.
func (h *Handler) Overdue() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.overdue
}

// unavailable answers a request that could not be judged because the webhook is not
// ready for it (no policies yet, namespace labels unreadable): the configured failure
// mode, as when the API server cannot reach the webhook at all.
func (h *Handler) unavailable(req ctrladmission.Request, reason string) ctrladmission.Response {
	countEvalError()
	h.opts.Log.Error(errors.New(reason), "could not evaluate admission request", "uid", req.UID, "kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name, "failOpen", h.opts.FailOpen)
	if h.opts.FailOpen {
		return ctrladmission.Allowed("").WithWarnings("gitgate: not evaluated (fail open): " + reason)
	}
	resp := ctrladmission.Denied("gitgate: could not evaluate: " + reason)
	resp.Result.Code = http.StatusInternalServerError
	resp.Result.Reason = metav1.StatusReasonInternalError
	return resp
}

// refuse denies a request whose judging was cut short by the request itself or by load:
// too slow, over the memory budget, no slot in time, an engine panic. Never fail-open:
// otherwise a request built to be slow would be admitted unjudged.
func (h *Handler) refuse(req ctrladmission.Request, reason string, code int32, why metav1.StatusReason) ctrladmission.Response {
	countEvalError()
	h.opts.Log.Error(errors.New(reason), "denied admission request that could not be judged", "uid", req.UID, "kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name)
	resp := ctrladmission.Denied("gitgate: could not evaluate: " + reason)
	resp.Result.Code = code
	resp.Result.Reason = why
	return resp
}

// requestObject is the object the request is about: the new object, or the old one for
// DELETE. nil when there is none (a DELETE of a collection, CONNECT).
func requestObject(req ctrladmission.Request) (*unstructured.Unstructured, error) {
	raw := req.Object.Raw
	if req.Operation == admissionv1.Delete {
		raw = req.OldObject.Raw
	}
	if len(raw) == 0 {
		return nil, nil
	}
	obj, err := decodeObject(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %s/%s: object: %w", req.Kind.Kind, req.Namespace, req.Name, err)
	}
	if obj.GetKind() == "" {
		obj.SetAPIVersion(req.Kind.Group + "/" + req.Kind.Version)
		if req.Kind.Group == "" {
			obj.SetAPIVersion(req.Kind.Version)
		}
		obj.SetKind(req.Kind.Kind)
	}
	if obj.GetNamespace() == "" && req.Namespace != "" {
		obj.SetNamespace(req.Namespace)
	}
	if obj.GetName() == "" && req.Name != "" {
		obj.SetName(req.Name) // generateName objects have none yet at CREATE
	}
	return obj, nil
}

// decodeObject reads JSON into an unstructured object with int64/float64 numbers, which is
// what Kyverno's engine requires.
func decodeObject(raw []byte) (*unstructured.Unstructured, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var m map[string]any
	if err := utiljson.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	if m == nil {
		return nil, errors.New("decode JSON: not an object")
	}
	if md, ok := m["metadata"]; ok {
		if _, ok := md.(map[string]any); !ok {
			return nil, fmt.Errorf("metadata is a %T, not an object", md)
		}
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// verdict turns results into the response: every blocking result in the denial message,
// every other finding as a warning.
func verdict(id string, results []policy.Result) ctrladmission.Response {
	var blocking, warnings []string
	for _, r := range results {
		switch {
		case r.Blocking():
			blocking = append(blocking, ruleLine(r))
			countPolicy(r.Policy, "denied")
		case r.Finding():
			warnings = append(warnings, "gitgate: "+id+": "+ruleLine(r))
			countPolicy(r.Policy, "warned")
		}
	}
	sort.Strings(blocking)
	sort.Strings(warnings)
	if len(blocking) > 0 {
		msg := fmt.Sprintf("gitgate: %s blocked by policy:\n%s", id, strings.Join(blocking, "\n"))
		resp := ctrladmission.Denied(msg)
		resp.Result.Reason = "Forbidden"
		return resp.WithWarnings(warnings...)
	}
	return ctrladmission.Allowed("").WithWarnings(warnings...)
}

// ruleLine is "policy/rule: message (field path)" with the remediation when the policy has one.
func ruleLine(r policy.Result) string {
	var b strings.Builder
	b.WriteString(r.Policy)
	if r.Rule != "" {
		b.WriteString("/" + r.Rule)
	}
	b.WriteString(": ")
	msg := strings.TrimSpace(r.Message)
	if r.Status == policy.StatusError {
		msg = "could not evaluate: " + msg
	}
	b.WriteString(msg)
	if r.Path != "" && !strings.Contains(msg, r.Path) {
		b.WriteString(" (" + r.Path + ")")
	}
	if r.Remediation != "" && !strings.Contains(msg, r.Remediation) {
		b.WriteString("; " + strings.TrimSpace(r.Remediation))
	}
	return b.String()
}

// verdictOf names a response for metrics: allowed, warned, denied or error.
func verdictOf(resp ctrladmission.Response) string {
	switch {
	case !resp.Allowed && resp.Result != nil && resp.Result.Code >= 500:
		return "error"
	case !resp.Allowed && resp.Result != nil && (resp.Result.Code == http.StatusBadRequest || resp.Result.Code == http.StatusTooManyRequests):
		return "error"
	case !resp.Allowed:
		return "denied"
	case len(resp.Warnings) > 0:
		return "warned"
	}
	return "allowed"
}
