// Package render finds the render targets of a GitOps repository (Argo CD Applications
// and ApplicationSets, kustomizations, Helm charts, plain manifest directories, Tekton
// resources) and renders each one, in-process and offline, into policy.Resources that
// carry their origin: the target, the source file and the line of the object in it.
//
// render reads files and never calls a cluster or the network itself: a remote chart
// comes through Repo.Remotes (internal/remote: only what .gitgate.yaml allows, through a
// verified cache); without it, and for remote bases and repositories, a remote source is
// an error naming the URL.
package render

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"

	"github.com/gitgate/gitgate/internal/git"
	"github.com/gitgate/gitgate/internal/remote"
	"github.com/gitgate/gitgate/internal/repopath"
	"github.com/gitgate/gitgate/policy"
)

// Kind is how a target is rendered.
type Kind string

const (
	// Kustomize targets are built with kustomize's krusty.
	Kustomize Kind = "kustomize"
	// Helm targets are templated with Helm's engine.
	Helm Kind = "helm"
	// Directory targets are plain manifests (Argo CD's directory source type).
	Directory Kind = "directory"
	// Tekton targets are Tekton Tasks and Pipelines, checked as they are.
	Tekton Kind = "tekton"
	// Plugin targets are Argo CD config management plugin sources: listed, counted and
	// never rendered (a check executes nothing).
	Plugin Kind = "plugin"
)

// Target is one thing to render: a kustomization, a chart with one set of values, a
// directory of manifests, or an Argo CD Application's source.
type Target struct {
	// Name is stable across runs: order-service/production, charts/api (values-prod.yaml).
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Path is the source directory (or file), slash-separated, relative to the repo root.
	Path string `json:"path"`
	// DefinedIn is the Application or ApplicationSet file that produced the target, if any.
	DefinedIn string `json:"definedIn,omitempty"`
	// DeployedBy are the Argo CD Applications that deploy this source (several when they
	// render it alike: it is rendered once).
	DeployedBy []string `json:"deployedBy,omitempty"`
	// Namespace is the destination namespace objects without one are placed in.
	Namespace string `json:"namespace,omitempty"`
	// Destination is the Argo CD Application's spec.destination cluster (sync and report
	// apply the target there); zero for the local cluster (in-cluster,
	// https://kubernetes.default.svc) and a target no Application deploys. Not part of the
	// JSON listing; two Applications deploying one source to different clusters are two
	// targets (sourceKey).
	Destination Destination `json:"-"`

	// Helm: release name, value files (repo-relative), inline values, --set parameters.
	ReleaseName string            `json:"releaseName,omitempty"`
	ValueFiles  []string          `json:"valueFiles,omitempty"`
	Values      map[string]any    `json:"values,omitempty"`
	Parameters  map[string]string `json:"parameters,omitempty"`

	// Kustomize: what an Argo CD Application overrides.
	Images       []string          `json:"images,omitempty"`
	NamePrefix   string            `json:"namePrefix,omitempty"`
	NameSuffix   string            `json:"nameSuffix,omitempty"`
	CommonLabels map[string]string `json:"commonLabels,omitempty"`

	// Directory: Argo CD's directory options.
	Recurse bool   `json:"recurse,omitempty"`
	Include string `json:"include,omitempty"`
	Exclude string `json:"exclude,omitempty"`
	// Jsonnet, when set, renders the directory's .jsonnet files as Argo CD's directory
	// source does, with these libs, extVars and TLAs (empty for a source without
	// directory.jsonnet). Nil for a directory found by discovery: no Application says how
	// its jsonnet is evaluated, so it is not (Discover says so in a notice).
	Jsonnet *JsonnetOptions `json:"jsonnet,omitempty"`

	// Chart, for a Helm target, is a chart from a Helm repository or an OCI registry
	// (an Argo CD source with chart:) instead of a directory of this repository: Path is
	// empty and ValueFiles are this repository's files (multi-source $ref values).
	Chart *RemoteChart `json:"chart,omitempty"`
	// Repo, for an Argo CD source in another Git repository, is that repository: Path
	// is in it, and ValueFiles are still this repository's files (multi-source $ref).
	Repo *RemoteRepo `json:"repo,omitempty"`
	// Refs, for a Helm source of a multi-source Application, are its ref: sources in
	// another Git repository, by name ("$values"): a ValueFiles entry "$values/env/a.yaml"
	// is env/a.yaml of that repository at its revision, read through Repo.Remotes.
	Refs map[string]RemoteRepo `json:"refs,omitempty"`
}

// Destination is an Argo CD Application's spec.destination server and name.
type Destination struct {
	Server string
	Name   string
}

// LocalServer and LocalName are how Argo CD names the cluster it runs in.
const (
	LocalServer = "https://kubernetes.default.svc"
	LocalName   = "in-cluster"
)

// Local reports whether the destination is the cluster gitgate runs against: empty,
// Argo CD's in-cluster name or its in-cluster server.
func (d Destination) Local() bool {
	if d.Server != "" {
		return strings.TrimSuffix(d.Server, "/") == LocalServer
	}
	return d.Name == "" || d.Name == LocalName
}

func (d Destination) String() string {
	switch {
	case d.Server != "" && d.Name != "":
		return fmt.Sprintf("server %s (name %s)", d.Server, d.Name)
	case d.Server != "":
		return "server " + d.Server
	case d.Name != "":
		return "name " + d.Name
	}
	return LocalName
}

// refFile splits a ValueFiles entry naming a file of a ref: source in another
// repository into that source and the file's path in it.
func (t Target) refFile(vf string) (RemoteRepo, string, bool) {
	name, rest, ok := strings.Cut(vf, "/")
	if !ok || !strings.HasPrefix(name, "$") {
		return RemoteRepo{}, "", false
	}
	rr, ok := t.Refs[name]
	return rr, rest, ok
}

// RemoteRepo is another Git repository an Argo CD source renders from.
type RemoteRepo struct {
	// URL and Revision are the source's repoURL and targetRevision (a branch, a tag or a
	// commit; empty: the default branch).
	URL      string `json:"url"`
	Revision string `json:"revision,omitempty"`
	// ValueFiles are Helm values files of that repository (helm.valueFiles without
	// $ref), applied before the target's own ValueFiles; a missing one is skipped when
	// IgnoreMissingValueFiles is set.
	ValueFiles              []string `json:"valueFiles,omitempty"`
	IgnoreMissingValueFiles bool     `json:"ignoreMissingValueFiles,omitempty"`
}

// RemoteChart is a chart an Argo CD source takes from outside the repository.
type RemoteChart struct {
	// Repo, Name and Version are the source's repoURL, chart and targetRevision (an
	// exact version or a semver constraint).
	Repo    string `json:"repo"`
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	// ValueFiles are files inside the chart (helm.valueFiles without $ref), applied
	// before the target's own ValueFiles; a missing one is skipped when
	// IgnoreMissingValueFiles is set.
	ValueFiles              []string `json:"valueFiles,omitempty"`
	IgnoreMissingValueFiles bool     `json:"ignoreMissingValueFiles,omitempty"`
}

func (c *RemoteChart) ref() remote.ChartRef {
	return remote.ChartRef{Repo: c.Repo, Name: c.Name, Version: c.Version}
}

// Remotes fetches what renders need from outside the repository: internal/remote's
// Fetcher, which allows only .gitgate.yaml's remotes.allow, through its verified cache.
type Remotes interface {
	// Chart resolves and fetches a chart (a *remote.RefusedError or
	// *remote.OfflineError when it may not or cannot be).
	Chart(ctx context.Context, ref remote.ChartRef) (*remote.Chart, error)
	// Git fetches a repository at a revision (a branch, a tag, a commit; empty: the
	// default branch) into a read-only tree.
	Git(ctx context.Context, url, ref string) (*remote.GitTree, error)
	// File fetches one file by https (a kustomize resource or generator file URL).
	File(ctx context.Context, url string) ([]byte, error)
	// Check refuses a URL that may not be fetched, without connecting.
	Check(url string) error
}

// Source is where the target renders from, for people: its path, a remote chart
// (repo chart@version) or a path in another repository (url@revision//path).
func (t Target) Source() string {
	switch {
	case t.Chart != nil:
		return t.Chart.ref().String()
	case t.Repo != nil:
		return git.Redact(t.Repo.URL) + "@" + cmp.Or(t.Repo.Revision, "HEAD") + "//" + t.Path
	}
	return t.Path
}

// String is the target's name and kind, for messages.
func (t Target) String() string { return fmt.Sprintf("%s (%s %s)", t.Name, t.Kind, t.Source()) }

// DefaultMaxObjects is the number of objects one target may render unless raised.
const DefaultMaxObjects = 20000

// Repo is a repository checkout to discover and render.
type Repo struct {
	// FS is the repository root.
	FS fs.FS
	// Dir is the repository root on disk (kustomize and Helm read files themselves);
	// every path they read is confined to it.
	Dir string
	// Clusters are the clusters known to the ApplicationSet clusters generator
	// (from .gitgate.yaml); with none, that generator is skipped with a notice.
	Clusters []policy.ClusterConfig
	// MaxFileSize refuses larger files, when rendering and when discovering (0: no limit).
	MaxFileSize int64
	// Helm bounds each chart's template execution (zero: the defaults).
	Helm HelmLimits
	// JsonnetMaxMemory bounds the heap (objects not yet collected included) of the
	// evaluation of one .jsonnet file (0: DefaultJsonnetMaxMemory); time and output are
	// bounded by Helm's limits, the budget of any target.
	JsonnetMaxMemory int64
	// MaxObjects refuses a target that renders more objects (0: no limit; the CLI
	// defaults to DefaultMaxObjects).
	MaxObjects int
	// KubeVersion and APIVersions are Helm's .Capabilities.
	KubeVersion string
	APIVersions []string
	// Trace, when set, is called with the repo-relative path of every file a render
	// reads (from several goroutines when targets render in parallel).
	Trace func(file string)
	// Remotes fetches remote charts; nil refuses every remote source (*RemoteError).
	Remotes Remotes
	// here, when a target renders from another Git repository (Dir is its tree), is
	// the repository its Application is in: the one its $ref values files are read from.
	here *Repo
	// stage, for a revision with no checkout, writes what each target reads to a
	// directory before it renders (Compare sets it).
	stage *stage
}

// confined is the repository with FS the confined view of Dir (repopath.FS): a name
// that resolves outside the repository, through a symbolic link or otherwise, is an
// *repopath.EscapeError instead of a read. Every entry point of the package calls it,
// so discovery (the ApplicationSet git generators included) and plain manifest
// directories read through it whatever FS the caller passed. Without Dir (a revision
// with no checkout) FS is kept: it is not the disk.
func (r Repo) confined() Repo {
	if r.Dir == "" {
		return r
	}
	// A confined FS, or one reading through it (PlanWithMemo's recorder).
	if f, ok := r.FS.(interface{ Root() *repopath.Root }); ok && f.Root() != nil {
		return r
	}
	r.FS = repopath.DirFS(r.Dir)
	return r
}

func (r Repo) trace(file string) {
	if r.Trace != nil {
		r.Trace(file)
	}
}

// SortTargets orders targets by name, then kind and path.
func SortTargets(ts []Target) {
	sort.Slice(ts, func(i, j int) bool {
		a, b := ts[i], ts[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Path < b.Path
	})
}

// RemoteError is a source outside the repository that is not fetched: a chart whose
// host remotes.allow does not name (Allow is the entry to add), or a kind of remote
// source gitgate does not fetch.
type RemoteError struct {
	URL   string
	Allow string
}

func (e *RemoteError) Error() string {
	if e.Allow != "" {
		return fmt.Sprintf("%s: not fetched: remotes.allow in .gitgate.yaml does not name it; add %q there to fetch it through the verified cache, or vendor it into the repository", e.URL, e.Allow)
	}
	return fmt.Sprintf("%s: not fetched: gitgate does not fetch this kind of remote source; vendor it into the repository", e.URL)
}

// isRemote reports whether a kustomize resource, chart, values file or repo reference
// is a URL or a remote Git repository, as kustomize and Helm would read it: any
// scheme:// (http, https, ssh, file, oci, ... in any case: kustomize fetches http(s)
// itself and clones git URLs, file:// included, with the git binary), git:: and gh:,
// SCP-style user@host:path or user@host/path, the github.com, gitlab.com and
// bitbucket.org short forms (github.com:org/repo too), and ?ref=, .git// or _git/ in
// the path.
func isRemote(ref string) bool {
	s := strings.TrimSpace(ref)
	if urlScheme.MatchString(s) || scpStyle.MatchString(s) {
		return true
	}
	l := strings.ToLower(s)
	for _, p := range []string{"git::", "gh:", "github.com/", "github.com:", "gitlab.com/", "bitbucket.org/"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return strings.Contains(l, "?ref=") || strings.Contains(l, "?version=") || strings.Contains(l, ".git//") || strings.Contains(l, "_git/")
}

var (
	urlScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)
	scpStyle  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*@[^/:\s]+[:/]`)
)
