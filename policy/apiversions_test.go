package policy

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestAPIRemovalsCovered: every removal the Kubernetes deprecated API migration guide
// lists since 1.16 (https://kubernetes.io/docs/reference/using-api/deprecation-guide/),
// written out here from the guide, is known with its release and replacement, whether
// k8s.io/api still carries the version (generated lifecycle) or not (deletedAPIs).
func TestAPIRemovalsCovered(t *testing.T) {
	type removal struct {
		gv, kinds, replacement string
		removed                int
	}
	guide := []removal{
		{"flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema PriorityLevelConfiguration", "flowcontrol.apiserver.k8s.io/v1", 32},
		{"flowcontrol.apiserver.k8s.io/v1beta2", "FlowSchema PriorityLevelConfiguration", "flowcontrol.apiserver.k8s.io/v1", 29},
		{"storage.k8s.io/v1beta1", "CSIStorageCapacity", "storage.k8s.io/v1", 27},
		{"flowcontrol.apiserver.k8s.io/v1beta1", "FlowSchema PriorityLevelConfiguration", "flowcontrol.apiserver.k8s.io/v1", 26},
		{"autoscaling/v2beta2", "HorizontalPodAutoscaler", "autoscaling/v2", 26},
		{"batch/v1beta1", "CronJob", "batch/v1", 25},
		{"discovery.k8s.io/v1beta1", "EndpointSlice", "discovery.k8s.io/v1", 25},
		{"events.k8s.io/v1beta1", "Event", "events.k8s.io/v1", 25},
		{"autoscaling/v2beta1", "HorizontalPodAutoscaler", "autoscaling/v2", 25},
		{"policy/v1beta1", "PodDisruptionBudget", "policy/v1", 25},
		{"policy/v1beta1", "PodSecurityPolicy", "", 25},
		{"node.k8s.io/v1beta1", "RuntimeClass", "node.k8s.io/v1", 25},
		{"admissionregistration.k8s.io/v1beta1", "MutatingWebhookConfiguration ValidatingWebhookConfiguration", "admissionregistration.k8s.io/v1", 22},
		{"apiextensions.k8s.io/v1beta1", "CustomResourceDefinition", "apiextensions.k8s.io/v1", 22},
		{"apiregistration.k8s.io/v1beta1", "APIService", "apiregistration.k8s.io/v1", 22},
		{"authentication.k8s.io/v1beta1", "TokenReview", "authentication.k8s.io/v1", 22},
		{"authorization.k8s.io/v1beta1", "SubjectAccessReview LocalSubjectAccessReview SelfSubjectAccessReview", "authorization.k8s.io/v1", 22},
		{"certificates.k8s.io/v1beta1", "CertificateSigningRequest", "certificates.k8s.io/v1", 22},
		{"coordination.k8s.io/v1beta1", "Lease", "coordination.k8s.io/v1", 22},
		{"extensions/v1beta1", "Ingress", "networking.k8s.io/v1", 22},
		{"networking.k8s.io/v1beta1", "Ingress IngressClass", "networking.k8s.io/v1", 22},
		{"rbac.authorization.k8s.io/v1beta1", "ClusterRole ClusterRoleBinding Role RoleBinding", "rbac.authorization.k8s.io/v1", 22},
		{"scheduling.k8s.io/v1beta1", "PriorityClass", "scheduling.k8s.io/v1", 22},
		{"storage.k8s.io/v1beta1", "CSIDriver CSINode StorageClass VolumeAttachment", "storage.k8s.io/v1", 22},
		{"extensions/v1beta1", "NetworkPolicy", "networking.k8s.io/v1", 16},
		{"extensions/v1beta1", "PodSecurityPolicy", "", 16},
		{"extensions/v1beta1", "DaemonSet Deployment ReplicaSet", "apps/v1", 16},
		{"apps/v1beta1", "Deployment StatefulSet", "apps/v1", 16},
		{"apps/v1beta2", "DaemonSet Deployment ReplicaSet StatefulSet", "apps/v1", 16},
	}
	table := apiLifecycles()
	n := 0
	for _, r := range guide {
		gv, err := schema.ParseGroupVersion(r.gv)
		if err != nil {
			t.Fatal(err)
		}
		for _, kind := range strings.Fields(r.kinds) {
			n++
			l, ok := table[gv.WithKind(kind)]
			if !ok {
				t.Errorf("%s %s: not in the lifecycle table", r.gv, kind)
				continue
			}
			if l.Removed != (KubeVersion{1, r.removed}) {
				t.Errorf("%s %s: removed in %s, the guide says 1.%d", r.gv, kind, l.Removed, r.removed)
			}
			if got := replacementFor(gv.WithKind(kind), KubeVersion{1, 36}); r.replacement != "" && got.GroupVersion().String() != r.replacement {
				t.Errorf("%s %s: replacement %v, the guide says %s", r.gv, kind, got, r.replacement)
			}
		}
	}
	// PodSecurityPolicy went with no successor: extensions/v1beta1's replacement is
	// policy/v1beta1 for a 1.16 cluster, none for a 1.25 one.
	psp := schema.GroupVersionKind{Group: "extensions", Version: "v1beta1", Kind: "PodSecurityPolicy"}
	if r := replacementFor(psp, KubeVersion{1, 16}); r.GroupVersion().String() != "policy/v1beta1" {
		t.Errorf("extensions/v1beta1 PodSecurityPolicy on 1.16: replacement %v, want policy/v1beta1", r)
	}
	if r := replacementFor(psp, KubeVersion{1, 25}); r.Kind != "" {
		t.Errorf("extensions/v1beta1 PodSecurityPolicy on 1.25: replacement %v, want none", r)
	}
	if n < 45 {
		t.Errorf("only %d removals checked", n)
	}
}

func TestParseKubeVersion(t *testing.T) {
	for in, want := range map[string]KubeVersion{"v1.29": {1, 29}, "1.31": {1, 31}, "v1.36.3": {1, 36}, "": {1, 36}, "1.30.0-rc.1": {1, 30}} {
		if got, err := ParseKubeVersion(in); err != nil || got != want {
			t.Errorf("ParseKubeVersion(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"1", "2.1", "latest", "v1.x"} {
		if _, err := ParseKubeVersion(bad); err == nil {
			t.Errorf("ParseKubeVersion(%q): no error", bad)
		}
	}
}

// TestCheckAPIVersion: through a check, a version the target no longer serves is an
// Enforce finding at the apiVersion line naming the removal, the replacement and what
// else changes, and is not counted as "not schema-checked"; for an older target it is
// a deprecation warning; before its deprecation, nothing; current versions, nothing.
func TestCheckAPIVersion(t *testing.T) {
	docs := `apiVersion: extensions/v1beta1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  backend: {serviceName: web, servicePort: 80}
---
apiVersion: batch/v1beta1
kind: CronJob
metadata: {name: nightly, namespace: shop}
spec:
  schedule: "0 1 * * *"
  jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: ok, namespace: shop}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
`
	rs, err := Decode("apps/web.yaml", []byte(docs))
	if err != nil {
		t.Fatal(err)
	}
	gate, err := OpenGate(GateOptions{NoBuiltin: true})
	if err != nil {
		t.Fatal(err)
	}
	check := func(v string) *Report {
		t.Helper()
		kube, err := ParseKubeVersion(v)
		if err != nil {
			t.Fatal(err)
		}
		opts := DefaultCheckOptions()
		opts.KubeVersion = kube
		return gate.CheckResources(context.Background(), rs, opts)
	}
	find := func(rep *Report, kind string) *Result {
		for i, r := range rep.Results {
			if r.Policy == APIVersionPolicy && r.Kind == kind {
				return &rep.Results[i]
			}
		}
		return nil
	}

	rep := check("1.36")
	ing := find(rep, "Ingress")
	if ing == nil || ing.Action != Enforce || ing.Rule != "removed" || ing.Name != "web" || ing.Origin.Line != 1 ||
		!strings.Contains(ing.Message, "no longer served since Kubernetes 1.22") || !strings.Contains(ing.Message, "use networking.k8s.io/v1 Ingress") ||
		!strings.Contains(ing.Message, "spec.defaultBackend") {
		t.Fatalf("extensions/v1beta1 Ingress for 1.36: %+v", ing)
	}
	if cj := find(rep, "CronJob"); cj == nil || cj.Action != Enforce || cj.Origin.Line != 7 || !strings.Contains(cj.Message, "since Kubernetes 1.25") {
		t.Errorf("batch/v1beta1 CronJob for 1.36: %+v", cj)
	}
	if rep.Summary.Blocking != 2 || len(rep.Unchecked) != 0 {
		t.Errorf("blocking %d (want 2), not schema-checked %v (want none)", rep.Summary.Blocking, rep.Unchecked)
	}

	rep = check("v1.23.4")
	if ing := find(rep, "Ingress"); ing == nil || ing.Rule != "removed" {
		t.Errorf("Ingress for 1.23: %+v", ing)
	}
	cj := find(rep, "CronJob")
	if cj == nil || cj.Action != Audit || cj.Rule != "deprecated" || !strings.Contains(cj.Message, "deprecated since Kubernetes 1.21 and will no longer be served in Kubernetes 1.25") || cj.Blocking() {
		t.Errorf("batch/v1beta1 CronJob for 1.23: %+v", cj)
	}

	rep = check("1.13")
	if ing := find(rep, "Ingress"); ing != nil {
		t.Errorf("Ingress for 1.13, before its deprecation: %+v", ing)
	}
	for _, r := range check("1.36").Results {
		if r.Name == "ok" && r.Policy == APIVersionPolicy {
			t.Errorf("networking.k8s.io/v1 Ingress: %+v", r)
		}
	}
}
