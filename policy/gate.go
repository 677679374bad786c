package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gitgate/gitgate/policies"
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
}

// Gate is a policy set compiled into an engine, with the warnings its loading produced.
type Gate struct {
	*Engine
	Set      *Set
	Warnings []string
}

// BuiltinSource is the embedded policy bundle as a Source.
func BuiltinSource() Source { return Source{FS: policies.FS, Root: ".", Display: "builtin:"} }

// OpenGate loads the built-in bundle (unless NoBuiltin) and the policy directories,
// wires the registries, and compiles the engine. A policy that does not load is an
// error: the gate never runs with fewer policies than the user wrote.
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
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	g := &Gate{Set: set, Warnings: append([]string{}, set.Warnings...)}
	vars := map[string]any{}
	if regs := RegistryPatterns(opts.Registries); len(regs) > 0 {
		vars[RegistriesVariable] = regs
	} else if users := set.UsesVariable(RegistriesVariable); len(users) > 0 {
		set.Remove(users...)
		g.Warnings = append(g.Warnings, fmt.Sprintf("%s inactive: no allowed registries configured; pass --registry REGISTRY or set registries: in %s",
			strings.Join(users, ", "), ConfigFile))
	}
	eng, err := NewEngine(set, Options{Values: opts.Values, Variables: vars})
	if err != nil {
		return nil, err
	}
	g.Engine = eng
	return g, nil
}
