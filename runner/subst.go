package runner

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Tekton variables are $(root.a.b), $(root["a.b"]), $(params.x[*]), $(params.x[0]).
// refPattern finds candidates; roots decides which are Tekton's: $(date) or
// $(cat file) in a script are the shell's and are left alone.
var refPattern = regexp.MustCompile(`\$\(([A-Za-z][A-Za-z0-9_-]*(?:\.[^()\s$]+|\[[^()\s$]*\][^()\s$]*)*)\)`)

var roots = map[string]bool{
	"params": true, "tasks": true, "results": true, "workspaces": true, "context": true,
	"steps": true, "step": true, "credentials": true, "finally": true,
}

// seg is one segment of a variable: a name, [*] or an index.
type seg struct {
	name  string
	star  bool
	index int // -1 when not an index
}

// ref is one parsed variable.
type ref struct {
	text string // the whole $(...)
	segs []seg
}

func (r ref) root() string { return r.segs[0].name }

// names returns the leading name segments (stopping at [*] or an index) and what follows.
func (r ref) names() []string {
	var out []string
	for _, s := range r.segs {
		if s.star || s.index >= 0 {
			break
		}
		out = append(out, s.name)
	}
	return out
}

// star reports whether the variable ends in [*].
func (r ref) star() bool { return len(r.segs) > 0 && r.segs[len(r.segs)-1].star }

// index returns the [N] of the variable, if it has one.
func (r ref) index() (int, bool) {
	for _, s := range r.segs {
		if s.index >= 0 {
			return s.index, true
		}
	}
	return 0, false
}

// parseRef parses the inside of $(...); ok is false for a malformed variable.
func parseRef(body string) ([]seg, error) {
	var segs []seg
	i := 0
	readName := func() string {
		j := i
		for j < len(body) && body[j] != '.' && body[j] != '[' {
			j++
		}
		s := body[i:j]
		i = j
		return s
	}
	segs = append(segs, seg{name: readName(), index: -1})
	for i < len(body) {
		switch body[i] {
		case '.':
			i++
			n := readName()
			if n == "" {
				return nil, fmt.Errorf("empty name after '.'")
			}
			segs = append(segs, seg{name: n, index: -1})
		case '[':
			end := strings.IndexByte(body[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unclosed '['")
			}
			inner := body[i+1 : i+end]
			i += end + 1
			switch {
			case inner == "*":
				segs = append(segs, seg{star: true, index: -1})
			case len(inner) >= 2 && (inner[0] == '"' || inner[0] == '\'') && inner[len(inner)-1] == inner[0]:
				segs = append(segs, seg{name: inner[1 : len(inner)-1], index: -1})
			default:
				n, err := strconv.Atoi(inner)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("[%s] is neither [*], an index nor a quoted name", inner)
				}
				segs = append(segs, seg{index: n})
			}
		default:
			return nil, fmt.Errorf("unexpected %q", body[i])
		}
	}
	return segs, nil
}

// findRefs returns the Tekton variables of s, in order.
func findRefs(s string) ([]ref, error) {
	if !strings.Contains(s, "$(") {
		return nil, nil
	}
	var out []ref
	for _, m := range refPattern.FindAllStringSubmatch(s, -1) {
		root := m[1]
		if i := strings.IndexAny(root, ".["); i >= 0 {
			root = root[:i]
		}
		if !roots[root] {
			continue
		}
		segs, err := parseRef(m[1])
		if err != nil {
			return out, fmt.Errorf("malformed variable %s: %v", m[0], err)
		}
		out = append(out, ref{text: m[0], segs: segs})
	}
	return out, nil
}

// resolver returns a variable's value, or handled=false to leave it for a later pass.
type resolver func(r ref) (value string, handled bool, err error)

// substitute replaces the Tekton variables of s that resolve handles.
func substitute(s string, resolve resolver) (string, error) {
	if !strings.Contains(s, "$(") {
		return s, nil
	}
	var firstErr error
	out := refPattern.ReplaceAllStringFunc(s, func(m string) string {
		body := m[2 : len(m)-1]
		root := body
		if i := strings.IndexAny(root, ".["); i >= 0 {
			root = root[:i]
		}
		if !roots[root] {
			return m
		}
		segs, err := parseRef(body)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("malformed variable %s: %v", m, err)
			}
			return m
		}
		v, ok, err := resolve(ref{text: m, segs: segs})
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return m
		}
		if !ok {
			return m
		}
		return v
	})
	return out, firstErr
}

// arrayResolver returns the elements a whole-element $(x[*]) expands to, or
// handled=false when r is not an array it knows.
type arrayResolver func(r ref) (values []string, handled bool, err error)

// substituteList substitutes each element of list; an element that is exactly one
// $(...[*]) variable expands into the array's elements (Tekton's array expansion in
// command, args and array param values).
func substituteList(list []string, resolve resolver, arrays arrayResolver) ([]string, error) {
	out := make([]string, 0, len(list))
	for _, s := range list {
		if arrays != nil {
			if refs, err := findRefs(s); err == nil && len(refs) == 1 && refs[0].text == strings.TrimSpace(s) && refs[0].star() {
				vals, ok, err := arrays(refs[0])
				if err != nil {
					return nil, err
				}
				if ok {
					out = append(out, vals...)
					continue
				}
			}
		}
		v, err := substitute(s, resolve)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
