package policy

import (
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// SchemaPolicy is the policy name schema findings are reported under.
const SchemaPolicy = "schema"

// builtinScheme knows the Go types of the built-in Kubernetes APIs that manifests use.
var builtinScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		admissionregistrationv1.AddToScheme, appsv1.AddToScheme, autoscalingv1.AddToScheme,
		autoscalingv2.AddToScheme, batchv1.AddToScheme, certificatesv1.AddToScheme,
		coordinationv1.AddToScheme, corev1.AddToScheme, discoveryv1.AddToScheme,
		eventsv1.AddToScheme, flowcontrolv1.AddToScheme, networkingv1.AddToScheme,
		nodev1.AddToScheme, policyv1.AddToScheme, rbacv1.AddToScheme,
		schedulingv1.AddToScheme, storagev1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err) // the scheme is static; failing here is a programming error
		}
	}
	return s
}()

// CheckSchema strictly checks an object of a built-in kind against its k8s.io/api type:
// unknown fields and wrong types are findings with their field path, as the API
// server's strict field validation would reject them. Kinds with no known schema
// (CRDs) return checked=false: reported as not schema-checked, not failed.
func CheckSchema(r Resource) (results []Result, checked bool) {
	gvk := r.Object.GroupVersionKind()
	sh := kindShape(gvk)
	if sh == nil {
		return nil, false
	}
	errs := sh.check(r.Object.Object, "", nil)
	// The API server's cheap offline checks, on what decoded strictly (a wrong type
	// already is a finding there).
	if len(errs) == 0 {
		for _, e := range validateBuiltin(r.Object) {
			errs = append(errs, fieldError{path: e.Field, msg: e.ErrorBody()})
		}
	}
	for _, e := range errs {
		msg := e.msg
		if e.unknown {
			msg = fmt.Sprintf("unknown field %q in %s %s; check its spelling and indentation", e.path, gvk.GroupVersion(), gvk.Kind)
		}
		results = append(results, schemaFinding(r, r.position(dottedToSlash(e.path)), e.path, msg,
			"fix or remove the field; the API server rejects objects that do not match the "+gvk.GroupVersion().String()+" "+gvk.Kind+" schema"))
	}
	SortResults(results)
	return results, true
}

// schemaFinding is an Enforce failure of the schema policy on r (rule: its kind,
// lowercased), as the built-in schema check and the CRD check report them.
func schemaFinding(r Resource, o Origin, path, msg, remediation string) Result {
	return Result{
		Origin:      o,
		APIVersion:  r.Object.GetAPIVersion(),
		Kind:        r.Object.GetKind(),
		Namespace:   r.Object.GetNamespace(),
		Name:        r.Object.GetName(),
		Policy:      SchemaPolicy,
		Rule:        strings.ToLower(r.Object.GetKind()),
		Status:      StatusFail,
		Action:      Enforce,
		Message:     msg,
		Path:        path,
		Remediation: remediation,
	}
}

// dottedToSlash turns "spec.containers[0].image" into "/spec/containers/0/image".
func dottedToSlash(p string) string {
	if p == "" {
		return ""
	}
	p = strings.NewReplacer("[", ".", "]", "").Replace(p)
	return "/" + strings.ReplaceAll(p, ".", "/")
}
