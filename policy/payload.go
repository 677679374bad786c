package policy

// ValidatingPolicies whose spec.evaluation.mode is not Kubernetes: JSON (any JSON
// document: a Terraform plan, a Dockerfile parsed to JSON), HTTP and Envoy (an
// authorization request, answered with an allow or a deny). `check` judges Kubernetes
// objects, so it does not apply them (one notice per policy, never a pass); `gitgate
// test` evaluates them on a kyverno-test.yaml's jsonPayloads, httpPayloads and
// envoyPayloads as `kyverno test` does (Kyverno's CLI: commands/test/test.go and
// processor/authz_processor.go), with Kyverno's own engines, each policy compiled once
// per test, offline.

import (
	"fmt"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	policiesv1 "github.com/kyverno/api/api/policies.kyverno.io/v1"
	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	authzhttp "github.com/kyverno/kyverno-authz/pkg/cel/libs/authz/http"
	authzcompiler "github.com/kyverno/kyverno-authz/pkg/engine/compiler"
	"github.com/kyverno/kyverno/pkg/cel/libs"
	vpolcompiler "github.com/kyverno/kyverno/pkg/cel/policies/vpol/compiler"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/dynamic"
)

// The evaluation modes of a ValidatingPolicy (spec.evaluation.mode) other than
// Kubernetes.
const (
	ModeJSON  = "JSON"
	ModeHTTP  = "HTTP"
	ModeEnvoy = "Envoy"
)

// PayloadPolicy is a ValidatingPolicy (or NamespacedValidatingPolicy) that evaluates
// payloads, not Kubernetes objects (spec.evaluation.mode JSON, HTTP or Envoy).
type PayloadPolicy struct {
	Policy policiesv1beta1.ValidatingPolicyLike
	Mode   string
	Origin Origin
	// notice is the policy's entry in Set.Warnings: check does not evaluate it.
	notice string
}

// payloadField is the kyverno-test.yaml field holding a mode's payloads.
func payloadField(mode string) string {
	switch mode {
	case ModeJSON:
		return "jsonPayloads"
	case ModeHTTP:
		return "httpPayloads"
	case ModeEnvoy:
		return "envoyPayloads"
	}
	return ""
}

// notEvaluated says why gitgate test does not evaluate the policy, or "" when it does:
// as Kyverno's CLI, JSON mode for both kinds, HTTP and Envoy for the cluster-wide kind.
func (p *PayloadPolicy) notEvaluated() string {
	switch {
	case p.Mode == ModeJSON:
		return ""
	case (p.Mode == ModeHTTP || p.Mode == ModeEnvoy) && p.Policy.GetKind() == "ValidatingPolicy":
		return ""
	case p.Mode == ModeHTTP || p.Mode == ModeEnvoy:
		return fmt.Sprintf("%s/%s: %s authorization payloads are evaluated with a ValidatingPolicy, not a %s (as Kyverno's CLI)", p.Policy.GetKind(), p.Policy.GetName(), p.Mode, p.Policy.GetKind())
	}
	return fmt.Sprintf("%s/%s: spec.evaluation.mode %q is none of Kubernetes, JSON, HTTP, Envoy", p.Policy.GetKind(), p.Policy.GetName(), p.Mode)
}

// addPayloadPolicy keeps a policy whose evaluation mode is not Kubernetes: its CEL must
// compile (a load error otherwise, as for every policy), and check is told, with a
// notice, that it does not evaluate it.
func (s *Set) addPayloadPolicy(r Resource, pol policiesv1beta1.ValidatingPolicyLike, mode string) error {
	perr := func(err error) error {
		return &LoadError{Origin: r.Origin, Kind: pol.GetKind(), Policy: pol.GetName(), Err: err}
	}
	p := &PayloadPolicy{Policy: pol, Mode: mode, Origin: r.Origin}
	if p.notEvaluated() == "" {
		var errs field.ErrorList
		switch mode {
		case ModeJSON:
			_ = withLibraryContext(libs.NewFakeContextProvider(), func() error { // see celCompileMu
				_, errs = vpolcompiler.NewCompiler().Compile(pol, nil)
				return nil
			})
		case ModeHTTP:
			_, errs = authzcompiler.NewCompiler[dynamic.Interface, *authzhttp.CheckRequest, *authzhttp.CheckResponse](nil).Compile(authzPolicy(pol), nil)
		case ModeEnvoy:
			_, errs = authzcompiler.NewCompiler[dynamic.Interface, *authv3.CheckRequest, *authv3.CheckResponse](nil).Compile(authzPolicy(pol), nil)
		}
		if len(errs) > 0 {
			return perr(fmt.Errorf("CEL does not compile: %w", errs.ToAggregate()))
		}
	}
	what := fmt.Sprintf("gitgate test evaluates it on a kyverno-test.yaml's %s", payloadField(mode))
	if why := p.notEvaluated(); why != "" {
		what = "gitgate does not evaluate it: " + why
	}
	p.notice = fmt.Sprintf("%s: %s/%s evaluates %s payloads (spec.evaluation.mode), not Kubernetes objects: not evaluated by check; %s",
		r.Origin, pol.GetKind(), pol.GetName(), mode, what)
	s.Warnings = append(s.Warnings, p.notice)
	s.PayloadPolicies = append(s.PayloadPolicies, p)
	return nil
}

// authzPolicy is the policy as Kyverno's authorization compiler takes it (v1, the same
// fields), converted as Kyverno's CLI converts it. Only a ValidatingPolicy gets here
// (notEvaluated).
func authzPolicy(pol policiesv1beta1.ValidatingPolicyLike) *policiesv1.ValidatingPolicy {
	vp := pol.(*policiesv1beta1.ValidatingPolicy)
	return &policiesv1.ValidatingPolicy{TypeMeta: vp.TypeMeta, ObjectMeta: vp.ObjectMeta, Spec: vp.Spec}
}
