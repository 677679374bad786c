package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	celengine "github.com/kyverno/kyverno/pkg/cel/engine"
	"github.com/kyverno/kyverno/pkg/cel/matching"
	mpolcompiler "github.com/kyverno/kyverno/pkg/cel/policies/mpol/compiler"
	mpolengine "github.com/kyverno/kyverno/pkg/cel/policies/mpol/engine"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	admissionregistrationv1alpha1 "k8s.io/api/admissionregistration/v1alpha1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// mutatingPolicies are the set's MutatingPolicies and NamespacedMutatingPolicies,
// compiled once (with their autogen variants and their CEL PolicyExceptions) into
// Kyverno's MutatingPolicy engine, as Kyverno's CLI builds it.
type mutatingPolicies struct {
	engine mpolengine.Engine
	tc     *typeConverters
	// provider holds the compiled policies; gitgate test evaluates the mutateExisting
	// ones on a test's targetResources with it (mutateexisting.go).
	provider mpolengine.Provider
	// byKey are the policies by Kyverno's key (namespace/name, or name).
	byKey map[string]policiesv1beta1.MutatingPolicyLike
}

func (e *Engine) compileMutatingPolicies(policies []policiesv1beta1.MutatingPolicyLike, exceptions []*policiesv1beta1.PolicyException) error {
	m := &mutatingPolicies{
		tc:    bundledTypeConverters(),
		byKey: map[string]policiesv1beta1.MutatingPolicyLike{},
	}
	var provider mpolengine.Provider
	err := withLibraryContext(e.celCtx, func() (err error) {
		provider, err = mpolengine.NewProvider(mpolcompiler.NewCompiler(), policies, exceptions, e.celCtx)
		return err
	})
	if err != nil {
		return fmt.Errorf("compile mutating policies: %w", err)
	}
	for _, p := range policies {
		m.byKey[mpolengine.PolicyKey(p)] = p
	}
	m.provider = provider
	m.engine = mpolengine.NewEngine(provider, func(ns string) *corev1.Namespace { return namespaceObject(e.opts.Values, ns) }, matching.NewMatcher(), m.tc, e.celCtx)
	e.mpol = m
	return nil
}

// admitted reports whether Kyverno's admission webhook applies the policy to the object
// being admitted: admission enabled, and no targetMatchConstraints (a policy with them
// mutates other objects, from the cluster, in the background: mutateExisting).
func admitted(p policiesv1beta1.MutatingPolicyLike) bool {
	return p.GetSpec().AdmissionEnabled() && mpolengine.NoTargetMatchConstraintPolicy()(p)
}

// mutatingPolicyStep applies the MutatingPolicies of one scope (cluster-wide when
// namespaced is false, else the NamespacedMutatingPolicies of the object's namespace) to
// obj as Kyverno's admission webhook for that scope does: each policy sees the object
// the previous one produced. Kyverno's webhooks run in the order of their names:
// MutatingPolicies ("mpol.…") before ClusterPolicy and Policy mutate rules ("mutate.…"),
// NamespacedMutatingPolicies ("nmpol.…") after them. It returns the step (nil when no
// policy of the scope matched) and the object after it.
func (e *Engine) mutatingPolicyStep(ctx context.Context, r Resource, obj *unstructured.Unstructured, req Request, namespaced bool) (*mutateStep, *unstructured.Unstructured) {
	if e.mpol == nil {
		return nil, obj
	}
	ns := obj.GetNamespace()
	if namespaced && ns == "" {
		return nil, obj
	}
	scope := mpolengine.ClusteredPolicy()
	if namespaced {
		scope = mpolengine.NamespacedPolicy(ns)
	}
	request := e.celRequest(obj, req)
	resp, err := e.mpol.engine.Handle(ctx, request, mpolengine.And(scope, admitted))
	step := &mutateStep{patched: obj}
	if err != nil {
		for _, p := range e.mpol.byKey {
			if scope(p) && admitted(p) {
				step.results = append(step.results, e.mpolResult(r, p, StatusError, err.Error()))
			}
		}
		return step, obj
	}
	patched := obj
	if resp.PatchedResource != nil {
		norm, err := jsonCopy(resp.PatchedResource.Object)
		if err != nil {
			step.results = append(step.results, e.mpolResult(r, nil, StatusError, err.Error()))
			return step, obj
		}
		patched = &unstructured.Unstructured{Object: norm}
	}
	// Kyverno's CLI compares every policy's patchedResources with the object after all
	// the policies of the call.
	step.patched = patched
	note := ""
	if c := e.mpol.tc.entry(obj.GroupVersionKind()); c.kind == convDeduced {
		note = c.note
	}
	for _, pr := range resp.Policies {
		for _, rr := range pr.Rules {
			msg := rr.Message()
			if rr.Status() == engineapi.RuleStatusError && rr.Name() != "" && rr.Name() != "evaluation" {
				msg = rr.Name() + ": " + msg
			}
			if note != "" && rr.Status() == engineapi.RuleStatusPass && usesApplyConfiguration(pr.Policy) {
				msg += "; " + note
			}
			res := e.mpolResult(r, pr.Policy, Status(rr.Status()), msg)
			res.Exception = celExceptionNames(e.set, rr.Exceptions())
			step.results = append(step.results, res)
		}
	}
	// Policies that mutate other objects (targetMatchConstraints) and select this one as
	// their trigger are said, never passed: gitgate does not apply them, but in a test
	// with targetResources (mpolMutateExisting, which reports them on their targets).
	for _, key := range e.mpol.engine.MatchedMutateExistingPolicies(ctx, request) {
		if e.mutex != nil && len(e.mutex.targets) > 0 {
			break
		}
		p := e.mpol.byKey[key]
		if p == nil || !scope(p) || admitted(p) {
			continue
		}
		step.results = append(step.results, e.mpolResult(r, p, StatusError,
			notEvaluatedPrefix+"mutateExisting: the policy's targetMatchConstraints select other objects than the one admitted (targets from the cluster); gitgate does not apply it"))
	}
	if len(step.results) == 0 && patched == obj {
		return nil, obj
	}
	return step, patched
}

func usesApplyConfiguration(p policiesv1beta1.MutatingPolicyLike) bool {
	if p == nil {
		return false
	}
	return slices.ContainsFunc(p.GetSpec().Mutations, func(m admissionregistrationv1alpha1.Mutation) bool {
		return m.PatchType == admissionregistrationv1alpha1.PatchTypeApplyConfiguration
	})
}

// celRequest is the admission request Kyverno's CEL engines see for obj: the same
// operation, user, old object and dry-run as the JMESPath engine's (basePolicyContext).
func (e *Engine) celRequest(obj *unstructured.Unstructured, req Request) celengine.EngineRequest {
	gvk := obj.GroupVersionKind()
	gvr, _ := meta.UnsafeGuessKindToResource(gvk)
	var user authenticationv1.UserInfo
	if req.UserInfo != nil {
		user = req.UserInfo.AdmissionUserInfo
	}
	op := admissionv1.Operation(strings.ToUpper(req.Operation))
	if op == "" {
		op = admissionv1.Create
	}
	var object, old runtime.Object = obj, nil
	if req.OldObject != nil {
		old = req.OldObject
	}
	if op == admissionv1.Delete {
		object, old = nil, obj
		if req.OldObject != nil {
			old = req.OldObject
		}
	}
	return celengine.Request(e.celCtx, gvk, gvr, "", obj.GetName(), obj.GetNamespace(), op, user, object, old, req.DryRun, nil)
}

// mpolResult is a MutatingPolicy's result. Kyverno names no rule: the rule is the
// policy's name, as for ValidatingPolicies. A policy whose failurePolicy is Fail (the
// default) blocks when it errors, as the webhook denies the request; Ignore is Audit.
func (e *Engine) mpolResult(r Resource, p policiesv1beta1.MutatingPolicyLike, status Status, msg string) Result {
	obj := r.Object
	res := Result{
		Origin:     r.Origin,
		APIVersion: obj.GetAPIVersion(),
		Kind:       obj.GetKind(),
		Namespace:  obj.GetNamespace(),
		Name:       r.name(),
		Status:     status,
		Action:     Enforce,
		Message:    msg,
	}
	if p == nil {
		return res
	}
	m := metaOf(p.GetAnnotations())
	res.Policy, res.Rule = p.GetName(), p.GetName()
	if p.GetFailurePolicy(false) == admissionregistrationv1.Ignore {
		res.Action = Audit
	}
	res.Severity, res.Category, res.Remediation, res.HelpURL = m.severity, m.category, m.remediation, m.helpURL
	return res
}
