package policy

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// AnnotationWaive waives rules for the resource it annotates, each with a reason:
//
//	gitgate.dev/waive: "require-probes/liveness: batch worker, no HTTP endpoint"
//
// Several waivers are separated by newlines or semicolons. "<policy>: <reason>" waives
// every rule of the policy. A waived rule's failure becomes a skip that names the
// waiver; a waiver without a reason is an error; a waiver that waives nothing is
// reported.
const AnnotationWaive = "gitgate.dev/waive"

// WaiverPolicy is the policy name of the results waivers themselves produce: a
// waiver without a reason (error, Enforce) or one that waives nothing (warning).
const WaiverPolicy = "waiver"

// Waiver is one entry of a gitgate.dev/waive annotation.
type Waiver struct {
	// Policy and Rule name what is waived; an empty Rule (or *) waives every rule.
	Policy, Rule string
	// Reason is why; a waiver without one waives nothing and is an error.
	Reason string
	// Entry is the entry as written.
	Entry string
}

// Name is policy/rule as the waiver names it.
func (w Waiver) Name() string {
	if w.Rule == "" {
		return w.Policy
	}
	return w.Policy + "/" + w.Rule
}

// Matches reports whether the waiver covers the result's policy and rule. A rule name
// also covers the autogen rules Kyverno derives from it for pod controllers
// (autogen-<rule>, autogen-cronjob-<rule>).
func (w Waiver) Matches(r Result) bool {
	if r.Policy != w.Policy {
		return false
	}
	if w.Rule == "" || w.Rule == "*" {
		return true
	}
	return r.Rule == w.Rule || r.Rule == "autogen-"+w.Rule || r.Rule == "autogen-cronjob-"+w.Rule
}

// ParseWaivers splits a gitgate.dev/waive value into its entries.
func ParseWaivers(value string) []Waiver {
	var out []Waiver
	for _, line := range strings.FieldsFunc(value, func(c rune) bool { return c == '\n' || c == ';' }) {
		entry := strings.TrimSpace(line)
		if entry == "" {
			continue
		}
		name, reason, _ := strings.Cut(entry, ":")
		name = strings.TrimSpace(name)
		pol, rule, _ := strings.Cut(name, "/")
		out = append(out, Waiver{Policy: strings.TrimSpace(pol), Rule: strings.TrimSpace(rule), Reason: strings.TrimSpace(reason), Entry: entry})
	}
	return out
}

// waiverValue reads the annotation without copying the annotations map: Evaluate
// is the hot path.
func waiverValue(obj *unstructured.Unstructured) (string, bool) {
	if obj == nil {
		return "", false
	}
	v, found, err := unstructured.NestedFieldNoCopy(obj.Object, "metadata", "annotations", AnnotationWaive)
	if !found || err != nil {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}

// applyWaivers honours the resource's gitgate.dev/waive annotation on its results: a
// failing or warning result a waiver with a reason covers becomes a skip naming the
// waiver ("waiver: <reason>"). It adds an error result for every waiver without a
// reason or policy, and a warning for every waiver that covers no failing result.
func applyWaivers(r Resource, results []Result) []Result {
	value, ok := waiverValue(r.Object)
	if !ok {
		return results
	}
	at := r.FieldOrigin([]string{"metadata", "annotations", AnnotationWaive})
	notice := func(w Waiver, status Status, action Action, msg string) Result {
		obj := r.Object
		return Result{
			Origin:     at,
			APIVersion: obj.GetAPIVersion(),
			Kind:       obj.GetKind(),
			Namespace:  obj.GetNamespace(),
			Name:       obj.GetName(),
			Policy:     WaiverPolicy,
			Rule:       w.Name(),
			Status:     status,
			Action:     action,
			Message:    msg,
			Path:       "metadata.annotations." + AnnotationWaive,
		}
	}
	var extra []Result
	for _, w := range ParseWaivers(value) {
		switch {
		case w.Policy == "":
			extra = append(extra, notice(w, StatusError, Enforce,
				fmt.Sprintf("%s entry %q names no policy; write <policy>/<rule>: <reason>", AnnotationWaive, w.Entry)))
			continue
		case w.Reason == "":
			extra = append(extra, notice(w, StatusError, Enforce,
				fmt.Sprintf("%s waiver for %s has no reason, so it waives nothing; write \"%s: <why this resource may break the rule>\"", AnnotationWaive, w.Name(), w.Name())))
			continue
		}
		applied, matched := 0, 0
		for i := range results {
			res := &results[i]
			if res.Policy == WaiverPolicy || !w.Matches(*res) {
				continue
			}
			matched++
			if res.Status == StatusFail || res.Status == StatusWarn {
				res.Status = StatusSkip
				res.Exception = "waiver: " + w.Reason
				applied++
			}
		}
		switch {
		case matched == 0:
			extra = append(extra, notice(w, StatusWarn, Audit,
				fmt.Sprintf("%s waiver for %s matched no rule evaluated on this resource; fix the policy/rule name or remove the waiver", AnnotationWaive, w.Name())))
		case applied == 0:
			extra = append(extra, notice(w, StatusWarn, Audit,
				fmt.Sprintf("%s waiver for %s waives nothing: the rule does not fail on this resource; remove the waiver", AnnotationWaive, w.Name())))
		}
	}
	return append(results, extra...)
}
