package policy

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

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
	case "Service":
		if spec != nil && u.GroupVersionKind().Group == "" {
			errs = append(errs, validateServiceSpec(spec, field.NewPath("spec"))...)
		}
	case "Ingress":
		if u.GroupVersionKind().GroupVersion().String() == "networking.k8s.io/v1" {
			errs = append(errs, validateIngressSpec(spec, field.NewPath("spec"))...)
		}
	}
	return errs
}

// validateServiceSpec is the API server's check of a Service's ports
// (k8s.io/kubernetes pkg/apis/core/validation: ValidateService, validateServicePort):
// ports required unless headless or ExternalName, each port number in 1-65535 (a
// missing port is 0), names required and unique when there are several, the protocol
// one of SCTP, TCP, UDP, the targetPort a port number or name.
func validateServiceSpec(spec map[string]any, at *field.Path) field.ErrorList {
	var errs field.ErrorList
	ports, _ := spec["ports"].([]any)
	typ, _ := spec["type"].(string)
	clusterIP, _ := spec["clusterIP"].(string)
	if len(ports) == 0 && clusterIP != "None" && typ != "ExternalName" {
		errs = append(errs, field.Required(at.Child("ports"), ""))
	}
	names := map[string]bool{}
	for i, p := range ports {
		pm, _ := p.(map[string]any)
		if pm == nil {
			continue
		}
		pp := at.Child("ports").Index(i)
		name, _ := pm["name"].(string)
		switch {
		case name == "" && len(ports) > 1:
			errs = append(errs, field.Required(pp.Child("name"), ""))
		case name != "":
			for _, msg := range validation.IsDNS1123Label(name) {
				errs = append(errs, field.Invalid(pp.Child("name"), name, msg))
			}
			if names[name] {
				errs = append(errs, field.Duplicate(pp.Child("name"), name))
			}
			names[name] = true
		}
		port, _ := number(pm["port"])
		for _, msg := range validation.IsValidPortNum(int(port)) {
			errs = append(errs, field.Invalid(pp.Child("port"), port, msg))
		}
		if proto, ok := pm["protocol"].(string); ok && proto != "TCP" && proto != "UDP" && proto != "SCTP" {
			errs = append(errs, field.NotSupported(pp.Child("protocol"), proto, []string{"SCTP", "TCP", "UDP"}))
		}
		switch tp := pm["targetPort"].(type) {
		case string:
			for _, msg := range validation.IsValidPortName(tp) {
				errs = append(errs, field.Invalid(pp.Child("targetPort"), tp, msg))
			}
		case int64, float64:
			n, _ := number(tp)
			if n != 0 { // 0: defaulted to port
				for _, msg := range validation.IsValidPortNum(int(n)) {
					errs = append(errs, field.Invalid(pp.Child("targetPort"), n, msg))
				}
			}
		}
	}
	return errs
}

// validateIngressSpec is the API server's check of a networking.k8s.io/v1 Ingress's
// HTTP paths (k8s.io/kubernetes pkg/apis/networking/validation: validateHTTPIngressPath,
// validateIngressBackend): pathType required and supported, the path absolute for
// Exact and Prefix without //, /./, /../, %2f and not ending in /.. or /., a backend
// that is a service (with a name and a port name or number) or a resource, not both.
func validateIngressSpec(spec map[string]any, at *field.Path) field.ErrorList {
	var errs field.ErrorList
	if db, ok := spec["defaultBackend"].(map[string]any); ok {
		errs = append(errs, validateIngressBackend(db, at.Child("defaultBackend"))...)
	}
	rules, _ := spec["rules"].([]any)
	for i, r := range rules {
		rm, _ := r.(map[string]any)
		http, _ := rm["http"].(map[string]any)
		paths, _ := http["paths"].([]any)
		for j, p := range paths {
			pm, _ := p.(map[string]any)
			if pm == nil {
				continue
			}
			pp := at.Child("rules").Index(i).Child("http", "paths").Index(j)
			pathType, ok := pm["pathType"].(string)
			if !ok {
				errs = append(errs, field.Required(pp.Child("pathType"), "pathType must be specified"))
				continue
			}
			path, _ := pm["path"].(string)
			switch pathType {
			case "Exact", "Prefix":
				if !strings.HasPrefix(path, "/") {
					errs = append(errs, field.Invalid(pp.Child("path"), path, "must be an absolute path"))
				}
				for _, seq := range []string{"//", "/./", "/../", "%2f", "%2F"} {
					if strings.Contains(path, seq) {
						errs = append(errs, field.Invalid(pp.Child("path"), path, fmt.Sprintf("must not contain '%s'", seq)))
					}
				}
				for _, suf := range []string{"/..", "/."} {
					if strings.HasSuffix(path, suf) {
						errs = append(errs, field.Invalid(pp.Child("path"), path, fmt.Sprintf("cannot end with '%s'", suf)))
					}
				}
			case "ImplementationSpecific":
				if path != "" && !strings.HasPrefix(path, "/") {
					errs = append(errs, field.Invalid(pp.Child("path"), path, "must be an absolute path"))
				}
			default:
				errs = append(errs, field.NotSupported(pp.Child("pathType"), pathType, []string{"Exact", "ImplementationSpecific", "Prefix"}))
			}
			backend, _ := pm["backend"].(map[string]any)
			errs = append(errs, validateIngressBackend(backend, pp.Child("backend"))...)
		}
	}
	return errs
}

func validateIngressBackend(b map[string]any, at *field.Path) field.ErrorList {
	svc, hasSvc := b["service"].(map[string]any)
	_, hasRes := b["resource"].(map[string]any)
	switch {
	case hasSvc && hasRes:
		return field.ErrorList{field.Invalid(at, "", "cannot set both resource and service backends")}
	case hasRes:
		return nil
	case !hasSvc:
		return field.ErrorList{field.Invalid(at, "", "resource or service backend is required")}
	}
	var errs field.ErrorList
	name, _ := svc["name"].(string)
	if name == "" {
		errs = append(errs, field.Required(at.Child("service", "name"), ""))
	} else {
		for _, msg := range validation.IsDNS1123Label(name) { // DNS-1035 without RelaxedServiceNameValidation; the lenient rule, not to refuse what 1.36 accepts
			errs = append(errs, field.Invalid(at.Child("service", "name"), name, msg))
		}
	}
	port, _ := svc["port"].(map[string]any)
	pname, _ := port["name"].(string)
	pnum, hasNum := number(port["number"])
	hasNum = hasNum && pnum != 0
	switch {
	case pname != "" && hasNum:
		errs = append(errs, field.Invalid(at, "", "cannot set both port name & port number"))
	case pname != "":
		for _, msg := range validation.IsValidPortName(pname) {
			errs = append(errs, field.Invalid(at.Child("service", "port", "name"), pname, msg))
		}
	case hasNum:
		for _, msg := range validation.IsValidPortNum(int(pnum)) {
			errs = append(errs, field.Invalid(at.Child("service", "port", "number"), pnum, msg))
		}
	default:
		errs = append(errs, field.Required(at, "port name or number is required"))
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
