// Package policies holds gitgate's built-in policy bundle as Kyverno YAML.
//
// Each policy lives in its own directory, <name>/policy.yaml, next to the Kyverno CLI test
// that proves it (<name>/kyverno-test.yaml, resources.yaml and, where the policy reads the
// registry variable, values.yaml). Only the policies are embedded: the tests and their
// resources stay on disk, for `gitgate test policies` and `kyverno test policies`.
package policies

import "embed"

// FS holds every built-in policy as <name>/policy.yaml.
//
//go:embed */policy.yaml
var FS embed.FS

// RegistriesVariable is the Kyverno JSON context key the registry policies
// (restrict-image-registries, tekton-restrict-image-registries) read the allowed registries
// from. The caller sets it before evaluation, e.g.
// jsonContext.AddVariable(RegistriesVariable, []string{"harbor.example.com", "ghcr.io/acme/*"}).
// Each entry is a Kyverno wildcard pattern if it contains "*", otherwise a registry host or
// path prefix that the policies match as entry+"/*". When the variable is absent those rules
// report an error, never a pass; an empty list allows no image at all.
const RegistriesVariable = "gitgate.registries"
