package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/gitgate/gitgate/internal/kustomization"
	"github.com/gitgate/gitgate/internal/repopath"
	"github.com/gitgate/gitgate/internal/verdictcache"
	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
)

// check --shard I/N (N > 1): custom resources whose CRD a target of another shard renders.
//
// An unsharded check validates a custom resource against the CRDs any target renders
// (policy.RecheckCustomResources for those whose CRD a later target rendered). A shard
// does the same: when its own targets leave custom resources of kinds no known CRD
// covers (its own targets' CRDs, crds:, the bundled ones), it finds the CRDs the other
// shards' targets render (render only: no policy is evaluated on them, nothing of them
// enters the report), adds them and rechecks the pending objects exactly as the
// unsharded check does. No such object: nothing of this runs.
//
// Per other target, the cheapest sound answer:
//   - its CRD record in the verdict cache (crdRecord: the CRDs it rendered, an empty
//     list being a fact too), under its verdict-cache key, its remote sources resolving
//     as they did; stored by every check that renders it cleanly, traced, reading
//     nothing its dependencies do not name;
//   - proven to render no CRD (rendersNoCRD), without rendering;
//   - else rendered.
//
// The CRD generation (the digest of every CRD the run's targets render, cache.go) of a
// shard that looked is then the unsharded check's: skipped targets render no CRD, so
// they add nothing to it, and the entries of either run fit the other.

// crdRecord is what a target renders of CRDs, in the verdict cache under crdRecordKey.
type crdRecord struct {
	Name    string                `json:"name"`
	Path    string                `json:"path"`
	Remotes []policy.RemoteSource `json:"remotes,omitempty"`
	CRDs    []recordedCRD         `json:"crds"`
}

// recordedCRD is one CRD as rendered: where, and the object as cache.go digests it.
type recordedCRD struct {
	Origin policy.Origin   `json:"origin"`
	Object json.RawMessage `json:"object"`
}

// crdRecordKey is the record's key: its own kind of record, under the target's key.
func crdRecordKey(targetKey string) string {
	h := verdictcache.NewHasher("target-crds")
	h.String(targetKey)
	return h.Sum()
}

// crdDigest is a rendered CRD as crdGeneration digests it.
func crdDigest(o policy.Origin, object []byte) string { return o.String() + "\x00" + string(object) }

// renderedCRDs are the CRDs among a render's objects, each with its digest.
func renderedCRDs(rs []policy.Resource) []recordedCRD {
	var out []recordedCRD
	for _, r := range rs {
		if policy.IsCRD(r) {
			b, _ := json.Marshal(r.Object.Object)
			out = append(out, recordedCRD{Origin: r.Origin, Object: b})
		}
	}
	return out
}

// recordCRDs stores the CRDs a traced render produced under the target's key (vc nil
// or key "": nothing), when the render can stand for every later one: it rendered
// without an error, was traced and read only files its dependencies name (which the
// key digests); its remote sources are kept, to be checked as they resolve then.
func recordCRDs(vc *verdictcache.Cache, key string, tr render.Traced, dep render.Deps, interrupted bool) {
	if vc == nil || key == "" || interrupted || tr.Reads == nil || tr.Err != nil {
		return
	}
	for f := range tr.Reads {
		if !dep.Match(f) {
			return
		}
	}
	vc.Put(crdRecordKey(key), crdRecord{Name: tr.Target.Name, Path: tr.Target.Path, Remotes: tr.Remotes, CRDs: renderedCRDs(tr.Resources)})
}

// shardCRDs finds, for one shard, the CRDs the other shards' targets render.
type shardCRDs struct {
	spec   shardSpec
	repo   render.Repo
	plan   *render.Discovery // the whole plan
	others []render.Target   // the plan's targets of other shards
	vc     *verdictcache.Cache
	run    string

	// What resolve did (tests and the notice): the other targets by how their CRDs
	// were known.
	looked                    bool
	rendered, cached, skipped []string
	unknown                   []string // not rendered: the check was interrupted
	// crdErrs are the errors of others' CRDs the set could not take (by text): the
	// shard of their target reports them, this one must not.
	crdErrs map[string]bool
}

// shardCRDTrace, when set (tests), is told how each other target's CRDs were known:
// "cached", "skipped" or "rendered".
var shardCRDTrace func(target, how string)

// resolve is called by evaluateTargets once the shard's own targets rendered (own: the
// digests of their CRDs). When custom resources of kinds no CRD of crds covers are
// pending, or an entry of the cache judged custom resources against other CRDs than
// the shard's own, it adds the CRDs of the other shards' targets to crds. It returns
// the run's CRD generation and which entries fit it.
func (s *shardCRDs) resolve(ctx context.Context, crds *policy.CRDSet, outs []*targetOutcome, own []string, workers int) (string, func(*cacheEntry) bool) {
	ownGen := crdGeneration(slices.Clone(own))
	fitsOwn := func(e *cacheEntry) bool { return e.CRDGen == ownGen }
	if crds == nil || !s.needed(crds, outs, ownGen) {
		return ownGen, fitsOwn
	}
	s.looked = true
	found, rendered := s.find(ctx, workers)
	before := crds.Errors()
	all := slices.Clone(own)
	for _, c := range found {
		all = append(all, crdDigest(c.Origin, c.Object))
		rs, err := policy.Decode(c.Origin.File, c.Object)
		if err != nil || len(rs) != 1 {
			continue // it decoded when rendered: the record is not what was stored
		}
		// From a record: its fields' lines are not kept (a CRD the API server refuses
		// is named at its document's line).
		r := rs[0]
		r.Origin, r.Fields = c.Origin, nil
		crds.AddResource(r)
	}
	for _, r := range rendered {
		b, _ := json.Marshal(r.Object.Object)
		all = append(all, crdDigest(r.Origin, b))
		crds.AddResource(r)
	}
	s.crdErrs = map[string]bool{}
	for _, e := range crds.Errors()[len(before):] {
		s.crdErrs[e.Error()] = true
	}
	fullGen := crdGeneration(all)
	// An entry of the shard's own generation judged no object against another shard's
	// CRD: when it was stored nothing was pending, so nothing was looked for.
	return fullGen, func(e *cacheEntry) bool { return e.CRDGen == fullGen || e.CRDGen == ownGen }
}

// needed: an object is pending whose kind no CRD of crds covers, or an entry with
// custom resources was judged against other CRDs than the shard's own (its generation
// may be the whole plan's: only the other shards' CRDs can tell).
func (s *shardCRDs) needed(crds *policy.CRDSet, outs []*targetOutcome, ownGen string) bool {
	known := map[string]bool{}
	for _, k := range crds.Kinds() {
		known[k] = true
	}
	for _, o := range outs {
		for _, r := range o.pending {
			gvk := r.Object.GroupVersionKind()
			if !known[gvk.Kind+"."+gvk.Group] {
				return true
			}
		}
		if o.entry != nil && o.entry.CustomKinds && o.entry.CRDGen != ownGen {
			return true
		}
	}
	return false
}

// find answers every other target: from its record (recorded), by proof, or by
// rendering it (rendered: the CRD objects as rendered, their fields' lines kept).
func (s *shardCRDs) find(ctx context.Context, workers int) (recorded []recordedCRD, rendered []policy.Resource) {
	if ctx.Err() != nil { // interrupted: nothing more is read, every other target is unknown
		for _, t := range s.others {
			s.unknown = append(s.unknown, t.Name)
		}
		return nil, nil
	}
	var keys []string
	var deps []render.Deps
	od := *s.plan
	od.Targets = s.others
	if s.vc != nil && s.run != "" {
		keys, deps = cacheKeys(ctx, s.repo, &od, s.run, workers)
	} else {
		deps = render.DepsOf(s.repo, &od, s.others)
	}
	files := repopath.DirFS(s.repo.Dir)
	var todo []render.Target
	index := map[string]int{}
	for i, t := range s.others {
		index[targetID(t)] = i
		var rec crdRecord
		if keys != nil && keys[i] != "" && s.vc.Get(crdRecordKey(keys[i]), &rec) && rec.Name == t.Name && rec.Path == t.Path && s.remotesAsThen(ctx, t, rec.Remotes) {
			recorded = append(recorded, rec.CRDs...)
			s.cached = append(s.cached, t.Name)
			traceShardCRD(t.Name, "cached")
			continue
		}
		if rendersNoCRD(files, t, deps[i], s.repo.MaxFileSize) {
			s.skipped = append(s.skipped, t.Name)
			traceShardCRD(t.Name, "skipped")
			continue
		}
		todo = append(todo, t)
	}
	var mu sync.Mutex
	done := map[string]bool{}
	render.RenderTraced(ctx, s.repo, &od, todo, workers, nil, func(tr render.Traced) {
		i := index[targetID(tr.Target)]
		interrupted := ctx.Err() != nil
		if keys != nil { // keyed: store the records of what it renders
			recordCRDs(s.vc, keys[i], tr, deps[i], interrupted)
		}
		mu.Lock()
		defer mu.Unlock()
		if interrupted && tr.Err != nil {
			return // unknown: said in the notice
		}
		for _, r := range tr.Resources {
			if policy.IsCRD(r) {
				rendered = append(rendered, r)
			}
		}
		done[targetID(tr.Target)] = true
	})
	for _, t := range todo {
		if done[targetID(t)] {
			s.rendered = append(s.rendered, t.Name)
			traceShardCRD(t.Name, "rendered")
		} else {
			s.unknown = append(s.unknown, t.Name)
		}
	}
	return recorded, rendered
}

func traceShardCRD(target, how string) {
	if shardCRDTrace != nil {
		shardCRDTrace(target, how)
	}
}

// remotesAsThen: the target's remote sources (none for most) resolve as they did when
// its record was stored (the key covers the repository's files only), as entryFits
// checks a verdict entry.
func (s *shardCRDs) remotesAsThen(ctx context.Context, t render.Target, then []policy.RemoteSource) bool {
	if len(then) == 0 {
		return true
	}
	now, err := render.ResolveRemotes(ctx, s.repo, t)
	return err == nil && sameRemotes(now, then)
}

// otherCRDErrors leaves out of errs those about CRDs of other shards' targets.
func (s *shardCRDs) otherCRDErrors(errs []error) []error {
	if s == nil || len(s.crdErrs) == 0 {
		return errs
	}
	var out []error
	for _, e := range errs {
		if !s.crdErrs[e.Error()] {
			out = append(out, e)
		}
	}
	return out
}

// notice is said when custom resources of kinds no CRD covers remain and the shard
// could not learn every other target's CRDs (interrupted): with every other target
// known, such kinds have a CRD nowhere, as the unsharded check reports them (its
// notSchemaChecked), and nothing more is said.
func (s *shardCRDs) notice(unchecked map[string]int) string {
	if s == nil || len(s.unknown) == 0 || len(unchecked) == 0 {
		return ""
	}
	var kinds []string
	for k, n := range unchecked {
		kinds = append(kinds, fmt.Sprintf("%s (%d)", k, n))
	}
	slices.Sort(kinds)
	names := s.unknown
	if len(names) > 10 {
		names = append(slices.Clone(names[:10]), fmt.Sprintf("and %d more", len(s.unknown)-10))
	}
	return fmt.Sprintf("shard %s: objects of %s were not schema-checked and their CRD may come from a target of another shard that this shard did not render (the check was interrupted): %s; run the shard again (or list the CRDs under crds: in .gitgate.yaml)",
		s.spec, strings.Join(kinds, ", "), strings.Join(names, ", "))
}

// crdWord is what a CustomResourceDefinition's kind is written as, somewhere in the
// files it comes from, when kustomize or a directory source renders it.
var crdWord = []byte("CustomResourceDefinition")

// rendersNoCRD reports whether t provably renders no CustomResourceDefinition, from its
// dependencies (deps: every file its render reads, render.DepsOf, held to the files a
// real render reads by render's tests) read through fsys (confined to the repository).
//
// The argument: a kustomize target with no helmCharts, no generator, transformer or
// validator plugins, no replacements and no remote source, a plain directory (no
// jsonnet) and a Tekton file produce objects whose strings are copied from their input
// files (kustomize only copies, merges and prefixes strings; it never builds a kind).
// An object is a CRD when its kind is the string "CustomResourceDefinition", so some
// input file holds that string. It may be written escaped only inside a double-quoted
// YAML or a JSON string, which needs a backslash; a file in UTF-16 or UTF-32 holds NUL
// bytes. So a target none of whose files contains the word, a backslash or a NUL renders
// no CRD. Replacements are excluded because, with a delimiter, they splice a string
// from parts. Anything not proven (Helm, jsonnet, remote sources, plugins, a file that
// cannot be read, a link to a directory) is rendered.
func rendersNoCRD(fsys fs.FS, t render.Target, deps render.Deps, maxSize int64) bool {
	switch {
	case t.Repo != nil || t.Chart != nil || len(t.Refs) > 0:
		return false
	case t.Kind == render.Kustomize, t.Kind == render.Tekton, t.Kind == render.Directory && t.Jsonnet == nil:
	default:
		return false
	}
	for _, d := range deps {
		if !depRendersNoCRD(fsys, strings.TrimSuffix(d, "/"), maxSize) {
			return false
		}
	}
	return true
}

// depRendersNoCRD checks one dependency, a file or a whole directory.
func depRendersNoCRD(fsys fs.FS, name string, maxSize int64) bool {
	st, err := fs.Stat(fsys, name)
	if err != nil {
		return errors.Is(err, fs.ErrNotExist) // an absent file renders nothing; anything else: render
	}
	if !st.IsDir() {
		return fileRendersNoCRD(fsys, name, st, maxSize)
	}
	ok := true
	err = fs.WalkDir(fsys, name, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		st, err := fs.Stat(fsys, p) // through a link: to a directory, the walk would miss it
		if err != nil || st.IsDir() || !fileRendersNoCRD(fsys, p, st, maxSize) {
			ok = false
			return fs.SkipAll
		}
		return nil
	})
	return ok && err == nil
}

func fileRendersNoCRD(fsys fs.FS, name string, st fs.FileInfo, maxSize int64) bool {
	if !st.Mode().IsRegular() || maxSize > 0 && st.Size() > maxSize {
		return false
	}
	data, err := fs.ReadFile(fsys, name)
	if err != nil || bytes.Contains(data, crdWord) || bytes.IndexByte(data, '\\') >= 0 || bytes.IndexByte(data, 0) >= 0 {
		return false
	}
	if !kustomization.IsFileName(path.Base(name)) {
		return true
	}
	k, err := kustomization.Parse(data)
	if err != nil || len(k.HelmCharts) > 0 || len(k.Generators) > 0 || len(k.Transformers) > 0 || len(k.Validators) > 0 || len(k.Replacements) > 0 {
		return false
	}
	refs := append(append(append(k.Refs(), k.CRDs...), k.Configurations...), k.PatchFiles()...)
	refs = append(refs, k.OpenAPI["path"])
	for _, g := range append(slices.Clone(k.ConfigMapGenerator), k.SecretGenerator...) {
		refs = append(append(append(refs, g.Files...), g.Envs...), g.Env)
	}
	for _, r := range refs {
		if maybeRemote(r) {
			return false
		}
	}
	return true
}

// maybeRemote: a kustomization entry kustomize may fetch (a URL, a remote base in any of
// its forms), or one that looks like it: a colon, a query, a user@ (a local path
// rarely has one; such a target is rendered).
func maybeRemote(s string) bool {
	if _, ok, err := kustomization.ParseRemoteBase(s); ok || err != nil {
		return true
	}
	l := strings.ToLower(strings.TrimSpace(s))
	return strings.ContainsAny(l, ":?@") || strings.HasPrefix(l, "github.com") || strings.HasPrefix(l, "gitlab.com") || strings.HasPrefix(l, "bitbucket.org") ||
		strings.Contains(l, "_git/") || strings.Contains(l, ".git//")
}
