package policy

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gitgate/gitgate/internal/kustomization"
	"github.com/gitgate/gitgate/internal/pool"
)

// DefaultMaxFileSize is the largest manifest file read unless raised.
const DefaultMaxFileSize = 16 << 20

// CheckOptions configure a check. Start from DefaultCheckOptions.
type CheckOptions struct {
	// Workers evaluate files in parallel; default: all cores.
	Workers int
	// MaxFileSize refuses larger files with an error naming the limit.
	MaxFileSize int64
	// Schema strictly decodes built-in kinds against their k8s.io/api types, and judges
	// their apiVersion for KubeVersion (zero: DefaultKubeVersion).
	Schema      bool
	KubeVersion KubeVersion
	// NoMutate judges resources as written; by default the set's mutate rules are
	// applied first, in Kyverno's order, as the cluster's admission chain would (the
	// mutated object is what the schema check and validation see; findings still point
	// at the source).
	NoMutate bool
	// generated: the resources being checked are ones generate rules created (they are
	// not run again on them).
	generated bool
	// CRDs, when set, validates custom resources whose CRD it knows (or BundledCRD
	// supplies) as the API server would; the others stay not schema-checked.
	CRDs *CRDSet
	// KeepPasses keeps pass and skip results in the report; otherwise only counted.
	KeepPasses bool
	// Request is the admission request every resource is evaluated as.
	Request Request
	// Exclude lists paths (as shown, slash-separated) that are not manifests, such as
	// the policy directories.
	Exclude []string
	// Progress, when set, is called as files complete.
	Progress func(done, total int)
}

// DefaultCheckOptions uses every core, a 16 MiB file limit and the schema check.
func DefaultCheckOptions() CheckOptions {
	return CheckOptions{Workers: runtime.GOMAXPROCS(0), MaxFileSize: DefaultMaxFileSize, Schema: true}
}

// Source is a tree of manifests: Root inside FS, shown to the user as Display
// (Display/relative/path). Root may name a single file.
type Source struct {
	FS      fs.FS
	Root    string
	Display string
	// MaxFileSize bounds each file read from the source where no other limit applies
	// (policies, values files; 0: DefaultMaxFileSize).
	MaxFileSize int64
}

// Duplicate is one identity defined more than once.
type Duplicate struct {
	Resource string   `json:"resource"`
	Origins  []Origin `json:"origins"`
}

// Summary counts a report.
type Summary struct {
	// Targets counts render targets in repository mode (0 for plain manifests).
	Targets   int `json:"targets,omitempty"`
	Files     int `json:"files"`
	Resources int `json:"resources"`
	Policies  int `json:"policies"`
	Pass      int `json:"pass"`
	Fail      int `json:"fail"`
	Warn      int `json:"warn"`
	Error     int `json:"error"`
	Skip      int `json:"skip"`
	// Blocking counts failures and errors of Enforce rules.
	Blocking int `json:"blocking"`
}

// Report is the outcome of a check.
type Report struct {
	Summary Summary
	// Results are sorted by file, position, resource, policy and rule.
	Results []Result
	// Errors are inputs that could not be checked (*InputError).
	Errors []error
	// Duplicates are identities defined more than once, with every origin.
	Duplicates []Duplicate
	// Unchecked counts resources by apiVersion/kind that have no known schema.
	Unchecked map[string]int
	// Notices are things the user should know that are not findings.
	Notices []string
	// Changes is set in merge-request mode (check --base): the affected targets, their
	// diffs and the fixed findings; Results then carry their Baseline.
	Changes *Changes
	// Targets are the render targets of a repository check, each with what it rendered
	// or why it did not, sorted by name (none for plain manifests).
	Targets []TargetStatus
	// Shard identifies one shard of a sharded repository check (check --shard I/N),
	// so that only the shards of one check are joined (merge-reports); nil otherwise.
	Shard *ShardInfo
}

// ShardInfo is which part of which check a shard's report is.
type ShardInfo struct {
	// Index is the shard, 1..Total.
	Index int `json:"index"`
	Total int `json:"total"`
	// Commit is the Git commit checked (HEAD; "" outside a Git repository); Dirty: the
	// working tree differed from it, Changes digests how (the changed paths and their
	// content), so shards of one dirty tree can be told from shards of two.
	Commit  string `json:"commit"`
	Dirty   bool   `json:"dirty,omitempty"`
	Changes string `json:"changes,omitempty"`
	// Plan digests gitgate's version, .gitgate.yaml and every planned target, listed by
	// name in Planned (the whole check's, every shard's the same).
	Plan    string   `json:"plan"`
	Planned []string `json:"planned"`
	// Assignment digests the plan and every target's shard; AssignedBy is "hash" or
	// "recorded cost" (the verdict cache's).
	Assignment string `json:"assignment"`
	AssignedBy string `json:"assignedBy"`
	// Targets is how many of the plan's targets are this shard's.
	Targets int `json:"targets"`
}

// TargetStatus is one render target of a repository check.
type TargetStatus struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Path      string `json:"path"`
	DefinedIn string `json:"definedIn,omitempty"`
	// DeployedBy are the Argo CD Applications that deploy the target's source.
	DeployedBy []string `json:"deployedBy,omitempty"`
	// Objects is how many objects it rendered (and were checked).
	Objects int `json:"objects"`
	// Rendered is false when the target did not render, or only in part; Reason then
	// says why in a few words (the errors say the rest).
	Rendered bool   `json:"rendered"`
	Reason   string `json:"reason,omitempty"`
	// Remotes are the sources outside the repository it rendered from, as resolved.
	Remotes []RemoteSource `json:"remotes,omitempty"`
}

// RemoteSource is a source outside the repository that a target rendered from (a chart
// from a Helm repository or an OCI registry, a Git repository, a file), as resolved.
type RemoteSource struct {
	// Kind is chart, git or file.
	Kind string `json:"kind"`
	// URL is the repository, registry or file, credentials redacted.
	URL string `json:"url"`
	// Name is the chart's name.
	Name string `json:"name,omitempty"`
	// Requested is what the repository asks for: a version constraint, a ref.
	Requested string `json:"requested,omitempty"`
	// Resolved is what that resolved to: a chart version, a commit.
	Resolved string `json:"resolved,omitempty"`
	// Digest is the content's digest (sha256:...), for a chart or a file.
	Digest string `json:"digest,omitempty"`
}

// String is the source in a few words: "chart cert-manager 1.14.* = 1.14.5 from
// https://charts.jetstack.io".
func (s RemoteSource) String() string {
	what := s.Kind
	if s.Name != "" {
		what += " " + s.Name
	}
	ver := s.Resolved
	if s.Requested != "" && s.Requested != s.Resolved {
		ver = s.Requested + " = " + s.Resolved
	}
	if ver != "" {
		what += " " + ver
	}
	return what + " from " + s.URL
}

// Short is the source as one token: chart@version (web@1.2.9), url@commit12 for a Git
// repository, the URL for a file.
func (s RemoteSource) Short() string {
	switch {
	case s.Kind == "chart":
		return s.Name + "@" + s.Resolved
	case s.Kind == "git" && len(s.Resolved) > 12:
		return s.URL + "@" + s.Resolved[:12]
	case s.Resolved != "":
		return s.URL + "@" + s.Resolved
	}
	return s.URL
}

// Merge adds another report's results, errors and counts to r; call Sort after the last.
func (r *Report) Merge(o *Report) {
	r.Results = append(r.Results, o.Results...)
	r.Errors = append(r.Errors, o.Errors...)
	r.Duplicates = append(r.Duplicates, o.Duplicates...)
	r.Notices = append(r.Notices, o.Notices...)
	r.Targets = append(r.Targets, o.Targets...)
	if r.Unchecked == nil {
		r.Unchecked = map[string]int{}
	}
	for k, n := range o.Unchecked {
		r.Unchecked[k] += n
	}
	addSummary(&r.Summary, o.Summary)
	r.Summary.Files += o.Summary.Files
	r.Summary.Policies = max(r.Summary.Policies, o.Summary.Policies)
}

// Sort puts results, errors and duplicates in their deterministic order.
func (r *Report) Sort() {
	SortResults(r.Results)
	sortErrors(r.Errors)
	sort.Slice(r.Duplicates, func(i, j int) bool { return r.Duplicates[i].Resource < r.Duplicates[j].Resource })
	sort.SliceStable(r.Targets, func(i, j int) bool { return r.Targets[i].Name < r.Targets[j].Name })
}

// NotRendered counts the targets that did not render by reason.
func (r *Report) NotRendered() map[string]int {
	var out map[string]int
	for _, t := range r.Targets {
		if !t.Rendered {
			if out == nil {
				out = map[string]int{}
			}
			out[t.Reason]++
		}
	}
	return out
}

// Blocking reports whether the report fails the gate: any Enforce failure, or in
// merge-request mode only a new one.
func (r *Report) Blocking() bool {
	if r.Changes != nil {
		return r.Changes.NewBlocking > 0
	}
	return r.Summary.Blocking > 0
}

type fileJob struct {
	src  Source
	name string // inside src.FS
	show string // as displayed
}

// Check walks the sources, decodes every manifest, checks its schema and evaluates it.
// Files are processed in parallel and streamed: a file's YAML tree is dropped once its
// findings carry positions. One bad file never hides the results of the others.
func (e *Engine) Check(ctx context.Context, sources []Source, opts CheckOptions) *Report {
	var jobs []fileJob
	var errs []error
	var notices []string
	for _, src := range sources {
		j, es, ns := walk(src, opts.Exclude)
		jobs = append(jobs, j...)
		errs = append(errs, es...)
		notices = append(notices, ns...)
	}
	rep := e.run(ctx, len(jobs), func(i int, fn func(Resource) error) error { return readJob(jobs[i], opts.MaxFileSize, fn) }, func(i int) string { return jobs[i].show }, opts)
	rep.Errors = append(rep.Errors, errs...)
	rep.Notices = append(notices, rep.Notices...)
	rep.Summary.Files = len(jobs)
	sortErrors(rep.Errors)
	return rep
}

// CheckResources evaluates resources that are already decoded (rendered output), in
// parallel. Identities are compared within a render target: the same object rendered by
// two targets is not a duplicate. The CRDs among resources (a chart's crds/, a
// kustomization's, an app's) join opts.CRDs before any custom resource is checked.
func (e *Engine) CheckResources(ctx context.Context, resources []Resource, opts CheckOptions) *Report {
	if opts.CRDs != nil {
		for _, r := range resources {
			opts.CRDs.AddResource(r)
		}
	}
	return e.run(ctx, len(resources), func(i int, fn func(Resource) error) error { return fn(resources[i]) }, nil, opts)
}

// run evaluates n units of work (a file, or one resource) on opts.Workers goroutines.
// Each unit hands its resources to fn one at a time (a file as it decodes), so memory
// and time per resource stay constant however many documents one file holds.
// name (nil for resources) names a unit in the report of an interrupted check.
func (e *Engine) run(ctx context.Context, n int, each func(i int, fn func(Resource) error) error, name func(i int) string, opts CheckOptions) *Report {
	rep := &Report{Unchecked: map[string]int{}}
	var (
		mu       sync.Mutex
		done     atomic.Int64
		complete = make([]bool, n)
		seen     = map[string][]Origin{}
		names    = map[string]string{}
	)
	type ident struct {
		key, id string
		o       Origin
	}
	// Each worker gathers into its own report, merged once it runs out of work.
	type worker struct {
		rep Report
		ids []ident
	}
	pool.ForEachWorker(ctx, n, opts.Workers, func() *worker {
		return &worker{rep: Report{Unchecked: map[string]int{}}}
	}, func(w *worker, i int) {
		var secrets []Resource // to mask the unit's error text with (a decode error may quote a value)
		err := each(i, func(r Resource) error {
			if err := ctx.Err(); err != nil {
				return err // reported once below, as the check being interrupted
			}
			if r.Object != nil && IsSecret(r.Object.Object) {
				secrets = append(secrets, r)
			}
			if skipKind(r) {
				return nil
			}
			w.rep.Summary.Resources++
			if r.Object.GetName() != "" || r.Object.GetGenerateName() == "" { // generated names never collide
				w.ids = append(w.ids, ident{r.Origin.Target + "|" + r.key(), r.ID(), r.Origin})
			}
			e.checkOne(ctx, r, opts, &w.rep)
			return nil
		})
		if ctx.Err() == nil {
			complete[i] = true // each item is written by one worker only
			if err != nil {
				w.rep.Errors = append(w.rep.Errors, MaskErrors([]error{err}, secrets)...)
			}
		}
		if opts.Progress != nil {
			opts.Progress(int(done.Add(1)), n)
		}
	}, func(w *worker) {
		mu.Lock()
		defer mu.Unlock()
		rep.Results = append(rep.Results, w.rep.Results...)
		rep.Errors = append(rep.Errors, w.rep.Errors...)
		rep.Notices = append(rep.Notices, w.rep.Notices...) // what generate rules would create
		addSummary(&rep.Summary, w.rep.Summary)
		for k, c := range w.rep.Unchecked {
			rep.Unchecked[k] += c
		}
		for _, id := range w.ids {
			seen[id.key] = append(seen[id.key], id.o)
			names[id.key] = id.id
		}
	})
	if err := ctx.Err(); err != nil {
		ie := &InterruptedError{Err: err, Total: n, Unit: "inputs"}
		for i, ok := range complete {
			if !ok {
				ie.NotEvaluated++
				if name != nil {
					ie.Names = append(ie.Names, name(i))
				}
			}
		}
		rep.Errors = append(rep.Errors, ie)
	}
	rep.Summary.Policies = e.set.Len()
	slices.Sort(rep.Notices) // workers finish in any order
	for key, origins := range seen {
		if len(origins) > 1 {
			slices.SortFunc(origins, func(a, b Origin) int { return strings.Compare(a.String(), b.String()) })
			rep.Duplicates = append(rep.Duplicates, Duplicate{Resource: names[key], Origins: origins})
		}
	}
	sort.Slice(rep.Duplicates, func(i, j int) bool { return rep.Duplicates[i].Resource < rep.Duplicates[j].Resource })
	SortResults(rep.Results)
	sortErrors(rep.Errors)
	return rep
}

// InterruptedError says a check was stopped (SIGINT, SIGTERM, a cancelled context)
// before it evaluated everything: the report is incomplete, and names what was not
// evaluated.
type InterruptedError struct {
	Err error
	// NotEvaluated of Total units (Unit: "inputs", "targets") were not evaluated, or
	// not completely; Names lists them when known.
	NotEvaluated, Total int
	Unit                string
	Names               []string
}

func (e *InterruptedError) Error() string {
	msg := fmt.Sprintf("check interrupted (%v): the report is incomplete: %d of %d %s not evaluated", e.Err, e.NotEvaluated, e.Total, e.Unit)
	if len(e.Names) > 0 {
		names := slices.Clone(e.Names)
		sort.Strings(names)
		const show = 20
		if len(names) > show {
			names = append(names[:show], fmt.Sprintf("and %d more", len(names)-show))
		}
		msg += ": " + strings.Join(names, ", ")
	}
	return msg
}

func (e *InterruptedError) Unwrap() error { return e.Err }

func sortErrors(errs []error) {
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
}

func (e *Engine) checkOne(ctx context.Context, r Resource, opts CheckOptions, rep *Report) {
	var results []Result
	if !opts.NoMutate && e.mutates {
		mres, patched, err := e.Mutate(ctx, r, opts.Request)
		switch {
		case err != nil:
			results = append(results, e.allErrors(r, fmt.Errorf("mutate: %w", err))...)
		default:
			for _, m := range mres {
				if m.Status == StatusPass || m.Status == StatusSkip {
					continue // applied mutations are not findings
				}
				if strings.HasPrefix(m.Message, notEvaluatedPrefix) {
					m.Action = Audit // mutateExisting: said, never blocking the object it does not change
				}
				results = append(results, m)
			}
			r.Object = patched // judged as the cluster would store it; Origin and locators stay the source's
		}
	}
	if opts.Schema {
		kube := opts.KubeVersion
		if kube.Major == 0 {
			kube = defaultKube
		}
		av, removed := CheckAPIVersion(r, kube)
		results = append(results, av...)
		rs, checked := CheckSchema(r)
		if !checked && !removed && opts.CRDs != nil {
			rs, checked = opts.CRDs.Validate(ctx, r)
		}
		rs = MaskResults(rs, r.Object.Object)
		if !checked && !removed { // a removed version is judged, not unknown
			rep.Unchecked[r.Object.GetAPIVersion()+"/"+r.Object.GetKind()]++
		}
		results = append(results, rs...)
	}
	results = append(results, e.Evaluate(ctx, r, opts.Request)...)
	if !opts.NoMutate && !opts.generated && e.generates {
		results = append(results, e.checkGenerated(ctx, r, opts, rep)...)
	}
	for _, res := range results {
		count(&rep.Summary, res)
		if opts.KeepPasses || res.Finding() || res.Exception != "" { // excepted and waived results stay visible
			rep.Results = append(rep.Results, res)
		}
	}
}

func count(s *Summary, r Result) {
	switch r.Status {
	case StatusPass:
		s.Pass++
	case StatusFail:
		s.Fail++
	case StatusWarn:
		s.Warn++
	case StatusError:
		s.Error++
	case StatusSkip:
		s.Skip++
	}
	if r.Blocking() {
		s.Blocking++
	}
}

func addSummary(dst *Summary, s Summary) {
	dst.Resources += s.Resources
	dst.Pass += s.Pass
	dst.Fail += s.Fail
	dst.Warn += s.Warn
	dst.Error += s.Error
	dst.Skip += s.Skip
	dst.Blocking += s.Blocking
}

// skipKind reports documents that are tooling configuration, not cluster objects.
func skipKind(r Resource) bool {
	switch r.Object.GroupVersionKind().Group {
	case "kustomize.config.k8s.io", "cli.kyverno.io", "config.kubernetes.io":
		return true
	}
	return false
}

func walk(src Source, exclude []string) ([]fileJob, []error, []string) {
	var (
		jobs    []fileJob
		errs    []error
		notices []string
		patches = map[string]bool{}
	)
	show := displayFunc(src)
	excluded := func(p string) bool {
		s := show(p)
		for _, x := range exclude {
			if s == x || strings.HasPrefix(s, strings.TrimSuffix(x, "/")+"/") {
				return true
			}
		}
		return false
	}
	err := fs.WalkDir(src.FS, src.Root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, &InputError{Origin: Origin{File: show(p)}, Err: fmt.Errorf("cannot read: %w", unwrapPathErr(err))})
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if p != src.Root && (strings.HasPrefix(d.Name(), ".") || excluded(p)) {
				return fs.SkipDir
			}
			if _, err := fs.Stat(src.FS, path.Join(p, "Chart.yaml")); err == nil {
				notices = append(notices, fmt.Sprintf("%s: Helm chart skipped: plain-manifest mode does not render charts", show(p)))
				return fs.SkipDir
			}
			for _, patch := range kustomizePatches(src.FS, p) {
				patches[patch] = true
			}
			return nil
		}
		if p != src.Root && (!isManifestFile(p) || excluded(p) || strings.HasPrefix(d.Name(), ".")) {
			return nil // .gitgate.yaml and other dotfiles are configuration, not manifests
		}
		if kustomization.IsFileName(path.Base(p)) {
			return nil
		}
		if patches[p] {
			notices = append(notices, fmt.Sprintf("%s: kustomize patch skipped: it is a fragment, checked once rendered", show(p)))
			return nil
		}
		jobs = append(jobs, fileJob{src: src, name: p, show: show(p)})
		return nil
	})
	if err != nil {
		errs = append(errs, &InputError{Origin: Origin{File: show(src.Root)}, Err: err})
	}
	return jobs, errs, notices
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

func readJob(j fileJob, limit int64, fn func(Resource) error) error {
	info, err := fs.Stat(j.src.FS, j.name)
	if err != nil {
		return &InputError{Origin: Origin{File: j.show}, Err: fmt.Errorf("cannot read: %w", unwrapPathErr(err))}
	}
	if limit > 0 && info.Size() > limit {
		return &InputError{Origin: Origin{File: j.show}, Err: fmt.Errorf("file is %d bytes, over the %d-byte limit; raise it with --max-file-size if the file is legitimate", info.Size(), limit)}
	}
	data, err := fs.ReadFile(j.src.FS, j.name)
	if err != nil {
		return &InputError{Origin: Origin{File: j.show}, Err: fmt.Errorf("cannot read: %w", unwrapPathErr(err))}
	}
	return DecodeEach(j.show, data, fn)
}

// displayFunc maps a path inside src.FS to the path shown to the user.
func displayFunc(src Source) func(string) string {
	return func(p string) string {
		if src.Display == "" {
			return p
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, src.Root), "/")
		if rel == "" || src.Root == "." && p == "." {
			return src.Display
		}
		if src.Root == "." {
			rel = p
		}
		return path.Join(src.Display, rel)
	}
}

// kustomizePatches lists the patch files a directory's kustomization names: fragments
// of objects, not objects, so plain-manifest mode must not judge them.
func kustomizePatches(fsys fs.FS, dir string) []string {
	_, data := kustomization.Find(fsys, dir)
	if data == nil {
		return nil
	}
	k, err := kustomization.Parse(data)
	if err != nil {
		return nil // rendering reports a broken kustomization; here it only filters
	}
	var out []string
	for _, p := range k.PatchFiles() {
		if !strings.HasPrefix(p, "/") {
			out = append(out, path.Clean(path.Join(dir, p)))
		}
	}
	return out
}

// RecheckCustomResources validates again, against opts.CRDs as it is now, custom
// resources a check counted as not schema-checked because no CRD of their kind was
// known yet (their CRD came from a target rendered after theirs): each whose CRD is now
// known leaves rep.Unchecked and adds its schema findings to rep. They are judged as
// written (the mutation of their first check is not repeated).
func RecheckCustomResources(ctx context.Context, rs []Resource, opts CheckOptions, rep *Report) {
	if opts.CRDs == nil {
		return
	}
	for _, r := range rs {
		results, checked := opts.CRDs.Validate(ctx, r)
		if !checked {
			continue
		}
		key := r.Object.GetAPIVersion() + "/" + r.Object.GetKind()
		if rep.Unchecked[key]--; rep.Unchecked[key] <= 0 {
			delete(rep.Unchecked, key)
		}
		for _, res := range MaskResults(results, r.Object.Object) {
			count(&rep.Summary, res)
			if opts.KeepPasses || res.Finding() {
				rep.Results = append(rep.Results, res)
			}
		}
	}
}

// checkGenerated runs the generate rules on r (as admitted: mutated) and checks the
// objects the cluster would create, as their own resources at r's origin, once (what
// they would generate in turn is not followed). Each is named in a notice; a rule that
// cannot generate offline (a clone from the cluster) is a result saying so, never a
// pass.
func (e *Engine) checkGenerated(ctx context.Context, r Resource, opts CheckOptions, rep *Report) []Result {
	gens, err := e.Generate(ctx, r, opts.Request, nil)
	if err != nil {
		return e.allErrors(r, fmt.Errorf("generate: %w", err))
	}
	var out []Result
	sub := opts
	sub.generated = true
	for _, g := range gens {
		if g.Result.Status == StatusError {
			g.Result.Action = Audit // what it would create is unknown here: said, not blocking
			out = append(out, g.Result)
		}
		for _, obj := range g.Objects {
			gr := Resource{Object: obj, Origin: r.Origin}
			rep.Notices = append(rep.Notices, fmt.Sprintf("%s: %s: %s/%s would generate %s, checked as well", r.Origin, r.ID(), g.Result.Policy, g.Result.Rule, gr.ID()))
			e.checkOne(ctx, gr, sub, rep)
		}
	}
	return out
}
