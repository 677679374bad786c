package render

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"sigs.k8s.io/yaml"
)

// ---- templating ----

func (s *argoSet) renderValue(v any, params map[string]any) (any, error) {
	switch t := v.(type) {
	case string:
		return s.render(t, params)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, vv := range t {
			rk, err := s.render(k, params)
			if err != nil {
				return nil, err
			}
			rv, err := s.renderValue(vv, params)
			if err != nil {
				return nil, err
			}
			out[rk] = rv
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, vv := range t {
			rv, err := s.renderValue(vv, params)
			if err != nil {
				return nil, err
			}
			out[i] = rv
		}
		return out, nil
	}
	return v, nil
}

// render renders one string of a template: Go text/template with goTemplate, Argo CD's
// fasttemplate substitution otherwise.
func (s *argoSet) render(str string, params map[string]any) (string, error) {
	if !strings.Contains(str, "{{") {
		return str, nil
	}
	if !s.goTemplate {
		return argoFastReplace(str, params)
	}
	t, ok := s.cache[str]
	if !ok {
		var err error
		t, err = template.New("").Funcs(argoFuncs).Option(s.options...).Parse(str)
		if err != nil {
			return "", fmt.Errorf("template %q: %w", str, err)
		}
		s.cache[str] = t
	}
	var b bytes.Buffer
	if err := t.Execute(&b, params); err != nil {
		return "", fmt.Errorf("template %q: %w", str, err)
	}
	return b.String(), nil
}

// argoFastReplace is Argo CD's substitution without goTemplate (valyala/fasttemplate with
// "{{" and "}}"): a tag's key is trimmed of spaces and replaced by the string parameter of
// that name; unknown keys stay as they are.
func argoFastReplace(s string, params map[string]any) (string, error) {
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		b.WriteString(rest[:i])
		rest = rest[i+2:]
		j := strings.Index(rest, "}}")
		if j < 0 {
			return "", fmt.Errorf("template %q: cannot find end tag \"}}\"", s)
		}
		tag := rest[:j]
		rest = rest[j+2:]
		key := strings.TrimSpace(tag)
		if v, ok := params[key].(string); ok && key != "" {
			b.WriteString(v)
		} else {
			b.WriteString("{{" + tag + "}}")
		}
	}
}

// argoFlatten flattens nested parameters into dotted keys (lists by index), the way Argo
// CD flattens a git file's content and selects parameter sets.
func argoFlatten(prefix string, v any, out map[string]string) {
	key := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch t := v.(type) {
	case map[string]any:
		for k, vv := range t {
			argoFlatten(key(k), vv, out)
		}
	case map[string]string:
		for k, vv := range t {
			out[key(k)] = vv
		}
	case []any:
		for i, vv := range t {
			argoFlatten(key(strconv.Itoa(i)), vv, out)
		}
	case []string:
		for i, vv := range t {
			out[key(strconv.Itoa(i))] = vv
		}
	default:
		if prefix != "" {
			out[prefix] = fmt.Sprintf("%v", v)
		}
	}
}

var argoInvalidName = regexp.MustCompile(`[^-a-z0-9.]`)

// argoSanitizeName is Argo CD's normalize: lower case, only [-a-z0-9.], at most 253
// characters, starting and ending alphanumeric.
func argoSanitizeName(name string) string {
	name = argoInvalidName.ReplaceAllString(strings.ToLower(name), "-")
	if len(name) > 253 {
		name = name[:253]
	}
	return strings.Trim(name, "-.")
}

var argoSlugInvalid = regexp.MustCompile(`[^a-z0-9]+`)

// argoSlugify is Argo CD's slugify: [maxSize [smartTruncate]] name.
func argoSlugify(args ...any) (string, error) {
	if len(args) == 0 {
		return "", errors.New("slugify needs a name")
	}
	maxSize, smart := 50, true
	name, ok := args[len(args)-1].(string)
	if !ok {
		return "", errors.New("slugify: the last argument must be a string")
	}
	if len(args) > 1 {
		switch n := args[0].(type) {
		case int:
			maxSize = n
		case int64:
			maxSize = int(n)
		case float64:
			maxSize = int(n)
		default:
			return "", fmt.Errorf("slugify: maxSize %v is not a number", args[0])
		}
	}
	if len(args) > 2 {
		smart, _ = args[1].(bool)
	}
	slug := strings.Trim(argoSlugInvalid.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if maxSize > 0 && len(slug) > maxSize {
		cut := slug[:maxSize]
		if smart {
			if i := strings.LastIndex(cut, "-"); i > 0 && slug[maxSize] != '-' {
				cut = cut[:i]
			}
		}
		slug = strings.Trim(cut, "-")
	}
	return slug, nil
}

// ---- small value helpers ----

func argoString(v any) string {
	s, _ := v.(string)
	return s
}

// argoScalar prints a scalar as YAML would write it: 3, true, text.
func argoScalar(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func argoEmpty(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case string:
		return t == ""
	case bool:
		return !t
	case map[string]any:
		return len(t) == 0
	case []any:
		return len(t) == 0
	}
	return false
}

// copyJSON deep-copies JSON-like values.
func copyJSON(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, vv := range t {
			out[k] = copyJSON(vv)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, vv := range t {
			out[i] = copyJSON(vv)
		}
		return out
	case []string:
		return slices.Clone(t)
	}
	return v
}

// argoMerge merges src into dst, recursing into mappings; with override, src's other
// values replace dst's, without, dst keeps what it has.
func argoMerge(dst, src map[string]any, override bool) map[string]any {
	if dst == nil {
		dst = map[string]any{}
	}
	for k, sv := range src {
		dv, has := dst[k]
		dm, dIsMap := dv.(map[string]any)
		sm, sIsMap := sv.(map[string]any)
		switch {
		case has && dIsMap && sIsMap:
			dst[k] = argoMerge(dm, sm, override)
		case !has || (override && !argoEmpty(sv)) || argoEmpty(dv):
			dst[k] = copyJSON(sv)
		}
	}
	return dst
}

// ---- template functions ----

// argoFuncs are the functions of goTemplate ApplicationSets, built as Argo CD builds
// them: sprig's text functions without env, expandenv and getHostByName, plus normalize,
// slugify, toYaml, fromYaml and fromYamlArray.
var argoFuncs = func() template.FuncMap {
	m := sprig.TxtFuncMap()
	delete(m, "env")
	delete(m, "expandenv")
	delete(m, "getHostByName")
	m["normalize"] = argoSanitizeName
	m["slugify"] = argoSlugify
	m["toYaml"] = func(v any) (string, error) {
		b, err := yaml.Marshal(v)
		return strings.TrimSuffix(string(b), "\n"), err
	}
	m["fromYaml"] = func(s string) (map[string]any, error) {
		var out map[string]any
		err := yaml.Unmarshal([]byte(s), &out)
		return out, err
	}
	m["fromYamlArray"] = func(s string) ([]any, error) {
		var out []any
		err := yaml.Unmarshal([]byte(s), &out)
		return out, err
	}
	return m
}()
