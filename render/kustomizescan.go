package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/internal/kustomization"
	"github.com/gitgate/gitgate/internal/remote"
	"github.com/gitgate/gitgate/internal/repopath"
	yaml3 "go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"
)

// Kustomize's loader fetches an http(s) URL itself, with its own HTTP client (the
// filesystem gitgate hands it never sees the request), wherever a kustomization names a
// file: resources, generator files and envs, patches, patchesStrategicMerge,
// patchesJson6902, replacements, openapi, configurations, crds, and the entries of
// generators, transformers and validators (and the paths inside their plugin
// configurations). A remote git base (resources, bases, components, generators,
// transformers, validators) is cloned by running the git binary. So every such field
// is checked here, before kustomize runs: a URL is a *RemoteError and a path that
// leaves the repository (absolute, "..", or a symbolic link out) an *EscapeError, each
// named with the kustomization file, line and field. Kustomize's confined filesystem
// (confinedFS) stays behind this as the second line for paths.
//
// The same walk names, with file, line and field, what kustomize would stop on with an
// error of absolute paths and no line: a file or directory that is not there
// (*MissingError, every one, not the first), a plugin configuration that is not a
// builtin (*NotRenderedError: exec, Go and KRM-function plugins are never run); and it
// turns kustomize's deprecation warnings into notices with file:line.

// KustomizeFieldError is a kustomization field that names something a render does not
// read: a remote source, a path outside the repository, a file that is not there.
type KustomizeFieldError struct {
	// File is the repo-relative kustomization (or plugin configuration) file, Line the
	// line of the value in it.
	File string
	Line int
	// Field is where the value sits: configMapGenerator[0].files[1], patches[2].path.
	Field string
	// Value is the value as written.
	Value string
	// Err is a *RemoteError, a *repopath.EscapeError, a *CycleError or a
	// *MissingError.
	Err error
}

func (e *KustomizeFieldError) Error() string {
	at := e.File
	if e.Line > 0 {
		at = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	var re *RemoteError
	if errors.As(e.Err, &re) {
		q := *re
		q.URL = quoteValue(re.URL) // a hostile value never reaches the terminal raw
		return fmt.Sprintf("%s: %s: %v", at, e.Field, &q)
	}
	var refused *remote.RefusedError
	var offline *remote.OfflineError
	var failed fetchFailed
	if errors.As(e.Err, &refused) || errors.As(e.Err, &offline) || errors.As(e.Err, &failed) {
		return fmt.Sprintf("%s: %s: %v", at, e.Field, e.Err)
	}
	var ce *CycleError
	if errors.As(e.Err, &ce) {
		return fmt.Sprintf("%s: %s: %s: %v", at, e.Field, quoteValue(e.Value), ce)
	}
	var me *MissingError
	if errors.As(e.Err, &me) {
		return fmt.Sprintf("%s: %s: %s %v", at, e.Field, strconv.Quote(e.Value), me)
	}
	return fmt.Sprintf("%s: %s: %v; keep bases, patches and files inside the repository", at, e.Field, e.Err)
}

func (e *KustomizeFieldError) Unwrap() error { return e.Err }

// quoteValue quotes a value for a message when it holds anything that could pass for
// more output (spaces, newlines, control characters).
func quoteValue(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == '"' || r == 0x7f }) {
		return strconv.Quote(s)
	}
	return s
}

// pluginPathKeys are the keys of kustomize's builtin plugin configurations whose values
// name files kustomize loads (PatchTransformer path, ReplacementTransformer
// replacements[].path, ConfigMapGenerator/SecretGenerator files, envs and env,
// HelmChartInflationGenerator valuesFile and additionalValuesFiles, exec plugins'
// argsFromFile).
var pluginPathKeys = map[string]bool{
	"path": true, "files": true, "envs": true, "env": true,
	"valuesFile": true, "additionalValuesFiles": true, "argsFromFile": true,
}

// kustScan walks one target's kustomization graph.
type kustScan struct {
	root    *repopath.Root
	fsys    *repopath.FS
	maxSize int64
	seen    map[string]bool
	stack   []string // the kustomization directories being scanned, outermost first
	errs    []error
	// notices are kustomize's deprecation warnings, with the file and line of the field.
	notices []string
	// remotes, when set, fetches the charts of helmCharts entries with a repo that
	// remotes.allow permits; without it every such entry is refused.
	remotes Remotes
	ctx     context.Context
}

// MissingError is a file or directory a kustomization names that does not exist (or a
// directory with no kustomization file where kustomize needs one): kustomize would stop
// on it with an error naming absolute paths and not the entry.
type MissingError struct {
	// Path is the repo-relative path the entry names.
	Path string
	// NoKustomization: Path is a directory, but holds no kustomization file.
	NoKustomization bool
}

func (e *MissingError) Error() string {
	if e.NoKustomization {
		return fmt.Sprintf("is a directory with no %s: kustomize builds only a directory that has one; add it or name the files", strings.Join(kustomization.FileNames, ", "))
	}
	return fmt.Sprintf("does not exist: there is no %s in the repository; fix the path or remove the entry", e.Path)
}

// Is makes a missing path an fs.ErrNotExist.
func (e *MissingError) Is(target error) bool { return target == fs.ErrNotExist && !e.NoKustomization }

// CycleError is a kustomization that builds on itself through its bases or components.
type CycleError struct {
	// Chain is the directories from the first to the one that names it again.
	Chain []string
}

func (e *CycleError) Error() string {
	return fmt.Sprintf("kustomizations build on each other in a cycle (%s): kustomize cannot build them; remove the reference that closes the loop", strings.Join(e.Chain, " -> "))
}

// scanKustomization checks the kustomization graph of the repo-relative directory dir
// before kustomize builds it: every error found, joined (one bad field never hides
// another), and kustomize's deprecation warnings as notices with file:line, once per
// kustomization file.
//
// With ctx, an allowed remote entry is also fetched here (the fetcher keeps it for the
// build), so a failure to fetch it is reported at its file:line; without, only allowed.
func scanKustomization(ctx context.Context, root *repopath.Root, dir string, maxSize int64, remotes Remotes) (notices []string, err error) {
	s := &kustScan{ctx: ctx, root: root, fsys: root.FS(), maxSize: maxSize, seen: map[string]bool{}, remotes: remotes}
	s.kustomization(dir, "")
	return s.notices, errors.Join(s.errs...)
}

// deprecatedFields are the kustomization fields kustomize warns about on every build
// (types.Kustomization.CheckDeprecatedFields, kustomize/api v0.21.2: a field that is
// set, even empty), with what replaces each.
var deprecatedFields = map[string]string{
	"bases":                 "resources",
	"commonLabels":          "labels",
	"imageTags":             "images",
	"patchesJson6902":       "patches",
	"patchesStrategicMerge": "patches",
	"vars":                  "replacements",
}

// deprecated records a deprecation notice for a kustomization field set in file.
func (s *kustScan) deprecated(file string, key, val *yaml3.Node) {
	use, ok := deprecatedFields[key.Value]
	if !ok || val == nil || val.Tag == "!!null" {
		return // kustomize warns about a field that decodes to a value, not a null
	}
	fix := "kustomize edit fix"
	if key.Value == "vars" {
		fix = "kustomize edit fix --vars, experimental"
	}
	at := file
	if key.Line > 0 {
		at = fmt.Sprintf("%s:%d", file, key.Line)
	}
	s.notices = append(s.notices, fmt.Sprintf("%s: %s is deprecated: use %s (%s)", at, key.Value, use, fix))
}

// kustomization scans the kustomization in dir. With cfgDir, it was named by
// generators, transformers or validators: its resources are plugin configurations, whose
// paths kustomize loads relative to cfgDir, the kustomization that named it.
func (s *kustScan) kustomization(dir, cfgDir string) {
	key := dir + "\x00" + cfgDir
	if s.seen[key] {
		return
	}
	s.seen[key] = true
	s.stack = append(s.stack, dir)
	defer func() { s.stack = s.stack[:len(s.stack)-1] }()
	var file string
	var data []byte
	for _, n := range kustomization.FileNames {
		p := path.Join(dir, n)
		b, err := s.read(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			var esc *repopath.EscapeError
			if !errors.As(err, &esc) {
				err = fmt.Errorf("%s: %w", p, err)
			}
			s.errs = append(s.errs, err)
			return
		}
		file, data = p, b
		break
	}
	if data == nil {
		return
	}
	m, lines := kustomizationNode(data)
	if m == nil {
		return // kustomize reports the syntax error itself
	}
	if !lines {
		zeroLines(m)
	}
	for _, kv := range mapPairs(m) {
		key, val := kv[0].Value, kv[1]
		s.deprecated(file, kv[0], val)
		switch key {
		case "resources", "bases", "components":
			eachString(val, key, func(field string, n *yaml3.Node) {
				s.ref(file, dir, field, n, cfgDir)
			})
		case "generators", "transformers", "validators":
			eachString(val, key, func(field string, n *yaml3.Node) {
				if strings.Contains(n.Value, "\n") { // an inline plugin configuration
					line := n.Line
					if n.Style&(yaml3.LiteralStyle|yaml3.FoldedStyle) != 0 {
						line++ // the block starts on the next line
					}
					s.config(file, line, field, dir, []byte(n.Value), entry{file, n.Line, field})
					return
				}
				s.ref(file, dir, field, n, dir)
			})
		case "crds", "configurations":
			eachString(val, key, func(field string, n *yaml3.Node) { s.file(file, dir, field, n) })
		case "patchesStrategicMerge":
			eachString(val, key, func(field string, n *yaml3.Node) {
				if !inlinePatch(n.Value) {
					s.file(file, dir, field, n)
				}
			})
		case "patches", "patchesJson6902", "replacements", "openapi":
			each(val, key, func(field string, item *yaml3.Node) {
				if n := mapValue(item, "path"); n != nil {
					s.file(file, dir, field+".path", n)
				}
			})
		case "configMapGenerator", "secretGenerator":
			each(val, key, func(field string, item *yaml3.Node) {
				s.generatorFiles(file, dir, field, item)
			})
		case "helmCharts":
			each(val, key, func(field string, item *yaml3.Node) {
				if n := mapValue(item, "repo"); n != nil && n.Value != "" {
					var err error = &RemoteError{URL: n.Value, Allow: remote.AllowEntry(n.Value, false)}
					if s.remotes != nil {
						err = s.remotes.Check(n.Value)
					}
					if err != nil {
						s.errs = append(s.errs, &KustomizeFieldError{File: file, Line: n.Line, Field: field + ".repo", Value: n.Value, Err: err})
					}
				}
				for _, k := range []string{"valuesFile", "additionalValuesFiles"} {
					eachString(mapValue(item, k), field+"."+k, func(f string, n *yaml3.Node) { s.file(file, dir, f, n) })
				}
			})
		case "helmGlobals":
			if n := mapValue(val, "chartHome"); n != nil && n.Kind == yaml3.ScalarNode {
				s.path(file, dir, "helmGlobals.chartHome", n)
			}
		}
	}
}

// generatorFiles checks a configMapGenerator or secretGenerator entry's files
// ([key=]path), envs and env.
func (s *kustScan) generatorFiles(file, dir, field string, item *yaml3.Node) {
	eachString(mapValue(item, "files"), field+".files", func(f string, n *yaml3.Node) {
		v := *n
		if _, src, ok := strings.Cut(n.Value, "="); ok && !isRemote(n.Value) {
			v.Value = src
		}
		s.file(file, dir, f, &v)
	})
	eachString(mapValue(item, "envs"), field+".envs", func(f string, n *yaml3.Node) { s.file(file, dir, f, n) })
	if n := mapValue(item, "env"); n != nil && n.Kind == yaml3.ScalarNode && n.Value != "" {
		s.file(file, dir, field+".env", n)
	}
}

// file checks a value naming a file kustomize loads (path's checks), and that it is
// there: kustomize stops on a missing one.
func (s *kustScan) file(file, dir, field string, n *yaml3.Node) {
	p, ok := s.path(file, dir, field, n)
	if !ok {
		return
	}
	if _, err := s.fsys.Stat(p); errors.Is(err, fs.ErrNotExist) {
		s.errs = append(s.errs, &KustomizeFieldError{File: file, Line: n.Line, Field: field, Value: n.Value, Err: &MissingError{Path: p}})
	}
}

// path checks a value naming a file kustomize loads relative to dir; it returns the
// repo-relative path when it stays inside.
func (s *kustScan) path(file, dir, field string, n *yaml3.Node) (string, bool) {
	v := strings.TrimSpace(n.Value)
	if v == "" {
		return "", false
	}
	fail := func(err error) (string, bool) {
		s.errs = append(s.errs, &KustomizeFieldError{File: file, Line: n.Line, Field: field, Value: n.Value, Err: err})
		return "", false
	}
	if isRemote(v) {
		if s.remotes == nil || !remoteField(field) {
			re := &RemoteError{URL: v}
			if remoteField(field) {
				re.Allow = remote.AllowEntry(v, false)
				if rb, ok, err := kustomization.ParseRemoteBase(v); ok && err == nil {
					re.Allow = remote.AllowEntry(rb.Repo, true) // the one repository, not its host
				}
			}
			return fail(re)
		}
		u, err := remoteURL(v)
		if err == nil {
			err = s.remotes.Check(u)
		}
		if err == nil && s.ctx != nil {
			err = s.prefetch(v)
		}
		if err != nil {
			return fail(err)
		}
		return "", false // read from the fetcher's cache when kustomize builds
	}
	if path.IsAbs(v) || strings.HasPrefix(v, `\`) || len(v) > 1 && v[1] == ':' {
		return fail(&repopath.EscapeError{Path: v, Reason: repopath.Absolute})
	}
	p, err := repopath.Clean(path.Join(dir, v))
	if err != nil {
		return fail(&repopath.EscapeError{Path: v, Reason: repopath.Parent})
	}
	if _, err := s.root.Resolve(p); err != nil {
		return fail(err) // names the link repo-relative
	}
	return p, true
}

// ref checks a resource, base, component, generator, transformer or validator entry:
// a file, or a directory holding a kustomization, which is scanned in turn. With
// cfgDir, the entry is a plugin configuration (or a kustomization of them) whose paths
// are relative to cfgDir.
func (s *kustScan) ref(file, dir, field string, n *yaml3.Node, cfgDir string) {
	p, ok := s.path(file, dir, field, n)
	if !ok {
		return
	}
	st, err := s.fsys.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		s.errs = append(s.errs, &KustomizeFieldError{File: file, Line: n.Line, Field: field, Value: n.Value, Err: &MissingError{Path: p}})
		return
	}
	if err != nil {
		return // kustomize reports what it cannot read itself
	}
	if st.IsDir() {
		if !s.hasKustomization(p) {
			s.errs = append(s.errs, &KustomizeFieldError{File: file, Line: n.Line, Field: field, Value: n.Value, Err: &MissingError{Path: p, NoKustomization: true}})
			return
		}
		for i, d := range s.stack {
			if d == p {
				chain := append(append([]string(nil), s.stack[i:]...), p)
				s.errs = append(s.errs, &KustomizeFieldError{File: file, Line: n.Line, Field: field, Value: n.Value, Err: &CycleError{Chain: chain}})
				return
			}
		}
		s.kustomization(p, cfgDir)
		return
	}
	if cfgDir != "" {
		data, err := s.read(p)
		if err != nil {
			return
		}
		s.config(p, 1, "", cfgDir, data, entry{file, n.Line, field})
	}
}

// hasKustomization reports whether the repo-relative directory dir holds a kustomization
// file.
func (s *kustScan) hasKustomization(dir string) bool {
	for _, n := range kustomization.FileNames {
		if st, err := s.fsys.Stat(path.Join(dir, n)); err == nil && !st.IsDir() {
			return true
		}
	}
	return false
}

// entry is where a kustomization names a plugin configuration: the kustomization file,
// the line of the entry and its field (transformers[0]).
type entry struct {
	file  string
	line  int
	field string
}

// builtinPlugins are the kinds kustomize runs in-process for apiVersion "builtin"
// (builtinhelpers.BuiltinPluginType, kustomize/api v0.21.2); every other plugin
// configuration names an exec, Go or KRM-function plugin.
var builtinPlugins = map[string]bool{
	"AnnotationsTransformer": true, "ConfigMapGenerator": true, "IAMPolicyGenerator": true,
	"HashTransformer": true, "ImageTagTransformer": true, "LabelTransformer": true,
	"NamespaceTransformer": true, "PatchJson6902Transformer": true,
	"PatchStrategicMergeTransformer": true, "PatchTransformer": true,
	"PrefixSuffixTransformer": true, "PrefixTransformer": true, "SuffixTransformer": true,
	"ReplicaCountTransformer": true, "SecretGenerator": true, "ValueAddTransformer": true,
	"HelmChartInflationGenerator": true, "ReplacementTransformer": true,
}

// neverExecuted ends every plugin's not-rendered message.
const neverExecuted = "gitgate never executes plugins or functions during a check"

// plugin reports a plugin configuration document (in file at line) that is not a
// builtin kustomize runs in-process as a *NotRenderedError at the entry naming it.
func (s *kustScan) plugin(doc *yaml3.Node, file string, line int, e entry) {
	if doc = deref(doc); doc == nil || doc.Kind != yaml3.MappingNode {
		return
	}
	str := func(n *yaml3.Node) string {
		if n = deref(n); n != nil && n.Kind == yaml3.ScalarNode {
			return n.Value
		}
		return ""
	}
	apiVersion, kind := str(mapValue(doc, "apiVersion")), str(mapValue(doc, "kind"))
	if kind == "" {
		return // not a plugin configuration: kustomize reports it itself
	}
	what := strings.TrimPrefix(apiVersion+" "+kind, " ")
	if e.file != file {
		what += fmt.Sprintf(" (%s:%d)", file, line)
	}
	var detail string
	switch ann := mapValue(mapValue(doc, "metadata"), "annotations"); {
	case apiVersion == "builtin" && kind == "HelmChartInflationGenerator":
		detail = fmt.Sprintf("%s: %s runs the helm binary (%s); list the chart under helmCharts:, which gitgate renders in-process", e.field, what, neverExecuted)
	case apiVersion == "builtin" && builtinPlugins[kind]:
		return
	case mapValue(ann, "config.kubernetes.io/function") != nil || mapValue(ann, "config.k8s.io/function") != nil:
		detail = fmt.Sprintf("%s: %s is a KRM function (config.kubernetes.io/function); %s", e.field, what, neverExecuted)
	default:
		detail = fmt.Sprintf("%s: %s is an exec or Go plugin (not a kustomize builtin); %s", e.field, what, neverExecuted)
	}
	s.errs = append(s.errs, &NotRenderedError{File: e.file, Line: e.line, Reason: "kustomize plugin", Detail: detail})
}

// config checks the plugin configurations (one or more YAML documents) found in file
// from line on, named by entry e: each must be a builtin plugin, and its path keys stay
// in the repository (relative to dir).
func (s *kustScan) config(file string, line int, field, dir string, data []byte, e entry) {
	dec := yaml3.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml3.Node
		if err := dec.Decode(&doc); err != nil {
			if !errors.Is(err, io.EOF) {
				return // kustomize reports the syntax error itself
			}
			return
		}
		if len(doc.Content) > 0 {
			s.plugin(doc.Content[0], file, doc.Content[0].Line+line-1, e)
		}
		var walk func(n *yaml3.Node, at string)
		walk = func(n *yaml3.Node, at string) {
			if n = deref(n); n == nil {
				return
			}
			switch n.Kind {
			case yaml3.DocumentNode:
				for _, c := range n.Content {
					walk(c, at)
				}
			case yaml3.SequenceNode:
				for i, c := range n.Content {
					walk(c, fmt.Sprintf("%s[%d]", at, i))
				}
			case yaml3.MappingNode:
				for _, kv := range mapPairs(n) {
					k, v := kv[0].Value, kv[1]
					f := at + k
					if at != "" && !strings.HasSuffix(at, ":") {
						f = at + "." + k
					}
					if !pluginPathKeys[k] {
						walk(v, f)
						continue
					}
					eachString(v, f, func(f string, n *yaml3.Node) {
						c := *n
						c.Line += line - 1
						if k == "files" {
							if _, src, ok := strings.Cut(c.Value, "="); ok && !isRemote(c.Value) {
								c.Value = src
							}
						}
						s.path(file, dir, f, &c)
					})
				}
			}
		}
		prefix := field
		if prefix != "" {
			prefix += ":"
		}
		walk(&doc, prefix)
	}
}

// read reads a repo-relative file through the confined filesystem, within the size
// bound.
func (s *kustScan) read(p string) ([]byte, error) {
	st, err := s.fsys.Stat(p)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fs.ErrNotExist
	}
	if s.maxSize > 0 && st.Size() > s.maxSize {
		return nil, fmt.Errorf("file is %d bytes, over the %d-byte limit; raise it with --max-file-size if the file is legitimate", st.Size(), s.maxSize)
	}
	return s.fsys.ReadFile(p)
}

// inlinePatch reports whether a patchesStrategicMerge entry is a patch written inline
// rather than a file name.
func inlinePatch(v string) bool {
	return strings.Contains(v, "\n") || strings.HasPrefix(strings.TrimSpace(v), "{") || strings.Contains(v, ": ")
}

// kustomizationNode parses a kustomization into its top mapping, with lines. YAML that
// yaml.v3 refuses but kustomize's parser (sigs.k8s.io/yaml) reads is still checked,
// through kustomize's reading, without lines (lines=false): what kustomize would
// read is never left unchecked.
func kustomizationNode(data []byte) (m *yaml3.Node, lines bool) {
	var doc yaml3.Node
	if yaml3.Unmarshal(data, &doc) == nil && len(doc.Content) > 0 && doc.Content[0].Kind == yaml3.MappingNode {
		return doc.Content[0], true
	}
	var v map[string]any
	if sigsyaml.Unmarshal(data, &v) != nil || v == nil {
		return nil, false
	}
	b, err := yaml3.Marshal(v)
	if err != nil || yaml3.Unmarshal(b, &doc) != nil || len(doc.Content) == 0 {
		return nil, false
	}
	return doc.Content[0], false
}

// zeroLines marks every node's line unknown.
func zeroLines(n *yaml3.Node) {
	n.Line = 0
	for _, c := range n.Content {
		zeroLines(c)
	}
}

// mapPairs are a mapping's key/value pairs with aliases followed and merge keys ("<<")
// expanded, as a YAML reader sees them: a key of the mapping itself wins over a merged
// one.
func mapPairs(n *yaml3.Node) [][2]*yaml3.Node {
	var out [][2]*yaml3.Node
	have := map[string]bool{}
	var merged []*yaml3.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		if k.Value == "<<" && v != nil {
			if v.Kind == yaml3.SequenceNode {
				for _, c := range v.Content {
					merged = append(merged, deref(c))
				}
			} else {
				merged = append(merged, v)
			}
			continue
		}
		have[k.Value] = true
		out = append(out, [2]*yaml3.Node{k, v})
	}
	for _, m := range merged {
		if m == nil || m.Kind != yaml3.MappingNode {
			continue
		}
		for _, kv := range mapPairs(m) {
			if !have[kv[0].Value] {
				have[kv[0].Value] = true
				out = append(out, kv)
			}
		}
	}
	return out
}

// deref follows an alias node to what it names.
func deref(n *yaml3.Node) *yaml3.Node {
	for i := 0; n != nil && n.Kind == yaml3.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// each calls fn with every item of a sequence node (or the node itself when it is a
// mapping, as openapi: is), and its field name.
func each(n *yaml3.Node, field string, fn func(field string, item *yaml3.Node)) {
	if n = deref(n); n == nil {
		return
	}
	switch n.Kind {
	case yaml3.SequenceNode:
		for i, c := range n.Content {
			fn(fmt.Sprintf("%s[%d]", field, i), deref(c))
		}
	case yaml3.MappingNode:
		fn(field, n)
	}
}

// eachString calls fn with every scalar of a sequence node (or the node itself when it
// is a scalar).
func eachString(n *yaml3.Node, field string, fn func(field string, item *yaml3.Node)) {
	if n = deref(n); n == nil {
		return
	}
	switch n.Kind {
	case yaml3.ScalarNode:
		fn(field, n)
	case yaml3.SequenceNode:
		for i, c := range n.Content {
			if c = deref(c); c != nil && c.Kind == yaml3.ScalarNode {
				fn(fmt.Sprintf("%s[%d]", field, i), c)
			}
		}
	}
}

// mapValue is the value of key in a mapping node (aliases and merge keys followed), or
// nil.
func mapValue(n *yaml3.Node, key string) *yaml3.Node {
	if n = deref(n); n == nil || n.Kind != yaml3.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return deref(n.Content[i+1])
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "<<" {
			merged := deref(n.Content[i+1])
			if merged != nil && merged.Kind == yaml3.SequenceNode {
				for _, c := range merged.Content {
					if v := mapValue(c, key); v != nil {
						return v
					}
				}
			} else if v := mapValue(merged, key); v != nil {
				return v
			}
		}
	}
	return nil
}

// prefetch fetches a remote entry the build will read, so that a failure is reported at
// the entry's line.
func (s *kustScan) prefetch(entry string) error {
	var err error
	if rb, ok, perr := kustomization.ParseRemoteBase(entry); perr != nil {
		return perr
	} else if ok {
		_, err = s.remotes.Git(s.ctx, rb.Repo, rb.Ref)
	} else {
		_, err = s.remotes.File(s.ctx, entry)
	}
	if err != nil {
		return fetchFailed{err}
	}
	return nil
}

// fetchFailed is a remote entry the fetcher could not fetch (its error says why).
type fetchFailed struct{ err error }

func (f fetchFailed) Error() string { return f.err.Error() }
func (f fetchFailed) Unwrap() error { return f.err }
