package reconcile

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/gitgate/gitgate/internal/git"
	"github.com/gitgate/gitgate/policy"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DriftPolicy is the policy name drift results carry in PolicyReports.
const DriftPolicy = "gitgate-drift"

// PolicyReports turns the drift report into wgpolicyk8s.io/v1alpha2 PolicyReports, one per
// app and namespace (ClusterPolicyReport for cluster-scoped objects), named
// gitgate-<app>: the live objects' policy findings, and one gitgate-drift/in-sync result
// per object (pass in sync, fail otherwise).
func PolicyReports(r *DriftReport) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	ts := map[string]any{"seconds": r.Generated.Unix(), "nanos": int64(0)}
	for _, a := range r.Apps {
		byNS := map[string][]any{}
		summary := map[string]map[string]int64{}
		add := func(ns string, res map[string]any) {
			byNS[ns] = append(byNS[ns], res)
			if summary[ns] == nil {
				summary[ns] = map[string]int64{"pass": 0, "fail": 0, "warn": 0, "error": 0, "skip": 0}
			}
			summary[ns][res["result"].(string)]++
		}
		for _, o := range a.Objects {
			subject := map[string]any{"apiVersion": o.Ref.APIVersion, "kind": o.Ref.Kind, "name": o.Ref.Name}
			if o.Ref.Namespace != "" {
				subject["namespace"] = o.Ref.Namespace
			}
			drift := map[string]any{
				"policy": DriftPolicy, "rule": "in-sync", "source": "gitgate", "scored": true,
				"timestamp": ts, "resources": []any{subject}, "category": "GitOps", "severity": "medium",
			}
			if o.State == InSync {
				drift["result"], drift["message"] = "pass", "matches Git at "+ShowRevision(r.Revision)
			} else {
				drift["result"], drift["message"] = "fail", driftMessage(o)
			}
			add(o.Ref.Namespace, drift)
			for _, v := range o.Violations {
				res := map[string]any{
					"policy": v.Policy, "rule": v.Rule, "source": "gitgate", "scored": true,
					"timestamp": ts, "resources": []any{subject}, "message": v.Message,
					"result": reportResult(v.Status),
				}
				if v.Severity != "" {
					res["severity"] = strings.ToLower(v.Severity)
				}
				if v.Category != "" {
					res["category"] = v.Category
				}
				if o.DriftViolates && v.Blocking() {
					res["properties"] = map[string]any{"drift": "true"}
				}
				add(o.Ref.Namespace, res)
			}
		}
		nss := make([]string, 0, len(byNS))
		for ns := range byNS {
			nss = append(nss, ns)
		}
		sort.Strings(nss)
		for _, ns := range nss {
			u := &unstructured.Unstructured{Object: map[string]any{}}
			u.SetAPIVersion("wgpolicyk8s.io/v1alpha2")
			u.SetKind("PolicyReport")
			if ns == "" {
				u.SetKind("ClusterPolicyReport")
			} else {
				u.SetNamespace(ns)
			}
			u.SetName(strings.TrimPrefix(inventoryName(a.App), "gitgate-inventory-"))
			u.SetName("gitgate-" + u.GetName())
			u.SetLabels(map[string]string{"app.kubernetes.io/managed-by": "gitgate"})
			u.SetAnnotations(map[string]string{"gitgate.dev/app": a.App, "gitgate.dev/revision": r.Revision})
			u.Object["results"] = byNS[ns]
			sum := map[string]any{}
			for k, v := range summary[ns] {
				sum[k] = v
			}
			u.Object["summary"] = sum
			out = append(out, u)
		}
	}
	return out
}

func driftMessage(o ObjectDrift) string {
	switch o.State {
	case Missing:
		return "in Git, missing from the cluster"
	case Extra:
		return "no longer in Git, still in the cluster"
	}
	var paths []string
	for _, d := range o.Diffs {
		paths = append(paths, d.Path)
	}
	msg := "differs from Git"
	if len(paths) > 0 {
		msg += ": " + strings.Join(paths, ", ")
	}
	if o.Error != "" {
		msg += " (" + o.Error + ")"
	}
	return msg
}

func reportResult(s policy.Status) string {
	switch s {
	case policy.StatusFail:
		return "fail"
	case policy.StatusWarn:
		return "warn"
	case policy.StatusError:
		return "error"
	case policy.StatusSkip:
		return "skip"
	}
	return "pass"
}

// WritePolicyReports server-side applies the reports (field manager gitgate).
func WritePolicyReports(ctx context.Context, c client.Client, reports []*unstructured.Unstructured) error {
	for _, u := range reports {
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
			return fmt.Errorf("write %s %s: %w; is the wgpolicyk8s.io PolicyReport CRD installed?", u.GetKind(), refOf(u), err)
		}
	}
	return nil
}

// short is a revision for people: 12 characters, or "(working tree)".
// ShowRevision is how a sync or drift report names the revision it compared with: the
// short commit id, or "(working tree)" for a directory that is not a Git checkout.
func ShowRevision(rev string) string {
	if rev == "" {
		return "(working tree)"
	}
	return git.ShortRev(rev)
}
