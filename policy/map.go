package policy

// MutatingAdmissionPolicy (admissionregistration.k8s.io, read as v1beta1 as Kyverno's
// CLI does) with its bindings and params, applied with the API server's patchers
// (k8s.io/apiserver policy/mutating/patch: JSONPatch and ApplyConfiguration) built by
// Kyverno's admissionpolicy compiler, compiled once per policy in NewEngine.
//
// Order: in check and the webhook, Engine.Mutate applies MAPs first, as the API server
// runs the MutatingAdmissionPolicy plugin before the MutatingAdmissionWebhook plugin
// (where Kyverno sits; k8s.io/apiserver options.RecommendedPluginOrder), then
// Kyverno's kinds; when those changed the object, the MAPs with reinvocationPolicy
// IfNeeded run once more, as the API server reinvokes them. In gitgate test MAPs come
// after Kyverno's kinds: Kyverno's CLI v1.19.1 runs ClusterPolicy mutate, validate, then
// MAPs, then MutatingPolicies (cmd/cli/kubectl-kyverno/processor policy_processor.go).
//
// As for VAPs, a MAP that no binding names is not applied in check (a notice) and is
// applied as kyverno test does in gitgate test.

import (
	"context"
	"fmt"
	"strings"

	"github.com/kyverno/kyverno/pkg/admissionpolicy"
	celmatching "github.com/kyverno/kyverno/pkg/cel/matching"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	admissionregistrationv1beta1 "k8s.io/api/admissionregistration/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/authentication/user"
)

type compiledMAP struct {
	policy   *admissionregistrationv1beta1.MutatingAdmissionPolicy
	v1       *admissionregistrationv1.MutatingAdmissionPolicy // for match resources
	matcher  matchconditions.Matcher
	patchers []patch.Patcher
	bindings []*admissionregistrationv1beta1.MutatingAdmissionPolicyBinding
}

func compileMAP(p *admissionregistrationv1beta1.MutatingAdmissionPolicy) (compiledMAP, error) {
	v1 := admissionpolicy.ConvertMutatingAdmissionPolicy(p)
	c, err := admissionpolicy.NewCompiler(v1.Spec.MatchConditions, v1.Spec.Variables)
	if err != nil {
		return compiledMAP{}, err
	}
	vars := cel.OptionalVariableDeclarations{HasParams: p.Spec.ParamKind != nil, HasAuthorizer: false, HasPatchTypes: true}
	c.CompileVariables(vars)
	matchPolicy := admissionregistrationv1.Equivalent
	if v1.Spec.MatchConstraints != nil && v1.Spec.MatchConstraints.MatchPolicy != nil {
		matchPolicy = *v1.Spec.MatchConstraints.MatchPolicy
	}
	fail := admissionregistrationv1.Fail
	if p.Spec.FailurePolicy != nil {
		fail = admissionregistrationv1.FailurePolicyType(*p.Spec.FailurePolicy)
	}
	mc := c.CompileMatchConditions(vars)
	var errs []string
	for _, ce := range mc.CompilationErrors() {
		errs = append(errs, "matchConditions: "+ce.Error())
	}
	c.WithMutations(p.Spec.Mutations)
	if len(p.Spec.Mutations) == 0 {
		errs = append(errs, "spec.mutations is empty")
	}
	patchers := c.CompileMutations(vars)
	if len(errs) > 0 {
		return compiledMAP{}, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return compiledMAP{policy: p, v1: v1, matcher: matchconditions.NewMatcher(mc, &fail, "policy", string(matchPolicy), p.Name), patchers: patchers}, nil
}

func (e *Engine) compileMAPs(set *Set) error {
	for _, p := range set.MutatingAdmissionPolicies {
		var bs []*admissionregistrationv1beta1.MutatingAdmissionPolicyBinding
		for _, b := range set.MutatingAdmissionPolicyBindings {
			if b.Spec.PolicyName == p.Name {
				bs = append(bs, b)
			}
		}
		if len(bs) == 0 && !e.opts.kyvernoTest() {
			e.notices = append(e.notices, fmt.Sprintf("%s: MutatingAdmissionPolicy/%s is not applied: no MutatingAdmissionPolicyBinding names it (the API server applies it only through a binding); add one with spec.policyName: %s",
				set.Origin("MutatingAdmissionPolicy", p.Name), p.Name, p.Name))
			continue
		}
		cm, err := compileMAP(p)
		if err != nil {
			return fmt.Errorf("%s: MutatingAdmissionPolicy/%s: %w", set.Origin("MutatingAdmissionPolicy", p.Name), p.Name, err)
		}
		cm.bindings = bs
		e.maps = append(e.maps, cm)
		e.mutates = true
	}
	return nil
}

// mapStep applies every MAP to obj, one after another, each binding in turn; one result
// per policy and binding applied (rule = the policy's name, as kyverno test reports it).
// reinvoked: only the MAPs whose reinvocationPolicy is IfNeeded, run again.
func (e *Engine) mapSteps(ctx context.Context, r Resource, obj *unstructured.Unstructured, req Request, reinvoked bool) ([]mutateStep, *unstructured.Unstructured) {
	if len(e.maps) == 0 {
		return nil, obj
	}
	gvk := obj.GroupVersionKind()
	gvr, _ := meta.UnsafeGuessKindToResource(gvk)
	op := admission.Operation(strings.ToUpper(req.Operation))
	if op == "" {
		op = admission.Create
	}
	var u user.Info = &user.DefaultInfo{}
	if req.UserInfo != nil {
		u = admissionpolicy.NewUser(req.UserInfo.AdmissionUserInfo)
	}
	ns := &corev1.Namespace{}
	nsName := obj.GetNamespace()
	if gvk.Group == "" && gvk.Kind == "Namespace" {
		nsName = ""
	}
	if nsName != "" {
		lbls := req.NamespaceLabels
		if lbls == nil {
			if n := namespaceObject(e.opts.Values, nsName); n != nil {
				lbls = n.Labels
			}
		}
		ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName, Labels: lbls}}
	}
	var old runtime.Object
	if req.OldObject != nil {
		old = req.OldObject.DeepCopy()
	}
	matcher := celmatching.NewMatcher()
	var steps []mutateStep
	current := obj
	for _, cm := range e.maps {
		p := cm.policy
		if reinvoked && p.Spec.ReinvocationPolicy != admissionregistrationv1beta1.IfNeededReinvocationPolicy {
			continue
		}
		step := mutateStep{patched: current, mapName: p.Name}
		bindings := cm.bindings
		if len(bindings) == 0 {
			bindings = []*admissionregistrationv1beta1.MutatingAdmissionPolicyBinding{nil}
		}
		attrs := func() admission.Attributes {
			return admission.NewAttributesRecord(current.DeepCopy(), old, gvk, current.GetNamespace(), current.GetName(), gvr, "", op, nil, req.DryRun, u)
		}
		if cm.v1.Spec.MatchConstraints != nil && (!e.opts.kyvernoTest() || len(cm.bindings) == 0) {
			ok, err := matcher.Match(&celmatching.MatchCriteria{Constraints: cm.v1.Spec.MatchConstraints}, attrs(), ns)
			if err != nil {
				step.results = append(step.results, e.mapResult(r, p, StatusError, "matchConstraints: "+err.Error()))
				steps = append(steps, step)
				continue
			}
			if !ok {
				continue
			}
		}
		for _, b := range bindings {
			if b != nil && b.Spec.MatchResources != nil {
				ok, err := matcher.Match(&celmatching.MatchCriteria{Constraints: admissionpolicy.ConvertMatchResources(b.Spec.MatchResources)}, attrs(), ns)
				if err != nil {
					step.results = append(step.results, e.mapResult(r, p, StatusError, fmt.Sprintf("binding %s matchResources: %v", b.Name, err)))
					continue
				}
				if !ok {
					continue
				}
			}
			var params runtime.Object
			if b != nil && b.Spec.ParamRef != nil {
				params = e.mapParams(p, b)
				if params == nil {
					if b.Spec.ParamRef.ParameterNotFoundAction != nil && *b.Spec.ParamRef.ParameterNotFoundAction == admissionregistrationv1beta1.AllowAction {
						continue
					}
					step.results = append(step.results, e.mapResult(r, p, StatusError, fmt.Sprintf("binding %s: no param matches its paramRef (%s)", b.Name, paramAdvice)))
					continue
				}
			}
			va, err := admission.NewVersionedAttributes(attrs(), gvk, nil)
			if err != nil {
				step.results = append(step.results, e.mapResult(r, p, StatusError, err.Error()))
				continue
			}
			m := cm.matcher.Match(ctx, va, params, nil)
			if m.Error != nil {
				step.results = append(step.results, e.mapResult(r, p, StatusError, "matchConditions: "+m.Error.Error()))
				continue
			}
			if !m.Matches {
				step.results = append(step.results, e.mapResult(r, p, StatusSkip, "match conditions aren't met"))
				continue
			}
			o := admission.NewObjectInterfacesFromScheme(runtime.NewScheme())
			// The kind's own schema merges the applyConfiguration's lists by key, as the API
			// server does (a container keeps its image when a MAP sets its securityContext).
			tc := bundledTypeConverters().entry(gvk)
			failed := false
			for _, pt := range cm.patchers {
				nv, err := pt.Patch(ctx, patch.Request{
					MatchedResource:     gvr,
					VersionedAttributes: va,
					ObjectInterfaces:    o,
					OptionalVariables:   cel.OptionalVariableBindings{VersionedParams: params},
					Namespace:           ns,
					TypeConverter:       tc.tc,
				}, celconfig.RuntimeCELCostBudget)
				if err != nil {
					step.results = append(step.results, e.mapResult(r, p, StatusError, err.Error()))
					failed = true
					break
				}
				va.Dirty = true
				va.VersionedObject = nv
			}
			if failed {
				continue
			}
			um, err := runtime.DefaultUnstructuredConverter.ToUnstructured(va.VersionedObject)
			if err != nil {
				step.results = append(step.results, e.mapResult(r, p, StatusError, err.Error()))
				continue
			}
			norm, err := jsonCopy(um)
			if err != nil {
				step.results = append(step.results, e.mapResult(r, p, StatusError, err.Error()))
				continue
			}
			current = &unstructured.Unstructured{Object: norm}
			step.patched = current
			msg := "mutation is successfully applied"
			if tc.kind == convDeduced && mapUsesApplyConfiguration(p) {
				msg += "; " + tc.note
			}
			step.results = append(step.results, e.mapResult(r, p, StatusPass, msg))
		}
		steps = append(steps, step)
	}
	return steps, current
}

func (e *Engine) mapParams(p *admissionregistrationv1beta1.MutatingAdmissionPolicy, b *admissionregistrationv1beta1.MutatingAdmissionPolicyBinding) runtime.Object {
	v1p := &admissionregistrationv1.ValidatingAdmissionPolicy{}
	if pk := p.Spec.ParamKind; pk != nil {
		v1p.Spec.ParamKind = &admissionregistrationv1.ParamKind{APIVersion: pk.APIVersion, Kind: pk.Kind}
	}
	ref := b.Spec.ParamRef
	v1b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
	v1b.Spec.ParamRef = &admissionregistrationv1.ParamRef{Name: ref.Name, Namespace: ref.Namespace, Selector: ref.Selector}
	return e.vapParams(v1p, v1b, "")
}

func (e *Engine) mapResult(r Resource, p *admissionregistrationv1beta1.MutatingAdmissionPolicy, status Status, msg string) Result {
	obj := r.Object
	action := Enforce
	if p.Spec.FailurePolicy != nil && *p.Spec.FailurePolicy == admissionregistrationv1beta1.Ignore {
		action = Audit
	}
	m := metaOf(p.GetAnnotations())
	return Result{
		Origin: r.Origin, APIVersion: obj.GetAPIVersion(), Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: r.name(),
		Policy: p.GetName(), Rule: p.GetName(), Status: status, Action: action, Message: msg,
		Severity: m.severity, Category: m.category, Remediation: m.remediation, HelpURL: m.helpURL,
	}
}

func mapUsesApplyConfiguration(p *admissionregistrationv1beta1.MutatingAdmissionPolicy) bool {
	for _, m := range p.Spec.Mutations {
		if m.PatchType == admissionregistrationv1beta1.PatchTypeApplyConfiguration {
			return true
		}
	}
	return false
}
