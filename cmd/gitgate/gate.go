package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
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

// settings are one repository's effective settings: its .gitgate.yaml with the command
// line on top. Every command that reads a repository (check, check --base at base and
// at head, targets, render, sync, report, run's gate) takes them from loadSettings, and
// serve's sources apply the same policy.Config.GateOptions, so no two commands read the
// same repository differently.
type settings struct {
	// root is the repository directory as the user gave it (or a file, in plain mode).
	root string
	// cfg is .gitgate.yaml (empty when there is none or root is not a directory).
	cfg   *policy.Config
	flags gateFlags
	// policyDirs are the policy files and directories, as OS paths shown from where the
	// user stands: --policies, else .gitgate.yaml's policies:, else ROOT/policies/.
	policyDirs []string
	// maxFileSize bounds every file read (--max-file-size).
	maxFileSize int64
}

// loadSettings reads root's .gitgate.yaml (when root is a directory) under the flags.
func loadSettings(root string, flags gateFlags, maxFileSize int64) (*settings, error) {
	if maxFileSize <= 0 {
		maxFileSize = policy.DefaultMaxFileSize
	}
	s := &settings{root: root, cfg: &policy.Config{}, flags: flags, maxFileSize: maxFileSize}
	var fsys = os.DirFS(root)
	if st, err := os.Stat(root); err == nil && st.IsDir() {
		c, err := policy.LoadConfig(fsys)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", root, err)
		}
		s.cfg = c
	} else {
		fsys = nil
	}
	s.policyDirs = flags.policyDirs
	if len(s.policyDirs) == 0 {
		for _, d := range s.cfg.PolicyDirs(fsys) {
			s.policyDirs = append(s.policyDirs, filepath.Join(root, filepath.FromSlash(d)))
		}
	}
	return s, nil
}

// gateOptions loads the policy directories and the values file into the gate's options.
func (s *settings) gateOptions() (policy.GateOptions, error) {
	opts := s.cfg.GateOptions(policy.GateOptions{NoBuiltin: s.flags.noBuiltin, Registries: s.flags.registries})
	for _, d := range s.policyDirs {
		if _, err := os.Stat(d); err != nil {
			return opts, fmt.Errorf("--policies %s: %w", d, err)
		}
		opts.PolicyDirs = append(opts.PolicyDirs, osSource(d))
	}
	valuesFile := s.flags.values
	if valuesFile == "" && s.cfg.Values != "" {
		valuesFile = filepath.Join(s.root, filepath.FromSlash(s.cfg.Values))
	}
	if valuesFile != "" {
		v, err := policy.LoadValuesSource(osSource(valuesFile))
		if err != nil {
			return opts, err
		}
		opts.Values = v
	}
	return opts, nil
}

// registries are the allowed registries in effect: the flags', else .gitgate.yaml's.
func (s *settings) registries() []string {
	return s.cfg.GateOptions(policy.GateOptions{NoBuiltin: s.flags.noBuiltin, Registries: s.flags.registries}).Registries
}

// openGate compiles the gate; its loading warnings go to stderr once, here.
func (s *settings) openGate(stderr io.Writer) (*policy.Gate, error) {
	opts, err := s.gateOptions()
	if err != nil {
		return nil, err
	}
	g, err := policy.OpenGate(opts)
	if err != nil {
		return nil, err
	}
	for _, w := range g.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	return g, nil
}

// shownPolicyDirs are the policy directories as shown (slash-separated), for keeping them
// out of plain-mode checks.
func (s *settings) shownPolicyDirs() []string {
	out := make([]string, 0, len(s.policyDirs))
	for _, d := range s.policyDirs {
		out = append(out, filepath.ToSlash(filepath.Clean(d)))
	}
	return out
}

// discover is the one rule from settings to discovery options: the policy directories
// inside the repository are not manifests; targets:, environments: and repoURLs: of
// .gitgate.yaml; the file size bound.
func (s *settings) discover() render.DiscoverOptions {
	return render.DiscoverOptions{
		Exclude:      repoRelative(filepath.ToSlash(filepath.Clean(s.root)), s.shownPolicyDirs()),
		RepoURLs:     s.cfg.RepoURLs,
		Environments: s.cfg.Environments,
		Include:      s.cfg.TargetIncluded,
	}
}

// repo is the repository at dir (root's absolute path, or another checkout of it: the
// merge base, a workspace before a task) with the rendering settings of .gitgate.yaml.
func (s *settings) repo(dir string) render.Repo {
	repo := render.Repo{Dir: dir, KubeVersion: s.cfg.KubeVersion, APIVersions: s.cfg.APIVersions, MaxFileSize: s.maxFileSize}
	if dir != "" {
		repo.FS = os.DirFS(dir)
	}
	repo.Clusters = s.cfg.Clusters
	return repo
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

// repoRelative keeps the paths (as shown) that lie inside the repository shown as
// display, relative to it.
func repoRelative(display string, paths []string) []string {
	var out []string
	for _, d := range paths {
		if r, err := filepath.Rel(display, d); err == nil && !strings.HasPrefix(r, "..") {
			out = append(out, filepath.ToSlash(r))
		}
	}
	return out
}
