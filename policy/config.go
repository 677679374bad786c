package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/gitgate/gitgate/policies"
	"sigs.k8s.io/yaml"
)

// ConfigFile is the optional repository configuration at the repo root.
const ConfigFile = ".gitgate.yaml"

// RegistriesVariable is the context variable the built-in registry policies read: a list
// of Kyverno wildcard patterns such as "harbor.example.com/*".
const RegistriesVariable = policies.RegistriesVariable

// Config is .gitgate.yaml. Every field is optional; with no file the seed-shaped layout
// and the built-in policies just work.
type Config struct {
	// Registries are the allowed image registries (harbor.example.com or
	// harbor.example.com/team); the built-in registry policies are inactive without any.
	Registries []string `json:"registries,omitempty"`
	// Policies are extra policy directories, relative to the repo root. Default: policies/.
	Policies []string `json:"policies,omitempty"`
	// NoBuiltin turns the built-in bundle off.
	NoBuiltin bool `json:"noBuiltin,omitempty"`
	// Values is a Kyverno values file, relative to the repo root.
	Values string `json:"values,omitempty"`

	// Rendering settings, read by the render package through the CLI.

	// RepoURLs are the URLs Argo CD Applications use for this repository.
	RepoURLs []string `json:"repoURLs,omitempty"`
	// Clusters are what the ApplicationSet clusters generator iterates over.
	Clusters []ClusterConfig `json:"clusters,omitempty"`
	// KubeVersion and APIVersions are Helm's .Capabilities (default: a current release
	// and its built-in APIs).
	KubeVersion string   `json:"kubeVersion,omitempty"`
	APIVersions []string `json:"apiVersions,omitempty"`
}

// ClusterConfig is one destination cluster in .gitgate.yaml.
type ClusterConfig struct {
	Name   string            `json:"name"`
	Server string            `json:"server"`
	Labels map[string]string `json:"labels,omitempty"`
}

// LoadConfig reads .gitgate.yaml from the root of fsys. A missing file is an empty config.
func LoadConfig(fsys fs.FS) (*Config, error) {
	data, err := fs.ReadFile(fsys, ConfigFile)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ConfigFile, err)
	}
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w; see README.md for its keys", ConfigFile, err)
	}
	return &c, nil
}

// RegistryPatterns turns registry names into the wildcard patterns the registry
// policies match images against: "harbor.example.com" -> "harbor.example.com/*".
func RegistryPatterns(registries []string) []any {
	var out []any
	for _, r := range registries {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if !strings.ContainsAny(r, "*?") {
			r = strings.TrimSuffix(r, "/") + "/*"
		}
		out = append(out, r)
	}
	return out
}

// UsesVariable lists the policies of the set that read the named context variable.
func (s *Set) UsesVariable(name string) []string {
	var out []string
	for _, p := range s.Policies {
		for _, r := range p.GetSpec().Rules {
			if ruleUses(r.Validation, name) || ruleUses(r.Context, name) {
				out = append(out, p.GetName())
				break
			}
		}
	}
	return out
}

func ruleUses(v any, name string) bool {
	b, err := yaml.Marshal(v)
	return err == nil && strings.Contains(string(b), name)
}

// Remove drops the named policies from the set.
func (s *Set) Remove(names ...string) {
	drop := map[string]bool{}
	for _, n := range names {
		drop[n] = true
	}
	keep := s.Policies[:0]
	for _, p := range s.Policies {
		if !drop[p.GetName()] {
			keep = append(keep, p)
		}
	}
	s.Policies = keep
}
