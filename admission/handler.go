// Package admission is gitgate's validating admission webhook: an AdmissionReview in,
// the gate's verdict out, on the same policy code and policies as `gitgate check`.
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
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/gitgate/gitgate/policy"
	"github.com/go-logr/logr"
	kyvernov2 "github.com/kyverno/kyverno/api/kyverno/v2"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	ctrladmission "sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// DefaultMaxRequestBytes is the largest AdmissionReview body accepted. The API server
// limits objects to 3 MiB in etcd; an UPDATE carries the object twice, plus the envelope.
const DefaultMaxRequestBytes = 7 << 20

// DefaultTimeout bounds one evaluation. It stays below the ValidatingWebhookConfiguration's
// timeoutSeconds (10 in deploy/) so the webhook answers before the API server gives up.
const DefaultTimeout = 8 * time.Second

// GateFunc returns the gate to judge with; a Reloader's Gate method is one.
type GateFunc func() *Gate

// HandlerOptions configure a Handler. Start from DefaultHandlerOptions.
type HandlerOptions struct {
	// MaxRequestBytes refuses larger bodies with HTTP 413.
	MaxRequestBytes int64
	// Timeout bounds one request's wait for an evaluation slot plus the evaluation; past
	// it the request gets the failure mode.
	Timeout time.Duration
	// MaxConcurrent evaluations run at once (default GOMAXPROCS); the others wait their
	// turn in arrival order. Evaluation is CPU-bound: running more at once only makes
	// every request slower and the slowest ones very slow.
	MaxConcurrent int
	// FailOpen admits (with a warning) a request whose evaluation could not finish (a
	// timeout, a panic in the engine, no policies loaded yet); otherwise it is denied with
	// the reason. Rules that evaluate to an error follow their own action: Enforce denies,
	// Audit warns, exactly as in `gitgate check`.
	FailOpen bool
	// NamespaceLabels, when set, returns the labels of a namespace for Kyverno's
	// namespaceSelector; otherwise the values file's namespace entries are used, as in check.
	NamespaceLabels func(ctx context.Context, namespace string) (map[string]string, error)
	// Log receives one line per denied request and every internal error.
	Log logr.Logger
	// Now is the clock for latency metrics (tests inject it).
	Now func() time.Time
}

// DefaultHandlerOptions: 7 MiB bodies, an 8 s evaluation timeout, GOMAXPROCS evaluations
// at once, fail closed.
func DefaultHandlerOptions() HandlerOptions {
	return HandlerOptions{MaxRequestBytes: DefaultMaxRequestBytes, Timeout: DefaultTimeout, MaxConcurrent: runtime.GOMAXPROCS(0), Log: logr.Discard(), Now: time.Now}
}

// Handler answers AdmissionReviews with the current gate's verdict. It is an
// http.Handler (admission.k8s.io/v1 over HTTP, with HTTP 400 for bodies that are not an
// AdmissionReview) and a controller-runtime admission.Handler.
type Handler struct {
	gate  GateFunc
	opts  HandlerOptions
	slots chan struct{} // evaluation slots; a buffered channel's waiters are served in order
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
	if opts.Log.GetSink() == nil {
		opts.Log = def.Log
	}
	if opts.Now == nil {
		opts.Now = def.Now
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = def.MaxConcurrent
	}
	return &Handler{gate: gate, opts: opts, slots: make(chan struct{}, opts.MaxConcurrent)}
}

// requestError is a body that is not an AdmissionReview: HTTP status and reason.
type requestError struct {
	code   int
	reason string
}

func (e *requestError) Error() string { return e.reason }

// ServeHTTP decodes an AdmissionReview, judges its request and writes the review back.
// Anything that is not a well-formed admission.k8s.io/v1 AdmissionReview with a request
// gets HTTP 400 (413 when too large, 415 for another content type) and a plain-text reason.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.opts.Now()
	review, err := h.decode(w, r)
	if err != nil {
		var re *requestError
		if !errors.As(err, &re) {
			re = &requestError{http.StatusBadRequest, err.Error()}
		}
		observeBadRequest()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(re.code)
		fmt.Fprintf(w, "gitgate admission: %s\n", re.reason)
		return
	}
	resp := h.Handle(r.Context(), ctrladmission.Request{AdmissionRequest: *review.Request})
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

func (h *Handler) decode(w http.ResponseWriter, r *http.Request) (*admissionv1.AdmissionReview, error) {
	if r.Method != http.MethodPost {
		return nil, &requestError{http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed; the API server POSTs an AdmissionReview", r.Method)}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, &requestError{http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q not supported; send application/json", ct)}
		}
	}
	if r.Body == nil {
		return nil, &requestError{http.StatusBadRequest, "empty body; send an admission.k8s.io/v1 AdmissionReview"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxRequestBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &requestError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", h.opts.MaxRequestBytes)}
		}
		return nil, &requestError{http.StatusBadRequest, fmt.Sprintf("read body: %v", err)}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &requestError{http.StatusBadRequest, "empty body; send an admission.k8s.io/v1 AdmissionReview"}
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		return nil, &requestError{http.StatusBadRequest, fmt.Sprintf("body is not an AdmissionReview: %v", err)}
	}
	if review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview" {
		return nil, &requestError{http.StatusBadRequest, fmt.Sprintf("got apiVersion %q kind %q; want admission.k8s.io/v1 AdmissionReview (set admissionReviewVersions: [v1])", review.APIVersion, review.Kind)}
	}
	if review.Request == nil {
		return nil, &requestError{http.StatusBadRequest, "AdmissionReview has no request"}
	}
	if review.Request.UID == "" {
		return nil, &requestError{http.StatusBadRequest, "AdmissionReview request has no uid"}
	}
	return &review, nil
}

// Handle judges one admission request: Enforce failures deny it, naming every failing
// policy/rule with its message; Audit failures admit it with one warning each.
func (h *Handler) Handle(ctx context.Context, req ctrladmission.Request) ctrladmission.Response {
	resp := h.handle(ctx, req)
	countRequest(verdictOf(resp))
	return resp
}

func (h *Handler) handle(ctx context.Context, req ctrladmission.Request) ctrladmission.Response {
	if req.SubResource != "" { // status, scale, exec...: the object's spec is judged on its own writes
		return ctrladmission.Allowed("")
	}
	gate := h.gate()
	if gate == nil || gate.Gate == nil || gate.Engine == nil {
		return h.failure(req, "no policies loaded yet")
	}
	obj, err := requestObject(req)
	if err != nil {
		// Not a failure of ours: the API server sent an object we cannot read.
		return ctrladmission.Errored(http.StatusBadRequest, err)
	}
	if obj == nil {
		return ctrladmission.Allowed("")
	}
	id := policy.FormatID(obj.GetKind(), obj.GetNamespace(), obj.GetName())
	if !gate.matches(obj.GetKind()) {
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
			return h.failure(req, fmt.Sprintf("%s: read labels of namespace %s: %v", id, obj.GetNamespace(), err))
		}
		preq.NamespaceLabels = labels
	}
	results, err := h.evaluate(ctx, gate, res, preq)
	if err != nil {
		return h.failure(req, fmt.Sprintf("%s: %v", id, err))
	}
	return verdict(id, results)
}

// evaluate runs the gate with the request's timeout. The engine does not watch its
// context everywhere, so it runs aside and a late answer is dropped: the request never
// waits longer than the timeout. A panic in the engine is an error, never a crash.
func (h *Handler) evaluate(ctx context.Context, gate *Gate, r policy.Resource, req policy.Request) ([]policy.Result, error) {
	return h.evaluateFunc(ctx, func(ctx context.Context) []policy.Result { return gate.Evaluate(ctx, r, req) })
}

func (h *Handler) evaluateFunc(ctx context.Context, eval func(context.Context) []policy.Result) ([]policy.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	type answer struct {
		results []policy.Result
		err     error
	}
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("no evaluation slot within %s (%d evaluations running): %w", h.opts.Timeout, h.opts.MaxConcurrent, ctx.Err())
	}
	done := make(chan answer, 1)
	go func() {
		defer func() { <-h.slots }() // held until the engine returns, even after a timeout
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
		return nil, fmt.Errorf("evaluation did not finish within %s: %w", h.opts.Timeout, ctx.Err())
	}
}

// failure answers a request that could not be judged with the configured failure mode.
func (h *Handler) failure(req ctrladmission.Request, reason string) ctrladmission.Response {
	countEvalError()
	h.opts.Log.Error(errors.New(reason), "could not evaluate admission request", "uid", req.UID, "kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name, "failOpen", h.opts.FailOpen)
	if h.opts.FailOpen {
		return ctrladmission.Allowed("").WithWarnings("gitgate: not evaluated (fail open): " + reason)
	}
	resp := ctrladmission.Denied("gitgate: could not evaluate: " + reason)
	resp.Result.Code = http.StatusInternalServerError
	resp.Result.Reason = "InternalError"
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
	case !resp.Allowed && resp.Result != nil && resp.Result.Code == http.StatusBadRequest:
		return "error"
	case !resp.Allowed:
		return "denied"
	case len(resp.Warnings) > 0:
		return "warned"
	}
	return "allowed"
}
