package render

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-jsonnet"
	"github.com/google/go-jsonnet/ast"
	"github.com/google/go-jsonnet/toolutils"

	"github.com/gitgate/gitgate/internal/repopath"
	"github.com/gitgate/gitgate/policy"
)

// This file renders the .jsonnet files of a directory source the way Argo CD's
// repo-server does (reposerver/repository/repository.go, findManifests and
// makeJsonnetVM): one fresh VM per file; import paths searched in the importing file's
// directory, then in the library paths, the last one first (go-jsonnet's FileImporter),
// the library paths being the source directory followed by directory.jsonnet.libs, which
// Argo CD resolves against the repository root; extVars and TLAs as strings or as code,
// their values with the Application's build environment substituted; the result an
// object (one manifest) or an array of objects, each with a kind.
//
// Differences, on purpose: every import is read through the repository's confined view
// (a path or symbolic link out of the repository is an error naming the importing file,
// where Argo CD's importer reads any file of the repo-server), and the evaluation runs in
// a child process of this binary (jsonnet_worker.go) under the target's time budget and a
// memory bound, with no native functions, std.trace discarded and no file access of its
// own: go-jsonnet can neither be cancelled nor bounded in memory from inside, and a
// std.makeArray(1e9, ...) would take the whole process down. The imports are resolved
// here, before the evaluation: jsonnet imports are literal strings, so the files a file
// can import are known without evaluating it (and are its dependencies in merge-request
// mode, see targetDeps).

// JsonnetOptions are an Argo CD directory source's jsonnet settings
// (spec.source.directory.jsonnet).
type JsonnetOptions struct {
	// Libs are library directories, repo-relative (Argo CD joins them to the repository
	// root, a leading "/" included), searched after the source directory.
	Libs []string `json:"libs,omitempty"`
	// ExtVars and TLAs are external variables and top-level arguments, their values with
	// Argo CD's build environment already substituted.
	ExtVars []JsonnetVar `json:"extVars,omitempty"`
	TLAs    []JsonnetVar `json:"tlas,omitempty"`
}

// JsonnetVar is one external variable or top-level argument: a string, or jsonnet code
// when Code is set.
type JsonnetVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Code  bool   `json:"code,omitempty"`
}

// DefaultJsonnetMaxMemory bounds the heap of one jsonnet evaluation unless set in Repo.
const DefaultJsonnetMaxMemory = 1 << 30

// jsonnetMaxStack is go-jsonnet's own default call depth, as Argo CD runs it.
const jsonnetMaxStack = 500

func isJsonnet(name string) bool { return strings.HasSuffix(name, ".jsonnet") }

// jsonnetPaths are the library paths of a target: its directory (or the directory of
// its file), then the libs, in Argo CD's order; libs outside the repository are errors.
func jsonnetPaths(t Target) ([]string, error) {
	dir := t.Path
	if isJsonnet(dir) || isYAML(dir) {
		dir = path.Dir(dir)
	}
	out := []string{dir}
	if t.Jsonnet == nil {
		return out, nil
	}
	for _, l := range t.Jsonnet.Libs {
		p, err := repopath.Clean(strings.TrimPrefix(l, "/")) // "/lib" is the repository's lib
		if err != nil {
			return nil, fmt.Errorf("directory.jsonnet.libs: %s: %w", l, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// jsonnetImport is what a (importing file, import path) pair resolves to.
type jsonnetImport struct {
	found string // repo-relative path, "" when not found
	err   error  // a path that may not be read (out of the repository, too big...)
}

// jsonnetLookup reads one candidate path: found, absent (false, nil), or refused.
type jsonnetLookup func(p string) (bool, error)

// jsonnetResolve finds what `import "imp"` in file from names, as go-jsonnet's
// FileImporter does: from's directory first, then the library paths from the last to
// the first. The code of extVars and TLAs (from == "") imports from the library paths
// only: Argo CD resolves it against the repo-server's working directory, not the
// repository. Absolute paths and paths above the repository root are refused.
func jsonnetResolve(from, imp string, jpaths []string, look jsonnetLookup) jsonnetImport {
	where := from
	if where == "" {
		where = "an extVar or TLA"
	}
	if path.IsAbs(imp) || strings.HasPrefix(imp, `\`) || len(imp) > 2 && imp[1] == ':' && (imp[2] == '/' || imp[2] == '\\') {
		return jsonnetImport{err: fmt.Errorf("import %q in %s: an absolute path, outside the repository; import it relative to the file or a directory.jsonnet.libs entry", imp, where)}
	}
	var dirs []string
	if from != "" {
		dirs = append(dirs, path.Dir(from))
	}
	for i := len(jpaths) - 1; i >= 0; i-- {
		dirs = append(dirs, jpaths[i])
	}
	for _, d := range dirs {
		p, err := repopath.Clean(path.Join(d, imp))
		if err != nil {
			return jsonnetImport{err: fmt.Errorf("import %q in %s: %s leaves the repository; imports are confined to it", imp, where, path.Join(d, imp))}
		}
		ok, err := look(p)
		if err != nil {
			return jsonnetImport{err: fmt.Errorf("import %q in %s: %w", imp, where, err)}
		}
		if ok {
			return jsonnetImport{found: p}
		}
	}
	return jsonnetImport{}
}

// jsonnetClosure is every file the evaluation of some .jsonnet files can read: the
// files themselves and, transitively, their import, importstr and importbin targets.
type jsonnetClosure struct {
	repo    Repo
	jpaths  []string
	files   map[string][]byte // found and read
	refused map[string]string // candidate path -> why it may not be read
	tried   map[string]bool   // every candidate looked at, found or not (dependencies)
	parsed  map[string]bool
}

func newJsonnetClosure(repo Repo, jpaths []string) *jsonnetClosure {
	return &jsonnetClosure{repo: repo, jpaths: jpaths, files: map[string][]byte{}, refused: map[string]string{}, tried: map[string]bool{}, parsed: map[string]bool{}}
}

// look reads a candidate through the confined view: absent, found (and kept), or refused.
func (c *jsonnetClosure) look(p string) (bool, error) {
	c.tried[p] = true
	if _, ok := c.files[p]; ok {
		return true, nil
	}
	if why, ok := c.refused[p]; ok {
		return false, errors.New(why)
	}
	data, err := c.read(p)
	if errors.Is(err, fs.ErrNotExist) {
		var esc *repopath.EscapeError
		if !errors.As(err, &esc) {
			return false, nil
		}
	}
	if err != nil {
		c.refused[p] = err.Error()
		return false, err
	}
	c.files[p] = data
	return true, nil
}

func (c *jsonnetClosure) read(p string) ([]byte, error) {
	st, err := fs.Stat(c.repo.FS, p)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s is a directory", p)
	}
	if c.repo.MaxFileSize > 0 && st.Size() > c.repo.MaxFileSize {
		return nil, fmt.Errorf("%s is %d bytes, over the %d-byte limit; raise it with --max-file-size if the file is legitimate", p, st.Size(), c.repo.MaxFileSize)
	}
	data, err := fs.ReadFile(c.repo.FS, p)
	if err != nil {
		return nil, err
	}
	c.repo.trace(p)
	return data, nil
}

// add walks a file (or, with from "", the code of an extVar or TLA) for its imports,
// following import recursively. Parse errors are left to the evaluation, which reports
// them with their position.
func (c *jsonnetClosure) add(file, code string) {
	if file != "" {
		if c.parsed[file] {
			return
		}
		c.parsed[file] = true
	}
	node, err := jsonnet.SnippetToAST(file, code)
	if err != nil {
		return
	}
	c.walk(file, node)
}

func (c *jsonnetClosure) walk(from string, n ast.Node) {
	if n == nil {
		return
	}
	var imp string
	follow := false
	switch n := n.(type) {
	case *ast.Import:
		imp, follow = n.File.Value, true
	case *ast.ImportStr:
		imp = n.File.Value
	case *ast.ImportBin:
		imp = n.File.Value
	default:
		for _, ch := range toolutils.Children(n) {
			c.walk(from, ch)
		}
		return
	}
	r := jsonnetResolve(from, imp, c.jpaths, c.look)
	if follow && r.found != "" && !c.parsed[r.found] {
		c.add(r.found, string(c.files[r.found]))
	}
}

// jsonnetEntries adds the .jsonnet files to render and the code of the extVars and TLAs
// to the closure. A file that cannot be read is an error of its own.
func (c *jsonnetClosure) jsonnetEntries(t Target, files []string) (ok []string, errs []error) {
	for _, f := range files {
		data, err := c.read(f)
		if err != nil {
			errs = append(errs, &policy.InputError{Origin: policy.Origin{File: f}, Err: err})
			continue
		}
		c.files[f] = data
		c.tried[f] = true
		if bytes.Contains(data, []byte(skipRenderingMarker)) {
			continue
		}
		ok = append(ok, f)
	}
	if t.Jsonnet != nil {
		for _, v := range append(append([]JsonnetVar(nil), t.Jsonnet.ExtVars...), t.Jsonnet.TLAs...) {
			if v.Code {
				c.add("", v.Value)
			}
		}
	}
	for _, f := range ok {
		c.add(f, string(c.files[f]))
	}
	return ok, errs
}

// jsonnetDeps are the files rendering t's .jsonnet files reads, and the import
// candidates tried before the file found (creating one changes the render).
func jsonnetDeps(repo Repo, t Target, files []string) []string {
	jpaths, err := jsonnetPaths(t)
	if err != nil {
		return nil
	}
	c := newJsonnetClosure(repo, jpaths)
	c.jsonnetEntries(t, files)
	out := make([]string, 0, len(c.tried))
	for p := range c.tried {
		out = append(out, p)
	}
	return out
}

// JsonnetLimitError is a jsonnet file whose evaluation went past a bound.
type JsonnetLimitError struct {
	// What is "time", "memory" or "output".
	What  string
	Limit string
	// Ran is how long the file was evaluated, for "time": the budget is the target's.
	Ran time.Duration
}

func (e *JsonnetLimitError) Error() string {
	switch e.What {
	case "time":
		return fmt.Sprintf("evaluation stopped after %s: the target's time budget of %s ran out; if it is legitimate, raise limits.helmTimeout in .gitgate.yaml or --helm-timeout (the time budget of a target, jsonnet included)", e.Ran.Round(10*time.Millisecond), e.Limit)
	case "output":
		return fmt.Sprintf("evaluation produced more than %s of JSON and was stopped; if it is legitimate, raise limits.helmMaxOutput in .gitgate.yaml or --helm-max-output (the output budget of a target, jsonnet included)", e.Limit)
	}
	return fmt.Sprintf("evaluation used more than %s of memory and was stopped (a huge array or string?)", e.Limit)
}

// renderJsonnet evaluates the target's .jsonnet files; each file's objects, or an
// error naming the file (and the line go-jsonnet gives), in files' order. Every file is
// evaluated, whatever happens to the others, while the target's time budget lasts.
func renderJsonnet(ctx context.Context, repo Repo, t Target, files []string) ([]policy.Resource, []error) {
	jpaths, err := jsonnetPaths(t)
	if err != nil {
		return nil, []error{&policy.InputError{Origin: policy.Origin{File: t.DefinedIn}, Err: err}}
	}
	c := newJsonnetClosure(repo, jpaths)
	entries, errs := c.jsonnetEntries(t, files)
	if len(entries) == 0 {
		return nil, errs
	}
	limits := repo.Helm.withDefaults()
	maxMem := repo.JsonnetMaxMemory
	if maxMem <= 0 {
		maxMem = DefaultJsonnetMaxMemory
	}
	job := jsonnetJob{Files: c.files, Refused: c.refused, JPaths: jpaths, MaxStack: jsonnetMaxStack, MaxMemory: maxMem}
	if t.Jsonnet != nil {
		job.ExtVars, job.TLAs = t.Jsonnet.ExtVars, t.Jsonnet.TLAs
	}
	results := runJsonnetJobs(ctx, job, entries, limits)
	var out []policy.Resource
	for i, f := range entries {
		r := results[i]
		switch {
		case r.err != nil:
			errs = append(errs, &policy.InputError{Origin: policy.Origin{File: f}, Err: fmt.Errorf("jsonnet: %w", r.err)})
		case r.failure != nil:
			errs = append(errs, r.failure.inputError(f))
		default:
			rs, err := jsonnetObjects(f, r.output, repo.MaxObjects)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, rs...)
		}
	}
	return out, errs
}

// jsonnetFailure is a go-jsonnet error as the worker reports it: the formatted message
// (repo-relative paths: the importer only knows those) and its innermost position in a
// repository file.
type jsonnetFailure struct {
	Message string `json:"message"`
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
}

func (f *jsonnetFailure) inputError(entry string) error {
	o := policy.Origin{File: entry}
	if f.File != "" {
		o = policy.Origin{File: f.File, Line: f.Line, Col: f.Col}
	}
	msg := f.Message
	if f.File != "" && f.File != entry {
		msg = "evaluating " + entry + ": " + msg
	}
	return &policy.InputError{Origin: o, Err: errors.New(msg)}
}

// jsonnetPos finds file:line:col in go-jsonnet's formatted errors: a runtime error's
// frames ("\tfile:line:col-col\tcontext"), the innermost first, or a static error's
// first line ("file:line:col-col message"). Frames in <std>, <extvar:...> and the like
// are not files.
var jsonnetPos = regexp.MustCompile(`^\t?([^\s<>:][^\s:]*):(\d+):(\d+)`)

// jsonnetMaxFrames is how many frames of a runtime error's trace are kept.
const jsonnetMaxFrames = 3

func newJsonnetFailure(formatted string) *jsonnetFailure {
	lines := strings.Split(strings.TrimRight(formatted, "\n"), "\n")
	f := &jsonnetFailure{}
	if !strings.HasPrefix(lines[0], "RUNTIME ERROR") {
		// A static error: the position and message, then the code (left out).
		f.Message = strings.TrimSpace(lines[0])
		if m := jsonnetPos.FindStringSubmatch(lines[0]); m != nil {
			f.File = m[1]
			f.Line, _ = strconv.Atoi(m[2])
			f.Col, _ = strconv.Atoi(m[3])
			_, msg, _ := strings.Cut(f.Message, " ") // the position is the origin's
			f.Message = "STATIC ERROR: " + msg
		}
		return f
	}
	kept := []string{strings.TrimSpace(lines[0])}
	frames := 0
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "\t") || strings.TrimSpace(l) == "During evaluation" {
			continue
		}
		if m := jsonnetPos.FindStringSubmatch(l); m != nil && f.File == "" {
			f.File = m[1]
			f.Line, _ = strconv.Atoi(m[2])
			f.Col, _ = strconv.Atoi(m[3])
		}
		if frames < jsonnetMaxFrames {
			kept = append(kept, strings.Join(strings.Fields(l), " "))
		}
		frames++
	}
	if frames > jsonnetMaxFrames {
		kept = append(kept, fmt.Sprintf("(%d more frames)", frames-jsonnetMaxFrames))
	}
	f.Message = strings.Join(kept, "; ")
	return f
}

// jsonnetObjects turns a file's JSON output into resources, as Argo CD reads it: an
// array of objects or one object, each with a kind (a List's items are its objects).
func jsonnetObjects(file string, output []byte, maxObjects int) ([]policy.Resource, error) {
	fail := func(format string, args ...any) error {
		return &policy.InputError{Origin: policy.Origin{File: file, Line: 1}, Err: fmt.Errorf("jsonnet: "+format, args...)}
	}
	var top any
	if err := decodeJSONNumber(output, &top); err != nil {
		return nil, fail("the output is not JSON: %v", err)
	}
	var items []any
	switch v := top.(type) {
	case []any:
		items = v
	case map[string]any:
		items = []any{v}
	default:
		return nil, fail("the output is a %s; Argo CD expects an object or an array of objects", jsonKind(top))
	}
	if maxObjects > 0 && len(items) > maxObjects {
		return nil, fail("the output is an array of %d elements, over the limit of %d objects; if that is legitimate, raise limits.maxObjects in .gitgate.yaml or --max-objects", len(items), maxObjects)
	}
	var out []policy.Resource
	for i, it := range items {
		at := ""
		if _, ok := top.([]any); ok {
			at = fmt.Sprintf("element %d of the output", i)
		} else {
			at = "the output"
		}
		m, ok := it.(map[string]any)
		if !ok {
			return nil, fail("%s is a %s, not a Kubernetes object; Argo CD expects an object or an array of objects", at, jsonKind(it))
		}
		if k, _ := m["kind"].(string); k == "" {
			return nil, fail("%s has no kind: not a Kubernetes object (Argo CD refuses the file)", at)
		}
		if v, _ := m["apiVersion"].(string); v == "" {
			return nil, fail("%s (kind %v) has no apiVersion: not a Kubernetes object", at, m["kind"])
		}
		data, err := json.Marshal(m)
		if err != nil {
			return nil, fail("%s: %v", at, err)
		}
		rs, err := policy.Decode(file, data)
		if err != nil {
			return nil, fail("%s: %v", at, err)
		}
		for j := range rs {
			rs[j].Origin = policy.Origin{File: file, Line: 1}
			rs[j].Fields = nil // positions in the generated JSON would point at nothing
		}
		out = append(out, rs...)
	}
	return out, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case json.Number:
		return "number"
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "number"
}

// jsonnetEnv is Argo CD's build environment for an Application's source, as its
// repo-server substitutes it in extVars and TLAs (os.Expand: "$$" is "$", an unknown
// variable is empty).
func jsonnetEnv(s string, env map[string]string) string {
	return os.Expand(s, func(name string) string {
		if name == "$" {
			return "$"
		}
		return env[name]
	})
}

func decodeJSONNumber(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}
