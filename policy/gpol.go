package policy

import (
	"fmt"
	"strings"

	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	"github.com/kyverno/kyverno/pkg/cel/matching"
	gpolcompiler "github.com/kyverno/kyverno/pkg/cel/policies/gpol/compiler"
	gpolengine "github.com/kyverno/kyverno/pkg/cel/policies/gpol/engine"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// compileGeneratingPolicies compiles the set's GeneratingPolicies (and Namespaced ones)
// once, each with the CEL PolicyExceptions that name it, as Kyverno's CLI does.
func (e *Engine) compileGeneratingPolicies(policies []policiesv1beta1.GeneratingPolicyLike, exceptions []*policiesv1beta1.PolicyException) error {
	return withLibraryContext(e.celCtx, func() error {
		c := gpolcompiler.NewCompiler()
		for _, p := range policies {
			var matched []*policiesv1beta1.PolicyException
			for _, x := range exceptions {
				for _, ref := range x.Spec.PolicyRefs {
					if ref.Name == p.GetName() && ref.Kind == p.GetKind() {
						matched = append(matched, x)
					}
				}
			}
			compiled, errs := c.Compile(p, matched)
			if len(errs) > 0 {
				return fmt.Errorf("compile %s/%s: %w", p.GetKind(), p.GetName(), errs.ToAggregate())
			}
			e.gpol = append(e.gpol, gpolengine.Policy{Policy: p, Exceptions: matched, CompiledPolicy: compiled})
		}
		return nil
	})
}

// generatingPolicies runs the GeneratingPolicies on obj (the trigger, as admitted) as
// Kyverno's CLI does: each policy's generate expressions evaluated against an in-memory
// context (a test's context file, else empty: a clone from the cluster finds nothing),
// the objects they would create collected, nothing written anywhere. One Generated per
// policy that matched, its rule named as the policy.
func (e *Engine) generatingPolicies(r Resource, obj *unstructured.Unstructured, req Request) []Generated {
	if len(e.gpol) == 0 {
		return nil
	}
	// Generating collects the objects in the context: each call has its own.
	request := e.celRequest(obj, req)
	request.Context = e.celCtx.Clone()
	eng := gpolengine.NewEngine(func(ns string) *corev1.Namespace { return namespaceObject(e.opts.Values, ns) }, matching.NewMatcher())
	var out []Generated
	for _, p := range e.gpol {
		if ns := p.Policy.GetNamespace(); ns != "" && ns != obj.GetNamespace() {
			continue // a NamespacedGeneratingPolicy triggers in its own namespace only
		}
		if !p.Policy.GetSpec().AdmissionEnabled() {
			continue
		}
		resp, err := eng.Handle(request, p, false)
		if err != nil {
			out = append(out, Generated{Result: e.gpolResult(r, p.Policy, StatusError, err.Error(), nil)})
			continue
		}
		for _, pr := range resp.Policies {
			if pr.Result == nil {
				continue // did not match
			}
			rr := *pr.Result
			msg := rr.Message()
			if rr.Status() == engineapi.RuleStatusError && rr.Name() != "" && rr.Name() != p.Policy.GetName() {
				msg = rr.Name() + ": " + msg
			}
			g := Generated{Result: e.gpolResult(r, p.Policy, Status(rr.Status()), msg, rr.Exceptions())}
			for _, o := range rr.GeneratedResources() {
				norm, err := jsonCopy(o.Object)
				if err != nil {
					g.Result.Status, g.Result.Message = StatusError, "generate: "+err.Error()
					break
				}
				g.Objects = append(g.Objects, &unstructured.Unstructured{Object: norm})
			}
			out = append(out, g)
		}
	}
	return out
}

// gpolResult is a GeneratingPolicy's result: the rule is the policy's name, as Kyverno
// names it. What it would create is not enforced at admission (the objects are created
// after it), so a failing or erroring policy is Audit.
func (e *Engine) gpolResult(r Resource, p policiesv1beta1.GeneratingPolicyLike, status Status, msg string, exc []engineapi.GenericException) Result {
	obj := r.Object
	m := metaOf(p.GetAnnotations())
	res := Result{
		Origin:      r.Origin,
		APIVersion:  obj.GetAPIVersion(),
		Kind:        obj.GetKind(),
		Namespace:   obj.GetNamespace(),
		Name:        r.name(),
		Policy:      p.GetName(),
		Rule:        p.GetName(),
		Status:      status,
		Action:      Audit,
		Message:     msg,
		Severity:    m.severity,
		Category:    m.category,
		Remediation: m.remediation,
		HelpURL:     m.helpURL,
	}
	res.Exception = celExceptionNames(e.set, exc)
	return res
}

// celExceptionNames names the CEL PolicyExceptions that applied, with their tickets.
func celExceptionNames(set *Set, exc []engineapi.GenericException) string {
	var names []string
	for _, x := range exc {
		name := x.GetNamespace() + "/" + x.GetName()
		if info, ok := set.ExceptionInfo("policies.kyverno.io", x.GetNamespace(), x.GetName()); ok && info.Ticket != "" {
			name += " (ticket " + info.Ticket + ")"
		}
		names = append(names, name)
	}
	return strings.Join(names, ",")
}
