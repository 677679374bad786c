package admission

import (
	"context"
	"strings"
	"time"
	"unicode"

	"github.com/gitgate/gitgate/policy"
	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// Gate is a policy.Gate as the webhook serves it: with the kinds its policies can match,
// so objects no policy matches are admitted without running the engine, and with the
// version of the sources it was built from.
type Gate struct {
	*policy.Gate
	// Version identifies the source snapshots (directory content hash, Git commit).
	Version string
	// Loaded is when the gate was built.
	Loaded time.Time

	kinds   map[string]bool
	anyKind bool

	// The same index for mutate rules only: objects no mutate rule may match get no
	// patch without running the engine.
	mutateKinds   map[string]bool
	mutateAnyKind bool
	// mutateExisting names policy/rule of mutate rules with targets (not applied to the
	// admitted object); ignoreFailures[name] is true when the mutate policies of that name
	// have failurePolicy Ignore.
	mutateExisting map[string]bool
	ignoreFailures map[string]bool
}

// podControllers are the kinds Kyverno's autogen extends a Pod rule to.
var podControllers = []string{"DaemonSet", "Deployment", "Job", "StatefulSet", "ReplicaSet", "ReplicationController", "CronJob"}

// NewGate indexes g's policies by the kinds they match. The index is conservative: a
// wildcard kind, a rule with no kinds, or any CEL ValidatingPolicy sends every object
// through the engine.
func NewGate(g *policy.Gate, version string, now time.Time) *Gate {
	out := &Gate{Gate: g, Version: version, Loaded: now, kinds: map[string]bool{},
		mutateKinds: map[string]bool{}, mutateExisting: map[string]bool{}, ignoreFailures: map[string]bool{}}
	if g == nil || g.Set == nil {
		return out
	}
	if len(g.Set.ValidatingPolicies) > 0 {
		out.anyKind = true
	}
	// MutatingPolicies: any kind, as for ValidatingPolicies; their failurePolicy as
	// ClusterPolicies' (a mutateExisting one is a not-evaluated result, Audit).
	for _, p := range g.Set.MutatingPolicies {
		out.anyKind, out.mutateAnyKind = true, true
		ignore := p.GetFailurePolicy(false) == admissionregistrationv1.Ignore
		if prev, seen := out.ignoreFailures[p.GetName()]; !seen || !ignore {
			out.ignoreFailures[p.GetName()] = ignore && (!seen || prev)
		}
		if p.GetSpec().TargetMatchConstraints != nil {
			out.mutateExisting[p.GetName()+"/"+p.GetName()] = true
		}
	}
	for _, p := range g.Set.Policies {
		extra := strings.Split(p.GetAnnotations()[policy.AnnotationAutogen], ",")
		if p.GetSpec().HasMutate() {
			// Results name the policy only: Ignore holds when every policy of that name
			// (a ClusterPolicy and namespaced Policies) says Ignore.
			ignore := p.GetSpec().GetFailurePolicy(context.Background()) == kyvernov1.Ignore
			if prev, seen := out.ignoreFailures[p.GetName()]; !seen || !ignore {
				out.ignoreFailures[p.GetName()] = ignore && (!seen || prev)
			}
		}
		for i := range p.GetSpec().Rules {
			r := &p.GetSpec().Rules[i]
			indexKinds(r.MatchResources, extra, out.kinds, &out.anyKind)
			if r.HasMutate() {
				indexKinds(r.MatchResources, extra, out.mutateKinds, &out.mutateAnyKind)
				if r.HasMutateExisting() {
					out.mutateExisting[p.GetName()+"/"+r.Name] = true
				}
			}
		}
	}
	return out
}

// indexKinds adds the kinds a rule's match may select to kinds, or sets anyKind when it
// cannot tell. extra is the policy's autogen controller list.
func indexKinds(m kyvernov1.MatchResources, extra []string, kinds map[string]bool, anyKind *bool) {
	names := ruleKinds(m)
	if len(names) == 0 {
		*anyKind = true
	}
	for _, k := range names {
		kind, ok := kindOf(k)
		if !ok {
			*anyKind = true
			continue
		}
		kinds[kind] = true
		if kind == "Pod" { // autogen rules for pod controllers, and the policy's own list
			for _, c := range podControllers {
				kinds[c] = true
			}
			for _, c := range extra {
				if c = strings.TrimSpace(c); c != "" {
					kinds[c] = true
				}
			}
		}
	}
}

// ruleKinds lists every kind a rule's match names, in its resources, any and all blocks.
func ruleKinds(m kyvernov1.MatchResources) []string {
	kinds := append([]string{}, m.Kinds...)
	for _, f := range m.Any {
		kinds = append(kinds, f.Kinds...)
	}
	for _, f := range m.All {
		kinds = append(kinds, f.Kinds...)
	}
	return kinds
}

// kindOf extracts the kind from Kyverno's forms: Deployment, apps/v1/Deployment,
// Pod/exec, v1/Pod.status. ok is false for wildcards and forms it cannot read.
func kindOf(s string) (string, bool) {
	if strings.ContainsAny(s, "*?") {
		return "", false
	}
	for _, seg := range strings.Split(s, "/") {
		seg, _, _ = strings.Cut(seg, ".")
		if seg != "" && unicode.IsUpper(rune(seg[0])) {
			return seg, true
		}
	}
	return "", false
}

// matches reports whether any policy may match objects of this kind.
func (g *Gate) matches(kind string) bool {
	return g.anyKind || g.kinds[kind]
}

// mutates reports whether any mutate rule may match objects of this kind.
func (g *Gate) mutates(kind string) bool {
	return g.mutateAnyKind || g.mutateKinds[kind]
}

// Policies is the number of policies in the gate.
func (g *Gate) Policies() int {
	if g == nil || g.Gate == nil || g.Set == nil {
		return 0
	}
	return g.Set.Len()
}
