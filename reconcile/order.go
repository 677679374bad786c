package reconcile

import (
	"sort"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/policy"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// kindOrder is Argo CD's order within a wave (the first kinds are applied first).
var kindOrder = func() map[string]int {
	m := map[string]int{}
	for i, k := range []string{"Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService"} {
		m[k] = i
	}
	return m
}()

func wave(u *unstructured.Unstructured) int {
	if w, ok := u.GetAnnotations()["argocd.argoproj.io/sync-wave"]; ok {
		if n, err := strconv.Atoi(strings.TrimSpace(w)); err == nil {
			return n
		}
	}
	return 0
}

// sortApply orders Namespaces and CRDs first, then by sync wave, then by kind.
func sortApply(rs []policy.Resource) {
	phase := func(u *unstructured.Unstructured) int {
		switch u.GetKind() {
		case "Namespace":
			return 0
		case "CustomResourceDefinition":
			return 1
		}
		return 2
	}
	ko := func(k string) int {
		if n, ok := kindOrder[k]; ok {
			return n
		}
		return len(kindOrder)
	}
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i].Object, rs[j].Object
		if pa, pb := phase(a), phase(b); pa != pb {
			return pa < pb
		}
		if wa, wb := wave(a), wave(b); wa != wb {
			return wa < wb
		}
		if ka, kb := ko(a.GetKind()), ko(b.GetKind()); ka != kb {
			return ka < kb
		}
		return a.GetNamespace()+"/"+a.GetName() < b.GetNamespace()+"/"+b.GetName()
	})
}
