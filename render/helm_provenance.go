package render

import (
	"bytes"
	"sort"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/policy"
	yaml3 "go.yaml.in/yaml/v3"
)

// valueLeaves are the scalar values a Helm target's values files set, each with the
// file, line and column that set it: what lets a finding in a chart's template also
// name the values-file line its offending value came from.
type valueLeaves struct {
	list []valueLeaf
}

type valueLeaf struct {
	key    []string
	value  any // string, bool or float64 (JSON's numbers)
	origin policy.Origin
}

// addFile adds the scalars of a values file, in the order the file sets them. A file
// that does not parse adds nothing (its error is Helm's to report).
func (l *valueLeaves) addFile(file string, data []byte) {
	dec := yaml3.NewDecoder(bytes.NewReader(data))
	var doc yaml3.Node
	if err := dec.Decode(&doc); err != nil || len(doc.Content) == 0 {
		return
	}
	var walk func(n *yaml3.Node, key []string, depth int)
	walk = func(n *yaml3.Node, key []string, depth int) {
		if depth > 64 {
			return
		}
		switch n.Kind {
		case yaml3.AliasNode:
			return // the anchor's own leaves are where its values are written
		case yaml3.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				if k.Kind != yaml3.ScalarNode || k.Value == "<<" {
					continue
				}
				walk(n.Content[i+1], append(key[:len(key):len(key)], k.Value), depth+1)
			}
		case yaml3.SequenceNode:
			for i, c := range n.Content {
				walk(c, append(key[:len(key):len(key)], strconv.Itoa(i)), depth+1)
			}
		case yaml3.ScalarNode:
			var v any
			if err := n.Decode(&v); err != nil {
				return
			}
			if v = jsonScalar(v); v == nil {
				return
			}
			l.list = append(l.list, valueLeaf{key: key, value: v, origin: policy.Origin{File: file, Line: n.Line, Col: n.Column}})
		}
	}
	walk(doc.Content[0], nil, 0)
}

// jsonScalar is a YAML scalar as it is once the values are JSON (the rendered objects'
// form): numbers are float64; nil for null and what is not a scalar.
func jsonScalar(v any) any {
	switch x := v.(type) {
	case string, bool, float64:
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	}
	return nil
}

// index keeps the leaves whose value is the one the chart renders with (values, the
// coalesced .Values): the last file to set a key wins, and a key a later file, the
// inline values or a parameter overrode is dropped.
func (l *valueLeaves) index(values map[string]any) *valueIndex {
	last := map[string]int{}
	for i, lf := range l.list {
		last[strings.Join(lf.key, "\x00")] = i
	}
	x := &valueIndex{exact: map[string][]int{}}
	for i, lf := range l.list {
		if last[strings.Join(lf.key, "\x00")] != i {
			continue
		}
		if v, ok := lookup(values, lf.key); !ok || jsonScalar(v) != lf.value {
			continue
		}
		x.leaves = append(x.leaves, lf)
		c := scalarKey(lf.value)
		x.exact[c] = append(x.exact[c], len(x.leaves)-1)
	}
	if len(x.leaves) == 0 {
		return nil
	}
	return x
}

func scalarKey(v any) string {
	switch x := v.(type) {
	case string:
		return "s" + x
	case bool:
		return "b" + strconv.FormatBool(x)
	case float64:
		return "n" + strconv.FormatFloat(x, 'g', -1, 64)
	}
	return ""
}

// valueIndex is the effective leaves of one render, by value.
type valueIndex struct {
	leaves []valueLeaf
	exact  map[string][]int
}

// valueLocator locates the values behind the fields of one rendered object.
type valueLocator struct {
	x   *valueIndex
	obj map[string]any
}

// maxValueOrigins bounds the leaves a rendered string is said to be built from; a
// string that contains more is not told.
const maxValueOrigins = 4

// LocateValue names the values-file lines the scalar at path came from, where that can
// be told: the one effective leaf with exactly that value (several with it: the one
// whose key ends in the field's name); else, for a string, the string leaves found in
// it at word boundaries (image: {{ .repository }}:{{ .tag }}), at most four. Nothing for
// a field that is absent, not a scalar, or matches nothing unambiguously.
func (l valueLocator) LocateValue(path []string) []policy.ValueOrigin {
	v, ok := lookup(l.obj, path)
	if !ok {
		return nil
	}
	v = jsonScalar(v)
	if v == nil {
		return nil
	}
	if c := l.x.exact[scalarKey(v)]; len(c) > 0 {
		if len(c) > 1 {
			c = l.byFieldName(c, path)
		}
		if len(c) == 1 {
			return []policy.ValueOrigin{l.origin(c[0])}
		}
		return nil
	}
	s, ok := v.(string)
	if !ok {
		return nil
	}
	type hit struct{ leaf, at int }
	var hits []hit
	for i, lf := range l.x.leaves {
		sv, ok := lf.value.(string)
		if !ok || len(sv) < 3 {
			continue
		}
		if at := wordIndex(s, sv); at >= 0 {
			hits = append(hits, hit{i, at})
		}
	}
	// A leaf found inside another found leaf is that one's part, not a source.
	var keep []hit
	for _, h := range hits {
		sv := l.x.leaves[h.leaf].value.(string)
		inner := false
		for _, o := range hits {
			ov := l.x.leaves[o.leaf].value.(string)
			if o != h && len(ov) > len(sv) && strings.Contains(ov, sv) {
				inner = true
				break
			}
		}
		if !inner {
			keep = append(keep, h)
		}
	}
	if len(keep) == 0 || len(keep) > maxValueOrigins {
		return nil
	}
	sort.SliceStable(keep, func(i, j int) bool { return keep[i].at < keep[j].at })
	out := make([]policy.ValueOrigin, len(keep))
	for i, h := range keep {
		out[i] = l.origin(h.leaf)
	}
	return out
}

// byFieldName narrows candidates to those whose key ends with the field's name.
func (l valueLocator) byFieldName(c []int, path []string) []int {
	name := ""
	for i := len(path) - 1; i >= 0; i-- {
		if _, err := strconv.Atoi(path[i]); err != nil {
			name = path[i]
			break
		}
	}
	var out []int
	for _, i := range c {
		if k := l.x.leaves[i].key; len(k) > 0 && k[len(k)-1] == name {
			out = append(out, i)
		}
	}
	return out
}

func (l valueLocator) origin(i int) policy.ValueOrigin {
	lf := l.x.leaves[i]
	return policy.ValueOrigin{Origin: lf.origin, Key: policy.FieldPath(lf.key)}
}

// wordIndex is the index of sub in s where it is not part of a longer word (the bytes
// around it are not letters or digits), or -1.
func wordIndex(s, sub string) int {
	for from := 0; from <= len(s)-len(sub); {
		i := strings.Index(s[from:], sub)
		if i < 0 {
			return -1
		}
		at := from + i
		end := at + len(sub)
		if (at == 0 || !isWordByte(s[at-1])) && (end == len(s) || !isWordByte(s[end])) {
			return at
		}
		from = at + 1
	}
	return -1
}

func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_'
}
