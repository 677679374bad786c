package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gitgate/gitgate/policy"
	"github.com/spf13/pflag"
)

// gateFlags are the policy flags shared by every command that judges.
type gateFlags struct {
	policyDirs []string
	noBuiltin  bool
	registries []string
	values     string
}

func (f *gateFlags) BindFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.policyDirs, "policies", nil, "policy file or directory (repeatable; default: the built-in bundle plus ROOT/policies/ if present)")
	fs.BoolVar(&f.noBuiltin, "no-builtin", false, "leave the built-in policy bundle out")
	fs.StringSliceVar(&f.registries, "registry", nil, "allowed image registry, e.g. harbor.example.com (repeatable; default: registries: in .gitgate.yaml)")
	fs.StringVar(&f.values, "values", "", "Kyverno values file supplying cluster data (apiCall/configMap results, namespace labels)")
}

// osSource names an OS path as a policy.Source shown as the user typed it.
func osSource(p string) policy.Source {
	abs, err := filepath.Abs(p)
	if err != nil {
		abs = p
	}
	return policy.Source{FS: os.DirFS(filepath.Dir(abs)), Root: filepath.Base(abs), Display: filepath.ToSlash(filepath.Clean(p))}
}

// open builds the gate for a repository root: flags first, then .gitgate.yaml.
// It returns the policy directories it used, so callers can keep them out of the manifests.
func (f *gateFlags) open(root string, stderr io.Writer) (*policy.Gate, []string, error) {
	g, dirs, _, err := f.openWithConfig(root, stderr)
	return g, dirs, err
}

// openWithConfig is open that also returns the .gitgate.yaml it read.
func (f *gateFlags) openWithConfig(root string, stderr io.Writer) (*policy.Gate, []string, *policy.Config, error) {
	cfg := &policy.Config{}
	if st, err := os.Stat(root); err == nil && st.IsDir() {
		c, err := policy.LoadConfig(os.DirFS(root))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", root, err)
		}
		cfg = c
	}
	opts := policy.GateOptions{NoBuiltin: f.noBuiltin || cfg.NoBuiltin, Registries: f.registries, Actions: cfg.Actions}
	if len(opts.Registries) == 0 {
		opts.Registries = cfg.Registries
	}
	dirs := f.policyDirs
	if len(dirs) == 0 {
		for _, d := range cfg.Policies {
			dirs = append(dirs, filepath.Join(root, d))
		}
	}
	if len(dirs) == 0 {
		if st, err := os.Stat(filepath.Join(root, "policies")); err == nil && st.IsDir() {
			dirs = []string{filepath.Join(root, "policies")}
		}
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			return nil, nil, nil, fmt.Errorf("--policies %s: %w", d, err)
		}
		opts.PolicyDirs = append(opts.PolicyDirs, osSource(d))
	}
	valuesFile := f.values
	if valuesFile == "" && cfg.Values != "" {
		valuesFile = filepath.Join(root, cfg.Values)
	}
	if valuesFile != "" {
		v, err := policy.LoadValuesSource(osSource(valuesFile))
		if err != nil {
			return nil, nil, nil, err
		}
		opts.Values = v
	}
	g, err := policy.OpenGate(opts)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, w := range g.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	var shown []string
	for _, s := range opts.PolicyDirs {
		shown = append(shown, s.Display)
	}
	return g, shown, cfg, nil
}

// rebase is the same flags for the base revision checked out at baseDir: policy
// directories and the values file inside the repository root are read from the base.
func (f gateFlags) rebase(root, baseDir string) gateFlags {
	move := func(p string) string {
		r, err := filepath.Rel(root, p)
		if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			return p // outside the repository: the same at base
		}
		return filepath.Join(baseDir, r)
	}
	out := f
	out.policyDirs = nil
	for _, d := range f.policyDirs {
		out.policyDirs = append(out.policyDirs, move(d))
	}
	if f.values != "" {
		out.values = move(f.values)
	}
	return out
}
