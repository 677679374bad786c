package report

import (
	"github.com/gitgate/gitgate/policy"

	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type cqIssue struct {
	Type        string   `json:"type"`
	CheckName   string   `json:"check_name"`
	Description string   `json:"description"`
	Categories  []string `json:"categories"`
	Fingerprint string   `json:"fingerprint"`
	Severity    string   `json:"severity"`
	Location    struct {
		Path  string `json:"path"`
		Lines struct {
			Begin int `json:"begin"`
		} `json:"lines"`
	} `json:"location"`
}

func codeQuality(t *testing.T, rep *policy.Report) []cqIssue {
	t.Helper()
	var out []cqIssue
	if err := json.Unmarshal(render(t, "codequality", rep), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteCodeQuality(t *testing.T) {
	type row struct {
		Check, Severity, Path string
		Line                  int
	}
	tests := []struct {
		name string
		rep  *policy.Report
		want []row
	}{
		{name: "plain", rep: plainReport(0), want: []row{
			{"quota/max-deployments", "critical", "apps/api/base/deployment.yaml", 1},
			{"require-probes/autogen-liveness", "minor", "apps/api/overlays/production/kustomization.yaml", 12},
			{"disallow-privilege-escalation/autogen-privilege-escalation", "blocker", "apps/web/base/deployment.yaml", 20},
			{"disallow-latest-tag/autogen-validate-image-tag", "critical", "apps/web/base/deployment.yaml", 18},
		}},
		{name: "merge request: head findings only, no fixed ones", rep: mrReport(0), want: []row{
			{"quota/max-deployments", "critical", "apps/api/base/deployment.yaml", 1},
			{"require-probes/autogen-liveness", "minor", "apps/api/overlays/production/kustomization.yaml", 12},
			{"disallow-privilege-escalation/autogen-privilege-escalation", "blocker", "apps/web/base/deployment.yaml", 20},
		}},
		{name: "empty report is an empty array", rep: &policy.Report{}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			issues := codeQuality(t, tt.rep)
			if issues == nil {
				t.Fatal("not a JSON array")
			}
			var got []row
			seen := map[string]bool{}
			for _, is := range issues {
				got = append(got, row{is.CheckName, is.Severity, is.Location.Path, is.Location.Lines.Begin})
				if is.Type != "issue" || is.Description == "" || len(is.Categories) == 0 {
					t.Errorf("issue %+v lacks type, description or categories", is)
				}
				if len(is.Fingerprint) != 32 || seen[is.Fingerprint] {
					t.Errorf("fingerprint %q not a unique 128-bit hex", is.Fingerprint)
				}
				seen[is.Fingerprint] = true
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("issues (-want +got):\n%s", diff)
			}
		})
	}
}

// GitLab tells new from resolved issues by fingerprint: it must not move with lines.
func TestCodeQualityFingerprintsStable(t *testing.T) {
	prints := func(rep *policy.Report) map[string]string {
		out := map[string]string{}
		for _, is := range codeQuality(t, rep) {
			out[is.CheckName] = is.Fingerprint
		}
		return out
	}
	first, second := prints(plainReport(0)), prints(plainReport(25))
	if len(first) != 4 {
		t.Fatalf("got %d fingerprints, want 4", len(first))
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("fingerprints changed when lines moved (-run1 +run2):\n%s", diff)
	}
	// A different message is a different issue.
	rep := plainReport(0)
	for i := range rep.Results {
		if rep.Results[i].Policy == "require-probes" {
			rep.Results[i].Message = "a readinessProbe is required"
		}
	}
	if prints(rep)["require-probes/autogen-liveness"] == first["require-probes/autogen-liveness"] {
		t.Error("fingerprint ignores the message")
	}
}

func TestCodeQualitySeverity(t *testing.T) {
	tests := []struct {
		action   policy.Action
		status   policy.Status
		severity string
		want     string
	}{
		{policy.Enforce, policy.StatusFail, "high", "blocker"},
		{policy.Enforce, policy.StatusFail, "critical", "blocker"},
		{policy.Enforce, policy.StatusFail, "medium", "critical"},
		{policy.Enforce, policy.StatusFail, "", "critical"},
		{policy.Enforce, policy.StatusError, "", "critical"},
		{policy.Audit, policy.StatusFail, "high", "major"},
		{policy.Audit, policy.StatusFail, "medium", "minor"},
		{policy.Audit, policy.StatusWarn, "", "minor"},
		{policy.Audit, policy.StatusFail, "low", "info"},
	}
	for _, tt := range tests {
		t.Run(string(tt.action)+"/"+string(tt.status)+"/"+tt.severity, func(t *testing.T) {
			got := codeQualitySeverity(policy.Result{Action: tt.action, Status: tt.status, Severity: tt.severity})
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}
