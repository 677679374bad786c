package render

// A bounded Helm template engine. Helm v3.21's engine.Engine runs text/template with
// no way to stop it (no context, no hook for the function map, its output buffers
// private), so a chart with `until 100000000`, `$s = print $s $s` repeated, a
// doubling dict printed, or tpl recursing into itself crashes the process with Go's
// "fatal error: out of memory" (or a stack overflow) or runs for minutes. This file is
// Helm's engine (pkg/engine: engine.go, funcs.go, files.go, Apache License 2.0, The
// Helm Authors) reshaped around a budget per target:
//
//   - time: every template body, loop iteration and bounded function checks the
//     target's deadline (and the run's context, so an interrupt stops it);
//   - output: every byte written by a template, include and tpl is charged against
//     HelmLimits.MaxOutput, and the functions that can make a big value from a small
//     one (repeat, until, untilStep, seq, rand*, indent, replace, printf, print, cat,
//     toYaml/toJson/toToml, deepCopy, merge, and printing a value in an action) check
//     the size of what they would make first, so nothing is allocated past the budget;
//   - depth: templates, include and tpl nest at most helmMaxDepth deep (text/template
//     allows 100000 levels per Execute, and tpl and include start a fresh Execute).
//
// The templates' output is the same as Helm's: same function map, same values, same
// order, same "<no value>" handling, same error texts.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
	"github.com/Masterminds/sprig/v3"
	"github.com/gobwas/glob"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"sigs.k8s.io/yaml"
	goYaml "sigs.k8s.io/yaml/goyaml.v3"
)

// Default bounds of one Helm target's template execution.
const (
	DefaultHelmTimeout   = 30 * time.Second
	DefaultHelmMaxOutput = 128 << 20
)

// helmMaxDepth bounds how deep templates, include and tpl nest.
const helmMaxDepth = 2000

// HelmLimits bound one target's template execution; zero fields take the defaults.
type HelmLimits struct {
	// Timeout is the wall time the templates of one target may run.
	Timeout time.Duration
	// MaxOutput is the number of bytes the templates of one target may produce, every
	// include and tpl counted (and what printing, repeat, toYaml and the like would make).
	MaxOutput int64
}

func (l HelmLimits) withDefaults() HelmLimits {
	if l.Timeout <= 0 {
		l.Timeout = DefaultHelmTimeout
	}
	if l.MaxOutput <= 0 {
		l.MaxOutput = DefaultHelmMaxOutput
	}
	return l
}

// HelmLimitError is a chart whose templates went past a bound.
type HelmLimitError struct {
	// What is "time", "output" or "depth".
	What string
	// Detail says what was being done.
	Detail string
	Limits HelmLimits
}

func (e *HelmLimitError) Error() string {
	switch e.What {
	case "time":
		return fmt.Sprintf("templates ran longer than %s and were stopped%s; if the chart is legitimate, raise limits.helmTimeout in .gitgate.yaml or --helm-timeout", e.Limits.Timeout, e.Detail)
	case "output":
		return fmt.Sprintf("templates produced more than %d bytes and were stopped%s; if the chart is legitimate, raise limits.helmMaxOutput in .gitgate.yaml or --helm-max-output", e.Limits.MaxOutput, e.Detail)
	}
	return fmt.Sprintf("templates nest more than %d levels deep (include, tpl or template recursing?)%s", helmMaxDepth, e.Detail)
}

// helmBudget is one target's budget. Template execution is single-threaded.
type helmBudget struct {
	ctx    context.Context // with the target's deadline
	parent context.Context // the run's
	limits HelmLimits
	used   int64
	depth  int
	err    error // sticky: once a bound is hit everything fails
}

func (b *helmBudget) check() error {
	if b.err != nil {
		return b.err
	}
	if b.ctx.Err() != nil {
		if err := b.parent.Err(); err != nil {
			b.err = err
		} else {
			b.err = &HelmLimitError{What: "time", Limits: b.limits}
		}
	}
	return b.err
}

func (b *helmBudget) remaining() int64 { return b.limits.MaxOutput - b.used }

// charge counts n bytes produced.
func (b *helmBudget) charge(n int64) error {
	if err := b.check(); err != nil {
		return err
	}
	b.used += n
	if b.used > b.limits.MaxOutput {
		b.err = &HelmLimitError{What: "output", Limits: b.limits}
	}
	return b.err
}

// want refuses to make n more bytes, before they are made, when they would not fit.
func (b *helmBudget) want(fn string, n int64) error {
	if err := b.check(); err != nil {
		return err
	}
	if n > b.remaining() || n < 0 {
		b.err = &HelmLimitError{What: "output", Detail: fmt.Sprintf(" (%s would make %s)", fn, helmSize(n)), Limits: b.limits}
	}
	return b.err
}

func helmSize(n int64) string {
	if n < 0 {
		return "more than the address space"
	}
	return fmt.Sprintf("about %d bytes", n)
}

// sizeOf estimates the printed size of values (as fmt, YAML or JSON would write them,
// indentation included), stopping once it passes limit: a dict that refers to itself,
// or doubles a hundred times, costs no more than the limit to measure.
func sizeOf(limit int64, vs ...any) int64 {
	var n int64
	var walk func(v reflect.Value, depth int)
	walk = func(v reflect.Value, depth int) {
		if n > limit || !v.IsValid() {
			return
		}
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem(), depth)
			}
			n += 4
		case reflect.String:
			n += int64(v.Len()) + 2
		case reflect.Map:
			it := v.MapRange()
			for it.Next() && n <= limit {
				n += 4 + 2*int64(depth)
				walk(it.Key(), depth+1)
				walk(it.Value(), depth+1)
			}
		case reflect.Slice, reflect.Array:
			if v.Type().Elem().Kind() == reflect.Uint8 {
				n += int64(v.Len()) * 2
				return
			}
			for i := 0; i < v.Len() && n <= limit; i++ {
				n += 4 + 2*int64(depth)
				walk(v.Index(i), depth+1)
			}
		case reflect.Struct:
			for i := 0; i < v.NumField() && n <= limit; i++ {
				n += 4 + 2*int64(depth)
				walk(v.Field(i), depth+1)
			}
		default:
			n += 24
		}
	}
	for _, v := range vs {
		walk(reflect.ValueOf(v), 0)
	}
	return n
}

// budgetWriter charges what templates write.
type budgetWriter struct {
	b   *helmBudget
	buf strings.Builder
}

func (w *budgetWriter) Write(p []byte) (int, error) {
	if err := w.b.charge(int64(len(p))); err != nil {
		return 0, err
	}
	return w.buf.Write(p)
}

// helmRenderable is a template with the values in its scope (Helm's renderable).
type helmRenderable struct {
	tpl      string
	vals     chartutil.Values
	basePath string
}

const (
	helmWarnStart = "HELM_ERR_START"
	helmWarnEnd   = "HELM_ERR_END"
	// helmRecursionMax is Helm's bound on one name's nested includes.
	helmRecursionMax = 1000
)

var helmWarnRegex = regexp.MustCompile(helmWarnStart + `((?s).*)` + helmWarnEnd)

// helmEngine renders one chart.
type helmEngine struct {
	b        *helmBudget
	strict   bool
	included map[string]int
	// hooks are the names of the bookkeeping functions inserted into every template.
	hooks template.FuncMap
}

// renderHelmTemplates is engine.Engine{}.Render with the budget: the zero Engine has
// no cluster (lookup returns an empty map) and no DNS (getHostByName returns "").
func renderHelmTemplates(ctx context.Context, ch *chart.Chart, values chartutil.Values, limits HelmLimits) (rendered map[string]string, err error) {
	limits = limits.withDefaults()
	tctx, cancel := context.WithTimeout(ctx, limits.Timeout)
	defer cancel()
	e := &helmEngine{b: &helmBudget{ctx: tctx, parent: ctx, limits: limits}, included: map[string]int{}}
	e.hooks = template.FuncMap{
		"__gitgate_enter": e.enter,
		"__gitgate_leave": e.leave,
		"__gitgate_tick":  e.tick,
		"__gitgate_out":   e.out,
	}
	tpls := helmAllTemplates(ch, values)

	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("rendering template failed: %v", r)
		}
	}()
	t := template.New("gotpl")
	t.Option("missingkey=zero")
	e.initFuncMap(t)

	keys := helmSortTemplates(tpls)
	for _, filename := range keys {
		if _, err := t.New(filename).Parse(tpls[filename].tpl); err != nil {
			return map[string]string{}, helmCleanupParseError(filename, err)
		}
	}
	if err := e.instrument(t); err != nil {
		return map[string]string{}, err
	}

	rendered = make(map[string]string, len(keys))
	for _, filename := range keys {
		if strings.HasPrefix(path.Base(filename), "_") {
			continue
		}
		vals := tpls[filename].vals
		vals["Template"] = chartutil.Values{"Name": filename, "BasePath": tpls[filename].basePath}
		w := &budgetWriter{b: e.b}
		e.b.depth = 0
		err := t.ExecuteTemplate(w, filename, vals)
		if e.b.err != nil {
			// A bound, or the run's context: name the template that was running.
			return map[string]string{}, fmt.Errorf("execution error in (%s): %w", filename, e.b.err)
		}
		if err != nil {
			return map[string]string{}, helmCleanupExecError(filename, err)
		}
		rendered[filename] = strings.ReplaceAll(w.buf.String(), "<no value>", "")
	}
	return rendered, nil
}

// instrument rewrites every parsed template: its body is entered and left through the
// depth counter, every range iteration ticks the clock, and every action that prints
// a value first has its size checked.
func (e *helmEngine) instrument(t *template.Template) error {
	hook, err := parse.Parse("gitgate-hooks", "{{__gitgate_enter}}{{__gitgate_tick}}{{__gitgate_leave}}", "{{", "}}", e.hooks)
	if err != nil {
		return err
	}
	nodes := hook["gitgate-hooks"].Root.Nodes
	enter, tick, leave := nodes[0], nodes[1], nodes[2]
	for _, tt := range t.Templates() {
		if tt.Tree == nil || tt.Tree.Root == nil {
			continue
		}
		if helmInstrumented(tt.Tree.Root) {
			continue
		}
		e.rewrite(tt.Tree.Root, tick)
		root := tt.Tree.Root
		root.Nodes = append(append([]parse.Node{enter}, root.Nodes...), leave)
	}
	return nil
}

func helmInstrumented(l *parse.ListNode) bool {
	if len(l.Nodes) == 0 {
		return false
	}
	a, ok := l.Nodes[0].(*parse.ActionNode)
	if !ok || len(a.Pipe.Cmds) != 1 || len(a.Pipe.Cmds[0].Args) != 1 {
		return false
	}
	id, ok := a.Pipe.Cmds[0].Args[0].(*parse.IdentifierNode)
	return ok && id.Ident == "__gitgate_enter"
}

func (e *helmEngine) rewrite(l *parse.ListNode, tick parse.Node) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.ActionNode:
			if len(n.Pipe.Decl) == 0 && !n.Pipe.IsAssign && len(n.Pipe.Cmds) > 0 {
				last := n.Pipe.Cmds[len(n.Pipe.Cmds)-1]
				out := last.Copy().(*parse.CommandNode)
				out.Args = []parse.Node{parse.NewIdentifier("__gitgate_out").SetPos(last.Pos)}
				n.Pipe.Cmds = append(n.Pipe.Cmds, out)
			}
		case *parse.RangeNode:
			if n.List != nil {
				n.List.Nodes = append([]parse.Node{tick}, n.List.Nodes...)
			}
			e.rewrite(n.List, tick)
			e.rewrite(n.ElseList, tick)
		case *parse.IfNode:
			e.rewrite(n.List, tick)
			e.rewrite(n.ElseList, tick)
		case *parse.WithNode:
			e.rewrite(n.List, tick)
			e.rewrite(n.ElseList, tick)
		case *parse.ListNode:
			e.rewrite(n, tick)
		}
	}
}

func (e *helmEngine) enter() (string, error) {
	if err := e.b.check(); err != nil {
		return "", err
	}
	e.b.depth++
	if e.b.depth > helmMaxDepth {
		e.b.err = &HelmLimitError{What: "depth", Limits: e.b.limits}
		return "", e.b.err
	}
	return "", nil
}

func (e *helmEngine) leave() string {
	e.b.depth--
	return ""
}

func (e *helmEngine) tick() (string, error) { return "", e.b.check() }

// out passes an action's value through, after checking that printing it fits.
func (e *helmEngine) out(v reflect.Value) (reflect.Value, error) {
	if err := e.b.check(); err != nil {
		return v, err
	}
	if !v.IsValid() {
		return v, nil
	}
	switch v.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		return v, nil // its bytes are charged as they are written
	}
	if v.CanInterface() {
		if err := e.b.want("printing a value", sizeOf(e.b.remaining(), v.Interface())); err != nil {
			return v, err
		}
	}
	return v, nil
}

// include is Helm's include, with the output charged and the nesting bounded.
func (e *helmEngine) include(t *template.Template) func(string, any) (string, error) {
	return func(name string, data any) (string, error) {
		if v, ok := e.included[name]; ok {
			if v > helmRecursionMax {
				// Helm's limit, reported once rather than as a thousand nested errors.
				e.b.err = &HelmLimitError{What: "depth", Detail: fmt.Sprintf(" (include %q nests itself more than %d times)", name, helmRecursionMax), Limits: e.b.limits}
				return "", e.b.err
			}
			e.included[name]++
		} else {
			e.included[name] = 1
		}
		w := &budgetWriter{b: e.b}
		err := t.ExecuteTemplate(w, name, data)
		e.included[name]--
		if e.b.err != nil {
			return "", e.b.err
		}
		return w.buf.String(), err
	}
}

// tpl is Helm's tpl, with the output charged, the new template instrumented and the
// nesting bounded (each tpl call counts as a level, as each include does).
func (e *helmEngine) tpl(parent *template.Template) func(string, any) (string, error) {
	return func(text string, vals any) (string, error) {
		if _, err := e.enter(); err != nil {
			return "", err
		}
		defer e.leave()
		if err := e.b.charge(int64(len(text))); err != nil { // parsing costs as much as printing
			return "", err
		}
		t, err := parent.Clone()
		if err != nil {
			return "", fmt.Errorf("cannot clone template: %w", err)
		}
		if e.strict {
			t.Option("missingkey=error")
		} else {
			t.Option("missingkey=zero")
		}
		t.Funcs(template.FuncMap{"include": e.include(t), "tpl": e.tpl(t)})
		t, err = t.New(parent.Name()).Parse(text)
		if err != nil {
			return "", fmt.Errorf("cannot parse template %q: %w", text, err)
		}
		if err := e.instrument(t); err != nil {
			return "", err
		}
		w := &budgetWriter{b: e.b}
		if err := t.Execute(w, vals); err != nil {
			if e.b.err != nil {
				return "", e.b.err
			}
			return "", fmt.Errorf("error during tpl function execution for %q: %w", text, err)
		}
		return strings.ReplaceAll(w.buf.String(), "<no value>", ""), nil
	}
}

// initFuncMap is Helm's function map (sprig without env and expandenv, Helm's extras,
// include, tpl, required, fail, an empty lookup, an empty getHostByName), with the
// functions that can allocate without bound replaced by bounded ones.
func (e *helmEngine) initFuncMap(t *template.Template) {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	extra := template.FuncMap{
		"toToml":        helmToTOML,
		"fromToml":      helmFromTOML,
		"toYaml":        helmToYAML,
		"toYamlPretty":  helmToYAMLPretty,
		"fromYaml":      helmFromYAML,
		"fromYamlArray": helmFromYAMLArray,
		"toJson":        helmToJSON,
		"fromJson":      helmFromJSON,
		"fromJsonArray": helmFromJSONArray,
		"lookup": func(string, string, string, string) (map[string]any, error) {
			return map[string]any{}, nil
		},
		"include": e.include(t),
		"tpl":     e.tpl(t),
		"required": func(warn string, val any) (any, error) {
			if val == nil {
				return val, errors.New(helmWarnStart + warn + helmWarnEnd)
			} else if s, ok := val.(string); ok && s == "" {
				return val, errors.New(helmWarnStart + warn + helmWarnEnd)
			}
			return val, nil
		},
		"fail": func(msg string) (string, error) {
			return "", errors.New(helmWarnStart + msg + helmWarnEnd)
		},
		"getHostByName": func(string) string { return "" },
		// text/template's builtins that format.
		"print":   fmt.Sprint,
		"println": fmt.Sprintln,
		"printf":  fmt.Sprintf,
	}
	for k, v := range extra {
		f[k] = v
	}
	e.bound(f)
	for k, v := range e.hooks {
		f[k] = v
	}
	t.Funcs(f)
}

// helmFormatting are the functions whose result is about as big as their arguments
// printed (or whose work is): their arguments are measured first and their result charged.
var helmFormatting = []string{
	"print", "println", "cat", "join", "toString", "toStrings", "quote", "squote",
	"toYaml", "toYamlPretty", "toJson", "toPrettyJson", "toRawJson", "mustToJson",
	"mustToPrettyJson", "mustToRawJson", "toToml", "deepCopy", "mustDeepCopy", "merge",
	"mustMerge", "mergeOverwrite", "mustMergeOverwrite", "b64enc", "b32enc", "nospace",
	"upper", "lower", "title", "untitle", "swapcase", "camelcase", "snakecase", "kebabcase",
	"wrap", "wrapWith", "sortAlpha", "html", "js", "urlquery", "shuffle", "concat",
	"fromYaml", "fromJson", "fromYamlArray", "fromJsonArray", "fromToml", "deepEqual",
}

// helmCollections are the functions that make a new list or dict: their result is
// charged 16 bytes an element.
var helmCollections = []string{
	"list", "tuple", "dict", "append", "mustAppend", "push", "mustPush", "prepend",
	"mustPrepend", "splitList", "split", "splitn", "regexFindAll", "mustRegexFindAll",
	"regexSplit", "mustRegexSplit", "chunk", "mustChunk",
}

// helmWrapOptions say how a wrapped function is bounded.
type helmWrapOptions struct {
	// measure: the printed size of the arguments must fit before the call.
	measure bool
	// cost estimates, from the arguments, what the call makes or does, in bytes.
	cost func(args []reflect.Value) int64
	// fixed is charged for every call (set grows a dict in place).
	fixed int64
	// keep: the result is not charged.
	keep bool
}

// bound replaces the functions that could allocate or loop without bound.
func (e *helmEngine) bound(f template.FuncMap) {
	b := e.b
	wrap := func(name string, o helmWrapOptions) {
		if fn, ok := f[name]; ok {
			f[name] = e.wrapFunc(name, fn, o)
		}
	}
	for _, name := range helmFormatting {
		wrap(name, helmWrapOptions{measure: true})
	}
	for _, name := range helmCollections {
		wrap(name, helmWrapOptions{})
	}
	wrap("set", helmWrapOptions{fixed: 64, keep: true})
	wrap("unset", helmWrapOptions{keep: true})
	for _, name := range []string{"regexReplaceAll", "regexReplaceAllLiteral", "mustRegexReplaceAll", "mustRegexReplaceAllLiteral"} {
		wrap(name, helmWrapOptions{measure: true, cost: func(args []reflect.Value) int64 {
			// An empty match at every position inserts the replacement everywhere.
			if len(args) == 3 && args[1].Kind() == reflect.String && args[2].Kind() == reflect.String {
				return (int64(args[1].Len()) + 1) * (int64(args[2].Len()) + 1)
			}
			return 0
		}})
	}
	for _, name := range []string{"uniq", "mustUniq", "without", "mustWithout", "has", "mustHas"} {
		wrap(name, helmWrapOptions{cost: func(args []reflect.Value) int64 {
			// uniq and without compare every element with every other: charge their
			// steps as if each were a byte written.
			var n int64
			for _, a := range args {
				for a.Kind() == reflect.Interface && !a.IsNil() {
					a = a.Elem()
				}
				if a.Kind() == reflect.Slice {
					n = max(n, int64(a.Len()))
				}
			}
			return n * n / 16
		}})
	}
	printf := f["printf"].(func(string, ...any) string)
	f["printf"] = e.wrapFunc("printf", func(format string, args ...any) (string, error) {
		// Widths and precisions ("%0100000000d", "%*d") make big strings from small ones.
		var extra int64
		for _, m := range helmNumbers.FindAllString(format, -1) {
			if n, err := strconv.ParseInt(m, 10, 64); err == nil {
				extra += n
			} else {
				extra = -1 // past int64: refused
				break
			}
		}
		if strings.Contains(format, "*") {
			for _, a := range args {
				if n, ok := helmInt(a); ok {
					extra += n
				}
			}
		}
		if err := b.want("printf", extra); err != nil {
			return "", err
		}
		return printf(format, args...), nil
	}, helmWrapOptions{measure: true})
	repeat := f["repeat"].(func(int, string) string)
	f["repeat"] = func(count int, str string) (string, error) {
		if err := b.want("repeat", int64(count)*int64(len(str))); err != nil {
			return "", err
		}
		s := repeat(count, str)
		return s, b.charge(int64(len(s)))
	}
	until := f["until"].(func(int) []int)
	f["until"] = func(count int) ([]int, error) {
		if err := b.want("until", 8*helmAbs(int64(count))); err != nil {
			return nil, err
		}
		l := until(count)
		return l, b.charge(8 * int64(len(l)))
	}
	untilStep := f["untilStep"].(func(int, int, int) []int)
	f["untilStep"] = func(start, stop, step int) ([]int, error) {
		var n int64
		if step != 0 {
			n = helmAbs((int64(stop) - int64(start)) / int64(step))
		}
		if err := b.want("untilStep", 8*n); err != nil {
			return nil, err
		}
		l := untilStep(start, stop, step)
		return l, b.charge(8 * int64(len(l)))
	}
	seq := f["seq"].(func(...int) string)
	f["seq"] = func(params ...int) (string, error) {
		var n int64
		switch len(params) {
		case 1:
			n = helmAbs(int64(params[0]))
		case 2:
			n = helmAbs(int64(params[1]) - int64(params[0]))
		case 3:
			if params[1] != 0 {
				n = helmAbs((int64(params[2]) - int64(params[0])) / int64(params[1]))
			}
		}
		if err := b.want("seq", 21*(n+1)); err != nil {
			return "", err
		}
		s := seq(params...)
		return s, b.charge(int64(len(s)))
	}
	for _, name := range []string{"randAlphaNum", "randAlpha", "randNumeric", "randAscii"} {
		fn := f[name].(func(int) string)
		f[name] = func(count int) (string, error) {
			if err := b.want(name, helmAbs(int64(count))); err != nil {
				return "", err
			}
			s := fn(count)
			return s, b.charge(int64(len(s)))
		}
	}
	randBytes := f["randBytes"].(func(int) (string, error))
	f["randBytes"] = func(count int) (string, error) {
		if err := b.want("randBytes", 2*helmAbs(int64(count))); err != nil {
			return "", err
		}
		return randBytes(count)
	}
	for _, name := range []string{"indent", "nindent"} {
		fn := f[name].(func(int, string) string)
		f[name] = func(spaces int, v string) (string, error) {
			lines := int64(strings.Count(v, "\n")) + 2
			if err := b.want(name, int64(len(v))+lines*helmAbs(int64(spaces))); err != nil {
				return "", err
			}
			s := fn(spaces, v)
			return s, b.charge(int64(len(s)))
		}
	}
	replace := f["replace"].(func(string, string, string) string)
	f["replace"] = func(old, new, src string) (string, error) {
		n := int64(strings.Count(src, old))
		if old == "" {
			n = int64(utf8.RuneCountInString(src)) + 1
		}
		if err := b.want("replace", int64(len(src))+n*int64(len(new))); err != nil {
			return "", err
		}
		s := replace(old, new, src)
		return s, b.charge(int64(len(s)))
	}
}

var helmNumbers = regexp.MustCompile(`[0-9]+`)

func helmAbs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

func helmInt(v any) (int64, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return helmAbs(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int64(rv.Uint() & (1<<62 - 1)), true
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		if f < 0 {
			f = -f
		}
		if f > 1<<62 {
			return 1 << 62, true
		}
		return int64(f), true
	}
	return 0, false
}

var errorType = reflect.TypeFor[error]()

// wrapFunc returns fn with the same signature, bounded as o says. It checks the
// deadline first; a string result is charged by its length, a list or dict 16 bytes an
// element.
func (e *helmEngine) wrapFunc(name string, fn any, o helmWrapOptions) any {
	fv := reflect.ValueOf(fn)
	ft := fv.Type()
	b := e.b
	fail := func(err error) []reflect.Value {
		out := make([]reflect.Value, ft.NumOut())
		for i := range out {
			out[i] = reflect.Zero(ft.Out(i))
		}
		if ft.NumOut() == 2 && ft.Out(1) == errorType {
			out[1] = reflect.ValueOf(&err).Elem()
			return out
		}
		panic(err) // text/template turns a function's panic into an error
	}
	return reflect.MakeFunc(ft, func(args []reflect.Value) []reflect.Value {
		if err := b.check(); err != nil {
			return fail(err)
		}
		want := o.fixed
		if o.measure {
			vs := make([]any, 0, len(args))
			for _, a := range args {
				if a.CanInterface() {
					vs = append(vs, a.Interface())
				}
			}
			want += sizeOf(b.remaining(), vs...)
		}
		if o.cost != nil {
			want += o.cost(args)
		}
		if err := b.want(name, want); err != nil {
			return fail(err)
		}
		var out []reflect.Value
		if ft.IsVariadic() {
			out = fv.CallSlice(args)
		} else {
			out = fv.Call(args)
		}
		charged := o.fixed
		if len(out) > 0 && !o.keep {
			switch r := reflect.Indirect(out[0]); r.Kind() {
			case reflect.String:
				charged += int64(r.Len())
			case reflect.Slice, reflect.Map:
				charged += 16 * int64(r.Len())
			}
		}
		if charged > 0 {
			if err := b.charge(charged); err != nil {
				return fail(err)
			}
		}
		return out
	}).Interface()
}

// helmAllTemplates is Helm's allTemplates: every template of the chart and its
// dependencies, with the values in the template's scope.
func helmAllTemplates(c *chart.Chart, vals chartutil.Values) map[string]helmRenderable {
	templates := make(map[string]helmRenderable)
	helmRecAllTpls(c, templates, vals)
	return templates
}

func helmRecAllTpls(c *chart.Chart, templates map[string]helmRenderable, vals chartutil.Values) map[string]any {
	subCharts := make(map[string]any)
	chartMetaData := struct {
		chart.Metadata
		IsRoot bool
	}{*c.Metadata, c.IsRoot()}

	next := map[string]any{
		"Chart":        chartMetaData,
		"Files":        helmNewFiles(c.Files),
		"Release":      vals["Release"],
		"Capabilities": vals["Capabilities"],
		"Values":       make(chartutil.Values),
		"Subcharts":    subCharts,
	}
	if c.IsRoot() {
		next["Values"] = vals["Values"]
	} else if vs, err := vals.Table("Values." + c.Name()); err == nil {
		next["Values"] = vs
	}
	for _, child := range c.Dependencies() {
		subCharts[child.Name()] = helmRecAllTpls(child, templates, next)
	}
	newParentID := c.ChartFullPath()
	for _, t := range c.Templates {
		if t == nil {
			continue
		}
		if strings.EqualFold(c.Metadata.Type, "library") && !strings.HasPrefix(filepath.Base(t.Name), "_") {
			continue
		}
		templates[path.Join(newParentID, t.Name)] = helmRenderable{
			tpl:      string(t.Data),
			vals:     next,
			basePath: path.Join(newParentID, "templates"),
		}
	}
	return next
}

// helmSortTemplates is Helm's sortTemplates: deepest paths first.
func helmSortTemplates(tpls map[string]helmRenderable) []string {
	keys := make([]string, 0, len(tpls))
	for key := range tpls {
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		ca, cb := strings.Count(a, "/"), strings.Count(b, "/")
		if ca == cb {
			return a > b
		}
		return ca > cb
	})
	return keys
}

func helmCleanupParseError(filename string, err error) error {
	tokens := strings.Split(err.Error(), ": ")
	if len(tokens) == 1 {
		return fmt.Errorf("parse error in (%s): %s", filename, err)
	}
	return fmt.Errorf("parse error at (%s): %s", tokens[1], tokens[len(tokens)-1])
}

func helmCleanupExecError(filename string, err error) error {
	if _, ok := err.(template.ExecError); !ok {
		return err
	}
	tokens := strings.SplitN(err.Error(), ": ", 3)
	if len(tokens) != 3 {
		return fmt.Errorf("execution error in (%s): %s", filename, err)
	}
	if parts := helmWarnRegex.FindStringSubmatch(tokens[2]); len(parts) >= 2 {
		return fmt.Errorf("execution error at (%s): %s", tokens[1], parts[1])
	}
	return err
}

// helmFiles is Helm's .Files.
type helmFiles map[string][]byte

func helmNewFiles(from []*chart.File) helmFiles {
	files := make(map[string][]byte)
	for _, f := range from {
		files[f.Name] = f.Data
	}
	return files
}

func (f helmFiles) GetBytes(name string) []byte {
	if v, ok := f[name]; ok {
		return v
	}
	return []byte{}
}

func (f helmFiles) Get(name string) string { return string(f.GetBytes(name)) }

func (f helmFiles) Glob(pattern string) helmFiles {
	g, err := glob.Compile(pattern, '/')
	if err != nil {
		g, _ = glob.Compile("**")
	}
	nf := helmNewFiles(nil)
	for name, contents := range f {
		if g.Match(name) {
			nf[name] = contents
		}
	}
	return nf
}

func (f helmFiles) AsConfig() string {
	if f == nil {
		return ""
	}
	m := make(map[string]string)
	for k, v := range f {
		m[path.Base(k)] = string(v)
	}
	return helmToYAML(m)
}

func (f helmFiles) AsSecrets() string {
	if f == nil {
		return ""
	}
	m := make(map[string]string)
	for k, v := range f {
		m[path.Base(k)] = base64.StdEncoding.EncodeToString(v)
	}
	return helmToYAML(m)
}

func (f helmFiles) Lines(path string) []string {
	if f == nil || len(f[path]) == 0 {
		return []string{}
	}
	s := string(f[path])
	if s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return strings.Split(s, "\n")
}

// Helm's extra functions (pkg/engine/funcs.go).

func helmToYAML(v any) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func helmToYAMLPretty(v any) string {
	var data bytes.Buffer
	encoder := goYaml.NewEncoder(&data)
	encoder.SetIndent(2)
	if err := encoder.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(data.String(), "\n")
}

func helmFromYAML(str string) map[string]any {
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func helmFromYAMLArray(str string) []any {
	a := []any{}
	if err := yaml.Unmarshal([]byte(str), &a); err != nil {
		a = []any{err.Error()}
	}
	return a
}

func helmToTOML(v any) string {
	b := bytes.NewBuffer(nil)
	if err := toml.NewEncoder(b).Encode(v); err != nil {
		return err.Error()
	}
	return b.String()
}

func helmFromTOML(str string) map[string]any {
	m := make(map[string]any)
	if err := toml.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func helmToJSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func helmFromJSON(str string) map[string]any {
	m := make(map[string]any)
	if err := json.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func helmFromJSONArray(str string) []any {
	a := []any{}
	if err := json.Unmarshal([]byte(str), &a); err != nil {
		a = []any{err.Error()}
	}
	return a
}
