package policy

import (
	"cmp"
	"slices"
)

// Status is the outcome of one rule on one resource.
type Status string

const (
	StatusPass  Status = "pass"
	StatusFail  Status = "fail"
	StatusWarn  Status = "warn"
	StatusSkip  Status = "skip"
	StatusError Status = "error"
)

// Action is what a failure does: Enforce blocks, Audit warns.
type Action string

const (
	Enforce Action = "Enforce"
	Audit   Action = "Audit"
)

// Result is resource x policy x rule -> status. Results are values: a Go error means
// the gate could not evaluate at all, a Result with StatusError means one rule could not.
type Result struct {
	// Origin is where the finding points: the offending field when known, else the
	// resource's first line.
	Origin     Origin `json:"origin"`
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	Policy     string `json:"policy"`
	Rule       string `json:"rule"`
	Status     Status `json:"status"`
	Action     Action `json:"action,omitempty"`
	Message    string `json:"message,omitempty"`
	// Path is the field the rule failed at (spec.containers[0].image), when Kyverno names one.
	Path string `json:"path,omitempty"`
	// ValuesFrom are where the value at Path was set, when it came from elsewhere than
	// Origin's file and that can be told: the values-file lines of a Helm chart's values.
	ValuesFrom  []ValueOrigin `json:"valuesFrom,omitempty"`
	Severity    string        `json:"severity,omitempty"`
	Category    string        `json:"category,omitempty"`
	Remediation string        `json:"remediation,omitempty"`
	// HelpURL documents the policy (its gitgate.dev/help-url annotation).
	HelpURL string `json:"helpURL,omitempty"`
	// Exception names the PolicyException that turned a failure into a skip.
	Exception string `json:"exception,omitempty"`
	// Baseline is new, unchanged or fixed in merge-request mode (check --base).
	Baseline Baseline `json:"baseline,omitempty"`
}

// ResourceID is Kind/namespace/name of the resource the result is about.
func (r Result) ResourceID() string { return FormatID(r.Kind, r.Namespace, r.Name) }

// Blocking reports whether the result fails the gate: an Enforce failure or an error
// of an Enforce rule.
func (r Result) Blocking() bool {
	return r.Action == Enforce && (r.Status == StatusFail || r.Status == StatusError)
}

// Finding reports whether the result is worth printing: anything but pass and skip.
func (r Result) Finding() bool {
	return r.Status == StatusFail || r.Status == StatusWarn || r.Status == StatusError
}

func compareResults(a, b Result) int {
	return cmp.Or(
		cmp.Compare(a.Origin.Target, b.Origin.Target),
		cmp.Compare(a.Origin.File, b.Origin.File),
		cmp.Compare(a.Origin.Line, b.Origin.Line),
		cmp.Compare(a.Origin.Col, b.Origin.Col),
		cmp.Compare(a.Kind, b.Kind),
		cmp.Compare(a.Namespace, b.Namespace),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Policy, b.Policy),
		cmp.Compare(a.Rule, b.Rule),
		cmp.Compare(a.Status, b.Status),
		cmp.Compare(a.Message, b.Message),
	)
}

// SortResults orders results deterministically: by render target, file, position,
// resource, policy, rule.
func SortResults(rs []Result) { slices.SortFunc(rs, compareResults) }
