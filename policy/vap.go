package policy

// ValidatingAdmissionPolicy (admissionregistration.k8s.io) with its bindings and params,
// evaluated with the API server's own CEL validator (k8s.io/apiserver
// policy/validating) built by Kyverno's admissionpolicy compiler, as `kyverno test`
// v1.19.1 does (pkg/admissionpolicy/validate.go), but compiled once per policy in
// NewEngine instead of on every resource.
//
// As the API server, a policy applies only through a binding: a VAP that no
// ValidatingAdmissionPolicyBinding names is not evaluated, and the engine says so in
// its notices. (The Kyverno CLI evaluates an unbound VAP as if bound; gitgate judges
// what the cluster would do.)

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kyverno/kyverno/pkg/admissionpolicy"
	celmatching "github.com/kyverno/kyverno/pkg/cel/matching"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/authentication/user"
)

// compiledVAP is one ValidatingAdmissionPolicy with its validator and bindings.
type compiledVAP struct {
	policy    *admissionregistrationv1.ValidatingAdmissionPolicy
	validator validating.Validator
	bindings  []*admissionregistrationv1.ValidatingAdmissionPolicyBinding
}

// compileVAPs builds one validator per policy and attaches its bindings. A policy no
// binding names is left out, with a notice.
func (e *Engine) compileVAPs(set *Set) error {
	for _, p := range set.ValidatingAdmissionPolicies {
		var bs []*admissionregistrationv1.ValidatingAdmissionPolicyBinding
		for _, b := range set.ValidatingAdmissionPolicyBindings {
			if b.Spec.PolicyName == p.Name {
				bs = append(bs, b)
			}
		}
		if len(bs) == 0 && !e.opts.kyvernoTest() {
			e.notices = append(e.notices, fmt.Sprintf("%s: ValidatingAdmissionPolicy/%s is not evaluated: no ValidatingAdmissionPolicyBinding names it (the API server applies a ValidatingAdmissionPolicy only through a binding); add one with spec.policyName: %s",
				set.Origin("ValidatingAdmissionPolicy", p.Name), p.Name, p.Name))
			continue
		}
		v, err := compileVAP(p)
		if err != nil {
			return fmt.Errorf("%s: ValidatingAdmissionPolicy/%s: %w", set.Origin("ValidatingAdmissionPolicy", p.Name), p.Name, err)
		}
		e.vaps = append(e.vaps, compiledVAP{policy: p, validator: v, bindings: bs})
	}
	return nil
}

func compileVAP(p *admissionregistrationv1.ValidatingAdmissionPolicy) (validating.Validator, error) {
	c, err := admissionpolicy.NewCompiler(p.Spec.MatchConditions, p.Spec.Variables)
	if err != nil {
		return nil, err
	}
	c.WithValidations(p.Spec.Validations)
	c.WithAuditAnnotations(p.Spec.AuditAnnotations)
	vars := cel.OptionalVariableDeclarations{HasParams: p.Spec.ParamKind != nil, HasAuthorizer: false}
	c.CompileVariables(vars)
	matchPolicy := admissionregistrationv1.Equivalent
	if p.Spec.MatchConstraints != nil && p.Spec.MatchConstraints.MatchPolicy != nil {
		matchPolicy = *p.Spec.MatchConstraints.MatchPolicy
	}
	m := matchconditions.NewMatcher(c.CompileMatchConditions(vars), p.Spec.FailurePolicy, "", string(matchPolicy), "")
	return validating.NewValidator(c.CompileValidations(vars), m, c.CompileAuditAnnotationsExpressions(vars),
		c.CompileMessageExpressions(vars), p.Spec.FailurePolicy, nil), nil
}

// vapCompileErrors reports CEL expressions of a VAP that do not compile, as the API server
// rejects such a policy when it is created.
func vapCompileErrors(p *admissionregistrationv1.ValidatingAdmissionPolicy) error {
	c, err := admissionpolicy.NewCompiler(p.Spec.MatchConditions, p.Spec.Variables)
	if err != nil {
		return err
	}
	vars := cel.OptionalVariableDeclarations{HasParams: p.Spec.ParamKind != nil, HasAuthorizer: false}
	var errs []string
	check := func(kind string, ev cel.ConditionEvaluator) {
		if ev == nil {
			return
		}
		for _, ce := range ev.CompilationErrors() {
			errs = append(errs, fmt.Sprintf("%s: %v", kind, ce))
		}
	}
	c.WithValidations(p.Spec.Validations)
	c.CompileVariables(vars)
	check("validations", c.CompileValidations(vars))
	check("matchConditions", c.CompileMatchConditions(vars))
	check("messageExpression", c.CompileMessageExpressions(vars))
	if len(errs) > 0 {
		return fmt.Errorf("CEL does not compile: %s", strings.Join(errs, "; "))
	}
	return nil
}

// paramAdvice ends the error of a binding whose paramRef selects nothing.
const paramAdvice = "gitgate does not read params from the cluster: put the param object in a policy directory, or in paramResources for a kyverno test"

// evaluateVAPs runs every bound VAP on r. The rule is the policy's name, as kyverno
// test reports it; each matching binding gives one result, its validationActions
// deciding the action (Deny: Enforce; Warn or Audit only: Audit).
func (e *Engine) evaluateVAPs(ctx context.Context, r Resource, req Request) []Result {
	obj := r.Object
	gvk := obj.GroupVersionKind()
	gvr, _ := meta.UnsafeGuessKindToResource(gvk)
	op := admission.Operation(strings.ToUpper(req.Operation))
	if op == "" {
		op = admission.Create
	}
	var object, old runtime.Object = obj.DeepCopy(), nil
	if req.OldObject != nil {
		old = req.OldObject.DeepCopy()
	}
	if op == admission.Delete {
		object = nil
		if old == nil {
			old = obj.DeepCopy()
		}
	}
	var u user.Info = &user.DefaultInfo{}
	if req.UserInfo != nil {
		u = admissionpolicy.NewUser(req.UserInfo.AdmissionUserInfo)
	}
	a := admission.NewAttributesRecord(object, old, gvk, obj.GetNamespace(), obj.GetName(), gvr, "", op, nil, req.DryRun, u)
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
	matcher := celmatching.NewMatcher()
	var out []Result
	for _, cv := range e.vaps {
		p := cv.policy
		// The API server requires both the policy's matchConstraints and a binding's
		// matchResources; kyverno test checks the policy's only when it has no binding.
		if p.Spec.MatchConstraints != nil && (!e.opts.kyvernoTest() || len(cv.bindings) == 0) {
			ok, err := matcher.Match(&celmatching.MatchCriteria{Constraints: p.Spec.MatchConstraints}, a, ns)
			if err != nil {
				out = append(out, e.vapResult(r, p, nil, StatusError, "matchConstraints: "+err.Error()))
				continue
			}
			if !ok {
				continue
			}
		}
		bindings := cv.bindings
		if len(bindings) == 0 { // gitgate test only (Options.kyvernoTest): as kyverno test, no binding
			bindings = []*admissionregistrationv1.ValidatingAdmissionPolicyBinding{nil}
		}
		for _, b := range bindings {
			if b != nil && b.Spec.MatchResources != nil {
				ok, err := matcher.Match(&celmatching.MatchCriteria{Constraints: b.Spec.MatchResources}, a, ns)
				if err != nil {
					out = append(out, e.vapResult(r, p, b, StatusError, fmt.Sprintf("binding %s matchResources: %v", b.Name, err)))
					continue
				}
				if !ok {
					continue
				}
			}
			var params runtime.Object
			if b != nil && b.Spec.ParamRef != nil {
				params = e.vapParams(p, b, nsName)
				if params == nil {
					if b.Spec.ParamRef.ParameterNotFoundAction != nil && *b.Spec.ParamRef.ParameterNotFoundAction == admissionregistrationv1.AllowAction {
						continue // the API server admits when no param is found and the action is Allow
					}
					out = append(out, e.vapResult(r, p, b, StatusError, fmt.Sprintf("binding %s: no param of kind %s matches its paramRef (%s)", b.Name, paramKindString(p), paramAdvice)))
					continue
				}
			}
			va, err := admission.NewVersionedAttributes(a, a.GetKind(), nil)
			if err != nil {
				out = append(out, e.vapResult(r, p, b, StatusError, err.Error()))
				continue
			}
			res := cv.validator.Validate(ctx, gvr, va, params, ns, celconfig.RuntimeCELCostBudget, nil)
			status, msg := StatusPass, ""
			if len(res.Decisions) == 0 && len(res.AuditAnnotations) == 0 {
				status, msg = StatusSkip, "match conditions aren't met"
			}
			for _, d := range res.Decisions {
				if d.Evaluation == validating.EvalError {
					status, msg = StatusError, d.Message
					break
				}
				if d.Action == validating.ActionDeny {
					status, msg = StatusFail, d.Message
					break
				}
			}
			out = append(out, e.vapResult(r, p, b, status, msg))
		}
	}
	return out
}

func paramKindString(p *admissionregistrationv1.ValidatingAdmissionPolicy) string {
	if p.Spec.ParamKind == nil {
		return "(none: the policy has no paramKind)"
	}
	return p.Spec.ParamKind.APIVersion + " " + p.Spec.ParamKind.Kind
}

// vapParams picks the binding's params among the set's param resources, as Kyverno's
// CLI does (processVAPWithoutClient): with a selector, every match as a list; else the
// first object with the ref's name (and namespace, or the resource's namespace for
// a namespaced param kind when the ref names none).
func (e *Engine) vapParams(p *admissionregistrationv1.ValidatingAdmissionPolicy, b *admissionregistrationv1.ValidatingAdmissionPolicyBinding, _ string) runtime.Object {
	ref := b.Spec.ParamRef
	list := &unstructured.UnstructuredList{}
	for _, o := range e.set.Params {
		if pk := p.Spec.ParamKind; pk != nil && (o.GetAPIVersion() != pk.APIVersion || o.GetKind() != pk.Kind) {
			continue
		}
		if ref.Selector != nil {
			sel, err := metav1.LabelSelectorAsSelector(ref.Selector)
			if err == nil && sel.Matches(labels.Set(o.GetLabels())) {
				list.Items = append(list.Items, *o.DeepCopy())
			}
			continue
		}
		if ref.Namespace != "" && o.GetNamespace() != ref.Namespace {
			continue
		}
		if ref.Name == "" || o.GetName() == ref.Name {
			return o.DeepCopy()
		}
	}
	if len(list.Items) > 0 {
		return list
	}
	return nil
}

func (e *Engine) vapResult(r Resource, p *admissionregistrationv1.ValidatingAdmissionPolicy, b *admissionregistrationv1.ValidatingAdmissionPolicyBinding, status Status, msg string) Result {
	obj := r.Object
	action := Audit
	if b != nil && slices.Contains(b.Spec.ValidationActions, admissionregistrationv1.Deny) {
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
		Rule:        p.GetName(),
		Status:      status,
		Action:      action,
		Message:     msg,
		Severity:    m.severity,
		Category:    m.category,
		Remediation: m.remediation,
		HelpURL:     m.helpURL,
	}
}
