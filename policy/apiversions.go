package policy

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	admissionregistrationv1alpha1 "k8s.io/api/admissionregistration/v1alpha1"
	admissionregistrationv1beta1 "k8s.io/api/admissionregistration/v1beta1"
	appsv1beta1 "k8s.io/api/apps/v1beta1"
	appsv1beta2 "k8s.io/api/apps/v1beta2"
	authenticationv1alpha1 "k8s.io/api/authentication/v1alpha1"
	authenticationv1beta1 "k8s.io/api/authentication/v1beta1"
	authorizationv1beta1 "k8s.io/api/authorization/v1beta1"
	batchv1beta1 "k8s.io/api/batch/v1beta1"
	certificatesv1alpha1 "k8s.io/api/certificates/v1alpha1"
	certificatesv1beta1 "k8s.io/api/certificates/v1beta1"
	coordinationv1alpha2 "k8s.io/api/coordination/v1alpha2"
	coordinationv1beta1 "k8s.io/api/coordination/v1beta1"
	discoveryv1beta1 "k8s.io/api/discovery/v1beta1"
	eventsv1beta1 "k8s.io/api/events/v1beta1"
	extensionsv1beta1 "k8s.io/api/extensions/v1beta1"
	flowcontrolv1beta1 "k8s.io/api/flowcontrol/v1beta1"
	flowcontrolv1beta2 "k8s.io/api/flowcontrol/v1beta2"
	flowcontrolv1beta3 "k8s.io/api/flowcontrol/v1beta3"
	networkingv1beta1 "k8s.io/api/networking/v1beta1"
	nodev1beta1 "k8s.io/api/node/v1beta1"
	policyv1beta1 "k8s.io/api/policy/v1beta1"
	rbacv1beta1 "k8s.io/api/rbac/v1beta1"
	resourcev1alpha3 "k8s.io/api/resource/v1alpha3"
	resourcev1beta1 "k8s.io/api/resource/v1beta1"
	resourcev1beta2 "k8s.io/api/resource/v1beta2"
	schedulingv1beta1 "k8s.io/api/scheduling/v1beta1"
	storagev1alpha1 "k8s.io/api/storage/v1alpha1"
	storagev1beta1 "k8s.io/api/storage/v1beta1"
	storagemigrationv1beta1 "k8s.io/api/storagemigration/v1beta1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// DefaultKubeVersion is the Kubernetes version manifests are judged for (and Helm's
// .Capabilities.KubeVersion) when the repository names none: the one our k8s.io
// libraries implement.
const DefaultKubeVersion = "v1.36.3"

// APIVersionPolicy is the policy name API-version findings are reported under.
const APIVersionPolicy = "api-versions"

// defaultKube is DefaultKubeVersion, parsed once.
var defaultKube = func() KubeVersion {
	v, err := ParseKubeVersion(DefaultKubeVersion)
	if err != nil {
		panic(err) // a constant
	}
	return v
}()

// KubeVersion is a Kubernetes minor release (1.x).
type KubeVersion struct{ Major, Minor int }

func (v KubeVersion) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

func (v KubeVersion) atLeast(o KubeVersion) bool {
	return v.Major > o.Major || v.Major == o.Major && v.Minor >= o.Minor
}

// ParseKubeVersion reads "v1.29", "1.29" or "v1.29.3" (a patch is ignored); "" is
// DefaultKubeVersion.
func ParseKubeVersion(s string) (KubeVersion, error) {
	if s == "" {
		s = DefaultKubeVersion
	}
	parts := strings.SplitN(strings.TrimPrefix(strings.TrimSpace(s), "v"), ".", 3)
	if len(parts) < 2 {
		return KubeVersion{}, fmt.Errorf("kubernetes version %q: want MAJOR.MINOR, such as 1.31", s)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.SplitN(parts[1], "-", 2)[0])
	if err1 != nil || err2 != nil || major != 1 || minor < 0 {
		return KubeVersion{}, fmt.Errorf("kubernetes version %q: want 1.MINOR, such as 1.31", s)
	}
	return KubeVersion{major, minor}, nil
}

// apiLifecycle is when a built-in group/version/kind was deprecated and stops being
// served, and what replaces it.
type apiLifecycle struct {
	Deprecated, Removed KubeVersion             // zero: not (yet) known
	Replacement         schema.GroupVersionKind // empty Kind: none
	// Change says what else must change besides apiVersion, when something must.
	Change string
}

// deletedAPIs are versions already deleted from k8s.io/api (so they carry no generated
// lifecycle), from the Kubernetes deprecated API migration guide
// (https://kubernetes.io/docs/reference/using-api/deprecation-guide/) and the release
// notes of the version that removed them.
var deletedAPIs = map[schema.GroupVersionKind]apiLifecycle{
	{Group: "extensions", Version: "v1beta1", Kind: "PodSecurityPolicy"}: {
		Deprecated: KubeVersion{1, 11}, Removed: KubeVersion{1, 16}, Replacement: schema.GroupVersionKind{Group: "policy", Version: "v1beta1", Kind: "PodSecurityPolicy"},
		Change: "PodSecurityPolicy itself was removed in 1.25: use Pod Security Admission (namespace labels) or a policy engine"},
	{Group: "policy", Version: "v1beta1", Kind: "PodSecurityPolicy"}: {
		Deprecated: KubeVersion{1, 21}, Removed: KubeVersion{1, 25},
		Change: "there is no replacement: use Pod Security Admission (pod-security.kubernetes.io namespace labels) or a policy engine"},
	{Group: "autoscaling", Version: "v2beta1", Kind: "HorizontalPodAutoscaler"}: {
		Deprecated: KubeVersion{1, 23}, Removed: KubeVersion{1, 25}, Replacement: schema.GroupVersionKind{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscaler"},
		Change: "metrics targets move into a target block: targetAverageUtilization becomes target: {type: Utilization, averageUtilization: N}, targetAverageValue target: {type: AverageValue, averageValue: Q}"},
	{Group: "autoscaling", Version: "v2beta2", Kind: "HorizontalPodAutoscaler"}: {
		Deprecated: KubeVersion{1, 23}, Removed: KubeVersion{1, 26}, Replacement: schema.GroupVersionKind{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscaler"}},
	{Group: "apiextensions.k8s.io", Version: "v1beta1", Kind: "CustomResourceDefinition"}: {
		Deprecated: KubeVersion{1, 16}, Removed: KubeVersion{1, 22}, Replacement: schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"},
		Change: "spec.scope is required; spec.validation, additionalPrinterColumns and subresources move under each spec.versions[*]; every version needs a structural schema.openAPIV3Schema; preserveUnknownFields: true is not allowed"},
	{Group: "apiregistration.k8s.io", Version: "v1beta1", Kind: "APIService"}: {
		Deprecated: KubeVersion{1, 19}, Removed: KubeVersion{1, 22}, Replacement: schema.GroupVersionKind{Group: "apiregistration.k8s.io", Version: "v1", Kind: "APIService"}},
	{Group: "settings.k8s.io", Version: "v1alpha1", Kind: "PodPreset"}: {
		Removed: KubeVersion{1, 20}, Change: "there is no replacement: set the fields in the workloads (or with a mutating policy)"},
}

// apiChanges are what must change besides apiVersion when moving off a version that
// k8s.io/api still has (the migration guide's notes).
var apiChanges = map[schema.GroupVersionKind]string{}

func init() {
	ingress := "spec.backend becomes spec.defaultBackend; backend.serviceName and servicePort become backend.service.name and service.port.number (or .name); every path needs a pathType"
	workload := "spec.selector is required and must match spec.template.metadata.labels"
	for _, g := range []string{"extensions", "networking.k8s.io"} {
		apiChanges[schema.GroupVersionKind{Group: g, Version: "v1beta1", Kind: "Ingress"}] = ingress
	}
	for _, gv := range []schema.GroupVersion{{Group: "extensions", Version: "v1beta1"}, {Group: "apps", Version: "v1beta1"}, {Group: "apps", Version: "v1beta2"}} {
		for _, k := range []string{"Deployment", "DaemonSet", "ReplicaSet", "StatefulSet"} {
			apiChanges[gv.WithKind(k)] = workload
		}
	}
	apiChanges[schema.GroupVersionKind{Group: "policy", Version: "v1beta1", Kind: "PodDisruptionBudget"}] = "an empty spec.selector selects every pod of the namespace in policy/v1 (none in v1beta1)"
	apiChanges[schema.GroupVersionKind{Group: "certificates.k8s.io", Version: "v1beta1", Kind: "CertificateSigningRequest"}] = "spec.signerName is required"
	for _, k := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		apiChanges[schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1beta1", Kind: k}] = "webhooks[*].admissionReviewVersions and sideEffects are required; the default failurePolicy is Fail and matchPolicy Equivalent"
	}
	apiChanges[schema.GroupVersionKind{Group: "discovery.k8s.io", Version: "v1beta1", Kind: "EndpointSlice"}] = "endpoints[*].topology becomes nodeName and zone"
	apiChanges[schema.GroupVersionKind{Group: "events.k8s.io", Version: "v1beta1", Kind: "Event"}] = "deprecatedFirstTimestamp, deprecatedLastTimestamp, deprecatedCount and deprecatedSource are not allowed on create"
}

type lifecycleRemoved interface{ APILifecycleRemoved() (int, int) }
type lifecycleDeprecated interface{ APILifecycleDeprecated() (int, int) }
type lifecycleReplacement interface {
	APILifecycleReplacement() schema.GroupVersionKind
}

// apiLifecycles are the lifecycles of every built-in group/version/kind that has one:
// k8s.io/api's generated prerelease-lifecycle information (what the API server's own
// deprecation warnings use), then deletedAPIs.
var apiLifecycles = sync.OnceValue(func() map[schema.GroupVersionKind]apiLifecycle {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		admissionv1beta1.AddToScheme, admissionregistrationv1alpha1.AddToScheme, admissionregistrationv1beta1.AddToScheme,
		appsv1beta1.AddToScheme, appsv1beta2.AddToScheme, authenticationv1alpha1.AddToScheme, authenticationv1beta1.AddToScheme,
		authorizationv1beta1.AddToScheme, batchv1beta1.AddToScheme, certificatesv1alpha1.AddToScheme, certificatesv1beta1.AddToScheme,
		coordinationv1alpha2.AddToScheme, coordinationv1beta1.AddToScheme, discoveryv1beta1.AddToScheme, eventsv1beta1.AddToScheme,
		extensionsv1beta1.AddToScheme, flowcontrolv1beta1.AddToScheme, flowcontrolv1beta2.AddToScheme, flowcontrolv1beta3.AddToScheme,
		networkingv1beta1.AddToScheme, nodev1beta1.AddToScheme, policyv1beta1.AddToScheme, rbacv1beta1.AddToScheme,
		resourcev1alpha3.AddToScheme, resourcev1beta1.AddToScheme, resourcev1beta2.AddToScheme, schedulingv1beta1.AddToScheme,
		storagev1alpha1.AddToScheme, storagev1beta1.AddToScheme, storagemigrationv1beta1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err) // static registration
		}
	}
	out := map[schema.GroupVersionKind]apiLifecycle{}
	for gvk, t := range s.AllKnownTypes() {
		if strings.HasSuffix(gvk.Kind, "List") {
			continue
		}
		obj := reflect.New(t).Interface()
		rm, ok := obj.(lifecycleRemoved)
		if !ok {
			continue
		}
		var l apiLifecycle
		l.Removed.Major, l.Removed.Minor = rm.APILifecycleRemoved()
		if d, ok := obj.(lifecycleDeprecated); ok {
			l.Deprecated.Major, l.Deprecated.Minor = d.APILifecycleDeprecated()
		}
		if r, ok := obj.(lifecycleReplacement); ok {
			l.Replacement = r.APILifecycleReplacement()
		}
		if ga := (schema.GroupVersionKind{Group: gvk.Group, Version: "v1", Kind: gvk.Kind}); l.Replacement.Kind == "" && builtinScheme.Recognizes(ga) {
			l.Replacement = ga // untagged (events, node v1beta1): the kind's GA version
		}
		l.Change = apiChanges[gvk]
		out[gvk] = l
	}
	for gvk, l := range deletedAPIs {
		out[gvk] = l
	}
	return out
})

// CheckAPIVersion judges an object's apiVersion for the target Kubernetes version: one
// the target no longer serves is an Enforce finding naming when it was removed and what
// to use instead; a deprecated one an Audit finding naming when it will be removed.
// known reports whether the version is one this knows to be removed: its schema cannot
// be checked, and that is the finding, not a gap.
func CheckAPIVersion(r Resource, target KubeVersion) (results []Result, removed bool) {
	gvk := r.Object.GroupVersionKind()
	l, ok := apiLifecycles()[gvk]
	if !ok {
		return nil, false
	}
	use := "there is no replacement"
	if r := replacementFor(gvk, target); r.Kind != "" {
		use = "use " + r.GroupVersion().String() + " " + r.Kind
	}
	change := ""
	if l.Change != "" {
		change = "; " + l.Change
	}
	res := Result{
		Origin:     r.position("/apiVersion"),
		APIVersion: r.Object.GetAPIVersion(),
		Kind:       r.Object.GetKind(),
		Namespace:  r.Object.GetNamespace(),
		Name:       r.name(),
		Policy:     APIVersionPolicy,
		Status:     StatusFail,
		Path:       "apiVersion",
	}
	switch {
	case l.Removed.Major > 0 && target.atLeast(l.Removed):
		res.Rule, res.Action = "removed", Enforce
		res.Message = fmt.Sprintf("%s %s is no longer served since Kubernetes %s (the target is %s): %s%s", gvk.GroupVersion(), gvk.Kind, l.Removed, target, use, change)
		res.Remediation = "move to the replacement before the cluster is upgraded; the apply fails on this version"
		return []Result{res}, true
	case l.Deprecated.Major > 0 && target.atLeast(l.Deprecated):
		res.Rule, res.Action = "deprecated", Audit
		when := "in a later release"
		if l.Removed.Major > 0 {
			when = "in Kubernetes " + l.Removed.String()
		}
		res.Message = fmt.Sprintf("%s %s is deprecated since Kubernetes %s and will no longer be served %s: %s%s", gvk.GroupVersion(), gvk.Kind, l.Deprecated, when, use, change)
		res.Remediation = "move to the replacement before upgrading to " + l.Removed.String()
		return []Result{res}, false
	}
	return nil, false
}

// replacementFor is what replaces gvk on the target version: its replacement, followed
// on while that one is itself no longer served there (flowcontrol v1beta1 -> v1beta3 ->
// v1).
func replacementFor(gvk schema.GroupVersionKind, target KubeVersion) schema.GroupVersionKind {
	table := apiLifecycles()
	r := table[gvk].Replacement
	for range 8 {
		next, ok := table[r]
		if r.Kind == "" || !ok || next.Removed.Major == 0 || !target.atLeast(next.Removed) {
			return r
		}
		r = next.Replacement // empty when the replacement went with no successor (PodSecurityPolicy)
	}
	return r
}
