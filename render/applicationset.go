package render

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/gitgate/gitgate/policy"
	"sigs.k8s.io/yaml"
)

// ---- ApplicationSets ----

// argoSet is one ApplicationSet being expanded.
type argoSet struct {
	d          *argoDiscovery
	res        policy.Resource
	object     string
	goTemplate bool
	options    []string
	cache      map[string]*template.Template
}

func (s *argoSet) fail(at []string, err error) {
	s.d.errs = append(s.d.errs, &AppError{Origin: argoPos(s.res, at), Object: s.object, Err: err})
}

func (s *argoSet) notice(at []string, format string, args ...any) {
	s.d.notice(argoPos(s.res, at), s.object, "", format, args...)
}

func (d *argoDiscovery) expandSet(r policy.Resource) []argoApp {
	s := &argoSet{d: d, res: r, object: argoID(r), cache: map[string]*template.Template{}}
	spec, ok := r.Object.Object["spec"].(map[string]any)
	if !ok {
		s.fail(nil, errors.New("has no spec"))
		return nil
	}
	s.goTemplate, _ = spec["goTemplate"].(bool)
	opts, _ := spec["goTemplateOptions"].([]any)
	for _, o := range opts {
		opt := argoString(o)
		switch opt {
		case "missingkey=default", "missingkey=invalid", "missingkey=zero", "missingkey=error":
			s.options = append(s.options, opt)
		default:
			s.fail([]string{"spec", "goTemplateOptions"}, fmt.Errorf("goTemplateOptions: unknown option %q; use missingkey=default|zero|error", opt))
			return nil
		}
	}
	tmpl, _ := spec["template"].(map[string]any)
	patch := argoString(spec["templatePatch"])
	if patch != "" && !s.goTemplate {
		s.fail([]string{"spec", "templatePatch"}, errors.New("templatePatch needs goTemplate: true"))
		return nil
	}
	gens, _ := spec["generators"].([]any)
	if len(gens) == 0 {
		s.fail([]string{"spec", "generators"}, errors.New("spec.generators is empty"))
		return nil
	}
	var out []argoApp
	names := map[string]bool{}
	for i, g := range gens {
		at := []string{"spec", "generators", strconv.Itoa(i)}
		gm, ok := g.(map[string]any)
		if !ok {
			s.fail(at, fmt.Errorf("%s is not a mapping", argoField(at)))
			continue
		}
		params, err := s.generate(gm, at, nil)
		if err != nil {
			s.fail(at, fmt.Errorf("%s: %w", argoField(at), err))
			continue
		}
		t := tmpl
		tAt := []string{"spec", "template"}
		if gt, ok := gm["template"].(map[string]any); ok && len(gt) > 0 {
			t = argoMerge(copyJSON(gt).(map[string]any), tmpl, false)
		}
		for _, p := range params {
			app, err := s.renderApp(t, patch, p)
			if err != nil {
				s.fail(tAt, err)
				continue
			}
			if names[app.namespace+"/"+app.name] {
				s.fail(tAt, fmt.Errorf("generates Application %s twice; make metadata.name unique per parameter set", app.name))
				continue
			}
			names[app.namespace+"/"+app.name] = true
			out = append(out, app)
		}
	}
	return out
}

func (s *argoSet) renderApp(tmpl map[string]any, patch string, params map[string]any) (argoApp, error) {
	v, err := s.renderValue(copyJSON(tmpl), params)
	if err != nil {
		return argoApp{}, err
	}
	app, _ := v.(map[string]any)
	if patch != "" {
		p, err := s.render(patch, params)
		if err != nil {
			return argoApp{}, fmt.Errorf("templatePatch: %w", err)
		}
		var pm map[string]any
		if err := yaml.Unmarshal([]byte(p), &pm); err != nil {
			return argoApp{}, fmt.Errorf("templatePatch renders invalid YAML: %w", err)
		}
		app = argoMerge(app, pm, true)
	}
	meta, _ := app["metadata"].(map[string]any)
	name := argoString(meta["name"])
	if name == "" {
		return argoApp{}, fmt.Errorf("template renders no metadata.name for parameters %s", argoParamsString(params))
	}
	ns := argoString(meta["namespace"])
	if ns == "" {
		ns = s.res.Object.GetNamespace()
	}
	spec, _ := app["spec"].(map[string]any)
	if spec == nil {
		return argoApp{}, fmt.Errorf("template renders no spec for Application %s", name)
	}
	return argoApp{
		name: name, namespace: ns, spec: spec, src: s.res, object: s.object,
		generated: true, specAt: []string{"spec", "template", "spec"},
	}, nil
}

func argoParamsString(p map[string]any) string {
	b, _ := json.Marshal(p)
	return string(b)
}

// generate evaluates one generator (with its optional selector) into parameter sets.
// parent, when set, are the parameters a matrix's first child produced: the generator is
// rendered with them first, so it may refer to them.
func (s *argoSet) generate(g map[string]any, at []string, parent map[string]any) ([]map[string]any, error) {
	if len(parent) > 0 {
		v, err := s.renderValue(copyJSON(g), parent)
		if err != nil {
			return nil, err
		}
		g = v.(map[string]any)
	}
	var out []map[string]any
	found := false
	for _, kind := range []string{"list", "matrix", "merge", "git", "clusters"} {
		v, ok := g[kind]
		if !ok {
			continue
		}
		found = true
		m, _ := v.(map[string]any)
		var ps []map[string]any
		var err error
		kAt := append(slices.Clone(at), kind)
		switch kind {
		case "list":
			ps, err = s.list(m)
		case "matrix":
			ps, err = s.matrix(m, kAt)
		case "merge":
			ps, err = s.merge(m, kAt)
		case "git":
			ps, err = s.git(m, kAt)
		case "clusters":
			ps, err = s.clusters(m, kAt)
		}
		if err != nil {
			return nil, fmt.Errorf("%s generator: %w", kind, err)
		}
		out = append(out, ps...)
	}
	for _, kind := range []string{"pullRequest", "scmProvider", "clusterDecisionResource", "plugin"} {
		if _, ok := g[kind]; ok {
			found = true
			s.notice(append(slices.Clone(at), kind), "%s generator needs a live Argo CD and its services; skipped", kind)
		}
	}
	if !found {
		return nil, errors.New("no known generator (list, matrix, merge, git, clusters, pullRequest, scmProvider, clusterDecisionResource, plugin)")
	}
	if sel, ok := g["selector"].(map[string]any); ok && len(out) > 0 {
		var kept []map[string]any
		for _, p := range out {
			flat := map[string]string{}
			argoFlatten("", p, flat)
			ok, err := argoSelects(sel, flat)
			if err != nil {
				return nil, fmt.Errorf("selector: %w", err)
			}
			if ok {
				kept = append(kept, p)
			}
		}
		out = kept
	}
	return out, nil
}

func (s *argoSet) list(m map[string]any) ([]map[string]any, error) {
	var out []map[string]any
	elements, _ := m["elements"].([]any)
	for i, e := range elements {
		em, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("elements[%d] is not a mapping", i)
		}
		if s.goTemplate {
			out = append(out, copyJSON(em).(map[string]any))
			continue
		}
		p := map[string]any{}
		for k, v := range em {
			if vm, ok := v.(map[string]any); ok && k == "values" {
				for vk, vv := range vm {
					str, ok := vv.(string)
					if !ok {
						return nil, fmt.Errorf("elements[%d].values.%s is %s, not a string; without goTemplate Argo CD takes only strings: quote it", i, vk, argoTypeName(vv))
					}
					p["values."+vk] = str
				}
				continue
			}
			str, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("elements[%d].%s is %s, not a string; without goTemplate Argo CD takes only strings: quote it", i, k, argoTypeName(v))
			}
			p[k] = str
		}
		out = append(out, p)
	}
	if ey := argoString(m["elementsYaml"]); strings.TrimSpace(ey) != "" {
		var more []map[string]any
		if err := yaml.Unmarshal([]byte(ey), &more); err != nil {
			return nil, fmt.Errorf("elementsYaml: %w", err)
		}
		out = append(out, more...)
	}
	return out, nil
}

func argoTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case int64, float64, int:
		return "a number"
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("a %T", v)
}

func (s *argoSet) matrix(m map[string]any, at []string) ([]map[string]any, error) {
	children, _ := m["generators"].([]any)
	if len(children) != 2 {
		return nil, fmt.Errorf("needs exactly two child generators, has %d", len(children))
	}
	c0, ok0 := children[0].(map[string]any)
	c1, ok1 := children[1].(map[string]any)
	if !ok0 || !ok1 {
		return nil, errors.New("child generators must be mappings")
	}
	first, err := s.generate(c0, append(slices.Clone(at), "generators", "0"), nil)
	if err != nil {
		return nil, fmt.Errorf("generators[0]: %w", err)
	}
	var out []map[string]any
	for _, a := range first {
		second, err := s.generate(c1, append(slices.Clone(at), "generators", "1"), a)
		if err != nil {
			return nil, fmt.Errorf("generators[1]: %w", err)
		}
		for _, b := range second {
			if s.goTemplate {
				out = append(out, argoMerge(argoMerge(map[string]any{}, b, true), a, true))
				continue
			}
			p := maps.Clone(a)
			for k, v := range b {
				if old, ok := p[k]; ok && old != v {
					return nil, fmt.Errorf("parameter %q is %v in generators[0] and %v in generators[1]; rename one", k, old, v)
				}
				p[k] = v
			}
			out = append(out, p)
		}
	}
	return out, nil
}

func (s *argoSet) merge(m map[string]any, at []string) ([]map[string]any, error) {
	var keys []string
	ks, _ := m["mergeKeys"].([]any)
	for _, k := range ks {
		if str := argoString(k); str != "" && !slices.Contains(keys, str) {
			keys = append(keys, str)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("mergeKeys is empty")
	}
	children, _ := m["generators"].([]any)
	if len(children) < 2 {
		return nil, fmt.Errorf("needs at least two child generators, has %d", len(children))
	}
	var base []map[string]any
	var baseIdx map[string]int
	for i, c := range children {
		cm, ok := c.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("generators[%d] is not a mapping", i)
		}
		ps, err := s.generate(cm, append(slices.Clone(at), "generators", strconv.Itoa(i)), nil)
		if err != nil {
			return nil, fmt.Errorf("generators[%d]: %w", i, err)
		}
		idx := map[string]int{}
		for j, p := range ps {
			key := map[string]any{}
			for _, k := range keys {
				key[k] = p[k]
			}
			b, _ := json.Marshal(key)
			if _, dup := idx[string(b)]; dup {
				return nil, fmt.Errorf("generators[%d]: two parameter sets have the merge keys %s; they must be unique", i, b)
			}
			idx[string(b)] = j
		}
		if i == 0 {
			base, baseIdx = ps, idx
			continue
		}
		for k, j := range idx {
			bi, ok := baseIdx[k]
			if !ok {
				continue
			}
			if s.goTemplate {
				base[bi] = argoMerge(base[bi], ps[j], true)
			} else {
				merged := maps.Clone(base[bi])
				maps.Copy(merged, ps[j])
				base[bi] = merged
			}
		}
	}
	return base, nil
}
