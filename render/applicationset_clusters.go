package render

import (
	"fmt"
	"slices"
)

// ---- clusters generator ----

func (s *argoSet) clusters(m map[string]any, at []string) ([]map[string]any, error) {
	if len(s.d.repo.Clusters) == 0 {
		// One notice for the whole discovery (AppTargets), not one per generator.
		if s.d.noClusters == nil {
			s.d.noClusters = map[string]bool{}
		}
		if o := argoPos(s.res, nil).String() + " " + s.object; !s.d.noClusters[o] {
			s.d.noClusters[o] = true
		}
		return nil, nil
	}
	sel, _ := m["selector"].(map[string]any)
	values := map[string]string{}
	if vm, ok := m["values"].(map[string]any); ok {
		for k, v := range vm {
			values[k] = argoScalar(v)
		}
	}
	var out []map[string]any
	for _, c := range s.d.repo.Clusters {
		ok, err := argoSelects(sel, c.Labels)
		if err != nil {
			return nil, fmt.Errorf("selector: %w", err)
		}
		if !ok {
			continue
		}
		p := map[string]any{
			"name":           c.Name,
			"nameNormalized": argoSanitizeName(c.Name),
			"server":         c.Server,
			"project":        "",
		}
		if s.goTemplate {
			labels := map[string]any{}
			for k, v := range c.Labels {
				labels[k] = v
			}
			p["metadata"] = map[string]any{"labels": labels, "annotations": map[string]any{}}
		} else {
			for k, v := range c.Labels {
				p["metadata.labels."+k] = v
			}
		}
		if err := s.addValues(p, values); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		s.notice(at, "clusters generator: no cluster in .gitgate.yaml matches its selector")
	}
	return out, nil
}

// argoSelects is a Kubernetes label selector (matchLabels, matchExpressions) over labels.
// An empty or missing selector selects everything.
func argoSelects(sel map[string]any, labels map[string]string) (bool, error) {
	if ml, ok := sel["matchLabels"].(map[string]any); ok {
		for k, v := range ml {
			got, has := labels[k]
			if !has || got != argoScalar(v) {
				return false, nil
			}
		}
	}
	exprs, _ := sel["matchExpressions"].([]any)
	for i, e := range exprs {
		em, _ := e.(map[string]any)
		key := argoString(em["key"])
		var vals []string
		vs, _ := em["values"].([]any)
		for _, v := range vs {
			vals = append(vals, argoScalar(v))
		}
		got, has := labels[key]
		switch op := argoString(em["operator"]); op {
		case "In":
			if !has || !slices.Contains(vals, got) {
				return false, nil
			}
		case "NotIn":
			if has && slices.Contains(vals, got) {
				return false, nil
			}
		case "Exists":
			if !has {
				return false, nil
			}
		case "DoesNotExist":
			if has {
				return false, nil
			}
		default:
			return false, fmt.Errorf("matchExpressions[%d]: unknown operator %q; use In, NotIn, Exists or DoesNotExist", i, op)
		}
	}
	return true, nil
}
