package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/gitgate/gitgate/internal/repopath"
	"github.com/gitgate/gitgate/policies"
	yaml3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"
)

// ConfigFile is the optional repository configuration at the repo root.
const ConfigFile = ".gitgate.yaml"

// RegistriesVariable is the context variable the built-in registry policies read: a list
// of Kyverno wildcard patterns such as "harbor.example.com/*".
const RegistriesVariable = policies.RegistriesVariable

// Config is .gitgate.yaml. Every field is optional; with no file the seed-shaped layout
// and the built-in policies just work. Decoding is strict: an unknown key is an error
// naming the key, the file and the line.
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
	// CRDs are files or directories of CustomResourceDefinition YAML, relative to the
	// repo root: custom resources of their kinds are validated as the API server would
	// (CRDSet), not left "not schema-checked".
	CRDs []string `json:"crds,omitempty"`
	// Actions override a policy's failure action by policy name: Enforce, Audit, or off
	// (the policy is not evaluated, with a notice). See GateOptions.Actions.
	Actions map[string]ActionOverride `json:"actions,omitempty"`

	// MergeRequests say how check --base treats a merge request's own changes to the
	// policies and settings. Only the merge base's file counts: a merge request cannot
	// grant itself trust.
	MergeRequests MergeRequestSettings `json:"mergeRequests,omitempty"`

	// Rendering settings, read by the render package through the CLI.

	// Targets limit which render targets are checked (TargetIncluded).
	Targets TargetFilter `json:"targets,omitempty"`
	// RepoURLs are the URLs Argo CD Applications use for this repository.
	RepoURLs []string `json:"repoURLs,omitempty"`
	// Environments are what ApplicationSet generators expand per environment.
	Environments []string `json:"environments,omitempty"`
	// Clusters are what the ApplicationSet clusters generator iterates over and, with a
	// context:, the clusters sync and report reach for Applications whose destination
	// names them.
	Clusters []ClusterConfig `json:"clusters,omitempty"`
	// KubeVersion and APIVersions are Helm's .Capabilities (default: a current release
	// and its built-in APIs).
	KubeVersion string   `json:"kubeVersion,omitempty"`
	APIVersions []string `json:"apiVersions,omitempty"`

	// Limits bound the work one target may cause; flags win over them.
	Limits Limits `json:"limits,omitempty"`

	// Remotes say what rendering may fetch from outside the repository.
	Remotes Remotes `json:"remotes,omitempty"`
}

// Remotes is remotes: in .gitgate.yaml. Nothing is fetched unless Allow names it.
type Remotes struct {
	// Allow are the hosts (charts.example.com), host/path prefixes (ghcr.io/org,
	// github.com/org/repo), explicit plain-http hosts (http://charts.internal) and IP
	// addresses or CIDRs (for private addresses) that Helm charts, chart dependencies,
	// kustomize helmCharts and other Git repositories may come from.
	Allow []string `json:"allow,omitempty"`
}

// Limits are the bounds of .gitgate.yaml's limits: block (zero: the default). Each has
// a flag of the same name that wins over it.
type Limits struct {
	// HelmTimeout is the wall time one chart's templates may run ("30s"; --helm-timeout).
	HelmTimeout string `json:"helmTimeout,omitempty"`
	// HelmMaxOutput is the number of bytes one chart's templates may produce, each
	// include and tpl counted (--helm-max-output).
	HelmMaxOutput int64 `json:"helmMaxOutput,omitempty"`
	// MaxObjects is the number of objects one target may render (--max-objects).
	MaxObjects int `json:"maxObjects,omitempty"`
}

// HelmTimeoutDuration is HelmTimeout parsed (0 when unset); ParseConfig has checked it.
func (l Limits) HelmTimeoutDuration() time.Duration {
	d, _ := time.ParseDuration(l.HelmTimeout)
	return d
}

// MergeRequestSettings is mergeRequests: in .gitgate.yaml.
type MergeRequestSettings struct {
	// TrustPolicyChanges lets a merge request's own .gitgate.yaml, policies and values
	// judge it (a policy repository, whose merge requests are policy changes). Without
	// it, check --base judges head with the merge base's, and a change that weakens
	// enforcement is itself a blocking finding.
	TrustPolicyChanges bool `json:"trustPolicyChanges,omitempty"`
}

// TargetFilter selects render targets by name with path.Match patterns.
type TargetFilter struct {
	// Include, when set, keeps only the targets some pattern matches.
	Include []string `json:"include,omitempty"`
	// Exclude drops the targets some pattern matches; it wins over Include.
	Exclude []string `json:"exclude,omitempty"`
}

// ActionOverride is a per-policy action override in .gitgate.yaml.
type ActionOverride string

// ActionOff turns a policy off: it is not evaluated, and the gate says so.
const ActionOff ActionOverride = "off"

// UnmarshalJSON accepts Enforce, Audit and off in any case. YAML 1.1 reads a bare off
// (or no, false) as the boolean false, so false means off too.
func (a *ActionOverride) UnmarshalJSON(b []byte) error {
	if string(b) == "false" {
		*a = ActionOff
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("action must be Enforce, Audit or off, not %s", b)
	}
	if s == "false" { // a bare off, as sigs.k8s.io/yaml hands a boolean to a string field
		*a = ActionOff
		return nil
	}
	n, err := ParseActionOverride(s)
	if err != nil {
		return err
	}
	*a = n
	return nil
}

// ParseActionOverride normalises Enforce, Audit and off (any case).
func ParseActionOverride(s string) (ActionOverride, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "enforce":
		return ActionOverride(Enforce), nil
	case "audit":
		return ActionOverride(Audit), nil
	case "off":
		return ActionOff, nil
	}
	return "", fmt.Errorf("action %q must be Enforce, Audit or off", s)
}

// ClusterConfig is one destination cluster in .gitgate.yaml.
type ClusterConfig struct {
	Name   string            `json:"name"`
	Server string            `json:"server"`
	Labels map[string]string `json:"labels,omitempty"`
	// Context, for sync and report, is the kubeconfig context (of --kubeconfig or
	// $KUBECONFIG) that reaches the cluster; Server defaults to that context's server.
	Context string `json:"context,omitempty"`
}

// GateOptions is the one rule that turns .gitgate.yaml into the gate's options, with
// the command line's options (flags) on top: registries from the flags win over
// registries:, noBuiltin from either leaves the bundle out, and actions: always apply
// (flags have no per-policy actions). The policy directories and the values file are the
// caller's to load from wherever the repository is (a checkout, a snapshot, a Git tree):
// PolicyDirs and ValuesFile name them.
func (c *Config) GateOptions(flags GateOptions) GateOptions {
	if c == nil {
		c = &Config{}
	}
	opts := flags
	opts.NoBuiltin = flags.NoBuiltin || c.NoBuiltin
	if len(flags.Registries) == 0 {
		opts.Registries = append([]string{}, c.Registries...)
	}
	if len(c.Actions) > 0 {
		opts.Actions = c.Actions
	}
	return opts
}

// DefaultPolicyDir is where a repository keeps its policies when .gitgate.yaml says
// nothing.
const DefaultPolicyDir = "policies"

// PolicyDirs are the repository's policy directories, slash-separated and relative to
// its root: policies: of .gitgate.yaml, else policies/ when the repository (fsys, its
// root) has that directory, else none.
func (c *Config) PolicyDirs(fsys fs.FS) []string {
	if c != nil && len(c.Policies) > 0 {
		out := make([]string, 0, len(c.Policies))
		for _, d := range c.Policies {
			out = append(out, path.Clean(d))
		}
		return out
	}
	if fsys != nil {
		st, err := fs.Stat(fsys, DefaultPolicyDir)
		if err == nil && st.IsDir() || err != nil && !errors.Is(err, fs.ErrNotExist) {
			// A policies/ that exists but cannot be read (a link out of the repository,
			// no permission) is named, so loading it says why, never silently unused.
			return []string{DefaultPolicyDir}
		}
	}
	return nil
}

// TargetIncluded reports whether the render target named name is checked: it matches
// an include pattern (or there are none) and no exclude pattern. Patterns use
// path.Match on the target name; a pattern matching the name's leading segments
// matches the whole subtree ("legacy" matches "legacy/production").
func (c *Config) TargetIncluded(name string) bool {
	if c == nil {
		return true
	}
	if len(c.Targets.Include) > 0 && !matchAny(c.Targets.Include, name) {
		return false
	}
	return !matchAny(c.Targets.Exclude, name)
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		for n := name; ; {
			if ok, _ := path.Match(p, n); ok {
				return true
			}
			i := strings.LastIndexByte(n, '/')
			if i <= 0 {
				break
			}
			n = n[:i]
		}
	}
	return false
}

// LoadConfig reads .gitgate.yaml from the root of fsys. A missing file is an empty config.
func LoadConfig(fsys fs.FS) (*Config, error) {
	data, err := ReadFileLimit(fsys, ConfigFile, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ConfigFile, err)
	}
	return ParseConfig(ConfigFile, data)
}

// ParseConfig decodes .gitgate.yaml strictly: every unknown key is an error naming it
// with its file and line, and so is a malformed value.
func ParseConfig(file string, data []byte) (*Config, error) {
	var root yaml3.Node
	if err := yaml3.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(root.Content) > 0 {
		if errs := unknownKeys(file, root.Content[0], reflect.TypeOf(Config{}), ""); len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w; see README.md for its keys", file, err)
	}
	if len(root.Content) > 0 {
		if errs := configPaths(file, root.Content[0]); len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	if c.Limits.HelmTimeout != "" {
		if d, err := time.ParseDuration(c.Limits.HelmTimeout); err != nil || d <= 0 {
			return nil, fmt.Errorf("%s: limits.helmTimeout: %q is not a positive duration such as 30s", file, c.Limits.HelmTimeout)
		}
	}
	if c.Limits.HelmMaxOutput < 0 || c.Limits.MaxObjects < 0 {
		return nil, fmt.Errorf("%s: limits: helmMaxOutput and maxObjects must not be negative", file)
	}
	for _, group := range [][]string{c.Targets.Include, c.Targets.Exclude} {
		for _, p := range group {
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("%s: targets: pattern %q: %w", file, p, err)
			}
		}
	}
	return &c, nil
}

// configPaths checks the path keys of .gitgate.yaml (policies:, values:, crds:): each names
// something inside the repository, relative to its root. An absolute path or one that
// climbs out with ".." is an error at the key's line; what lies outside the repository
// is the command line's to name (--policies, --values), never the repository's.
// Symbolic links are judged when the paths are read (the CLI reads them through
// repopath's confined filesystem).
func configPaths(file string, n *yaml3.Node) []error {
	if n.Kind != yaml3.MappingNode {
		return nil
	}
	var errs []error
	check := func(key string, v *yaml3.Node) {
		if _, err := repopath.Clean(v.Value); err != nil || v.Value == "" {
			if err == nil {
				err = errors.New("empty path")
			}
			flag := "--values"
			if strings.HasPrefix(key, "policies") {
				flag = "--policies"
			}
			if strings.HasPrefix(key, "crds") {
				flag = "--crds"
			}
			errs = append(errs, fmt.Errorf("%s:%d:%d: %s: %w; name a path inside the repository, relative to its root (a path outside it is %s on the command line)",
				file, v.Line, v.Column, key, err, flag))
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind == yaml3.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		switch k.Value {
		case "policies", "crds":
			if v.Kind == yaml3.SequenceNode {
				for j, item := range v.Content {
					if item.Kind == yaml3.AliasNode && item.Alias != nil {
						item = item.Alias
					}
					check(fmt.Sprintf("%s[%d]", k.Value, j), item)
				}
			}
		case "values":
			if v.Kind == yaml3.ScalarNode {
				check("values", v)
			}
		}
	}
	return errs
}

// unknownKeys walks a YAML node against the JSON field names of t and reports every key
// t does not have, with its line.
func unknownKeys(file string, n *yaml3.Node, t reflect.Type, at string) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml3.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	var errs []error
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml3.MappingNode:
		fields := jsonFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := at + k.Value
			f, ok := fields[k.Value]
			if !ok {
				known := make([]string, 0, len(fields))
				for name := range fields {
					known = append(known, name)
				}
				sort.Strings(known)
				errs = append(errs, fmt.Errorf("%s:%d:%d: unknown key %q; known keys here: %s (see README.md)",
					file, k.Line, k.Column, key, strings.Join(known, ", ")))
				continue
			}
			errs = append(errs, unknownKeys(file, v, f, key+".")...)
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml3.SequenceNode:
		for i, item := range n.Content {
			errs = append(errs, unknownKeys(file, item, t.Elem(), fmt.Sprintf("%s[%d].", strings.TrimSuffix(at, "."), i))...)
		}
	case t.Kind() == reflect.Map && n.Kind == yaml3.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			errs = append(errs, unknownKeys(file, n.Content[i+1], t.Elem(), at+n.Content[i].Value+".")...)
		}
	}
	return errs
}

// jsonFields maps the JSON names of t's exported fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
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
