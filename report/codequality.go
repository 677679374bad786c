package report

import (
	"github.com/gitgate/gitgate/policy"

	"encoding/json"
	"io"
	"strings"
)

// codeQualityIssue is one entry of a GitLab Code Quality report (a subset of Code
// Climate's issue format, which GitLab reads for the merge request widget).
type codeQualityIssue struct {
	Type        string              `json:"type"`
	CheckName   string              `json:"check_name"`
	Description string              `json:"description"`
	Categories  []string            `json:"categories"`
	Fingerprint string              `json:"fingerprint"`
	Severity    string              `json:"severity"`
	Location    codeQualityLocation `json:"location"`
}

type codeQualityLocation struct {
	Path  string           `json:"path"`
	Lines codeQualityLines `json:"lines"`
}

type codeQualityLines struct {
	Begin int `json:"begin"`
}

// codeQualitySeverity maps a finding to GitLab's severities: an Enforce finding is
// blocker when its policy's severity is high or critical, else critical; an Audit one
// is major (high, critical), minor (medium or unset) or info (low, info).
func codeQualitySeverity(r policy.Result) string {
	sev := strings.ToLower(r.Severity)
	high := sev == "high" || sev == "critical"
	if r.Blocking() {
		if high {
			return "blocker"
		}
		return "critical"
	}
	switch {
	case high:
		return "major"
	case sev == "low" || sev == "info":
		return "info"
	}
	return "minor"
}

// writeCodeQuality writes a GitLab Code Quality report: a JSON array with an issue per
// finding (fail, warn, error) of the head revision. GitLab compares the reports of the
// base and head pipelines itself, so the fingerprint is what must not move: a hash of
// FindingKey (target, resource identity, policy/rule, failing field) and the message,
// never the line.
func writeCodeQuality(w io.Writer, rep *policy.Report) error {
	var findings []policy.Result
	for _, r := range rep.Results {
		if r.Finding() {
			findings = append(findings, r)
		}
	}
	prints := fingerprints(findings, func(r policy.Result) string { return policy.CleanMessage(r.Message) })
	issues := make([]codeQualityIssue, 0, len(findings))
	for i, r := range findings {
		desc := r.ResourceID() + ": " + policy.CleanMessage(r.Message)
		if r.Status == policy.StatusError {
			desc = r.ResourceID() + ": could not evaluate: " + policy.CleanMessage(r.Message)
		}
		if r.Origin.Target != "" {
			desc += " [" + r.Origin.Target + "]"
		}
		cat := "Security" // Code Climate's categories; a policy's own category decides
		if c := strings.ToLower(r.Category); c != "" && !strings.Contains(c, "secur") {
			cat = "Bug Risk"
		}
		issues = append(issues, codeQualityIssue{
			Type:        "issue",
			CheckName:   ruleID(r),
			Description: desc,
			Categories:  []string{cat},
			Fingerprint: prints[i],
			Severity:    codeQualitySeverity(r),
			Location:    codeQualityLocation{Path: r.Origin.File, Lines: codeQualityLines{Begin: max(r.Origin.Line, 1)}},
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(issues)
}
