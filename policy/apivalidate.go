package policy

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateBuiltin runs the API server's own checks that are cheap and need no cluster
// on an object of a built-in kind (k8s.io/apimachinery's validation code, the rules of
// k8s.io/kubernetes' per-kind validation): object metadata (name format by kind,
// namespace, labels, annotations, finalizers), and for pod templates the container
// names, port names and numbers, requests not above limits, and a workload's selector
// matching its template's labels. The strict decode (CheckSchema) has already rejected
// wrong types and unparsable quantities.
func validateBuiltin(u *unstructured.Unstructured) field.ErrorList {
	kind := u.GetKind()
	var errs field.ErrorList
	if u.GetName() != "" || u.GetGenerateName() != "" { // kustomize fragments and List items without one are not objects to create
		errs = append(errs, apivalidation.ValidateObjectMetaAccessor(u, u.GetNamespace() != "", nameRule(kind), field.NewPath("metadata"))...)
	}
	spec, _ := u.Object["spec"].(map[string]any)
	switch kind {
	case "Pod":
		errs = append(errs, validatePodSpec(spec, field.NewPath("spec"))...)
	case "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet":
		errs = append(errs, validateWorkload(spec, field.NewPath("spec"))...)
	case "Job":
		errs = append(errs, validateTemplate(spec, field.NewPath("spec"))...)
	case "CronJob":
		jt, _ := spec["jobTemplate"].(map[string]any)
		js, _ := jt["spec"].(map[string]any)
		errs = append(errs, validateTemplate(js, field.NewPath("spec", "jobTemplate", "spec"))...)
	}
	return errs
}

// nameRule is the format the API server requires of a kind's metadata.name.
func nameRule(kind string) apivalidation.ValidateNameFunc {
	switch kind {
	case "Service":
		return apivalidation.NameIsDNS1035Label
	case "Namespace":
		return apivalidation.NameIsDNSLabel
	case "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding":
		return path.ValidatePathSegmentName // system:controller:... is a valid role name
	}
	return apivalidation.NameIsDNSSubdomain
}

// validateWorkload: a selector is required, must match the template's labels (the API
// server: "selector does not match template labels"), and the template is a pod's.
func validateWorkload(spec map[string]any, at *field.Path) field.ErrorList {
	var errs field.ErrorList
	sel, hasSel := spec["selector"].(map[string]any)
	tmpl, _ := spec["template"].(map[string]any)
	meta, _ := tmpl["metadata"].(map[string]any)
	tl := stringMap(meta["labels"])
	if !hasSel || len(sel) == 0 {
		errs = append(errs, field.Required(at.Child("selector"), ""))
	} else if ls, err := labelSelector(sel); err == nil {
		if s, err := metav1.LabelSelectorAsSelector(ls); err == nil {
			if s.Empty() {
				errs = append(errs, field.Invalid(at.Child("selector"), sel, "empty selector is invalid for deployment"))
			} else if !s.Matches(labels.Set(tl)) {
				errs = append(errs, field.Invalid(at.Child("template", "metadata", "labels"), tl, "`selector` does not match template `labels`"))
			}
		}
	}
	return append(errs, validateTemplate(spec, at)...)
}

func validateTemplate(spec map[string]any, at *field.Path) field.ErrorList {
	tmpl, _ := spec["template"].(map[string]any)
	ps, _ := tmpl["spec"].(map[string]any)
	if ps == nil {
		return nil
	}
	return validatePodSpec(ps, at.Child("template", "spec"))
}

// validatePodSpec checks containers, init containers and ephemeral containers: unique
// DNS-label names, port names and numbers, requests at most their limits.
func validatePodSpec(ps map[string]any, at *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for _, group := range []string{"initContainers", "containers", "ephemeralContainers"} {
		list, _ := ps[group].([]any)
		for i, c := range list {
			cm, _ := c.(map[string]any)
			if cm == nil {
				continue
			}
			cp := at.Child(group).Index(i)
			name, _ := cm["name"].(string)
			switch {
			case name == "":
				errs = append(errs, field.Required(cp.Child("name"), ""))
			default:
				for _, msg := range validation.IsDNS1123Label(name) {
					errs = append(errs, field.Invalid(cp.Child("name"), name, msg))
				}
				if names[name] {
					errs = append(errs, field.Duplicate(cp.Child("name"), name))
				}
				names[name] = true
			}
			ports, _ := cm["ports"].([]any)
			for j, p := range ports {
				pm, _ := p.(map[string]any)
				pp := cp.Child("ports").Index(j)
				if n, ok := pm["name"].(string); ok && n != "" {
					for _, msg := range validation.IsValidPortName(n) {
						errs = append(errs, field.Invalid(pp.Child("name"), n, msg))
					}
				}
				if n, ok := number(pm["containerPort"]); ok {
					for _, msg := range validation.IsValidPortNum(int(n)) {
						errs = append(errs, field.Invalid(pp.Child("containerPort"), n, msg))
					}
				}
			}
			res, _ := cm["resources"].(map[string]any)
			req, lim := quantities(res["requests"]), quantities(res["limits"])
			for _, r := range slices.Sorted(maps.Keys(req)) {
				q := req[r]
				if l, ok := lim[r]; ok && q.Cmp(l) > 0 {
					errs = append(errs, field.Invalid(cp.Child("resources", "requests").Key(r), q.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", r, l.String())))
				}
			}
		}
	}
	return errs
}

// quantities parses a resource list; entries that do not parse are the strict decode's
// findings, skipped here.
func quantities(v any) map[string]resource.Quantity {
	m, _ := v.(map[string]any)
	out := map[string]resource.Quantity{}
	for k, x := range m {
		var s string
		switch y := x.(type) {
		case string:
			s = y
		case int64:
			s = strconv.FormatInt(y, 10)
		case float64:
			s = strconv.FormatFloat(y, 'f', -1, 64)
		default:
			continue
		}
		if q, err := resource.ParseQuantity(s); err == nil {
			out[k] = q
		}
	}
	return out
}

func number(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case float64:
		return int64(x), x == float64(int64(x))
	}
	return 0, false
}

func stringMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := make(map[string]string, len(m))
	for k, x := range m {
		if s, ok := x.(string); ok {
			out[k] = s
		}
	}
	return out
}

// labelSelector reads a metav1.LabelSelector from its JSON form.
func labelSelector(m map[string]any) (*metav1.LabelSelector, error) {
	ls := &metav1.LabelSelector{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, ls); err != nil {
		return nil, err
	}
	return ls, nil
}
