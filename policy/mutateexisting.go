package policy

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/apis/v1alpha1"
	bgmpol "github.com/kyverno/kyverno/pkg/background/mpol"
	celcompiler "github.com/kyverno/kyverno/pkg/cel/compiler"
	"github.com/kyverno/kyverno/pkg/cel/libs"
	"github.com/kyverno/kyverno/pkg/cel/matching"
	mpolengine "github.com/kyverno/kyverno/pkg/cel/policies/mpol/engine"
	"github.com/kyverno/kyverno/pkg/engine"
	"github.com/kyverno/kyverno/pkg/engine/adapters"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	"github.com/kyverno/kyverno/pkg/exceptions"
	imageverifycache "github.com/kyverno/kyverno/pkg/image/verification/cache"
	celutils "github.com/kyverno/sdk/extensions/cel/utils"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/cel/lazy"
)

// mutateExisting is what gitgate test evaluates mutateExisting rules and MutatingPolicies
// with, as `kyverno test` v1.19.1 does (cmd/cli/kubectl-kyverno/processor/
// policy_processor.go): the test's objects (its resources and targetResources, and its
// clusterResources when it has them) in an in-memory API, which ClusterPolicy and Policy
// mutateExisting rules read their targets from; and the targetResources, which
// MutatingPolicies with targetMatchConstraints mutate. Nothing is contacted. Outside
// gitgate test (check, serve, report) the engine has none: such rules and policies are
// reported as not evaluated, since the objects they change are the cluster's.
type mutateExisting struct {
	// kyverno is Kyverno's engine with the in-memory API as its client: the mutate
	// rules of a test run with it, as the CLI runs them with its fake client.
	kyverno engineapi.Engine
	// targets are the test's targetResources (with their file:line), which
	// MutatingPolicies' targetMatchConstraints select from.
	targets []Resource
	// byKey finds a target by apiVersion, kind, namespace and name.
	byKey map[string]Resource
}

func targetKey(apiVersion, kind, namespace, name string) string {
	return apiVersion + "," + kind + "," + namespace + "," + name
}

// enableMutateExisting makes the engine apply mutateExisting rules and mutateExisting
// MutatingPolicies in a test: api is the test's in-memory API (its resources, targets
// and cluster resources), targets its targetResources. Only gitgate test calls it.
func (e *Engine) enableMutateExisting(api engineapi.Client, targets []Resource) {
	isCluster := false
	m := &mutateExisting{
		kyverno: engine.NewEngine(
			e.cfg,
			e.jp,
			api, // the test's objects, in memory: never a network call
			nil, // no registry client
			imageverifycache.DisabledImageVerifyCache(),
			e.contextLoader,
			exceptions.New(e.activeExceptions()),
			&isCluster,
		),
		targets: targets,
		byKey:   map[string]Resource{},
	}
	for _, t := range targets {
		o := t.Object
		m.byKey[targetKey(o.GetAPIVersion(), o.GetKind(), o.GetNamespace(), o.GetName())] = t
	}
	// As the CLI: CEL resource.Get/List of the policies find the targets too, when the
	// context is the in-memory one (with clusterResources they are in the cluster).
	if fake, ok := e.celCtx.(*libs.FakeContextProvider); ok {
		for _, t := range targets {
			gvr, _ := meta.UnsafeGuessKindToResource(t.Object.GroupVersionKind())
			_ = fake.AddResource(gvr, t.Object.DeepCopy()) // a target listed twice is there once
		}
	}
	e.mutex = m
}

// testAPI is the in-memory API of a test without clusterResources: its resources and
// targetResources, as the CLI's fake client holds them.
func testAPI(objects []Resource) (engineapi.Client, error) {
	c, err := loadTestCluster(nil, nil, nil, nil, objects)
	if err != nil {
		return nil, err
	}
	return adapters.Client(c.client), nil
}

// hasMutateExisting reports whether some ClusterPolicy or Policy of the set has a
// mutateExisting rule, or some MutatingPolicy has mutateExisting enabled.
func hasMutateExisting(set *Set) bool {
	for _, p := range set.Policies {
		for _, r := range p.GetSpec().Rules {
			if r.HasMutateExisting() {
				return true
			}
		}
	}
	for _, p := range set.MutatingPolicies {
		if p.GetSpec().MutateExistingEnabled() {
			return true
		}
	}
	return false
}

// patchedTarget is the result of a mutateExisting rule that patched a target: the
// Result is about the target (its kind, name and file:line), object is the target as
// the rule patched it.
func (e *Engine) patchedTarget(trigger Resource, cp *compiledPolicy, rr engineapi.RuleResponse) (testResult, bool) {
	t, _, _ := rr.PatchedTarget()
	if t == nil || e.mutex == nil {
		return testResult{}, false
	}
	obj, err := jsonCopy(t.Object)
	if err != nil {
		return testResult{}, false
	}
	patched := &unstructured.Unstructured{Object: obj}
	target, ok := e.mutex.byKey[targetKey(t.GetAPIVersion(), t.GetKind(), t.GetNamespace(), t.GetName())]
	if !ok {
		// A target read from the test's resources or clusterResources: named, without
		// a file of its own.
		target = Resource{Object: patched, Origin: trigger.Origin}
	}
	res := e.result(target, cp, rr.Name(), Status(rr.Status()), rr.Message(), "")
	res = MaskResults([]Result{res}, target.Object.Object, patched.Object)[0]
	return testResult{res, patched}, true
}

// mpolMutateExisting applies the MutatingPolicies with mutateExisting enabled that
// select the trigger object (after its own mutation) admitted with req to the test's
// targetResources their targetMatchConstraints select, as the CLI does: each target evaluated
// by every selecting policy in turn (EvaluateTarget), the policies' matchConstraints
// not applied to it (they select the trigger). Each result is about its target: a pass
// carries the patched target, any other status the target as it was.
func (e *Engine) mpolMutateExisting(ctx context.Context, trigger *unstructured.Unstructured, req Request) []testResult {
	if e.mpol == nil || e.mutex == nil || len(e.mutex.targets) == 0 {
		return nil
	}
	request := e.celRequest(trigger, req)
	// Only the policies whose matchConstraints (and matchConditions) select the trigger
	// fire for it, as Kyverno's background controller fires them. Kyverno's CLI
	// evaluates the targets for every trigger, matching or not; an expectation that a
	// trigger the policy does not select patches a target does not pass here.
	fired := map[string]bool{}
	for _, key := range e.mpol.engine.MatchedMutateExistingPolicies(ctx, request) {
		// A NamespacedMutatingPolicy fires for triggers in its namespace only.
		if p := e.mpol.byKey[key]; p != nil && (p.GetNamespace() == "" || p.GetNamespace() == trigger.GetNamespace()) {
			fired[key] = true
		}
	}
	if len(fired) == 0 {
		return nil
	}
	var out []testResult
	celTargets, err := e.celTargets(ctx, trigger)
	if err != nil {
		// As the CLI fails the test: every target of every such policy is an error.
		for key, p := range e.mpol.byKey {
			if !fired[key] {
				continue
			}
			for _, t := range e.mutex.targets {
				out = append(out, testResult{e.mpolResult(t, p, StatusError, err.Error()), t.Object})
			}
		}
		return out
	}
	eng := mpolengine.NewEngine(e.mpol.provider, func(ns string) *corev1.Namespace { return namespaceObject(e.opts.Values, ns) }, nil, e.mpol.tc, e.celCtx)
	matcher := matching.NewMatcher()
	for _, t := range e.mutex.targets {
		obj, err := jsonCopy(t.Object.Object)
		if err != nil {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		gvk := u.GroupVersionKind()
		gvr, _ := meta.UnsafeGuessKindToResource(gvk)
		attr := admission.NewAttributesRecord(u, nil, gvk, u.GetNamespace(), u.GetName(), gvr, "", admission.Operation(""), nil, false, nil)
		selected := targetSelected(matcher, attr, celTargets)
		resp, err := eng.Evaluate(ctx, attr, request.Request, func(p policiesv1beta1.MutatingPolicyLike) bool {
			// and changes objects of its namespace only.
			if ns := p.GetNamespace(); ns != "" && ns != u.GetNamespace() {
				return false
			}
			return fired[mpolengine.PolicyKey(p)] && selected(p)
		})
		if err != nil {
			for key, p := range e.mpol.byKey {
				if fired[key] {
					out = append(out, testResult{e.mpolResult(t, p, StatusError, err.Error()), t.Object})
				}
			}
			continue
		}
		patched := t.Object
		if resp.PatchedResource != nil {
			if norm, err := jsonCopy(resp.PatchedResource.Object); err == nil {
				patched = &unstructured.Unstructured{Object: norm}
			}
		}
		for _, pr := range resp.Policies {
			for _, rr := range pr.Rules {
				msg := rr.Message()
				if rr.Status() == engineapi.RuleStatusError && rr.Name() != "" && rr.Name() != "evaluation" {
					msg = rr.Name() + ": " + msg
				}
				res := e.mpolResult(t, pr.Policy, Status(rr.Status()), msg)
				res.Exception = celExceptionNames(e.set, rr.Exceptions())
				res = MaskResults([]Result{res}, t.Object.Object, patched.Object)[0]
				obj := t.Object
				if rr.Status() == engineapi.RuleStatusPass {
					obj = patched
				}
				out = append(out, testResult{res, obj})
			}
		}
	}
	return out
}

// targetSelected is whether a MutatingPolicy selects the target attr: by its
// targetMatchConstraints expression (the targets it returned for the trigger), else by
// its targetMatchConstraints resource rules (its matchConstraints when it has none),
// any operation, as Kyverno's background controller lists targets.
func targetSelected(m matching.Matcher, attr admission.Attributes, celTargets map[string]map[string]bool) mpolengine.Predicate {
	return func(p policiesv1beta1.MutatingPolicyLike) bool {
		tc := p.GetTargetMatchConstraints()
		if tc.Expression != "" {
			return celTargets[p.GetName()][objectKey(attr.GetNamespace(), attr.GetName())]
		}
		constraints := p.GetMatchConstraints()
		if len(tc.ResourceRules) != 0 {
			constraints = tc.MatchResources
		}
		rules := make([]admissionregistrationv1.NamedRuleWithOperations, len(constraints.ResourceRules))
		for i, r := range constraints.ResourceRules {
			rules[i] = r
			rules[i].Operations = []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll}
		}
		constraints.ResourceRules = rules
		ok, err := m.Match(&matching.MatchCriteria{Constraints: &constraints}, attr, nil)
		return err == nil && ok
	}
}

func objectKey(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// celTargets evaluates the targetMatchConstraints expression of every mutateExisting
// MutatingPolicy that has one, for the trigger object, with Kyverno's own environment
// for it (the policy's variables, resource.Get/List from the test's context): the
// namespace/name of each object it returns, by policy name.
func (e *Engine) celTargets(ctx context.Context, trigger *unstructured.Unstructured) (map[string]map[string]bool, error) {
	out := map[string]map[string]bool{}
	for _, pol := range e.mpol.provider.Fetch(ctx, true) {
		tc := pol.Policy.GetTargetMatchConstraints()
		if tc.Expression == "" {
			continue
		}
		name := pol.Policy.GetName()
		data := map[string]any{celcompiler.ObjectKey: trigger.Object}
		vars := lazy.NewMapValue(celcompiler.VariablesType)
		data[celcompiler.VariablesKey] = vars
		for vname, variable := range pol.CompiledPolicy.GetCompiledVariables() {
			vars.Append(vname, func(*lazy.MapValue) ref.Val {
				v, _, err := variable.ContextEval(ctx, data)
				if v != nil {
					return v
				}
				if err != nil {
					return types.WrapErr(err)
				}
				return nil
			})
		}
		env, err := bgmpol.BuildMpolTargetEvalEnv(e.celCtx, pol.Policy.GetNamespace())
		if err != nil {
			return nil, fmt.Errorf("policy %s: targetMatchConstraints: %w", name, err)
		}
		ast, issues := env.Compile(tc.Expression)
		if err := issues.Err(); err != nil {
			return nil, fmt.Errorf("policy %s: targetMatchConstraints.expression does not compile: %w", name, err)
		}
		if !ast.OutputType().IsExactType(types.NewMapType(types.StringType, types.AnyType)) {
			return nil, fmt.Errorf("policy %s: targetMatchConstraints.expression must return a map (an object, or a list with items)", name)
		}
		prg, err := env.Program(ast)
		if err != nil {
			return nil, fmt.Errorf("policy %s: targetMatchConstraints.expression: %w", name, err)
		}
		v, _, err := prg.ContextEval(ctx, data)
		if err != nil {
			return nil, fmt.Errorf("policy %s: targetMatchConstraints.expression: %w", name, err)
		}
		got, err := celutils.ConvertToNative[map[string]any](v)
		if err != nil {
			return nil, fmt.Errorf("policy %s: targetMatchConstraints.expression: %w", name, err)
		}
		keys := map[string]bool{}
		add := func(m map[string]any) {
			u := unstructured.Unstructured{Object: m}
			keys[objectKey(u.GetNamespace(), u.GetName())] = true
		}
		if items, ok := got["items"].([]any); ok {
			for _, it := range items {
				if m, ok := it.(map[string]any); ok {
					add(m)
				}
			}
		} else {
			add(got)
		}
		out[name] = keys
	}
	return out, nil
}

// enableTestMutateExisting gives a test's engine its objects as the cluster
// mutateExisting rules read their targets from, as `kyverno test` does: its
// clusterResources' in-memory API when it has one (which holds its resources and
// targets too), else one of its resources and targetResources.
func enableTestMutateExisting(eng *Engine, data *testData, resources, targets []Resource) error {
	if !hasMutateExisting(eng.set) {
		return nil
	}
	var api engineapi.Client
	if data != nil && data.cluster != nil {
		api = adapters.Client(data.cluster.client)
	} else {
		var err error
		if api, err = testAPI(append(append([]Resource{}, resources...), targets...)); err != nil {
			return fmt.Errorf("targetResources: %w", err)
		}
	}
	eng.enableMutateExisting(api, targets)
	return nil
}

// sameObject reports whether res is about o (apiVersion, kind, namespace and name).
func sameObject(res Result, o *unstructured.Unstructured) bool {
	return res.APIVersion == o.GetAPIVersion() && res.Kind == o.GetKind() && res.Namespace == o.GetNamespace() && res.Name == o.GetName()
}

// targetNames are the targetResources some mutateExisting result of the expectation's
// policy and rule is about, as namespace/name: what an expectation naming no resources
// is checked on besides the test's resources (`kyverno test` checks every patched
// target; those another policy patched have nothing to compare with this one).
func targetNames(all []evaluated, targets []Resource, policy, rule string) []string {
	var out []string
	for _, t := range targets {
		if len(matchingTargetResults(all, t.Object, policy, rule)) > 0 {
			out = append(out, t.Object.GetNamespace()+"/"+t.Object.GetName())
		}
	}
	return out
}

func matchingTargetResults(all []evaluated, target *unstructured.Unstructured, policy, rule string) []testResult {
	var out []testResult
	for _, ev := range all {
		for _, tr := range ev.targets {
			if sameObject(tr.Result, target) && ruleMatches(tr.Result, policy, rule) {
				out = append(out, tr)
			}
		}
	}
	return out
}

// targetRows are the rows of an expectation on the targetResources named resName
// ([namespace/]name), as `kyverno test` checks a patched target: each result of the
// expectation's policy and rule about the target, its status compared with the
// expected one and the patched target with the expectation's patchedResources. A
// target named that no result of the policy and rule is about fails: the rule did not
// patch it. ok is false when resName names no target.
func targetRows(all []evaluated, targets []Resource, exp v1alpha1.TestResult, resName string, base TestRow, cmp *comparer) (rows []TestRow, ok bool) {
	for _, t := range targets {
		if !resourceNamed(t, resName) {
			continue
		}
		ok = true
		row := base
		row.Resource = t.ID()
		matched := matchingTargetResults(all, t.Object, exp.Policy, exp.Rule)
		if len(matched) == 0 {
			rule := ""
			if exp.Rule != "" {
				rule = " rule " + exp.Rule
			}
			row.Message = fmt.Sprintf("target %s (%s): policy %s%s did not patch it (no mutateExisting result about it; a precondition, a target selector or the trigger's match left it out)",
				t.ID(), t.Origin, exp.Policy, rule)
			rows = append(rows, row)
			continue
		}
		for _, m := range matched {
			rr := row
			rr.Rule = m.Rule
			rr.Actual = m.Status
			rr.Pass = rr.Actual == base.Expected && !strings.HasPrefix(m.Message, notEvaluatedPrefix)
			rr.Message = CleanMessage(m.Message)
			if exp.PatchedResources != "" && !strings.HasPrefix(m.Message, notEvaluatedPrefix) {
				rr = compareRow(rr, cmp, exp.PatchedResources, "patchedResources", m.object)
			}
			if exp.GeneratedResource != "" || len(exp.GeneratedResources) > 0 {
				rr.Pass, rr.Message = false, fmt.Sprintf("a generatedResource is expected, but %s is a mutateExisting result", m.Rule)
			}
			rows = append(rows, rr)
		}
	}
	return rows, ok
}
