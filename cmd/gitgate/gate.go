package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/gitgate/gitgate/internal/git"
	"github.com/gitgate/gitgate/internal/kustomization"
	"github.com/gitgate/gitgate/internal/remote"
	"github.com/gitgate/gitgate/internal/repopath"
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
	limits     limitFlags
	remote     remoteFlags
	// kubeVersion is the Kubernetes version manifests are judged and rendered for.
	kubeVersion string
	// crds are CRD files or directories (--crds) custom resources are validated against.
	crds []string
}

// remoteFlags say how remote sources (remotes.allow in .gitgate.yaml) are fetched.
type remoteFlags struct {
	offline  bool
	cacheDir string
	// sshKey and knownHosts are --ssh-key and --known-hosts: for remote sources over
	// ssh, and for sync and report also their own repository (one flag each).
	sshKey, knownHosts string
}

// limitFlags bound the work of rendering; each wins over .gitgate.yaml's limits:.
type limitFlags struct {
	helmTimeout   time.Duration
	helmMaxOutput int64
	maxObjects    int
}

func (f *gateFlags) BindFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.policyDirs, "policies", nil, "policy file or directory (repeatable; default: the built-in bundle plus ROOT/policies/ if present)")
	fs.BoolVar(&f.noBuiltin, "no-builtin", false, "leave the built-in policy bundle out")
	fs.StringSliceVar(&f.registries, "registry", nil, "allowed image registry, e.g. harbor.example.com (repeatable; default: registries: in .gitgate.yaml)")
	fs.StringVar(&f.values, "values", "", "Kyverno values file supplying cluster data (apiCall/configMap results, namespace labels)")
	fs.DurationVar(&f.limits.helmTimeout, "helm-timeout", 0, fmt.Sprintf("wall time one Helm chart's templates may run (default limits.helmTimeout in .gitgate.yaml, else %s)", render.DefaultHelmTimeout))
	fs.Int64Var(&f.limits.helmMaxOutput, "helm-max-output", 0, fmt.Sprintf("bytes one Helm chart's templates may produce, include and tpl counted (default limits.helmMaxOutput, else %d)", render.DefaultHelmMaxOutput))
	fs.IntVar(&f.limits.maxObjects, "max-objects", 0, fmt.Sprintf("objects one target may render (default limits.maxObjects, else %d)", render.DefaultMaxObjects))
	fs.StringVar(&f.kubeVersion, "kube-version", "", "Kubernetes version the cluster runs, e.g. 1.31: apiVersions it no longer serves block, deprecated ones warn; also Helm's .Capabilities.KubeVersion (default kubeVersion in .gitgate.yaml, else "+policy.DefaultKubeVersion+")")
	f.remote.bind(fs, true)
	fs.StringArrayVar(&f.crds, "crds", nil, "CustomResourceDefinition file or directory: custom resources of its kinds are validated as the API server would (repeatable; added to crds: in .gitgate.yaml)")
}

func (f *remoteFlags) bind(fs *pflag.FlagSet, offline bool) {
	if offline {
		fs.BoolVar(&f.offline, "offline", false, "never connect: remote charts and repositories come from the cache only (fill it with 'gitgate fetch')")
	}
	fs.StringVar(&f.cacheDir, "cache-dir", "", "cache of remote sources (default $XDG_CACHE_HOME/gitgate, ~/.cache/gitgate)")
	fs.StringVar(&f.sshKey, "ssh-key", "", "private key for the ssh Git URLs this command fetches (passphrase: $"+git.SSHKeyPassphraseEnv+"; default: the ssh agent's keys)")
	fs.StringVar(&f.knownHosts, "known-hosts", "", "known_hosts that ssh servers' keys are checked against (default: $SSH_KNOWN_HOSTS, ~/.ssh/known_hosts)")
}

// osSource names an OS path the user typed as a policy.Source shown as typed. The path
// itself is the user's (its own symbolic links are followed); what lies below it is
// read through a filesystem confined to the repository holding it (the Git work tree
// around it, else its parent directory), so a symbolic link in a checked-out tree that
// leads out of it is refused, not read.
func osSource(p string) policy.Source {
	abs, err := filepath.Abs(p)
	if err != nil {
		abs = p
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	top := workTree(abs)
	rel, err := filepath.Rel(top, abs)
	if err != nil {
		top, rel = filepath.Dir(abs), filepath.Base(abs)
	}
	return policy.Source{FS: repopath.DirFS(top), Root: filepath.ToSlash(rel), Display: filepath.ToSlash(filepath.Clean(p))}
}

// workTree is the Git work tree holding the absolute path p (p itself or the nearest
// directory above it with a .git), else p's parent directory.
func workTree(p string) string {
	if d := nearestWith(p, ".git"); d != "" {
		return d
	}
	// Not in a Git work tree: the working directory when the path is under it (where
	// the user stands is the repository), else a directory is its own root and a file
	// is confined to its directory.
	if wd, err := os.Getwd(); err == nil {
		if real, err := filepath.EvalSymlinks(wd); err == nil {
			wd = real
		}
		if _, ok := repopath.Under(wd, p); ok {
			return wd
		}
	}
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		return p
	}
	return existingDir(filepath.Dir(p))
}

// nearestWith is the absolute path p or the nearest directory above it holding one of
// names (each directory tried for all names before its parent), else "".
func nearestWith(p string, names ...string) string {
	for d := p; ; d = filepath.Dir(d) {
		for _, n := range names {
			if _, err := os.Lstat(filepath.Join(d, n)); err == nil {
				return d
			}
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// existingDir is p, or its nearest ancestor that exists: a path that does not exist is
// then "no such file" inside it, not an unopenable root.
func existingDir(p string) string {
	for {
		if st, err := os.Stat(p); (err == nil && st.IsDir()) || filepath.Dir(p) == p {
			return p
		}
		p = filepath.Dir(p)
	}
}

// repoSource is a path .gitgate.yaml names (repo-relative, checked by policy.ParseConfig
// to stay inside by name) as a policy.Source read through the repository's confined
// filesystem: a symbolic link on it or below it that leads out of the repository is
// refused, not read.
func repoSource(root, rel string) policy.Source {
	rel = path.Clean(filepath.ToSlash(rel))
	return policy.Source{FS: repopath.DirFS(root), Root: rel, Display: filepath.ToSlash(filepath.Join(root, filepath.FromSlash(rel)))}
}

// settings are one repository's effective settings: its .gitgate.yaml with the command
// line on top. Every command that reads a repository (check, check --base at base and
// at head, targets, render, sync, report, run's gate) takes them from loadSettings, and
// serve's sources apply the same policy.Config.GateOptions, so no two commands read the
// same repository differently.
type settings struct {
	// root is the repository directory as the user gave it (or a file, in plain mode).
	root string
	// under limits a repository check to the targets in this repo-relative directory
	// (check DIR for a DIR inside the repository).
	under string
	// partial opens the gate with the policies that load (check reports the others
	// and still runs every other policy); elsewhere a bad policy stops the command.
	partial bool
	// cfg is .gitgate.yaml (empty when there is none or root is not a directory).
	cfg   *policy.Config
	flags gateFlags
	// policyDirs are the policy files and directories, as OS paths shown from where the
	// user stands: --policies, else .gitgate.yaml's policies:, else ROOT/policies/.
	policyDirs []string
	// maxFileSize bounds every file read (--max-file-size).
	maxFileSize int64
	// repoPolicies: policyDirs come from the repository (.gitgate.yaml policies: or
	// ROOT/policies/), so they are read confined to it.
	repoPolicies bool
	// remotes fetches what remotes.allow names (nil: nothing is allowed).
	remotes *remote.Fetcher
	// kube is the Kubernetes version: --kube-version, else kubeVersion in .gitgate.yaml
	// (cfg.KubeVersion holds the one in force), else policy.DefaultKubeVersion.
	kube policy.KubeVersion
	// crds are the CRDs of crds: in .gitgate.yaml and --crds (see loadCRDs).
	crds *policy.CRDSet
}

// checkOptions are the options every gate of a command checks with.
func (s *settings) checkOptions() policy.CheckOptions {
	opts := policy.DefaultCheckOptions()
	opts.MaxFileSize = s.maxFileSize
	opts.KubeVersion = s.kube
	opts.CRDs = s.crds
	return opts
}

// loadSettings reads root's .gitgate.yaml (when root is a directory) under the flags.
// findRepoRoot is the repository a directory belongs to: the nearest directory at or
// above it holding .gitgate.yaml, else .git; with neither (an archive, a zip download),
// when dir is a kustomization naming what is above it (../base), the working directory
// if dir is inside it, with a notice saying so; else dir itself.
// sub is dir relative to the root (slash-separated, "" when dir is the root).
func findRepoRoot(dir string) (root, sub, notice string) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return dir, "", ""
	}
	found := nearestWith(abs, policy.ConfigFile, ".git")
	if found == "" && !filepath.IsAbs(dir) && reachesOut(abs) {
		if wd, err := os.Getwd(); err == nil {
			if rel, err := filepath.Rel(wd, abs); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
				return ".", filepath.ToSlash(rel), fmt.Sprintf("no .git or %s at or above %s: the working directory is taken as the repository root (run from the root, or add %s there)", policy.ConfigFile, dir, policy.ConfigFile)
			}
		}
	}
	if found == "" || found == abs {
		return dir, "", ""
	}
	rel, err := filepath.Rel(found, abs)
	if err != nil {
		return dir, "", ""
	}
	root = found
	if !filepath.IsAbs(dir) { // shown as the user would reach it from where they stand
		if wd, err := os.Getwd(); err == nil {
			if r, err := filepath.Rel(wd, found); err == nil {
				root = r
			}
		}
	}
	return root, filepath.ToSlash(rel), ""
}

// reachesOut reports whether dir's kustomization names something above dir (../base):
// dir is then part of a larger repository, not one of its own.
func reachesOut(dir string) bool {
	_, data := kustomization.Find(os.DirFS(dir), ".")
	for _, r := range kustomization.Refs(data) {
		if r == ".." || strings.HasPrefix(filepath.ToSlash(r), "../") {
			return true
		}
	}
	return false
}

func loadSettings(root string, flags gateFlags, maxFileSize int64) (*settings, error) {
	if maxFileSize <= 0 {
		maxFileSize = policy.DefaultMaxFileSize
	}
	s := &settings{root: root, cfg: &policy.Config{}, flags: flags, maxFileSize: maxFileSize}
	var fsys fs.FS = repopath.DirFS(root) // .gitgate.yaml and policies/ read confined to the repository
	if st, err := os.Stat(root); err == nil && st.IsDir() {
		c, err := policy.LoadConfig(fsys)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", root, err)
		}
		s.cfg = c
	} else {
		fsys = nil
	}
	if flags.kubeVersion != "" {
		s.cfg.KubeVersion = flags.kubeVersion
	}
	kube, err := policy.ParseKubeVersion(s.cfg.KubeVersion)
	if err != nil {
		where := "--kube-version"
		if flags.kubeVersion == "" {
			where = policy.ConfigFile + " kubeVersion"
		}
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	s.kube = kube
	s.policyDirs = flags.policyDirs
	if len(s.policyDirs) == 0 {
		for _, d := range s.cfg.PolicyDirs(fsys) {
			s.policyDirs = append(s.policyDirs, filepath.Join(root, filepath.FromSlash(d)))
			s.repoPolicies = true
		}
	}
	if err := s.openRemotes(); err != nil {
		return nil, fmt.Errorf("%s: %w", root, err)
	}
	if err := s.loadCRDs(fsys != nil); err != nil {
		return nil, err
	}
	return s, nil
}

// loadCRDs reads the CRDs of crds: in .gitgate.yaml (confined to the repository, like
// its policies) and of --crds (the user's paths) into s.crds. Every file or CRD that
// cannot be taken is an error naming its file:line.
func (s *settings) loadCRDs(repoDir bool) error {
	s.crds = policy.NewCRDSet()
	var srcs []policy.Source
	var from []string
	if repoDir {
		for _, rel := range s.cfg.CRDs {
			srcs = append(srcs, repoSource(s.root, rel))
			from = append(from, policy.ConfigFile+" crds:")
		}
	}
	for _, p := range s.flags.crds {
		srcs = append(srcs, osSource(p))
		from = append(from, "--crds")
	}
	var errs []error
	for i, src := range srcs {
		if _, err := fs.Stat(src.FS, src.Root); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", from[i], src.Display, unwrapPathErr(err)))
			continue
		}
		src.MaxFileSize = s.maxFileSize
		if err := s.crds.LoadCRDs(src); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// gateOptions loads the policy directories and the values file into the gate's options.
func (s *settings) gateOptions() (policy.GateOptions, error) {
	opts := s.cfg.GateOptions(policy.GateOptions{NoBuiltin: s.flags.noBuiltin, Registries: s.flags.registries})
	for _, d := range s.policyDirs {
		src, flag := osSource(d), "--policies"
		if s.repoPolicies {
			src, flag = s.repoSource(d), policy.ConfigFile+" policies:"
			if s.cfg == nil || len(s.cfg.Policies) == 0 {
				flag = "the default policy directory"
			}
		}
		if _, err := fs.Stat(src.FS, src.Root); err != nil {
			return opts, fmt.Errorf("%s %s: %w", flag, d, unwrapPathErr(err))
		}
		src.MaxFileSize = s.maxFileSize
		opts.PolicyDirs = append(opts.PolicyDirs, src)
	}
	var values policy.Source
	switch {
	case s.flags.values != "":
		values = osSource(s.flags.values)
	case s.cfg.Values != "":
		values = repoSource(s.root, s.cfg.Values)
	}
	if values.FS != nil {
		values.MaxFileSize = s.maxFileSize
		v, err := policy.LoadValuesSource(values)
		if err != nil {
			return opts, err
		}
		opts.Values = v
	}
	return opts, nil
}

// repoSource is a policy directory of the repository (an OS path under root) read
// confined to the repository.
func (s *settings) repoSource(d string) policy.Source {
	rel, err := filepath.Rel(s.root, d)
	if err != nil {
		rel = d
	}
	src := repoSource(s.root, filepath.ToSlash(rel))
	src.Display = filepath.ToSlash(filepath.Clean(d))
	return src
}

// unwrapPathErr drops an *fs.PathError's operation and path when the message names the
// path already.
func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
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
	opts.Partial = s.partial
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
		Under:        s.under,
	}
}

// repo is the repository at dir (root's absolute path, or another checkout of it: the
// merge base, a workspace before a task) with the rendering settings of .gitgate.yaml.
func (s *settings) repo(dir string) render.Repo {
	repo := render.Repo{Dir: dir, KubeVersion: s.cfg.KubeVersion, APIVersions: s.cfg.APIVersions, MaxFileSize: s.maxFileSize}
	// Limits: the flag, else .gitgate.yaml's limits:, else the default.
	lim := s.cfg.Limits
	repo.Helm = render.HelmLimits{Timeout: cmp.Or(s.flags.limits.helmTimeout, lim.HelmTimeoutDuration()), MaxOutput: cmp.Or(s.flags.limits.helmMaxOutput, lim.HelmMaxOutput)}
	repo.MaxObjects = cmp.Or(s.flags.limits.maxObjects, lim.MaxObjects, render.DefaultMaxObjects)
	if dir != "" {
		repo.FS = os.DirFS(dir)
	}
	repo.Clusters = s.cfg.Clusters
	if s.remotes != nil {
		repo.Remotes = s.remotes
	}
	return repo
}

// openRemotes makes the fetcher of remotes.allow (none when it is empty).
func (s *settings) openRemotes() error {
	if len(s.cfg.Remotes.Allow) == 0 {
		return nil
	}
	f, err := remote.New(remote.Settings{Allow: s.cfg.Remotes.Allow, CacheDir: s.flags.remote.cacheDir, Offline: s.flags.remote.offline,
		SSHKeyFile: s.flags.remote.sshKey, KnownHostsFile: s.flags.remote.knownHosts})
	if err != nil {
		return err
	}
	s.remotes = f
	return nil
}

// rebase is the same flags for the base revision checked out at baseDir: policy
// directories and the values file inside the repository root are read from the base.
func (f gateFlags) rebase(root, baseDir string) gateFlags {
	move := func(p string) string {
		r, ok := repopath.Under(root, p)
		if !ok {
			return p // outside the repository: the same at base
		}
		return filepath.Join(baseDir, filepath.FromSlash(r))
	}
	out := f
	out.policyDirs = nil
	for _, d := range f.policyDirs {
		out.policyDirs = append(out.policyDirs, move(d))
	}
	if f.values != "" {
		out.values = move(f.values)
	}
	out.crds = nil
	for _, c := range f.crds {
		out.crds = append(out.crds, move(c))
	}
	return out
}

// repoRelative keeps the paths (as shown) that lie inside the repository shown as
// display, relative to it.
func repoRelative(display string, paths []string) []string {
	var out []string
	for _, d := range paths {
		if r, ok := repopath.Under(display, d); ok {
			out = append(out, r)
		}
	}
	return out
}
