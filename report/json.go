package report

import (
	"github.com/gitgate/gitgate/policy"

	"encoding/json"
	"io"
)

// jsonVersion is the apiVersion of the JSON report; see docs/report.md.
const jsonVersion = "gitgate.dev/v1alpha1"

type jsonReport struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Summary    policy.Summary     `json:"summary"`
	Results    []policy.Result    `json:"results"`
	Errors     []jsonError        `json:"errors"`
	Duplicates []policy.Duplicate `json:"duplicates"`
	Unchecked  map[string]int     `json:"notSchemaChecked"`
	Notices    []string           `json:"notices"`
	Changes    *policy.Changes    `json:"changes,omitempty"`
	// Targets: every render target of a repository check, rendered or not and why.
	Targets []policy.TargetStatus `json:"targets,omitempty"`
	// Shard: which shard of which check (check --shard I/N), for merge-reports.
	Shard *policy.ShardInfo `json:"shard,omitempty"`
}

type jsonError struct {
	Origin  policy.Origin `json:"origin"`
	Message string        `json:"message"`
}

// writeJSON writes the versioned JSON report (kind CheckReport).
func writeJSON(w io.Writer, rep *policy.Report) error {
	out := jsonReport{
		APIVersion: jsonVersion,
		Kind:       "CheckReport",
		Summary:    rep.Summary,
		Results:    rep.Results,
		Errors:     []jsonError{},
		Duplicates: rep.Duplicates,
		Unchecked:  rep.Unchecked,
		Notices:    rep.Notices,
		Targets:    rep.Targets,
		Shard:      rep.Shard,
	}
	if out.Results == nil {
		out.Results = []policy.Result{}
	}
	if out.Duplicates == nil {
		out.Duplicates = []policy.Duplicate{}
	}
	if out.Notices == nil {
		out.Notices = []string{}
	}
	if c := rep.Changes; c != nil {
		cc := *c
		if cc.Files == nil {
			cc.Files = []string{}
		}
		if cc.Targets == nil {
			cc.Targets = []policy.TargetChange{}
		}
		if cc.Fixed == nil {
			cc.Fixed = []policy.Result{}
		}
		out.Changes = &cc
	}
	for _, err := range rep.Errors {
		je := jsonError{Message: err.Error()}
		if o, msg, ok := policy.SplitInputError(err); ok {
			je = jsonError{Origin: o, Message: msg}
		}
		out.Errors = append(out.Errors, je)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
