package render

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/gitgate/gitgate/internal/kustomization"
	"github.com/gitgate/gitgate/internal/repopath"
	"github.com/gitgate/gitgate/policy"
	yaml3 "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// originAnnotation is where kustomize records where a resource came from.
const originAnnotation = "config.kubernetes.io/origin"

// sourceAnnotation carries a resource's source file and line through kustomize: it is
// added to every document of the resource files the kustomization graph names as
// kustomize reads them, and stripped from the output.
const sourceAnnotation = "gitgate.dev/source"

// renderKustomize builds the kustomization at t.Path with krusty, confined to the
// repository, and returns its resources with their origins: the repo-relative source
// file and the line of the object in it, from a source annotation gitgate adds to the
// documents of the resource files as kustomize reads them (and strips, so the objects
// are what `kustomize build` prints). Kustomize's own origin annotations would do the
// same but also record every transformer on every resource, a third of the build.
// Objects a generator made point at the kustomization whose generator created them.
func renderKustomize(ctx context.Context, repo Repo, t Target) ([]policy.Resource, error) {
	repo = repo.confined()
	objs, err := buildKustomize(ctx, repo, t)
	if err != nil {
		return nil, err
	}
	src := newSourceIndex(repo)
	deps := newDepsCache(repo.FS)
	out := make([]policy.Resource, 0, len(objs))
	for _, u := range objs {
		o := policy.Origin{File: path.Join(t.Path, kustomization.FileNames[0]), Line: 1, Col: 1, Target: t.Name}
		var fields policy.Locator
		if ann, ok := u.GetAnnotations()[sourceAnnotation]; ok {
			o, fields = src.locate(t, ann, u)
			stripAnnotation(u, sourceAnnotation)
		} else if k := generatedBy(deps, t.Path, u); k != "" {
			o.File = k
		}
		stripAnnotation(u, originAnnotation) // a kustomization's own buildMetadata
		out = append(out, policy.Resource{Object: u, Origin: o, Fields: fields})
	}
	return out, nil
}

// KustomizeYAML is what `kustomize build` prints for the target, serialised by
// kustomize itself.
func KustomizeYAML(ctx context.Context, repo Repo, t Target) ([]byte, error) {
	if t.Repo != nil && repo.here == nil {
		var err error
		if repo, _, err = otherRepo(ctx, repo, t); err != nil {
			return nil, err
		}
	}
	m, err := runKustomize(ctx, repo, t, false)
	if err != nil {
		return nil, err
	}
	return m.AsYaml()
}

func buildKustomize(ctx context.Context, repo Repo, t Target) ([]*unstructured.Unstructured, error) {
	m, err := runKustomize(ctx, repo, t, true)
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, r := range m.Resources() {
		obj, err := r.Map()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.Path, err)
		}
		// Through JSON, so numbers are int64/float64 as the policy engine needs.
		u, err := normalise(obj)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.Path, err)
		}
		out = append(out, u)
	}
	return out, nil
}

// runKustomize builds the target; with provenance, the documents of the resource files
// carry the source annotation.
//
// kustomize takes no context: ctx is checked on every file kustomize reads (and stops the
// Helm charts of helmCharts), so an interrupted build fails at its next read.
func runKustomize(ctx context.Context, repo Repo, t Target, provenance bool) (resmap.ResMap, error) {
	confine, err := repopath.Open(repo.Dir)
	if err != nil {
		return nil, err
	}
	root := confine.Real()
	dir := filepath.Join(root, filepath.FromSlash(t.Path))
	// Before kustomize runs: it fetches URLs and clones Git repositories itself.
	if _, err := scanKustomization(ctx, confine, t.Path, repo.MaxFileSize, repo.Remotes); err != nil {
		for _, e := range policy.Unjoin(err) {
			var nr *NotRenderedError
			if errors.As(e, &nr) {
				nr.Target = t.Name
			}
		}
		return nil, err
	}
	fsys := &confinedFS{FileSystem: filesys.MakeFsOnDisk(), confine: confine, root: root, target: dir, t: t, maxSize: repo.MaxFileSize, trace: repo.trace, ctx: ctx, helm: repo.Helm, remotes: repo.Remotes, virtual: map[string][]byte{}}
	if provenance {
		fsys.annotate = resourceFiles(newDepsCache(os.DirFS(root)), t.Path)
	}
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	opts.Reorder = krusty.ReorderOptionLegacy // what the kustomize CLI prints by default
	k := krusty.MakeKustomizer(opts)
	m, err := k.Run(fsys, dir)
	if err != nil && ctx != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("%s: kustomize build stopped: %w", t.Path, ctx.Err())
	}
	if esc := fsys.escaped(); esc != nil {
		return nil, fmt.Errorf("%s: %w; keep bases, patches and files inside the repository", t.Path, esc)
	}
	fsys.mu.Lock()
	inflate := fsys.inflate
	fsys.mu.Unlock()
	if err != nil && inflate != nil {
		return nil, fmt.Errorf("%s: kustomize build: %w", t.Path, inflate)
	}
	if err != nil {
		return nil, &kustomizeBuildError{file: kustomizationFile(confine, t.Path), msg: kustomizeMessage(err.Error(), root, repo.Dir), err: err}
	}
	return m, nil
}

// KustomizeNotices are the deprecation warnings kustomize prints (to the process's
// standard error, with no file) for the kustomization graph of a kustomize target, as
// notices naming the kustomization file and line of each deprecated field: one for each
// field of each kustomization file of the graph.
func KustomizeNotices(repo Repo, t Target) []string {
	if t.Kind != Kustomize || repo.Dir == "" || t.Repo != nil {
		return nil
	}
	confine, err := repopath.Open(repo.Dir)
	if err != nil {
		return nil
	}
	notices, _ := scanKustomization(nil, confine, t.Path, repo.MaxFileSize, repo.Remotes)
	return notices
}

// kustomizationFile is the repo-relative kustomization file of dir (the first name
// kustomize accepts that is there), or dir itself.
func kustomizationFile(root *repopath.Root, dir string) string {
	fsys := root.FS()
	for _, n := range kustomization.FileNames {
		if st, err := fsys.Stat(path.Join(dir, n)); err == nil && !st.IsDir() {
			return path.Join(dir, n)
		}
	}
	return dir
}

// kustomizeBuildError is kustomize's own error, rewritten for a reader (msg) and
// prefixed with the target's kustomization file; err is kustomize's, for errors.Is/As.
type kustomizeBuildError struct {
	file, msg string
	err       error
}

func (e *kustomizeBuildError) Error() string { return e.file + ": kustomize build: " + e.msg }
func (e *kustomizeBuildError) Unwrap() error { return e.err }

var (
	// A base (a directory): kustomize first tried it as a file, then recursed into it.
	kustBase = regexp.MustCompile(`accumulation err='accumulating resources from '([^']*)': '[^']*' must resolve to a file': (?:recursed accumulation of path|recursed merging from path|couldn't make target for path) '([^']*)': `)
	// A file: kustomize's error for it, then why it is not a directory either.
	kustFile = regexp.MustCompile(`accumulation err='(.*?)': must build at directory: .*$`)
)

// kustomizeMessage rewrites a kustomize error for a reader: the absolute paths of this
// machine (the repository's root, real and as given) repository-relative, and the parts
// kustomize repeats dropped: for a base, its first attempt to read the directory as a
// file; for a file, its attempt to read it as a directory (which names the path twice
// more); "accumulating resources" said once per level. Nothing else is changed.
func kustomizeMessage(msg string, roots ...string) string {
	for _, r := range roots {
		if r == "" || r == "/" {
			continue
		}
		r = filepath.Clean(r)
		msg = strings.ReplaceAll(msg, r+string(filepath.Separator), "")
		msg = strings.ReplaceAll(msg, "'"+r+"'", "'.'")
	}
	msg = kustBase.ReplaceAllStringFunc(msg, func(m string) string {
		sub := kustBase.FindStringSubmatch(m)
		if path.Clean(sub[1]) == sub[2] {
			return fmt.Sprintf("accumulating resources from '%s': ", sub[1])
		}
		return fmt.Sprintf("accumulating resources from '%s' (%s): ", sub[1], sub[2])
	})
	msg = kustFile.ReplaceAllString(msg, "$1")
	for {
		next := strings.ReplaceAll(msg, "accumulating resources: accumulating resources from ", "accumulating resources from ")
		if next == msg {
			return msg
		}
		msg = next
	}
}

func normalise(obj map[string]any) (*unstructured.Unstructured, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("rendered object does not decode: %w", err)
	}
	return u, nil
}

func stripAnnotation(u *unstructured.Unstructured, key string) {
	ann := u.GetAnnotations()
	if _, ok := ann[key]; !ok {
		return
	}
	delete(ann, key)
	if len(ann) == 0 {
		unstructured.RemoveNestedField(u.Object, "metadata", "annotations")
		return
	}
	u.SetAnnotations(ann)
}

func rel(root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil {
		return p
	}
	return filepath.ToSlash(r)
}

// confinedFS is the on-disk filesystem kustomize reads, refusing every path that
// resolves (symlinks followed) outside the repository. It serves the target's own
// kustomization with the Argo CD Application's overrides (images, name prefix and
// suffix, common labels, namespace) applied, as Argo CD applies them, the resource files
// with gitgate's source annotation, and helmCharts rendered, without touching the disk.
type confinedFS struct {
	filesys.FileSystem
	confine *repopath.Root
	root    string // confine.Real(): the paths kustomize asks for are under it
	target  string
	t       Target
	maxSize int64
	trace   func(file string)
	// ctx (nil: none) stops the build at its next file read and the charts of
	// helmCharts entries, which helm bounds as Helm targets are bounded.
	ctx  context.Context
	helm HelmLimits
	// remotes fetches the charts of helmCharts entries with a repo, remote bases and
	// files (nil: refused).
	remotes Remotes
	// mounts are the trees of remote bases: read like the repository, confined each
	// to itself.
	mounts []*repopath.Root
	// virtual are in-memory files: charts of helmCharts entries, rendered.
	virtual map[string][]byte
	// annotate are the repo-relative resource files whose documents get the source
	// annotation as kustomize reads them.
	annotate map[string]bool

	mu  sync.Mutex
	esc error // the first *repopath.EscapeError
	// inflate is the first helmCharts error (a chart's template failed or went over
	// its budget): kustomize reports it as "unable to find one of 'kustomization.yaml'"
	// for the directory, so the build's error is replaced with it.
	inflate error
}

func (c *confinedFS) escaped() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.esc == nil {
		return nil
	}
	return c.esc
}

func (c *confinedFS) allowed(p string) bool {
	err := c.confine.Check(p)
	if err == nil {
		return true
	}
	c.mu.Lock()
	mounts := c.mounts
	c.mu.Unlock()
	for _, m := range mounts {
		if _, under := m.Rel(p); under && m.Check(p) == nil {
			return true
		}
	}
	c.mu.Lock()
	if c.esc == nil {
		c.esc = err
	}
	c.mu.Unlock()
	return false
}

var errEscape = errors.New("outside the repository")

func (c *confinedFS) Open(p string) (filesys.File, error) {
	if !c.allowed(p) {
		return nil, errEscape
	}
	return c.FileSystem.Open(p)
}

func (c *confinedFS) ReadFile(p string) ([]byte, error) {
	if c.ctx != nil && c.ctx.Err() != nil {
		return nil, c.ctx.Err()
	}
	c.mu.Lock()
	v, ok := c.virtual[p]
	c.mu.Unlock()
	if ok {
		return v, nil
	}
	if !c.allowed(p) {
		return nil, fmt.Errorf("%s: %w", p, errEscape)
	}
	if c.maxSize > 0 {
		if st, err := os.Stat(p); err == nil && st.Size() > c.maxSize {
			return nil, fmt.Errorf("%s: file is %d bytes, over the %d-byte limit; raise it with --max-file-size if the file is legitimate", rel(c.root, p), st.Size(), c.maxSize)
		}
	}
	data, err := c.FileSystem.ReadFile(p)
	if err != nil {
		return nil, err
	}
	c.trace(rel(c.root, p))
	if r := rel(c.root, p); c.annotate[r] {
		data = annotateSources(r, data)
	}
	// kustomize expands YAML aliases without bound: refuse a bomb before it does.
	if bytes.IndexByte(data, '&') >= 0 {
		if _, err := policy.Decode(rel(c.root, p), data); errors.Is(err, policy.ErrAliasExpansion) {
			return nil, err
		}
	}
	if kustomization.IsFileName(filepath.Base(p)) {
		out, err := c.augment(filepath.Dir(p), data)
		if err != nil {
			c.mu.Lock()
			if c.inflate == nil {
				c.inflate = err
			}
			c.mu.Unlock()
		}
		return out, err
	}
	return data, nil
}

func (c *confinedFS) IsDir(p string) bool { return c.allowed(p) && c.FileSystem.IsDir(p) }
func (c *confinedFS) Exists(p string) bool {
	c.mu.Lock()
	_, ok := c.virtual[p]
	c.mu.Unlock()
	return ok || c.allowed(p) && c.FileSystem.Exists(p)
}

func (c *confinedFS) ReadDir(p string) ([]string, error) {
	if !c.allowed(p) {
		return nil, fmt.Errorf("%s: %w", p, errEscape)
	}
	return c.FileSystem.ReadDir(p)
}

func (c *confinedFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	c.mu.Lock()
	_, virtual := c.virtual[p]
	c.mu.Unlock()
	if virtual {
		d, _, err := c.FileSystem.CleanedAbs(filepath.Dir(p))
		return d, filepath.Base(p), err
	}
	if !c.allowed(p) {
		return "", "", fmt.Errorf("%s: %w", p, errEscape)
	}
	return c.FileSystem.CleanedAbs(p)
}

func (c *confinedFS) Glob(pattern string) ([]string, error) {
	matches, err := c.FileSystem.Glob(pattern)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range matches {
		if c.allowed(m) {
			out = append(out, m)
		}
	}
	return out, nil
}

func (c *confinedFS) Create(p string) (filesys.File, error) {
	return nil, fmt.Errorf("%s: rendering never writes to the repository", p)
}
func (c *confinedFS) WriteFile(p string, _ []byte) error {
	return fmt.Errorf("%s: rendering never writes to the repository", p)
}
func (c *confinedFS) Mkdir(p string) error    { return fmt.Errorf("%s: read-only", p) }
func (c *confinedFS) MkdirAll(p string) error { return fmt.Errorf("%s: read-only", p) }
func (c *confinedFS) RemoveAll(p string) error {
	return fmt.Errorf("%s: read-only", p)
}

// augment serves a kustomization of the target's graph: helmCharts rendered in-process
// (every kustomization), and for the target's own one the Application's overrides
// applied.
func (c *confinedFS) augment(dir string, data []byte) ([]byte, error) {
	own := dir == c.target
	remote := c.remotes != nil && (bytes.Contains(data, []byte("://")) || bytes.Contains(data, []byte("github.com")) || bytes.Contains(data, []byte("git@")))
	if !own && !remote && !bytes.Contains(data, []byte("helmCharts")) {
		return data, nil
	}
	var k map[string]any
	if err := yaml.Unmarshal(data, &k); err != nil {
		return data, nil // kustomize reports the syntax error itself
	}
	if k == nil {
		k = map[string]any{}
	}
	if err := c.inflateHelmCharts(dir, k); err != nil {
		return nil, err
	}
	if err := c.fetchRemotes(dir, k); err != nil {
		return nil, err
	}
	if !own {
		return yaml.Marshal(k)
	}
	t := c.t
	if t.NamePrefix != "" {
		k["namePrefix"] = t.NamePrefix + fmt.Sprint(orEmpty(k["namePrefix"]))
	}
	if t.NameSuffix != "" {
		k["nameSuffix"] = fmt.Sprint(orEmpty(k["nameSuffix"])) + t.NameSuffix
	}
	if len(t.CommonLabels) > 0 {
		labels, _ := k["commonLabels"].(map[string]any)
		if labels == nil {
			labels = map[string]any{}
		}
		for key, v := range t.CommonLabels {
			labels[key] = v
		}
		k["commonLabels"] = labels
	}
	if len(t.Images) > 0 {
		images, _ := k["images"].([]any)
		for _, img := range t.Images {
			images = append(images, imageOverride(img))
		}
		k["images"] = images
	}
	return yaml.Marshal(k)
}

func orEmpty(v any) any {
	if v == nil {
		return ""
	}
	return v
}

// imageOverride parses Argo CD's kustomize image syntax: [old=]new[:tag|@digest].
func imageOverride(s string) map[string]any {
	old, img, ok := strings.Cut(s, "=")
	if !ok {
		img = old
		old = ""
	}
	out := map[string]any{}
	name, digest, hasDigest := strings.Cut(img, "@")
	tag := ""
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, tag = name[:i], name[i+1:]
	}
	if old == "" {
		old = name
	}
	out["name"] = old
	if name != old {
		out["newName"] = name
	}
	if tag != "" {
		out["newTag"] = tag
	}
	if hasDigest {
		out["digest"] = digest
	}
	return out
}

// sourceIndex finds rendered objects in the source files kustomize read them from.
type sourceIndex struct {
	repo  Repo
	files map[string][]policy.Resource
}

func newSourceIndex(repo Repo) *sourceIndex {
	return &sourceIndex{repo: repo, files: map[string][]policy.Resource{}}
}

func (s *sourceIndex) load(file string) []policy.Resource {
	if rs, ok := s.files[file]; ok {
		return rs
	}
	data, err := os.ReadFile(filepath.Join(s.repo.Dir, filepath.FromSlash(file)))
	var rs []policy.Resource
	if err == nil {
		rs, _ = policy.Decode(file, data)
	}
	s.files[file] = rs
	return rs
}

// images reads the images: entries of the target's kustomization, with positions.
func (s *sourceIndex) images(t Target) []imageEntry {
	for _, n := range kustomization.FileNames {
		file := path.Join(t.Path, n)
		data, err := os.ReadFile(filepath.Join(s.repo.Dir, filepath.FromSlash(file)))
		if err != nil {
			continue
		}
		var doc yaml3.Node
		if yaml3.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
			return nil
		}
		root := doc.Content[0]
		var out []imageEntry
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value != "images" {
				continue
			}
			for _, item := range root.Content[i+1].Content {
				for j := 0; j+1 < len(item.Content); j += 2 {
					if item.Content[j].Value == "name" {
						out = append(out, imageEntry{name: item.Content[j+1].Value, file: file, line: item.Line, col: item.Column})
					}
				}
			}
		}
		return out
	}
	return nil
}

// locate turns a source annotation (file:line) into a repo-relative file and line, and
// a field locator that only answers for fields whose rendered value is the source's.
func (s *sourceIndex) locate(t Target, ann string, u *unstructured.Unstructured) (policy.Origin, policy.Locator) {
	file, line := ann, 0
	if i := strings.LastIndexByte(ann, ':'); i > 0 {
		file = ann[:i]
		line, _ = strconv.Atoi(ann[i+1:])
	}
	o := policy.Origin{File: file, Line: 1, Col: 1, Target: t.Name}
	// The object in its file: the document at that line, else the same kind and name,
	// else the one whose name the rendered name contains (namePrefix, nameSuffix), else
	// the only one of its kind.
	best, partial, ofKind := -1, -1, []int{}
	rs := s.load(file)
	for i, r := range rs {
		if r.Origin.Line == line && r.Object.GetKind() == u.GetKind() {
			best = i
			break
		}
	}
	for i, r := range rs {
		if best >= 0 {
			break
		}
		if r.Object.GetKind() != u.GetKind() {
			continue
		}
		ofKind = append(ofKind, i)
		name := r.Object.GetName()
		if name == u.GetName() {
			best = i
			break
		}
		if partial < 0 && name != "" && strings.Contains(u.GetName(), name) {
			partial = i
		}
	}
	if best < 0 {
		best = partial
	}
	if best < 0 && len(ofKind) == 1 {
		best = ofKind[0]
	}
	if best < 0 {
		return o, nil
	}
	src := rs[best]
	o.Line, o.Col = src.Origin.Line, src.Origin.Col
	return o, sameValueLocator{src: src, rendered: u.Object, images: s.images(t)}
}

// sameValueLocator points at a field of the source object only where the rendered
// object still holds the source's value: a field a patch changed is not located in the
// base it came from, which would point at the wrong file.
type sameValueLocator struct {
	src      policy.Resource
	rendered map[string]any
	images   []imageEntry // the target kustomization's images: overrides
}

// imageEntry is one item of a kustomization's images: list and where it is.
type imageEntry struct {
	name      string
	file      string
	line, col int
}

// LocateFile places an image the target's kustomization rewrote (images: newName,
// newTag, digest) at that images: entry, where the value was set.
func (l sameValueLocator) LocateFile(segs []string) (string, int, int, bool) {
	if len(segs) == 0 || segs[len(segs)-1] != "image" {
		return "", 0, 0, false
	}
	sv, sok := lookup(l.src.Object.Object, segs)
	rv, rok := lookup(l.rendered, segs)
	base, _ := sv.(string)
	if !sok || !rok || equalJSON(sv, rv) || base == "" {
		return "", 0, 0, false
	}
	name := imageName(base)
	for _, e := range l.images {
		if e.name == name || e.name == base {
			return e.file, e.line, e.col, true
		}
	}
	return "", 0, 0, false
}

// imageName is an image reference without its tag or digest.
func imageName(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

func (l sameValueLocator) Locate(segs []string) (int, int, bool) {
	sv, sok := lookup(l.src.Object.Object, segs)
	if !sok {
		return 0, 0, false
	}
	rv, rok := lookup(l.rendered, segs)
	if rok && isScalar(sv) && !equalJSON(sv, rv) {
		return 0, 0, false // a value the overlay changed: not where it came from
	}
	return l.src.Fields.Locate(segs)
}

func isScalar(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return false
	}
	return true
}

func lookup(v any, segs []string) (any, bool) {
	for _, s := range segs {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[s]; !ok {
				return nil, false
			}
		case []any:
			i := 0
			if _, err := fmt.Sscan(s, &i); err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func equalJSON(a, b any) bool {
	ya, err1 := yaml.Marshal(a)
	yb, err2 := yaml.Marshal(b)
	return err1 == nil && err2 == nil && string(ya) == string(yb)
}

// kustomizeWarning is a deprecation warning kustomize prints for a kustomization field
// (internal/target.KustTarget.Load, kustomize/api v0.21.2): straight to os.Stderr, with
// no file, on every build of every kustomization that has the field.
var kustomizeWarning = regexp.MustCompile(`^# Warning: '[A-Za-z0-9]+' is deprecated\. Please use '[A-Za-z0-9]+' instead\. (?:\[EXPERIMENTAL\] )?Run 'kustomize edit fix' to update your Kustomization automatically\.\r?\n$`)

// FilterKustomizeWarnings takes kustomize's deprecation warnings out of the process's
// standard error, where kustomize writes them itself (fmt.Fprintf(os.Stderr, ...), not
// the log package, so nothing narrower can catch them): every other line written to
// os.Stderr is passed on unchanged. The same warnings are reported as notices with the
// kustomization's file and line (KustomizeNotices, Rendered.Notices), once.
//
// Call it once, first thing in main, before any goroutine runs: it replaces os.Stderr
// with a pipe and never swaps it back (a write racing with a swap would be a data race).
// It returns the real standard error, for the program's own output, and flush, to call
// before the process exits: it closes the pipe and waits until everything written to it
// has been passed on (later writes to os.Stderr are dropped).
func FilterKustomizeWarnings() (stderr *os.File, flush func()) {
	real := os.Stderr
	r, w, err := os.Pipe()
	if err != nil {
		return real, func() {}
	}
	os.Stderr = w
	done := make(chan struct{})
	go func() {
		defer close(done)
		br := bufio.NewReaderSize(r, 64<<10)
		whole := true // the chunk starts a line
		for {
			line, err := br.ReadSlice('\n')
			if len(line) > 0 {
				// A line longer than the buffer is passed on in pieces; a warning is short.
				if !(whole && err == nil && kustomizeWarning.Match(line)) {
					_, _ = real.Write(line)
				}
				whole = err == nil
			}
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				return
			}
		}
	}()
	var once sync.Once
	return real, func() {
		once.Do(func() {
			_ = w.Close()
			<-done
			_ = r.Close()
		})
	}
}
