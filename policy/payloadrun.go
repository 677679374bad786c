package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	authzhttp "github.com/kyverno/kyverno-authz/pkg/cel/libs/authz/http"
	authzengine "github.com/kyverno/kyverno-authz/pkg/engine"
	authzcompiler "github.com/kyverno/kyverno-authz/pkg/engine/compiler"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/apis/v1alpha1"
	celengine "github.com/kyverno/kyverno/pkg/cel/engine"
	"github.com/kyverno/kyverno/pkg/cel/libs"
	vpolcompiler "github.com/kyverno/kyverno/pkg/cel/policies/vpol/compiler"
	vpolengine "github.com/kyverno/kyverno/pkg/cel/policies/vpol/engine"
	yaml3 "go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

// payloadFile is one payload of a test: its name as the test writes it (Kyverno's CLI
// names a JSON payload's results so), its path as shown, and its value.
type payloadFile struct {
	name, rel, shown string
	json             map[string]any
	http             *authzhttp.CheckRequest
	envoy            *authv3.CheckRequest
}

// payloadResult is a payload policy's result on one payload or object.
type payloadResult struct {
	policy, rule string
	status       Status
	message      string
}

// payloadRun evaluates a test's payload policies on its payloads: the JSON-mode ones
// through Kyverno's ValidatingPolicy engine (with the test's CEL PolicyExceptions), the
// HTTP and Envoy ones through Kyverno's authorization compiler, each policy compiled
// once for the test, results kept per payload.
type payloadRun struct {
	policies  map[string]*PayloadPolicy // by name
	files     map[string][]payloadFile  // by mode
	resources []Resource                // JSON-mode policies also judge these, as raw JSON
	celCtx    libs.Context
	dyn       dynamic.Interface
	json      vpolengine.Engine
	http      map[string]authzengine.HTTPPolicy
	envoy     map[string]authzengine.EnvoyPolicy
	failed    map[string]string // policy -> why it did not compile for this test
	done      map[string][]payloadResult
}

// testPayloads lists a test's payload files by mode. JSON payloads as Kyverno's CLI
// reads them (test/load.go cleanTest): the deprecated jsonPayload only without
// jsonPayloads, names cleaned (./a.json is a.json), blank and repeated ones dropped.
func testPayloads(t v1alpha1.Test) map[string][]string {
	out := map[string][]string{ModeHTTP: t.HTTPPayloads, ModeEnvoy: t.EnvoyPayloads}
	jsons := t.JSONPayloads
	if len(jsons) == 0 && t.JSONPayload != "" {
		jsons = []string{t.JSONPayload}
	}
	for _, p := range jsons {
		if strings.TrimSpace(p) == "" {
			continue
		}
		if p = path.Clean(p); !slices.Contains(out[ModeJSON], p) {
			out[ModeJSON] = append(out[ModeJSON], p)
		}
	}
	return out
}

// newPayloadRun reads the test's payloads (from inside the test's filesystem, as every
// test file) and compiles its payload policies. A payload that does not load fails the
// test, as in Kyverno's CLI.
func newPayloadRun(fsys fs.FS, t v1alpha1.Test, set *Set, eng *Engine, celCtx libs.Context, data *testData,
	rel func(string) (string, error), show func(string) string, resources []Resource) (*payloadRun, error) {
	pr := &payloadRun{policies: map[string]*PayloadPolicy{}, files: map[string][]payloadFile{}, resources: resources,
		celCtx: celCtx, failed: map[string]string{}, done: map[string][]payloadResult{},
		http: map[string]authzengine.HTTPPolicy{}, envoy: map[string]authzengine.EnvoyPolicy{}}
	if pr.celCtx == nil {
		pr.celCtx = libs.NewFakeContextProvider()
	}
	for mode, names := range testPayloads(t) {
		for _, name := range names {
			f, err := readPayload(fsys, mode, name, rel, show)
			if err != nil {
				return nil, err
			}
			pr.files[mode] = append(pr.files[mode], f)
		}
	}
	// resource.Get/List/Post of HTTP and Envoy policies read an in-memory API: the
	// test's clusterResources, else an empty one (Kyverno's CLI: its fake cluster).
	inMemoryAPI := func() dynamic.Interface {
		if pr.dyn == nil && data != nil && data.cluster != nil {
			pr.dyn = data.cluster.client.GetDynamicInterface()
		} else if pr.dyn == nil {
			pr.dyn = dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
		}
		return pr.dyn
	}
	var jsonPols []policiesv1beta1.ValidatingPolicyLike
	for _, p := range set.PayloadPolicies {
		pr.policies[p.Policy.GetName()] = p
		if p.notEvaluated() != "" {
			continue
		}
		switch p.Mode {
		case ModeJSON:
			jsonPols = append(jsonPols, p.Policy)
		case ModeHTTP, ModeEnvoy:
			if net := payloadNetworkUse(p.Policy); net != "" {
				pr.failed[p.Policy.GetName()] = net
				continue
			}
			if p.Mode == ModeHTTP {
				c, errs := authzcompiler.NewCompiler[dynamic.Interface, *authzhttp.CheckRequest, *authzhttp.CheckResponse](inMemoryAPI()).Compile(authzPolicy(p.Policy), nil)
				if len(errs) > 0 {
					pr.failed[p.Policy.GetName()] = "CEL does not compile: " + errs.ToAggregate().Error()
					continue
				}
				pr.http[p.Policy.GetName()] = c
			} else {
				c, errs := authzcompiler.NewCompiler[dynamic.Interface, *authv3.CheckRequest, *authv3.CheckResponse](inMemoryAPI()).Compile(authzPolicy(p.Policy), nil)
				if len(errs) > 0 {
					pr.failed[p.Policy.GetName()] = "CEL does not compile: " + errs.ToAggregate().Error()
					continue
				}
				pr.envoy[p.Policy.GetName()] = c
			}
		}
	}
	if len(jsonPols) > 0 {
		// The CEL PolicyExceptions that have not expired (check's rule: activeCELExceptions).
		var exceptions []*policiesv1beta1.PolicyException
		now := eng.opts.Now()
		for _, x := range set.CELExceptions {
			if info, _ := set.ExceptionInfo("policies.kyverno.io", x.Namespace, x.Name); !info.Expired(now) {
				exceptions = append(exceptions, x)
			}
		}
		var provider vpolengine.Provider
		err := withLibraryContext(pr.celCtx, func() (err error) { // see celCompileMu
			provider, err = vpolengine.NewProvider(vpolcompiler.NewCompiler(), jsonPols, exceptions)
			return err
		})
		if err != nil {
			for _, p := range jsonPols {
				pr.failed[p.GetName()] = err.Error()
			}
		} else {
			// No matcher and no namespaces: a JSON payload has neither (Kyverno's CLI).
			pr.json = vpolengine.NewEngine(provider, nil, nil)
		}
	}
	return pr, nil
}

// readPayload reads one payload as Kyverno's CLI does: a JSON payload is a .json file
// (encoding/json) or a .yaml/.yml file of one document, an object either way; an HTTP
// payload is a CheckRequest decoded with encoding/json (unknown fields ignored, as in
// the CLI); an Envoy payload an envoy.service.auth.v3.CheckRequest decoded with
// protojson (strict: an unknown field is an error).
func readPayload(fsys fs.FS, mode, name string, rel func(string) (string, error), show func(string) string) (payloadFile, error) {
	f := payloadFile{name: name}
	field := payloadField(mode)
	rp, err := rel(name)
	if err != nil {
		return f, fmt.Errorf("%s: %w", field, err)
	}
	f.rel, f.shown = rp, show(rp)
	bad := func(err error) (payloadFile, error) {
		return f, &InputError{Origin: Origin{File: f.shown}, Err: fmt.Errorf("%s: %w", field, err)}
	}
	b, err := ReadFileLimit(fsys, rp, 0)
	if err != nil {
		return bad(unwrapPathErr(err))
	}
	switch mode {
	case ModeJSON:
		var v any
		switch ext := strings.ToLower(path.Ext(rp)); ext {
		case ".json":
			if err := json.Unmarshal(b, &v); err != nil {
				var syn *json.SyntaxError
				if errors.As(err, &syn) && syn.Offset <= int64(len(b)) {
					line := 1 + bytes.Count(b[:syn.Offset], []byte("\n"))
					return f, &InputError{Origin: Origin{File: f.shown, Line: line}, Err: fmt.Errorf("%s: not JSON: %w", field, err)}
				}
				return bad(fmt.Errorf("not JSON: %w", err))
			}
		case ".yaml", ".yml":
			// Document by document with check's decoder (its alias-expansion budget).
			var docs []any
			if err := eachDocument(f.shown, b, func(_ *yaml3.Node, doc any) error {
				docs = append(docs, doc)
				return nil
			}); err != nil {
				return f, fmt.Errorf("%s: %w", field, err)
			}
			if len(docs) == 1 {
				v = docs[0]
			} else {
				v = docs
			}
		default:
			return bad(fmt.Errorf("a JSON payload is a .json, .yaml or .yml file (as Kyverno's CLI reads them), not %q", ext))
		}
		obj, ok := v.(map[string]any)
		if !ok || obj == nil {
			return bad(errors.New("a JSON payload is one object (a map at the top level)"))
		}
		f.json = obj
	case ModeHTTP:
		f.http = &authzhttp.CheckRequest{}
		if err := json.Unmarshal(b, f.http); err != nil {
			return bad(fmt.Errorf("not an HTTP CheckRequest: %w", err))
		}
	case ModeEnvoy:
		f.envoy = &authv3.CheckRequest{}
		if err := protojson.Unmarshal(b, f.envoy); err != nil {
			return bad(fmt.Errorf("not an Envoy CheckRequest (envoy.service.auth.v3): %w", err))
		}
	}
	return f, nil
}

// evalJSON runs the JSON-mode policies on one object (a payload, or a test resource as
// raw JSON), results cached by key.
func (pr *payloadRun) evalJSON(ctx context.Context, key string, obj map[string]any) []payloadResult {
	if out, ok := pr.done[key]; ok {
		return out
	}
	var out []payloadResult
	if pr.json != nil {
		resp, err := func() (resp vpolengine.EngineResponse, err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("evaluating the policy failed: %v", r)
				}
			}()
			u := &unstructured.Unstructured{Object: jsonCopyMap(obj)}
			return pr.json.Handle(ctx, celengine.RequestFromJSON(pr.celCtx, u), nil)
		}()
		if err != nil {
			for name, p := range pr.policies {
				if p.Mode == ModeJSON && pr.failed[name] == "" {
					out = append(out, payloadResult{policy: name, rule: name, status: StatusError, message: err.Error()})
				}
			}
		}
		for _, pol := range resp.Policies {
			for _, rr := range pol.Rules {
				rule := rr.Name()
				if rule == "" {
					rule = pol.Policy.GetName()
				}
				out = append(out, payloadResult{policy: pol.Policy.GetName(), rule: rule, status: Status(rr.Status()), message: rr.Message()})
			}
		}
	}
	pr.done[key] = out
	return out
}

func jsonCopyMap(m map[string]any) map[string]any {
	if cp, err := jsonCopy(m); err == nil {
		return cp
	}
	return m
}

// evalAuthz runs one HTTP or Envoy policy on one request, as Kyverno's CLI reads its
// answer (processor/authz_processor.go): no answer is skip ("request does not match"),
// an allow pass, a deny fail, an error error.
func (pr *payloadRun) evalAuthz(ctx context.Context, mode, name string, f payloadFile) payloadResult {
	key := mode + "\x00" + name + "\x00" + f.rel
	if out, ok := pr.done[key]; ok {
		return out[0]
	}
	res := payloadResult{policy: name, rule: name}
	func() {
		defer func() {
			if r := recover(); r != nil {
				res.status, res.message = StatusError, fmt.Sprintf("evaluating the policy failed: %v", r)
			}
		}()
		switch mode {
		case ModeHTTP:
			out, err := pr.http[name].Evaluate(ctx, pr.dyn, f.http)
			switch {
			case err != nil:
				res.status, res.message = StatusError, err.Error()
			case out == nil:
				res.status, res.message = StatusSkip, "request does not match"
			case out.Ok != nil:
				res.status, res.message = StatusPass, "request allowed"
			case out.Denied != nil:
				res.status, res.message = StatusFail, "request denied, reason: "+out.Denied.Reason
			default:
				res.status, res.message = StatusError, "the policy's response neither allows nor denies the request"
			}
		case ModeEnvoy:
			out, err := pr.envoy[name].Evaluate(ctx, pr.dyn, f.envoy)
			switch {
			case err != nil:
				res.status, res.message = StatusError, err.Error()
			case out == nil:
				res.status, res.message = StatusSkip, "request does not match"
			case out.GetOkResponse() != nil:
				res.status, res.message = StatusPass, "request allowed"
			case out.GetDeniedResponse() != nil:
				res.status, res.message = StatusFail, fmt.Sprintf("request denied with status code %d", out.GetDeniedResponse().GetStatus().GetCode())
			default:
				res.status, res.message = StatusError, "the policy's response neither allows nor denies the request"
			}
		}
	}()
	pr.done[key] = []payloadResult{res}
	return res
}

// payloadMatches reports whether a result's resource name names the payload: as
// written in the test (Kyverno's CLI), or as the same path.
func payloadMatches(f payloadFile, name string, rel func(string) (string, error)) bool {
	if name == f.name {
		return true
	}
	rp, err := rel(name)
	return err == nil && rp == f.rel
}

// rows compares one expectation on a payload policy with its results: on each payload
// of the policy's mode the expectation names (all of them when it names none) and, for
// a JSON-mode policy, on each test resource it names (as Kyverno's CLI also evaluates
// JSON-mode policies on the test's resources). Nothing named that is not there passes.
func (pr *payloadRun) rows(ctx context.Context, exp v1alpha1.TestResult, row TestRow, unscored bool, rel func(string) (string, error)) []TestRow {
	name := exp.Policy[strings.LastIndex(exp.Policy, "/")+1:]
	p := pr.policies[name]
	failRow := func(r TestRow, msg string) TestRow {
		r.Pass, r.Message = false, msg
		return r
	}
	if why := p.notEvaluated(); why != "" {
		row.Actual = StatusError
		return []TestRow{failRow(row, notEvaluatedPrefix+why)}
	}
	field := payloadField(p.Mode)
	files := pr.files[p.Mode]
	type target struct {
		id  string
		run func() []payloadResult
	}
	fileTarget := func(f payloadFile) target {
		return target{id: f.name, run: func() []payloadResult {
			if p.Mode == ModeJSON {
				return pr.evalJSON(ctx, "json\x00"+f.rel, f.json)
			}
			return []payloadResult{pr.evalAuthz(ctx, p.Mode, name, f)}
		}}
	}
	resTarget := func(r Resource) target {
		return target{id: r.ID(), run: func() []payloadResult { return pr.evalJSON(ctx, "resource\x00"+r.ID(), r.Object.Object) }}
	}
	var targets []target
	names := append([]string{}, exp.Resources...)
	for _, spec := range exp.ResourceSpecs {
		names = append(names, spec.Namespace+"/"+spec.Name)
	}
	if len(names) == 0 {
		for _, f := range files {
			targets = append(targets, fileTarget(f))
		}
		if p.Mode == ModeJSON {
			for _, r := range pr.resources {
				targets = append(targets, resTarget(r))
			}
		}
		if len(targets) == 0 {
			what := "no " + field
			if p.Mode == ModeJSON {
				what += " and no resources"
			}
			return []TestRow{failRow(row, fmt.Sprintf("%s/%s evaluates %s payloads, and the test has %s to evaluate this expectation on", p.Policy.GetKind(), name, p.Mode, what))}
		}
	}
	var out []TestRow
	for _, n := range names {
		before := len(targets)
		for _, f := range files {
			if payloadMatches(f, n, rel) {
				targets = append(targets, fileTarget(f))
			}
		}
		if p.Mode == ModeJSON {
			for _, r := range pr.resources {
				if resourceNamed(r, n) {
					targets = append(targets, resTarget(r))
				}
			}
		}
		if len(targets) == before {
			r := row
			r.Resource = n
			out = append(out, failRow(r, fmt.Sprintf("%q is not among the test's %s%s", n, field, map[bool]string{true: " or resources"}[p.Mode == ModeJSON])))
		}
	}
	for _, tg := range targets {
		r := row
		r.Resource = tg.id
		if why, bad := pr.failed[name]; bad {
			r.Actual = StatusError
			out = append(out, failRow(r, notEvaluatedPrefix+why))
			continue
		}
		found := false
		for _, res := range tg.run() {
			if res.policy != name {
				continue
			}
			found = true
			rr := r
			rr.Rule, rr.Actual = res.rule, res.status
			if rr.Actual == StatusFail && unscored {
				rr.Actual = StatusWarn // policies.kyverno.io/scored: "false"
			}
			rr.Pass = rr.Actual == Status(exp.Result)
			rr.Message = CleanMessage(res.message)
			out = append(out, rr)
		}
		if !found {
			out = append(out, failRow(r, fmt.Sprintf("%s/%s gave no result on %s", p.Policy.GetKind(), name, tg.id)))
		}
	}
	return out
}

// payloadNetworkUse says why an HTTP or Envoy policy cannot be evaluated offline, or "":
// Kyverno's authorization compiler binds the CEL http library (http.Get, http.Post,
// http.Client) to a live HTTP client, so a policy that names `http` other than the HTTP
// authorization library's http.Allowed() and http.Denied() is not evaluated: gitgate
// never lets a policy reach the network.
func payloadNetworkUse(pol policiesv1beta1.ValidatingPolicyLike) string {
	spec := pol.GetValidatingPolicySpec()
	type expr struct{ at, text string }
	var exprs []expr
	for i, m := range spec.MatchConditions {
		exprs = append(exprs, expr{fmt.Sprintf("spec.matchConditions[%d]", i), m.Expression})
	}
	for i, v := range spec.Variables {
		exprs = append(exprs, expr{fmt.Sprintf("spec.variables[%d]", i), v.Expression})
	}
	for i, v := range spec.Validations {
		exprs = append(exprs, expr{fmt.Sprintf("spec.validations[%d]", i), v.Expression})
		if v.MessageExpression != "" { // evaluated when the validation fails: it may call out too
			exprs = append(exprs, expr{fmt.Sprintf("spec.validations[%d].messageExpression", i), v.MessageExpression})
		}
	}
	for i, a := range spec.AuditAnnotations {
		exprs = append(exprs, expr{fmt.Sprintf("spec.auditAnnotations[%d].valueExpression", i), a.ValueExpression})
	}
	env, err := cel.NewEnv(cel.OptionalTypes())
	if err != nil {
		return err.Error()
	}
	for _, e := range exprs {
		ast, iss := env.Parse(e.text)
		if iss.Err() != nil {
			return fmt.Sprintf("%s does not parse: %v", e.at, iss.Err())
		}
		if usesHTTPClient(ast.NativeRep().Expr()) {
			return fmt.Sprintf("%s calls the CEL http library (http.Get/Post/Client), which reaches the network; gitgate evaluates policies offline", e.at)
		}
	}
	return ""
}

func usesHTTPClient(e celast.Expr) bool {
	if e == nil {
		return false
	}
	any := func(es ...celast.Expr) bool { return slices.ContainsFunc(es, usesHTTPClient) }
	switch e.Kind() {
	case celast.IdentKind:
		return e.AsIdent() == "http"
	case celast.SelectKind:
		return usesHTTPClient(e.AsSelect().Operand())
	case celast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() {
			t := c.Target()
			lib := t.Kind() == celast.IdentKind && t.AsIdent() == "http" && (c.FunctionName() == "Allowed" || c.FunctionName() == "Denied")
			if !lib && usesHTTPClient(t) {
				return true
			}
		}
		return any(c.Args()...)
	case celast.ListKind:
		return any(e.AsList().Elements()...)
	case celast.MapKind:
		for _, en := range e.AsMap().Entries() {
			if me := en.AsMapEntry(); any(me.Key(), me.Value()) {
				return true
			}
		}
	case celast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			if usesHTTPClient(f.AsStructField().Value()) {
				return true
			}
		}
	case celast.ComprehensionKind:
		c := e.AsComprehension()
		return any(c.IterRange(), c.AccuInit(), c.LoopCondition(), c.LoopStep(), c.Result())
	}
	return false
}

// payloadTestWarnings are the set's warnings without the notices of the payload
// policies gitgate test evaluates (they tell check's reader those are not evaluated).
func payloadTestWarnings(set *Set) []string {
	drop := map[string]bool{}
	for _, p := range set.PayloadPolicies {
		if p.notEvaluated() == "" {
			drop[p.notice] = true
		}
	}
	if len(drop) == 0 {
		return set.Warnings
	}
	return slices.DeleteFunc(slices.Clone(set.Warnings), func(w string) bool { return drop[w] })
}

// unscoredPayload: the policies.kyverno.io/scored "false" annotation reports a failure
// as a warning, as for every policy of a test.
func unscoredPayload(p *PayloadPolicy) bool {
	return p.Policy.GetAnnotations()[annotationScored] == "false"
}
