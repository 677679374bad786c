package report

import (
	"github.com/gitgate/gitgate/policy"

	"encoding/xml"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// junitRow is one testcase as the test compares it.
type junitRow struct {
	Suite, Class, Name string
	Failures, Errors   []string // type: message
	Skipped, Out       string
}

func parseJUnit(t *testing.T, data []byte) (totals [4]int, rows []junitRow) {
	t.Helper()
	var doc struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Errors   int      `xml:"errors,attr"`
		Skipped  int      `xml:"skipped,attr"`
		Suites   []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Errors   int    `xml:"errors,attr"`
			Skipped  int    `xml:"skipped,attr"`
			Cases    []struct {
				ClassName string `xml:"classname,attr"`
				Name      string `xml:"name,attr"`
				Failures  []struct {
					Message string `xml:"message,attr"`
					Type    string `xml:"type,attr"`
					Body    string `xml:",chardata"`
				} `xml:"failure"`
				Errors []struct {
					Message string `xml:"message,attr"`
					Type    string `xml:"type,attr"`
				} `xml:"error"`
				Skipped *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
				Out string `xml:"system-out"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("not XML: %v\n%s", err, data)
	}
	sum := [4]int{}
	for _, s := range doc.Suites {
		counts := [4]int{len(s.Cases), 0, 0, 0}
		for _, c := range s.Cases {
			row := junitRow{Suite: s.Name, Class: c.ClassName, Name: c.Name, Out: strings.TrimSpace(c.Out)}
			for _, f := range c.Failures {
				row.Failures = append(row.Failures, f.Type+": "+f.Message)
				if !strings.Contains(f.Body, c.Name) {
					t.Errorf("failure body %q does not name %s", f.Body, c.Name)
				}
			}
			for _, e := range c.Errors {
				row.Errors = append(row.Errors, e.Type+": "+e.Message)
			}
			if c.Skipped != nil {
				row.Skipped = c.Skipped.Message
			}
			switch {
			case len(c.Failures) > 0:
				counts[1]++
			case len(c.Errors) > 0:
				counts[2]++
			case c.Skipped != nil:
				counts[3]++
			}
			rows = append(rows, row)
		}
		if got := [4]int{s.Tests, s.Failures, s.Errors, s.Skipped}; got != counts {
			t.Errorf("suite %s counts %v, its testcases say %v", s.Name, got, counts)
		}
		for i := range sum {
			sum[i] += counts[i]
		}
	}
	if got := [4]int{doc.Tests, doc.Failures, doc.Errors, doc.Skipped}; got != sum {
		t.Errorf("testsuites counts %v, the suites add up to %v", got, sum)
	}
	return sum, rows
}

func TestWriteJUnit(t *testing.T) {
	two := plainReport(0)
	second := privilegedFinding(40)
	second.Name, second.Message = "web-canary", "validation error: allowPrivilegeEscalation must be false"
	two.Results = append(two.Results, second)
	policy.SortResults(two.Results)

	tests := []struct {
		name       string
		rep        *policy.Report
		wantTotals [4]int // tests, failures, errors, skipped
		want       []junitRow
	}{
		{
			name:       "plain",
			rep:        plainReport(0),
			wantTotals: [4]int{5, 2, 1, 1},
			want: []junitRow{
				{Suite: "api/production", Class: "api/production", Name: "quota/max-deployments",
					Errors: []string{`Enforce: Deployment/production/api: needs cluster data: context entry "count" (apiCall) can only be answered by a cluster`}},
				{Suite: "api/production", Class: "api/production", Name: "require-probes/autogen-liveness",
					Out: "apps/api/overlays/production/kustomization.yaml:12:3: Deployment/production/api: require-probes/autogen-liveness: warning: a livenessProbe is required (at spec.template.spec.containers[0].livenessProbe)"},
				{Suite: "batch/production", Class: "batch/production", Name: "require-run-as-non-root/autogen-run-as-non-root",
					Skipped: "waived or excepted: Job/production/migrate: waiver: the vendor image needs root, OPS-7; Job/production/seed: platform/legacy-seed (ticket OPS-123)"},
				{Suite: "web/production", Class: "web/production", Name: "disallow-privilege-escalation/autogen-privilege-escalation",
					Failures: []string{"Enforce: Deployment/production/web: allowPrivilegeEscalation must be false | <always>"}},
				{Suite: "web/staging", Class: "web/staging", Name: "disallow-latest-tag/autogen-validate-image-tag",
					Failures: []string{"Enforce: Deployment/staging/web: an image tag is required and must not be latest"}},
			},
		},
		{
			name:       "one failure per failing resource",
			rep:        &policy.Report{Results: []policy.Result{privilegedFinding(20), second}},
			wantTotals: [4]int{1, 1, 0, 0},
			want: []junitRow{
				{Suite: "web/production", Class: "web/production", Name: "disallow-privilege-escalation/autogen-privilege-escalation",
					Failures: []string{
						"Enforce: Deployment/production/web: allowPrivilegeEscalation must be false | <always>",
						"Enforce: Deployment/production/web-canary: allowPrivilegeEscalation must be false",
					}},
			},
		},
		{
			name:       "plain manifests: a suite per file",
			rep:        &policy.Report{Results: []policy.Result{{Origin: policy.Origin{File: "deploy/web.yaml", Line: 3}, Kind: "Pod", Name: "web", Policy: "p", Rule: "r", Status: policy.StatusFail, Action: policy.Enforce, Message: "bad\x00byte"}}},
			wantTotals: [4]int{1, 1, 0, 0},
			want: []junitRow{
				{Suite: "deploy/web.yaml", Class: "deploy/web.yaml", Name: "p/r", Failures: []string{"Enforce: Pod/web: bad\uFFFDbyte"}},
			},
		},
		{
			name:       "merge request: messages tagged, fixed left out",
			rep:        mrReport(0),
			wantTotals: [4]int{4, 1, 1, 1},
			want: []junitRow{
				{Suite: "api/production", Class: "api/production", Name: "quota/max-deployments",
					Errors: []string{`Enforce: [unchanged] Deployment/production/api: needs cluster data: context entry "count" (apiCall) can only be answered by a cluster`}},
				{Suite: "api/production", Class: "api/production", Name: "require-probes/autogen-liveness",
					Out: "[unchanged] apps/api/overlays/production/kustomization.yaml:12:3: Deployment/production/api: require-probes/autogen-liveness: warning: a livenessProbe is required (at spec.template.spec.containers[0].livenessProbe)"},
				{Suite: "batch/production", Class: "batch/production", Name: "require-run-as-non-root/autogen-run-as-non-root",
					Skipped: "waived or excepted: Job/production/migrate: waiver: the vendor image needs root, OPS-7; Job/production/seed: platform/legacy-seed (ticket OPS-123)"},
				{Suite: "web/production", Class: "web/production", Name: "disallow-privilege-escalation/autogen-privilege-escalation",
					Failures: []string{"Enforce: [new] Deployment/production/web: allowPrivilegeEscalation must be false | <always>"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := render(t, "junit", tt.rep)
			if !strings.HasPrefix(string(data), xml.Header) {
				t.Errorf("no XML declaration")
			}
			totals, rows := parseJUnit(t, data)
			if totals != tt.wantTotals {
				t.Errorf("totals %v, want %v", totals, tt.wantTotals)
			}
			if diff := cmp.Diff(tt.want, rows); diff != "" {
				t.Errorf("testcases (-want +got):\n%s", diff)
			}
		})
	}
}
