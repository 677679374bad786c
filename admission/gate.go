package admission

import (
	"strings"
	"time"
	"unicode"

	"github.com/gitgate/gitgate/policy"
	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
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
}

// podControllers are the kinds Kyverno's autogen extends a Pod rule to.
var podControllers = []string{"DaemonSet", "Deployment", "Job", "StatefulSet", "ReplicaSet", "ReplicationController", "CronJob"}

// NewGate indexes g's policies by the kinds they match. The index is conservative: a
// wildcard kind, a rule with no kinds, or any CEL ValidatingPolicy sends every object
// through the engine.
func NewGate(g *policy.Gate, version string, now time.Time) *Gate {
	out := &Gate{Gate: g, Version: version, Loaded: now, kinds: map[string]bool{}}
	if g == nil || g.Set == nil {
		return out
	}
	if len(g.Set.ValidatingPolicies) > 0 {
		out.anyKind = true
	}
	for _, p := range g.Set.Policies {
		extra := strings.Split(p.GetAnnotations()[policy.AnnotationAutogen], ",")
		for _, r := range p.GetSpec().Rules {
			kinds := ruleKinds(r.MatchResources)
			if len(kinds) == 0 {
				out.anyKind = true
			}
			for _, k := range kinds {
				kind, ok := kindOf(k)
				if !ok {
					out.anyKind = true
					continue
				}
				out.kinds[kind] = true
				if kind == "Pod" { // autogen rules for pod controllers, and the policy's own list
					for _, c := range podControllers {
						out.kinds[c] = true
					}
					for _, c := range extra {
						if c = strings.TrimSpace(c); c != "" {
							out.kinds[c] = true
						}
					}
				}
			}
		}
	}
	return out
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

// Policies is the number of policies in the gate.
func (g *Gate) Policies() int {
	if g == nil || g.Gate == nil || g.Set == nil {
		return 0
	}
	return g.Set.Len()
}
