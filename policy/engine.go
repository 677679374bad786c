package policy

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	kyvernov2 "github.com/kyverno/kyverno/api/kyverno/v2"
	"github.com/kyverno/kyverno/pkg/autogen"
	"github.com/kyverno/kyverno/pkg/cel/libs"
	"github.com/kyverno/kyverno/pkg/cel/matching"
	dpolengine "github.com/kyverno/kyverno/pkg/cel/policies/dpol/engine"
	gpolengine "github.com/kyverno/kyverno/pkg/cel/policies/gpol/engine"
	vpolcompiler "github.com/kyverno/kyverno/pkg/cel/policies/vpol/compiler"
	vpolengine "github.com/kyverno/kyverno/pkg/cel/policies/vpol/engine"
	"github.com/kyverno/kyverno/pkg/config"
	"github.com/kyverno/kyverno/pkg/engine"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	enginecontext "github.com/kyverno/kyverno/pkg/engine/context"
	"github.com/kyverno/kyverno/pkg/engine/factories"
	"github.com/kyverno/kyverno/pkg/engine/jmespath"
	"github.com/kyverno/kyverno/pkg/engine/policycontext"
	"github.com/kyverno/kyverno/pkg/exceptions"
	imageverifycache "github.com/kyverno/kyverno/pkg/image/verification/cache"
	"github.com/kyverno/kyverno/pkg/toggle"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// Annotations gitgate reads from policies.
const (
	AnnotationRemediation = "gitgate.dev/remediation"
	AnnotationHelpURL     = "gitgate.dev/help-url"
	AnnotationSeverity    = "policies.kyverno.io/severity"
	AnnotationCategory    = "policies.kyverno.io/category"
	AnnotationAutogen     = "pod-policies.kyverno.io/autogen-controllers"
)

// Options configure an Engine. Start from DefaultOptions.
type Options struct {
	// Values supplies cluster data offline (Kyverno's values-file format).
	Values *Values
	// Variables are added to every rule's context, e.g. gitgate.registries.
	Variables map[string]any
	// Now is the clock PolicyExceptions expire by (gitgate.dev/expires); default
	// time.Now. An exception expired when the engine is built is left out and reported
	// by Notices; one that expires while the engine runs stops applying then.
	Now func() time.Time

	// eagerContext turns the copy-on-write JSON context off, so tests can compare.
	eagerContext bool
	// celContext answers CEL policies' resource.Get/List and image.GetMetadata; nil is
	// an empty in-memory one. gitgate test fills it from a test's context file.
	celContext libs.Context
	// test is what a kyverno-test.yaml supplies in place of a cluster; with it, context
	// entries load as `kyverno test` loads them (kyvernotest_fields.go). nil outside
	// gitgate test (see kyvernoTest).
	test *testData
}

// kyvernoTest reports whether the engine runs a kyverno-test.yaml (gitgate test), where
// it follows `kyverno test` v1.19.1 rather than the API server: a ValidatingAdmissionPolicy
// or MAP no binding names is evaluated on its matchConstraints, a bound one on its
// bindings' matchResources only (pkg/admissionpolicy processVAPNoBindings /
// processVAPWithoutClient); MAPs mutate after Kyverno's kinds; DeletingPolicies are
// evaluated.
func (o Options) kyvernoTest() bool { return o.test != nil }

// Request describes the admission request a resource is evaluated as. The zero value
// is a CREATE by nobody, which is what a pre-commit check is.
type Request struct {
	// Operation is CREATE, UPDATE, DELETE or CONNECT; empty means CREATE.
	Operation string
	// OldObject is the stored object for UPDATE and DELETE.
	OldObject *unstructured.Unstructured
	// UserInfo is who asks, with their roles, as Kyverno's match/exclude sees them.
	UserInfo *kyvernov2.RequestInfo
	// NamespaceLabels are the labels of the resource's namespace; when nil the values
	// file's namespaceSelector entries are used.
	NamespaceLabels map[string]string
	// DryRun marks a dry-run admission request.
	DryRun bool
}

// Engine evaluates resources against a Set with Kyverno's engine. It is safe for
// concurrent use; each Evaluate call builds one policy context for its resource.
type Engine struct {
	set      *Set
	opts     Options
	cfg      config.Configuration
	jp       jmespath.Interface
	kyverno  engineapi.Engine
	policies []compiledPolicy
	// mutates and generates: some policy has mutate / generate rules (set once, read
	// on every resource a check judges).
	mutates, generates bool
	vpol               vpolengine.Engine
	mpol               *mutatingPolicies   // MutatingPolicies (mpol.go)
	gpol               []gpolengine.Policy // GeneratingPolicies (gpol.go)
	dpol               []dpolengine.Policy // DeletingPolicies, compiled for gitgate test only (dpol.go)
	celCtx             libs.Context
	vaps               []compiledVAP // bound ValidatingAdmissionPolicies (vap.go)
	maps               []compiledMAP // bound MutatingAdmissionPolicies (map.go)
	notices            []string

	// mutex applies mutateExisting rules and MutatingPolicies: gitgate test only
	// (mutateexisting.go); nil elsewhere, where they are reported as not evaluated.
	mutex *mutateExisting
}

// Notices are what building the engine found worth telling that is not a finding:
// every PolicyException that expired and no longer applies, with its file:line, ticket
// and expiry.
func (e *Engine) Notices() []string { return e.notices }

type compiledPolicy struct {
	policy kyvernov1.PolicyInterface // with autogen rules computed once
	meta   policyMeta
	rules  map[string]*kyvernov1.Rule
}

type policyMeta struct {
	severity, category, remediation, helpURL string
}

func metaOf(ann map[string]string) policyMeta {
	return policyMeta{severity: ann[AnnotationSeverity], category: ann[AnnotationCategory], remediation: ann[AnnotationRemediation], helpURL: ann[AnnotationHelpURL]}
}

// offlineHTTP makes the CEL http library refuse every URL before it resolves or dials
// anything: an allowlist entry no URL can match. Kyverno builds its HTTP context from
// this toggle on first use, process-wide; gitgate never lets policies reach the network.
var offlineHTTP = sync.OnceFunc(func() {
	_ = toggle.HTTPAllowlist.Parse("https://gitgate-evaluates-offline.invalid")
})

// NewEngine compiles the set once: autogen rules for pod controllers (including a
// policy's own autogen-controllers annotation) and CEL programs.
func NewEngine(set *Set, opts Options) (*Engine, error) {
	offlineHTTP()
	cfg := config.NewDefaultConfiguration(false)
	jp := jmespath.New(cfg)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Engine{set: set, opts: opts, cfg: cfg, jp: jp}
	lister := e.activeExceptions()
	celExceptions := e.activeCELExceptions()
	isCluster := false
	e.kyverno = engine.NewEngine(
		cfg,
		jp,
		nil, // no cluster client: never a network call
		nil, // no registry client
		imageverifycache.DisabledImageVerifyCache(),
		e.contextLoader,
		exceptions.New(lister),
		&isCluster,
	)
	for _, p := range set.Policies {
		e.policies = append(e.policies, compile(p))
		e.mutates = e.mutates || p.GetSpec().HasMutate()
		e.generates = e.generates || p.GetSpec().HasGenerate()
	}
	if len(set.ValidatingPolicies) > 0 || len(set.MutatingPolicies) > 0 || len(set.GeneratingPolicies) > 0 || len(set.DeletingPolicies) > 0 {
		e.celCtx = opts.celContext
		if e.celCtx == nil {
			e.celCtx = libs.NewFakeContextProvider()
		}
	}
	if len(set.MutatingPolicies) > 0 {
		if err := e.compileMutatingPolicies(set.MutatingPolicies, celExceptions); err != nil {
			return nil, err
		}
		e.mutates = true
	}
	if len(set.GeneratingPolicies) > 0 {
		if err := e.compileGeneratingPolicies(set.GeneratingPolicies, celExceptions); err != nil {
			return nil, err
		}
		e.generates = true
	}
	// DeletingPolicies are evaluated by gitgate test only; elsewhere a notice each.
	if len(set.DeletingPolicies) > 0 && opts.kyvernoTest() {
		if err := e.compileDeletingPolicies(set.DeletingPolicies, celExceptions); err != nil {
			return nil, err
		}
	} else if len(set.DeletingPolicies) > 0 {
		e.notices = append(e.notices, deletingPolicyNotices(set)...)
	}
	if len(set.ValidatingPolicies) > 0 {
		var provider vpolengine.Provider
		err := withLibraryContext(e.celCtx, func() (err error) {
			provider, err = vpolengine.NewProvider(vpolcompiler.NewCompiler(), set.ValidatingPolicies, celExceptions)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("compile validating policies: %w", err)
		}
		e.vpol = vpolengine.NewEngine(provider, func(ns string) *corev1.Namespace { return namespaceObject(opts.Values, ns) }, matching.NewMatcher())
	}
	if err := e.compileVAPs(set); err != nil {
		return nil, err
	}
	if err := e.compileMAPs(set); err != nil {
		return nil, err
	}

	return e, nil
}

// celCompileMu serialises compiling CEL policies. Kyverno binds a compiled policy's
// resource.Get/List and image.GetMetadata to the process-wide libs.LibraryContext as it
// is when the policy compiles (its CLI sets it before compiling), not to the context of
// the request; each engine sets its own (empty, or a test's context file) for the time
// it compiles, so one engine's context never leaks into another's.
var celCompileMu sync.Mutex

func withLibraryContext(c libs.Context, compile func() error) error {
	celCompileMu.Lock()
	defer celCompileMu.Unlock()
	prev := libs.LibraryContext
	libs.LibraryContext = c
	defer func() { libs.LibraryContext = prev }()
	return compile()
}

// compile materialises a policy's autogen rules once. Kyverno's engine recomputes them
// on every call (a deep copy and JSON round trip per rule); with the rules expanded and
// the controllers annotation set to "none" it uses them as they are.
func compile(p kyvernov1.PolicyInterface) compiledPolicy {
	rules := computeRules(p)
	c := p.CreateDeepCopy()
	c.GetSpec().Rules = rules
	ann := map[string]string{}
	for k, v := range c.GetAnnotations() {
		ann[k] = v
	}
	ann[AnnotationAutogen] = "none"
	c.SetAnnotations(ann)
	cp := compiledPolicy{policy: c, meta: metaOf(p.GetAnnotations()), rules: map[string]*kyvernov1.Rule{}}
	for i := range c.GetSpec().Rules {
		r := &c.GetSpec().Rules[i]
		cp.rules[r.Name] = r
	}
	return cp
}

// kyvernoControllers are the controllers Kyverno's autogen knows; it silently drops
// others named in the autogen-controllers annotation.
var kyvernoControllers = map[string]bool{
	"DaemonSet": true, "Deployment": true, "Job": true, "StatefulSet": true,
	"ReplicaSet": true, "ReplicationController": true, "CronJob": true, "all": true, "none": true,
}

// computeRules is Kyverno's autogen, extended to controllers it does not know that
// keep their pod template at spec.template, such as Argo Rollouts: a policy annotated
// "Deployment,Rollout" gets autogen rules matching both.
func computeRules(p kyvernov1.PolicyInterface) []kyvernov1.Rule {
	ann := p.GetAnnotations()[AnnotationAutogen]
	var known, extra []string
	for _, k := range strings.Split(ann, ",") {
		k = strings.TrimSpace(k)
		switch {
		case k == "":
		case kyvernoControllers[k]:
			known = append(known, k)
		default:
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return autogen.Default.ComputeRules(p, "")
	}
	q := p.CreateDeepCopy()
	a := map[string]string{}
	for k, v := range q.GetAnnotations() {
		a[k] = v
	}
	placeholder := !slices.ContainsFunc(known, func(k string) bool { return k != "CronJob" })
	if placeholder {
		known = append(known, "Deployment") // generates the spec.template rule we re-target
	}
	a[AnnotationAutogen] = strings.Join(known, ",")
	q.SetAnnotations(a)
	rules := autogen.Default.ComputeRules(q, "")
	for i := range rules {
		r := &rules[i]
		if !strings.HasPrefix(r.Name, "autogen-") || strings.HasPrefix(r.Name, "autogen-cronjob-") {
			continue
		}
		kindName := func(k string) string { return k[strings.LastIndex(k, "/")+1:] } // apps/v1/Deployment
		retarget := func(kinds []string) []string {
			if !slices.ContainsFunc(kinds, func(k string) bool { return kyvernoControllers[kindName(k)] }) {
				return kinds
			}
			if placeholder {
				kinds = slices.DeleteFunc(kinds, func(k string) bool { return kindName(k) == "Deployment" })
			}
			return append(kinds, extra...)
		}
		r.MatchResources.Kinds = retarget(r.MatchResources.Kinds)
		for j := range r.MatchResources.Any {
			r.MatchResources.Any[j].Kinds = retarget(r.MatchResources.Any[j].Kinds)
		}
		for j := range r.MatchResources.All {
			r.MatchResources.All[j].Kinds = retarget(r.MatchResources.All[j].Kinds)
		}
	}
	return rules
}

// Evaluate runs every policy on one resource and returns one Result per policy rule that
// applied. Rules whose match does not select the resource produce no result. The
// resource's gitgate.dev/waive annotation is honoured here, so check, the webhook and
// the runner treat waivers identically (see applyWaivers). Secret values (of the
// object, and of the old object in a request) are masked in the results' text here, so
// no caller prints them (MaskResults).
func (e *Engine) Evaluate(ctx context.Context, r Resource, req Request) []Result {
	var out []Result
	if len(e.policies) > 0 {
		out = append(out, e.evaluateKyverno(ctx, r, req)...)
	}
	if e.vpol != nil {
		out = append(out, e.evaluateCEL(ctx, r, req)...)
	}
	if len(e.vaps) > 0 {
		out = append(out, e.evaluateVAPs(ctx, r, req)...)
	}
	out = applyWaivers(r, out)
	if req.OldObject != nil {
		return MaskResults(out, r.Object.Object, req.OldObject.Object)
	}
	return MaskResults(out, r.Object.Object)
}

func operation(op string) kyvernov1.AdmissionOperation {
	switch strings.ToUpper(op) {
	case "UPDATE":
		return kyvernov1.Update
	case "DELETE":
		return kyvernov1.Delete
	case "CONNECT":
		return kyvernov1.Connect
	}
	return kyvernov1.Create
}

func (e *Engine) evaluateKyverno(ctx context.Context, r Resource, req Request) []Result {
	pc, obj, err := e.basePolicyContext(*r.Object, req)
	if err != nil {
		return e.allErrors(r, err)
	}
	op := operation(req.Operation)
	// One policy context per resource, shared by every policy: its JSON context is
	// built once and checkpointed copy-on-write between policies and rules.
	var lazy *lazyContext
	if !e.opts.eagerContext {
		lazy = &lazyContext{Interface: pc.JSONContext(), object: obj.Object}
		if op == kyvernov1.Delete {
			lazy.object = nil
		}
	}
	var out []Result
	for i := range e.policies {
		cp := &e.policies[i]
		var ppc engineapi.PolicyContext
		if lazy != nil {
			ppc = lazyPolicyContext{PolicyContext: pc.WithPolicy(cp.policy), jc: lazy}
		} else {
			ppc = pc.WithPolicy(cp.policy)
		}
		vals := resourceValues(e.opts.Values, cp.policy.GetName(), obj.GetName())
		if len(vals) > 0 {
			ppc.JSONContext().Checkpoint()
			for k, v := range vals {
				if err := ppc.JSONContext().AddVariable(k, v); err != nil {
					out = append(out, e.result(r, cp, "", StatusError, fmt.Sprintf("add value %s: %v", k, err), ""))
				}
			}
		}
		resp := e.kyverno.Validate(ctx, ppc)
		if len(vals) > 0 {
			ppc.JSONContext().Restore()
		}
		out = append(out, e.kyvernoResults(r, cp, resp)...)
	}
	return out
}

// basePolicyContext is the policy context of one admission request for obj, without a
// policy: the object (the old one for DELETE), operation, user, request fields,
// namespace labels and the engine's variables. It returns the object policies match
// (the old object for DELETE). Validation (evaluateKyverno) and mutation (Mutate) build
// their contexts here, so both see the same request.
func (e *Engine) basePolicyContext(obj unstructured.Unstructured, req Request) (*policycontext.PolicyContext, unstructured.Unstructured, error) {
	op := operation(req.Operation)
	newObj := obj
	if op == kyvernov1.Delete {
		newObj = unstructured.Unstructured{}
		if req.OldObject != nil {
			obj = *req.OldObject
		}
	}
	userInfo := req.UserInfo
	if userInfo == nil {
		userInfo = &kyvernov2.RequestInfo{}
	}
	pc, err := policycontext.NewPolicyContext(e.jp, obj, op, userInfo, e.cfg)
	if err != nil {
		return nil, obj, fmt.Errorf("build policy context: %w", err)
	}
	if op == kyvernov1.Delete {
		pc = pc.WithNewResource(newObj).WithOldResource(obj)
	}
	if req.OldObject != nil && op == kyvernov1.Update {
		pc = pc.WithOldResource(*req.OldObject)
		if err := pc.JSONContext().AddOldResource(req.OldObject.Object); err != nil {
			return nil, obj, fmt.Errorf("add old object to context: %w", err)
		}
	}
	if err := pc.JSONContext().AddOperation(string(op)); err != nil {
		return nil, obj, fmt.Errorf("add operation to context: %w", err)
	}
	// The rest of the admission request policies read: request.namespace, .name, .kind
	// and .dryRun, as the API server would send them.
	if err := addRequestFields(pc.JSONContext(), obj, req.DryRun); err != nil {
		return nil, obj, fmt.Errorf("add the request to context: %w", err)
	}
	nsLabels := req.NamespaceLabels
	if nsLabels == nil {
		nsLabels = namespaceLabels(e.opts.Values, obj.GetNamespace())
	}
	pc = pc.WithResourceKind(obj.GroupVersionKind(), "").WithNamespaceLabels(nsLabels)
	for k, v := range e.opts.Variables {
		if err := pc.JSONContext().AddVariable(k, v); err != nil {
			return nil, obj, fmt.Errorf("add variable %s: %w", k, err)
		}
	}
	return pc, obj, nil
}

func (e *Engine) allErrors(r Resource, err error) []Result {
	var out []Result
	for i := range e.policies {
		out = append(out, e.result(r, &e.policies[i], "", StatusError, err.Error(), ""))
	}
	return out
}

var failedAtPath = regexp.MustCompile(`failed at path (/\S*)`)

func (e *Engine) kyvernoResults(r Resource, cp *compiledPolicy, resp engineapi.EngineResponse) []Result {
	var out []Result
	for _, rr := range resp.PolicyResponse.Rules {
		if rr.RuleType() != engineapi.Validation && rr.RuleType() != engineapi.ImageVerify {
			continue
		}
		status := Status(rr.Status())
		msg := rr.Message()
		path := ""
		if m := failedAtPath.FindStringSubmatch(msg); m != nil {
			path = m[1]
		}
		res := e.result(r, cp, rr.Name(), status, msg, path)
		if exc := rr.Exceptions(); len(exc) > 0 {
			var names []string
			for _, x := range exc {
				name := x.GetNamespace() + "/" + x.GetName()
				if info, ok := e.set.ExceptionInfo("kyverno.io", x.GetNamespace(), x.GetName()); ok && info.Ticket != "" {
					name += " (ticket " + info.Ticket + ")"
				}
				names = append(names, name)
			}
			res.Exception = strings.Join(names, ",")
		}
		out = append(out, res)
	}
	return out
}

func (e *Engine) result(r Resource, cp *compiledPolicy, rule string, status Status, msg, path string) Result {
	obj := r.Object
	var from []ValueOrigin
	if r.Values != nil && path != "" && status != StatusPass && status != StatusSkip {
		from = r.Values.LocateValue(splitPath(path))
	}
	return Result{
		ValuesFrom:  from,
		Origin:      r.position(path),
		APIVersion:  obj.GetAPIVersion(),
		Kind:        obj.GetKind(),
		Namespace:   obj.GetNamespace(),
		Name:        r.name(),
		Policy:      cp.policy.GetName(),
		Rule:        rule,
		Status:      status,
		Action:      cp.action(rule, obj.GetNamespace()),
		Message:     msg,
		Path:        fieldPath(path),
		Severity:    cp.meta.severity,
		Category:    cp.meta.category,
		Remediation: cp.meta.remediation,
		HelpURL:     cp.meta.helpURL,
	}
}

// action resolves the failure action as Kyverno does: the rule's own failureAction and
// its namespace overrides, then the policy's overrides, then the policy's action.
func (cp *compiledPolicy) action(rule, namespace string) Action {
	spec := cp.policy.GetSpec()
	if r := cp.rules[rule]; r != nil && r.Validation != nil {
		if a, ok := override(r.Validation.FailureActionOverrides, namespace); ok {
			return a
		}
		if r.Validation.FailureAction != nil {
			return normAction(*r.Validation.FailureAction)
		}
	}
	if a, ok := override(spec.ValidationFailureActionOverrides, namespace); ok {
		return a
	}
	return normAction(spec.ValidationFailureAction)
}

func override(ovs []kyvernov1.ValidationFailureActionOverride, namespace string) (Action, bool) {
	for _, o := range ovs {
		if slices.Contains(o.Namespaces, namespace) {
			return normAction(o.Action), true
		}
		for _, pat := range o.Namespaces {
			if ok, _ := matchWildcard(pat, namespace); ok {
				return normAction(o.Action), true
			}
		}
	}
	return "", false
}

func matchWildcard(pattern, s string) (bool, error) {
	re, err := regexp.Compile("^" + strings.ReplaceAll(regexp.QuoteMeta(pattern), `\*`, ".*") + "$")
	if err != nil {
		return false, err
	}
	return re.MatchString(s), nil
}

func normAction(a kyvernov1.ValidationFailureAction) Action {
	if a.Enforce() {
		return Enforce
	}
	return Audit
}

// contextLoader loads a rule's context entries offline: variables and values-file data
// only. An apiCall, configMap, global or image-registry entry with no value supplied is
// a "needs cluster data" error for that rule, never a network call.
func (e *Engine) contextLoader(pol kyvernov1.PolicyInterface, rule kyvernov1.Rule) engineapi.ContextLoader {
	vals := ruleValues(e.opts.Values, pol.GetName(), rule.Name)
	init := func(jc enginecontext.Interface) error {
		for k, v := range vals {
			if err := jc.AddVariable(k, v); err != nil {
				return err
			}
		}
		return nil
	}
	if e.opts.test != nil {
		return e.opts.test.contextLoader(pol, rule, init)
	}
	inner := factories.DefaultContextLoaderFactory(nil, factories.WithInitializer(init))(pol, rule)
	return offlineLoader{inner: inner, policy: pol.GetName(), rule: rule.Name}
}

type offlineLoader struct {
	inner        engineapi.ContextLoader
	policy, rule string
}

func (l offlineLoader) Load(ctx context.Context, jp jmespath.Interface, _ engineapi.RawClient, _ engineapi.RegistryClientFactory, entries []kyvernov1.ContextEntry, jc enginecontext.Interface) error {
	if err := factories.RunContextLoaderInitializers(l.inner, jc); err != nil {
		return err
	}
	local := make([]kyvernov1.ContextEntry, 0, len(entries))
	for _, entry := range entries {
		source := clusterSource(entry)
		if source == "" {
			local = append(local, entry)
			continue
		}
		if v, err := jc.Query(strconv.Quote(entry.Name)); err == nil && v != nil { // names like roles-dictionary are not JMESPath
			continue // supplied by the values file
		}
		return &NeedsClusterDataError{Policy: l.policy, Rule: l.rule, Entry: entry.Name, Source: source}
	}
	return factories.LoadContextLoaderEntriesWithoutInitializers(l.inner, ctx, jp, nil, nil, local, jc)
}

// NeedsClusterDataError is a context entry that only a cluster can answer.
type NeedsClusterDataError struct {
	Policy, Rule, Entry, Source string
}

func (e *NeedsClusterDataError) Error() string {
	return fmt.Sprintf("needs cluster data: context entry %q (%s) can only be answered by a cluster; gitgate evaluates offline, so supply its value in a values file (--values, policies[name=%s].rules[name=%s].values.%s)",
		e.Entry, e.Source, e.Policy, e.Rule, e.Entry)
}

func clusterSource(entry kyvernov1.ContextEntry) string {
	switch {
	case entry.APICall != nil:
		return "apiCall"
	case entry.ConfigMap != nil:
		return "configMap"
	case entry.GlobalReference != nil:
		return "globalReference"
	case entry.ImageRegistry != nil:
		return "imageRegistry"
	}
	return ""
}

// exceptionLister serves Kyverno the exceptions that have not expired by now.
type exceptionLister struct {
	list    []*kyvernov2.PolicyException
	expires []time.Time // zero: never; parallel to list
	expiry  bool        // some exception expires
	now     func() time.Time
}

func (l exceptionLister) List(labels.Selector) ([]*kyvernov2.PolicyException, error) {
	if !l.expiry {
		return l.list, nil
	}
	now := l.now()
	out := make([]*kyvernov2.PolicyException, 0, len(l.list))
	for i, x := range l.list {
		if l.expires[i].IsZero() || now.Before(l.expires[i]) {
			out = append(out, x)
		}
	}
	return out, nil
}

// activeExceptions leaves out the PolicyExceptions expired at opts.Now, with a notice
// for each, and returns a lister that keeps expiring the rest as time passes.
func (e *Engine) activeExceptions() exceptionLister {
	l := exceptionLister{now: e.opts.Now}
	now := e.opts.Now()
	for _, x := range e.set.Exceptions {
		info, _ := e.set.ExceptionInfo("kyverno.io", x.Namespace, x.Name)
		if info.Expired(now) {
			e.notices = append(e.notices, expiredNotice("PolicyException", x.Namespace, x.Name, info))
			continue
		}
		l.list = append(l.list, x)
		l.expires = append(l.expires, info.Expires)
		l.expiry = l.expiry || !info.Expires.IsZero()
	}
	return l
}

// activeCELExceptions leaves out the CEL PolicyExceptions expired at opts.Now; they are
// compiled once, so one that expires later applies until the gate is opened again.
func (e *Engine) activeCELExceptions() []*policiesv1beta1.PolicyException {
	var out []*policiesv1beta1.PolicyException
	now := e.opts.Now()
	for _, x := range e.set.CELExceptions {
		info, _ := e.set.ExceptionInfo("policies.kyverno.io", x.Namespace, x.Name)
		if info.Expired(now) {
			e.notices = append(e.notices, expiredNotice("PolicyException", x.Namespace, x.Name, info))
			continue
		}
		out = append(out, x)
	}
	return out
}

func expiredNotice(kind, namespace, name string, x ExceptionInfo) string {
	id := name
	if namespace != "" {
		id = namespace + "/" + name
	}
	ticket := ""
	if x.Ticket != "" {
		ticket = " (ticket " + x.Ticket + ")"
	}
	return fmt.Sprintf("%s: %s/%s%s expired (%s: %s): it no longer applies, so the findings it covered are reported again; renew the date or remove the exception",
		x.Origin, kind, id, ticket, AnnotationExpires, x.ExpiresText)
}

// evaluateCEL runs the CEL ValidatingPolicies, compiled once in NewEngine.
func (e *Engine) evaluateCEL(ctx context.Context, r Resource, req Request) []Result {
	request := e.celRequest(r.Object, req)
	resp, err := e.vpol.Handle(ctx, request, nil)
	if err != nil {
		var out []Result
		for _, p := range e.set.ValidatingPolicies {
			out = append(out, e.celResult(r, p, nil, "", StatusError, err.Error()))
		}
		return out
	}
	var out []Result
	for _, pr := range resp.Policies {
		for _, rr := range pr.Rules {
			out = append(out, e.celResult(r, pr.Policy, pr.Actions.UnsortedList(), rr.Name(), Status(rr.Status()), rr.Message()))
		}
	}
	return out
}

func (e *Engine) celResult(r Resource, p policiesv1beta1.ValidatingPolicyLike, actions []admissionregistrationv1.ValidationAction, rule string, status Status, msg string) Result {
	obj := r.Object
	if rule == "" {
		rule = p.GetName()
	}
	if actions == nil {
		actions = p.GetValidatingPolicySpec().ValidationActions()
	}
	action := Audit
	if slices.Contains(actions, admissionregistrationv1.Deny) {
		action = Enforce
	}
	m := metaOf(p.GetAnnotations())
	return Result{
		Origin:      r.Origin,
		APIVersion:  obj.GetAPIVersion(),
		Kind:        obj.GetKind(),
		Namespace:   obj.GetNamespace(),
		Name:        r.name(),
		Policy:      p.GetName(),
		Rule:        rule,
		Status:      status,
		Action:      action,
		Message:     msg,
		Severity:    m.severity,
		Category:    m.category,
		Remediation: m.remediation,
		HelpURL:     m.helpURL,
	}
}

// addRequestFields adds request.namespace, request.name, request.kind and
// request.dryRun, which Kyverno's admission controller has from the AdmissionRequest.
func addRequestFields(jc enginecontext.Interface, obj unstructured.Unstructured, dryRun bool) error {
	gvk := obj.GroupVersionKind()
	if err := jc.AddNamespace(obj.GetNamespace()); err != nil {
		return err
	}
	for k, v := range map[string]any{
		"request.name":   obj.GetName(),
		"request.kind":   map[string]any{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind},
		"request.dryRun": dryRun,
	} {
		if err := jc.AddVariable(k, v); err != nil {
			return err
		}
	}
	return nil
}
