package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gitgate/gitgate/policies"
	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// GateOptions say which policies guard a repository. The same options serve check,
// test, the webhook and the runner, so they cannot disagree.
type GateOptions struct {
	// NoBuiltin leaves the built-in bundle out.
	NoBuiltin bool
	// PolicyDirs are policy files and directories.
	PolicyDirs []Source
	// Registries are the allowed image registries; none leaves the registry policies
	// inactive, with a warning.
	Registries []string
	// Values supplies cluster data offline.
	Values *Values
	// Actions override a policy's failure action by policy name (.gitgate.yaml
	// actions:): Enforce or Audit replace every action the policy and its rules set, off
	// leaves the policy out with a warning. Naming a policy the set does not have is an
	// error.
	Actions map[string]ActionOverride
	// Now is the clock exceptions expire by (gitgate.dev/expires); default time.Now.
	Now func() time.Time
	// Partial opens the gate with the policies that load and lists the others in
	// Gate.LoadErrors, for a check that reports them (exit 2) and still runs every other
	// policy; without it a policy that does not load is OpenGate's error.
	Partial bool
}

// Gate is a policy set compiled into an engine, with the warnings its loading produced.
type Gate struct {
	*Engine
	Set      *Set
	Warnings []string
	// LoadErrors are the policies that did not load (GateOptions.Partial only).
	LoadErrors []error
}

// BuiltinSource is the embedded policy bundle as a Source.
func BuiltinSource() Source { return Source{FS: policies.FS, Root: ".", Display: "builtin:"} }

// OpenGate loads the built-in bundle (unless NoBuiltin) and the policy directories,
// wires the registries, and compiles the engine. A policy that does not load is an
// error (the gate never runs silently with fewer policies than the user wrote), or with
// Partial, a LoadError the gate carries for its user to report.
func OpenGate(opts GateOptions) (*Gate, error) {
	set := &Set{origins: map[string]Origin{}}
	var errs []error
	if !opts.NoBuiltin {
		b, err := LoadSources(BuiltinSource())
		if err != nil {
			return nil, fmt.Errorf("built-in policies: %w", err)
		}
		set.Merge(b)
	}
	if len(opts.PolicyDirs) > 0 {
		user, err := LoadSources(opts.PolicyDirs...)
		if err != nil {
			errs = append(errs, err)
		}
		set.Merge(user)
	}
	var loadErrs []error
	if len(errs) > 0 {
		if !opts.Partial {
			return nil, errors.Join(errs...)
		}
		for _, e := range errs {
			loadErrs = append(loadErrs, Unjoin(e)...)
		}
	}
	g := &Gate{Set: set, Warnings: append([]string{}, set.Warnings...), LoadErrors: loadErrs}
	notices, err := set.OverrideActions(opts.Actions)
	if err != nil {
		return nil, err
	}
	g.Warnings = append(g.Warnings, notices...)
	vars := map[string]any{}
	if regs := RegistryPatterns(opts.Registries); len(regs) > 0 {
		vars[RegistriesVariable] = regs
	} else if users := set.UsesVariable(RegistriesVariable); len(users) > 0 {
		set.Remove(users...)
		g.Warnings = append(g.Warnings, fmt.Sprintf("%s inactive: no allowed registries configured; pass --registry REGISTRY or set registries: in %s",
			strings.Join(users, ", "), ConfigFile))
	}
	eng, err := NewEngine(set, Options{Values: opts.Values, Variables: vars, Now: opts.Now})
	if err != nil {
		return nil, err
	}
	g.Engine = eng
	g.Warnings = append(g.Warnings, eng.Notices()...)
	return g, nil
}

// OverrideActions applies per-policy action overrides (see GateOptions.Actions) to the
// set and returns a notice for every policy turned off. A name the set does not have is
// an error listing the names it does have.
func (s *Set) OverrideActions(actions map[string]ActionOverride) ([]string, error) {
	if len(actions) == 0 {
		return nil, nil
	}
	// names: every loaded policy by name, "" for the kinds whose failure action can be
	// set (ClusterPolicy/Policy, ValidatingPolicy), else its kind, which can only be
	// turned off.
	names := map[string]string{}
	for _, n := range s.Names() {
		kind, name, _ := strings.Cut(n, "/")
		if _, seen := names[name]; !seen {
			names[name] = kind
		}
	}
	for _, p := range s.Policies {
		names[p.GetName()] = ""
	}
	for _, p := range s.ValidatingPolicies {
		names[p.GetName()] = ""
	}
	keys := make([]string, 0, len(actions))
	for k := range actions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	var notices, off []string
	for _, name := range keys {
		a, err := ParseActionOverride(string(actions[name]))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: actions: %s: %w", ConfigFile, name, err))
			continue
		}
		kind, loaded := names[name]
		if !loaded {
			known := make([]string, 0, len(names))
			for n := range names {
				known = append(known, n)
			}
			sort.Strings(known)
			errs = append(errs, fmt.Errorf("%s: actions: no policy named %q is loaded; the policies are: %s", ConfigFile, name, strings.Join(known, ", ")))
			continue
		}
		if a == ActionOff {
			off = append(off, name)
			notices = append(notices, fmt.Sprintf("policy %s is off (actions: in %s): it is not evaluated", name, ConfigFile))
			continue
		}
		if kind != "" {
			errs = append(errs, fmt.Errorf("%s: actions: %s: %s is a %s, which has no failure action to set (its enforcement is its own: failurePolicy, bindings); only off applies to it", ConfigFile, name, name, kind))
			continue
		}
		for i, p := range s.Policies {
			if p.GetName() == name {
				s.Policies[i] = withAction(p, Action(a))
			}
		}
		for i, p := range s.ValidatingPolicies {
			if p.GetName() == name {
				s.ValidatingPolicies[i] = withCELAction(p, Action(a))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.Remove(off...)
	return notices, nil
}

// withAction is a copy of p whose every validate rule and the policy itself fail with a,
// with no namespace overrides left.
func withAction(p kyvernov1.PolicyInterface, a Action) kyvernov1.PolicyInterface {
	c := p.CreateDeepCopy()
	fa := kyvernov1.ValidationFailureAction(a)
	spec := c.GetSpec()
	spec.ValidationFailureAction = fa
	spec.ValidationFailureActionOverrides = nil
	for i := range spec.Rules {
		if v := spec.Rules[i].Validation; v != nil {
			v.FailureAction = &fa
			v.FailureActionOverrides = nil
		}
	}
	return c
}

// withCELAction is a copy of a CEL policy that denies (Enforce) or audits (Audit).
func withCELAction(p policiesv1beta1.ValidatingPolicyLike, a Action) policiesv1beta1.ValidatingPolicyLike {
	act := admissionregistrationv1.Audit
	if a == Enforce {
		act = admissionregistrationv1.Deny
	}
	switch v := p.(type) {
	case *policiesv1beta1.ValidatingPolicy:
		c := v.DeepCopy()
		c.Spec.ValidationAction = []admissionregistrationv1.ValidationAction{act}
		return c
	case *policiesv1beta1.NamespacedValidatingPolicy:
		c := v.DeepCopy()
		c.Spec.ValidationAction = []admissionregistrationv1.ValidationAction{act}
		return c
	}
	return p
}
