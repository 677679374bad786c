package policy

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	yaml3 "go.yaml.in/yaml/v3"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Baseline is how a finding compares with the base revision in merge-request mode
// (check --base): it is new in the change, was already there, or the change fixed it.
type Baseline string

const (
	BaselineNew       Baseline = "new"
	BaselineUnchanged Baseline = "unchanged"
	BaselineFixed     Baseline = "fixed"
)

// Changes is what a merge-request check compared; Report.Changes is nil otherwise.
type Changes struct {
	// Base is the revision as the user named it, BaseCommit the commit it resolved to
	// (the merge base with HEAD).
	Base       string `json:"base"`
	BaseCommit string `json:"baseCommit"`
	// Files are the changed paths, repo-relative, slash-separated.
	Files []string `json:"files"`
	// PoliciesChanged is set when a policy (or .gitgate.yaml) changed, so every target
	// was re-evaluated under both policy sets.
	PoliciesChanged bool `json:"policiesChanged,omitempty"`
	// Policy is set when the policies changed: whose rules judged head, and the
	// change's blast radius on head's manifests.
	Policy *PolicyChange `json:"policy,omitempty"`
	// Targets are the affected targets, sorted by name.
	Targets []TargetChange `json:"targets"`
	// Fixed are findings the base had that head no longer has (Baseline fixed).
	Fixed []Result `json:"fixed"`
	// New, Unchanged and FixedCount count findings by baseline; NewBlocking counts the
	// new findings that block (only those fail a merge-request check).
	New         int `json:"new"`
	Unchanged   int `json:"unchanged"`
	FixedCount  int `json:"fixedCount"`
	NewBlocking int `json:"newBlocking"`
}

// TargetState says how an affected target changed.
type TargetState string

const (
	TargetAdded    TargetState = "added"
	TargetRemoved  TargetState = "removed"
	TargetModified TargetState = "modified"
)

// TargetChange is one affected target: how it changed, its verdict at base and at head
// (blocking means an Enforce finding), and its rendered diff (unified, Secret values
// masked; empty when the rendered output did not change).
type TargetChange struct {
	Name         string      `json:"name"`
	State        TargetState `json:"state"`
	BaseBlocking bool        `json:"baseBlocking"`
	HeadBlocking bool        `json:"headBlocking"`
	Diff         string      `json:"diff,omitempty"`
	// BaseRemotes and HeadRemotes are the remote sources the target rendered from on
	// each side, when they differ (a chart version, a ref moved).
	BaseRemotes []RemoteSource `json:"baseRemotes,omitempty"`
	HeadRemotes []RemoteSource `json:"headRemotes,omitempty"`
}

// NewlyFailing reports whether the change makes the target block (policy blast radius).
func (t TargetChange) NewlyFailing() bool { return t.HeadBlocking && !t.BaseBlocking }

// NewlyPassing reports whether the change makes a blocked target pass.
func (t TargetChange) NewlyPassing() bool { return t.BaseBlocking && !t.HeadBlocking }

// FindingKey identifies a finding across revisions: target, resource identity
// (group/Kind/namespace/name), policy/rule and the field it failed at when Kyverno
// names one, never a line number. The field keeps a second violation of a rule the
// resource already broke elsewhere (a container's image next to a bad initContainer's)
// from passing as unchanged.
func FindingKey(r Result) string {
	return r.Origin.Target + "\x00" + groupOf(r.APIVersion) + "\x00" + r.ResourceID() + "\x00" + r.Policy + "\x00" + r.Rule + "\x00" + r.Path
}

func groupOf(apiVersion string) string {
	for i := 0; i < len(apiVersion); i++ {
		if apiVersion[i] == '/' {
			return apiVersion[:i]
		}
	}
	return ""
}

// Classify compares head's findings with base's: every head finding gets Baseline new or
// unchanged, and the base findings head no longer has are returned as fixed. Only
// findings (fail, warn, error) take part; passes and skips are left alone.
func Classify(base, head []Result) (fixed []Result) {
	seen := map[string]int{}
	for _, r := range base {
		if r.Finding() {
			seen[FindingKey(r)]++
		}
	}
	for i := range head {
		if !head[i].Finding() {
			continue
		}
		k := FindingKey(head[i])
		if seen[k] > 0 {
			seen[k]--
			head[i].Baseline = BaselineUnchanged
		} else {
			head[i].Baseline = BaselineNew
		}
	}
	for _, r := range base {
		if !r.Finding() {
			continue
		}
		k := FindingKey(r)
		if seen[k] > 0 {
			seen[k]--
			r.Baseline = BaselineFixed
			fixed = append(fixed, r)
		}
	}
	SortResults(fixed)
	return fixed
}

// CountBaselines fills the counts of c from head's classified results.
func (c *Changes) CountBaselines(head []Result) {
	c.New, c.Unchanged, c.NewBlocking = 0, 0, 0
	for _, r := range head {
		switch r.Baseline {
		case BaselineNew:
			c.New++
			if r.Blocking() {
				c.NewBlocking++
			}
		case BaselineUnchanged:
			c.Unchanged++
		}
	}
	c.FixedCount = len(c.Fixed)
}

// TrustPolicy is the policy name of the findings merge-request trust makes: a merge
// request that weakens the rules it is judged by (check --base).
const TrustPolicy = "merge-request-trust"

// Rules of TrustPolicy, one per way a merge request can weaken enforcement.
const (
	TrustEnforcementRemoved = "enforcement-removed" // fewer Enforce findings under head's rules
	TrustBuiltinDisabled    = "builtin-disabled"    // noBuiltin turned on
	TrustPolicyRemoved      = "policy-removed"      // a policy deleted, turned off or made inactive
	TrustActionLowered      = "action-lowered"      // an Enforce rule made Audit
	TrustExceptionAdded     = "exception-added"     // a PolicyException added or changed
	TrustRegistriesWidened  = "registries-widened"  // an allowed registry added
	TrustTargetsNarrowed    = "targets-narrowed"    // targets: leaves more out
	TrustBaseUnloadable     = "base-unloadable"     // the base's rules could not be loaded
	TrustChangesTrusted     = "trust-enabled"       // mergeRequests.trustPolicyChanges turned on
)

// Rules judged by, in PolicyChange.JudgedBy.
const (
	JudgedByBase = "base"
	JudgedByHead = "head"
)

// PolicyChange is a merge request's change to its own policies, .gitgate.yaml or
// values file: the rules that judged it, and the change's blast radius on head's
// manifests (the findings head's rules add and remove, compared with the base's).
type PolicyChange struct {
	// JudgedBy is "base" (the merge base's .gitgate.yaml, policies and values judged
	// head) or "head" (the base's mergeRequests.trustPolicyChanges lets head's judge).
	JudgedBy string `json:"judgedBy"`
	// Added are findings head's rules make on head's manifests that the base's rules
	// do not; Removed are findings the base's rules make that head's do not.
	Added   []Result `json:"added"`
	Removed []Result `json:"removed"`
	// Weakened is set when the change removes or weakens enforcement (the
	// merge-request-trust findings in Results say how).
	Weakened bool `json:"weakened"`
}

// RemovedBlocking counts the Enforce findings head's rules would remove.
func (p *PolicyChange) RemovedBlocking() int {
	n := 0
	for _, r := range p.Removed {
		if r.Blocking() {
			n++
		}
	}
	return n
}

// RuleDelta compares the findings of the same manifests under two rule sets: those
// only under ours (added) and those only under theirs (removed), matched by FindingKey.
// The results are copies with no Baseline.
func RuleDelta(theirs, ours []Result) (added, removed []Result) {
	count := func(rs []Result) map[string]int {
		m := map[string]int{}
		for _, r := range rs {
			if r.Finding() {
				m[FindingKey(r)]++
			}
		}
		return m
	}
	only := func(rs []Result, other map[string]int) []Result {
		var out []Result
		for _, r := range rs {
			if !r.Finding() {
				continue
			}
			k := FindingKey(r)
			if other[k] > 0 {
				other[k]--
				continue
			}
			r.Baseline = ""
			out = append(out, r)
		}
		return out
	}
	added = only(ours, count(theirs))
	removed = only(theirs, count(ours))
	SortResults(added)
	SortResults(removed)
	return added, removed
}

// Rules are one side's rules in a merge request: the gate its settings open, the
// settings, the registries in effect (flags win over the file) and where its
// .gitgate.yaml is shown (for findings pointing into it), with the file's bytes for
// line numbers.
type Rules struct {
	Gate       *Gate
	Config     *Config
	Registries []string
	ConfigFile string
	ConfigData []byte
}

// Weakening lists how head's rules weaken base's, each a merge-request-trust finding
// (Enforce, so it blocks; the caller lowers it when the base trusts policy changes):
// noBuiltin turned on, a policy deleted, turned off (actions: off) or left inactive, a
// rule's Enforce lowered to Audit, a PolicyException added or changed, an allowed
// registry added, targets: leaving more out. The verdict itself (fewer Enforce findings
// under head's rules) is EnforcementRemoved's.
func Weakening(base, head Rules) []Result {
	var out []Result
	add := func(o Origin, kind, ns, name, rule, msg string) {
		out = append(out, Result{Origin: o, Kind: kind, Namespace: ns, Name: name, Policy: TrustPolicy, Rule: rule,
			Status: StatusFail, Action: Enforce, Message: msg + "; " + trustAdvice, Baseline: BaselineNew})
	}
	cfgPos := func(keys ...string) Origin { return configPos(head.ConfigFile, head.ConfigData, keys...) }
	builtinOff := base.Config != nil && head.Config != nil && !base.Config.NoBuiltin && head.Config.NoBuiltin
	if builtinOff {
		add(cfgPos("noBuiltin"), "Settings", "", ConfigFile, TrustBuiltinDisabled,
			"noBuiltin: true turns the built-in policy bundle off")
	}
	if base.Config != nil && head.Config != nil && !base.Config.MergeRequests.TrustPolicyChanges && head.Config.MergeRequests.TrustPolicyChanges {
		add(cfgPos("mergeRequests", "trustPolicyChanges"), "Settings", "", ConfigFile, TrustChangesTrusted,
			"mergeRequests.trustPolicyChanges: true would let later merge requests change the rules they are judged by")
	}
	// Policies: by kind/namespace/name.
	type pol struct {
		kind, ns, name string
		origin         Origin
	}
	index := func(g *Gate) map[string]pol {
		m := map[string]pol{}
		for _, p := range g.Set.Policies {
			m[p.GetKind()+"/"+p.GetNamespace()+"/"+p.GetName()] = pol{p.GetKind(), p.GetNamespace(), p.GetName(), g.Set.Origin(p.GetKind(), p.GetName())}
		}
		type object interface {
			GetKind() string
			GetNamespace() string
			GetName() string
		}
		put := func(p object) {
			m[p.GetKind()+"/"+p.GetNamespace()+"/"+p.GetName()] = pol{p.GetKind(), p.GetNamespace(), p.GetName(), g.Set.Origin(p.GetKind(), p.GetName())}
		}
		// Every kind that admits, mutates or generates: deleting a MutatingPolicy that sets
		// securityContext defaults, or a binding that puts a ValidatingAdmissionPolicy in
		// force, weakens the rules as much as deleting a validate policy.
		for _, p := range g.Set.ValidatingPolicies {
			put(p)
		}
		for _, p := range g.Set.MutatingPolicies {
			put(p)
		}
		for _, p := range g.Set.GeneratingPolicies {
			put(p)
		}
		for _, p := range g.Set.ValidatingAdmissionPolicies {
			put(kinded{p, "ValidatingAdmissionPolicy"})
		}
		for _, p := range g.Set.ValidatingAdmissionPolicyBindings {
			put(kinded{p, "ValidatingAdmissionPolicyBinding"})
		}
		for _, p := range g.Set.MutatingAdmissionPolicies {
			put(kinded{p, "MutatingAdmissionPolicy"})
		}
		for _, p := range g.Set.MutatingAdmissionPolicyBindings {
			put(kinded{p, "MutatingAdmissionPolicyBinding"})
		}
		return m
	}
	basePols, headPols := index(base.Gate), index(head.Gate)
	keys := make([]string, 0, len(basePols))
	for k := range basePols {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := basePols[k]
		if _, ok := headPols[k]; ok {
			continue
		}
		if builtinOff && strings.HasPrefix(p.origin.File, BuiltinSource().Display) {
			continue // said once, as builtin-disabled
		}
		o, why := p.origin, "is deleted (or its policy directory is no longer loaded)"
		switch {
		case head.Config != nil && head.Config.Actions[p.name] == ActionOff:
			o, why = cfgPos("actions", p.name), "is turned off (actions: "+p.name+": off)"
		case len(head.Registries) == 0 && len(base.Registries) > 0 && base.Gate.Set.usesVariable(p.name, RegistriesVariable):
			o, why = cfgPos("registries"), "is inactive: no allowed registries are configured any more"
		}
		add(o, p.kind, p.ns, p.name, TrustPolicyRemoved, fmt.Sprintf("policy %s %s", p.name, why))
	}
	// Actions: a rule Enforce at base and Audit at head.
	baseActs, headActs := ruleActions(base.Gate), ruleActions(head.Gate)
	lowered := map[string][]string{}
	for k, a := range baseActs {
		if h, ok := headActs[k]; ok && a == Enforce && h != Enforce {
			pk, rule, _ := strings.Cut(k, "\x00")
			lowered[pk] = append(lowered[pk], rule)
		}
	}
	keys = keys[:0]
	for k := range lowered {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := headPols[k]
		rules := lowered[k]
		sort.Strings(rules)
		o, how := p.origin, "its own validationFailureAction/failureAction"
		if head.Config != nil {
			if _, ok := head.Config.Actions[p.name]; ok {
				o, how = cfgPos("actions", p.name), "actions: in "+ConfigFile
			}
		}
		add(o, p.kind, p.ns, p.name, TrustActionLowered, fmt.Sprintf("policy %s: rule %s lowered from Enforce to Audit (%s)", p.name, strings.Join(rules, ", "), how))
	}
	// Exceptions, added or changed.
	type exc struct {
		group, ns, name string
		spec            any
	}
	excs := func(s *Set) map[string]exc {
		m := map[string]exc{}
		for _, x := range s.Exceptions {
			m[exceptionKey("kyverno.io", x.Namespace, x.Name)] = exc{"kyverno.io", x.Namespace, x.Name, x.Spec}
		}
		for _, x := range s.CELExceptions {
			m[exceptionKey("policies.kyverno.io", x.Namespace, x.Name)] = exc{"policies.kyverno.io", x.Namespace, x.Name, x.Spec}
		}
		return m
	}
	baseExc, headExc := excs(base.Gate.Set), excs(head.Gate.Set)
	keys = keys[:0]
	for k := range headExc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		x := headExc[k]
		b, had := baseExc[k]
		if had && reflect.DeepEqual(b.spec, x.spec) {
			continue
		}
		what := "added"
		if had {
			what = "changed"
		}
		info, _ := head.Gate.Set.ExceptionInfo(x.group, x.ns, x.name)
		add(info.Origin, "PolicyException", x.ns, x.name, TrustExceptionAdded, fmt.Sprintf("PolicyException %s %s: it exempts resources from policies", FormatID("", x.ns, x.name)[1:], what))
	}
	// Registries: an allowed registry the base does not allow.
	var wider []string
	for _, r := range head.Registries {
		if !slices.Contains(base.Registries, r) {
			wider = append(wider, r)
		}
	}
	if len(wider) > 0 && len(base.Registries) > 0 {
		add(cfgPos("registries"), "Settings", "", ConfigFile, TrustRegistriesWidened, "registries: allows "+strings.Join(wider, ", ")+" as well")
	}
	// Target filter: a new exclude pattern, or an include list that drops patterns (or
	// appears where there was none).
	if base.Config != nil && head.Config != nil {
		var more []string
		for _, p := range head.Config.Targets.Exclude {
			if !slices.Contains(base.Config.Targets.Exclude, p) {
				more = append(more, "exclude "+p)
			}
		}
		bi, hi := base.Config.Targets.Include, head.Config.Targets.Include
		if len(hi) > 0 {
			if len(bi) == 0 {
				more = append(more, "include only "+strings.Join(hi, ", "))
			} else {
				for _, p := range bi {
					if !slices.Contains(hi, p) {
						more = append(more, "no longer include "+p)
					}
				}
			}
		}
		if len(more) > 0 {
			add(cfgPos("targets"), "Settings", "", ConfigFile, TrustTargetsNarrowed, "targets: leaves more render targets unchecked ("+strings.Join(more, "; ")+")")
		}
	}
	return out
}

// trustAdvice ends every merge-request-trust finding.
const trustAdvice = "a merge request is judged by the merge base's policies and settings, and this change weakens them; merge it after review by the policy owners (or set mergeRequests: {trustPolicyChanges: true} in the base's " + ConfigFile + " for a policy repository)"

// EnforcementRemoved is the finding for a policy change that removes Enforce findings
// from head's manifests (PolicyChange.Removed), pointing at where the change is
// (origin), or nil when it removes none.
func EnforcementRemoved(pc *PolicyChange, origin Origin) *Result {
	n := pc.RemovedBlocking()
	if n == 0 {
		return nil
	}
	var ex []string
	for _, r := range pc.Removed {
		if r.Blocking() && len(ex) < 3 {
			ex = append(ex, r.ResourceID()+" "+r.Policy+"/"+r.Rule)
		}
	}
	more := ""
	if n > len(ex) {
		more = fmt.Sprintf(" and %d more", n-len(ex))
	}
	return &Result{Origin: origin, Kind: "Settings", Name: ConfigFile, Policy: TrustPolicy, Rule: TrustEnforcementRemoved,
		Status: StatusFail, Action: Enforce, Baseline: BaselineNew,
		Message: fmt.Sprintf("the merge request's own policy changes would remove %d Enforce %s from its manifests (%s%s); %s",
			n, plural(n, "finding", "findings"), strings.Join(ex, ", "), more, trustAdvice)}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Trusted lowers merge-request-trust findings to warnings: the base's settings allow
// policy changes from merge requests (mergeRequests.trustPolicyChanges).
func Trusted(rs []Result) []Result {
	for i := range rs {
		rs[i].Action = Audit
		rs[i].Status = StatusWarn
		rs[i].Message = strings.Replace(rs[i].Message, trustAdvice, "allowed: the merge base's "+ConfigFile+" sets mergeRequests.trustPolicyChanges", 1)
	}
	return rs
}

// ruleActions maps "kind/namespace/name\x00rule" to the action each validate rule (and
// each CEL policy) fails with, for a resource in no particular namespace.
func ruleActions(g *Gate) map[string]Action {
	m := map[string]Action{}
	if g.Engine != nil {
		for i := range g.Engine.policies {
			cp := &g.Engine.policies[i]
			p := cp.policy
			for name, r := range cp.rules {
				if r.Validation == nil {
					continue
				}
				m[p.GetKind()+"/"+p.GetNamespace()+"/"+p.GetName()+"\x00"+name] = cp.action(name, "")
			}
		}
	}
	for _, p := range g.Set.ValidatingPolicies {
		a := Audit
		if slices.Contains(p.GetValidatingPolicySpec().ValidationActions(), admissionregistrationv1.Deny) {
			a = Enforce
		}
		m[p.GetKind()+"/"+p.GetNamespace()+"/"+p.GetName()+"\x00"+p.GetName()] = a
	}
	// A ValidatingAdmissionPolicyBinding enforces with Deny; Warn and Audit only report.
	for _, b := range g.Set.ValidatingAdmissionPolicyBindings {
		a := Audit
		if slices.Contains(b.Spec.ValidationActions, admissionregistrationv1.Deny) {
			a = Enforce
		}
		m["ValidatingAdmissionPolicyBinding//"+b.Name+"\x00"+b.Name] = a
	}
	return m
}

// kinded gives a typed API object the kind its TypeMeta may lack once decoded.
type kinded struct {
	metav1.Object
	kind string
}

func (k kinded) GetKind() string { return k.kind }

// usesVariable reports whether the named policy reads the context variable.
func (s *Set) usesVariable(name, variable string) bool {
	for _, n := range s.UsesVariable(variable) {
		if n == name {
			return true
		}
	}
	return false
}

// configPos is where a key (a path of mapping keys) is in a .gitgate.yaml shown as
// file, or the file itself when the key is not there.
func configPos(file string, data []byte, keys ...string) Origin {
	o := Origin{File: file}
	var root yaml3.Node
	if len(data) == 0 || yaml3.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
		return o
	}
	n := root.Content[0]
	for _, k := range keys {
		if n.Kind != yaml3.MappingNode {
			return o
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				o.Line, o.Col = n.Content[i].Line, n.Content[i].Column
				n, found = n.Content[i+1], true
				break
			}
		}
		if !found {
			return o
		}
	}
	return o
}
