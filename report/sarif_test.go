package report

import (
	"github.com/gitgate/gitgate/policy"

	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// sarifValidator compiles the official SARIF 2.1.0 schema vendored in testdata (see
// testdata/README.md for where it comes from), asserting formats such as uri too.
func sarifValidator(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("testdata/sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(sarifSchema, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(sarifSchema)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ValidateSARIF fails the test unless data is valid SARIF 2.1.0.
func validateSARIF(t *testing.T, s *jsonschema.Schema, data []byte) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if err := s.Validate(inst); err != nil {
		t.Fatalf("not valid SARIF 2.1.0: %v\n%s", err, data)
	}
}

type sarifGot struct {
	Version string
	Runs    []struct {
		Tool struct {
			Driver struct {
				Name  string
				Rules []struct {
					ID                   string
					HelpURI              string
					ShortDescription     struct{ Text string }
					Help                 struct{ Text string }
					DefaultConfiguration struct{ Level string }
				}
			}
		}
		Invocations []struct {
			ExecutionSuccessful        bool
			ToolExecutionNotifications []struct{ Level string }
		}
		Results []struct {
			RuleID              string
			RuleIndex           int
			Kind, Level         string
			BaselineState       string
			PartialFingerprints map[string]string
			Suppressions        []struct{ Kind, Justification string }
			Locations           []struct {
				PhysicalLocation struct {
					ArtifactLocation struct{ URI string }
					Region           struct{ StartLine, StartColumn int }
				}
			}
		}
	}
}

// sarifRow is one result reduced to what the test compares.
type sarifRow struct {
	Rule, Kind, Level, Baseline, URI string
	Line, Col                        int
	Suppression                      string
}

func TestWriteSARIF(t *testing.T) {
	schema := sarifValidator(t)
	tests := []struct {
		name      string
		rep       *policy.Report
		wantRules map[string]string // id -> default level
		wantRows  []sarifRow
	}{
		{
			name: "plain",
			rep:  plainReport(0),
			wantRules: map[string]string{
				"disallow-latest-tag/autogen-validate-image-tag":             "error",
				"disallow-privilege-escalation/autogen-privilege-escalation": "error",
				"quota/max-deployments":                                      "error",
				"require-probes/autogen-liveness":                            "warning",
				"require-run-as-non-root/autogen-run-as-non-root":            "error",
			},
			wantRows: []sarifRow{
				{Rule: "quota/max-deployments", Kind: "fail", Level: "error", URI: "apps/api/base/deployment.yaml", Line: 1, Col: 1},
				{Rule: "require-probes/autogen-liveness", Kind: "fail", Level: "warning", URI: "apps/api/overlays/production/kustomization.yaml", Line: 12, Col: 3},
				{Rule: "require-run-as-non-root/autogen-run-as-non-root", Kind: "fail", Level: "error", URI: "apps/batch/base/job.yaml", Line: 4, Col: 5, Suppression: "inSource: the vendor image needs root, OPS-7"},
				{Rule: "require-run-as-non-root/autogen-run-as-non-root", Kind: "fail", Level: "error", URI: "apps/batch/base/job.yaml", Line: 4, Col: 5, Suppression: "external: platform/legacy-seed (ticket OPS-123)"},
				{Rule: "disallow-privilege-escalation/autogen-privilege-escalation", Kind: "fail", Level: "error", URI: "apps/web/base/deployment.yaml", Line: 20, Col: 9},
				{Rule: "disallow-latest-tag/autogen-validate-image-tag", Kind: "fail", Level: "error", URI: "apps/web/base/deployment.yaml", Line: 18, Col: 16},
			},
		},
		{
			name: "merge request: baseline states, fixed as absent",
			rep:  mrReport(0),
			wantRules: map[string]string{
				"disallow-latest-tag/autogen-validate-image-tag":             "error",
				"disallow-privilege-escalation/autogen-privilege-escalation": "error",
				"quota/max-deployments":                                      "error",
				"require-probes/autogen-liveness":                            "warning",
				"require-run-as-non-root/autogen-run-as-non-root":            "error",
			},
			wantRows: []sarifRow{
				{Rule: "quota/max-deployments", Kind: "fail", Level: "error", Baseline: "unchanged", URI: "apps/api/base/deployment.yaml", Line: 1, Col: 1},
				{Rule: "require-probes/autogen-liveness", Kind: "fail", Level: "warning", Baseline: "unchanged", URI: "apps/api/overlays/production/kustomization.yaml", Line: 12, Col: 3},
				{Rule: "require-run-as-non-root/autogen-run-as-non-root", Kind: "fail", Level: "error", URI: "apps/batch/base/job.yaml", Line: 4, Col: 5, Suppression: "inSource: the vendor image needs root, OPS-7"},
				{Rule: "require-run-as-non-root/autogen-run-as-non-root", Kind: "fail", Level: "error", URI: "apps/batch/base/job.yaml", Line: 4, Col: 5, Suppression: "external: platform/legacy-seed (ticket OPS-123)"},
				{Rule: "disallow-privilege-escalation/autogen-privilege-escalation", Kind: "fail", Level: "error", Baseline: "new", URI: "apps/web/base/deployment.yaml", Line: 20, Col: 9},
				{Rule: "disallow-latest-tag/autogen-validate-image-tag", Kind: "pass", Level: "none", Baseline: "absent", URI: "apps/web/base/deployment.yaml", Line: 18, Col: 16},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := render(t, "sarif", tt.rep)
			validateSARIF(t, schema, data)
			var got sarifGot
			if err := json.Unmarshal(data, &got); err != nil {
				t.Fatal(err)
			}
			if got.Version != "2.1.0" || len(got.Runs) != 1 || got.Runs[0].Tool.Driver.Name != "gitgate" {
				t.Fatalf("version %q, %d runs", got.Version, len(got.Runs))
			}
			run := got.Runs[0]
			rules := map[string]string{}
			for _, r := range run.Tool.Driver.Rules {
				rules[r.ID] = r.DefaultConfiguration.Level
				if (r.HelpURI != "") != (r.ID == "disallow-privilege-escalation/autogen-privilege-escalation") {
					t.Errorf("rule %s helpUri %q: only the policy with gitgate.dev/help-url has one", r.ID, r.HelpURI)
				}
				if r.ShortDescription.Text == "" || r.Help.Text == "" {
					t.Errorf("rule %s has no description or help", r.ID)
				}
			}
			if diff := cmp.Diff(tt.wantRules, rules); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
			var rows []sarifRow
			prints := map[string]bool{}
			for _, r := range run.Results {
				if run.Tool.Driver.Rules[r.RuleIndex].ID != r.RuleID {
					t.Errorf("result %s points at rule %d", r.RuleID, r.RuleIndex)
				}
				fp := r.PartialFingerprints[sarifFingerprint]
				if fp == "" || prints[fp] {
					t.Errorf("result %s: fingerprint %q missing or repeated", r.RuleID, fp)
				}
				prints[fp] = true
				row := sarifRow{Rule: r.RuleID, Kind: r.Kind, Level: r.Level, Baseline: r.BaselineState}
				if len(r.Locations) == 1 {
					p := r.Locations[0].PhysicalLocation
					row.URI, row.Line, row.Col = p.ArtifactLocation.URI, p.Region.StartLine, p.Region.StartColumn
				}
				if len(r.Suppressions) == 1 {
					row.Suppression = r.Suppressions[0].Kind + ": " + r.Suppressions[0].Justification
				}
				rows = append(rows, row)
			}
			if diff := cmp.Diff(tt.wantRows, rows); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
			inv := run.Invocations[0]
			if inv.ExecutionSuccessful || len(inv.ToolExecutionNotifications) != 2 {
				t.Errorf("invocation %+v: want unsuccessful, the input error and the notice", inv)
			}
		})
	}
}

// fingerprints survive moved lines: GitHub matches alerts across commits by them.
func TestSARIFFingerprintsStable(t *testing.T) {
	prints := func(rep *policy.Report) []string {
		var got sarifGot
		if err := json.Unmarshal(render(t, "sarif", rep), &got); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range got.Runs[0].Results {
			out = append(out, r.RuleID+" "+r.PartialFingerprints[sarifFingerprint])
		}
		return out
	}
	a, b := prints(mrReport(0)), prints(mrReport(40))
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("fingerprints moved with the lines (-before +after):\n%s", diff)
	}
}

func TestSARIFEmptyReportIsValid(t *testing.T) {
	validateSARIF(t, sarifValidator(t), render(t, "sarif", &policy.Report{}))
}

// The schema check is real: a log that breaks it is refused.
func TestSARIFSchemaRejectsInvalid(t *testing.T) {
	schema := sarifValidator(t)
	data := render(t, "sarif", plainReport(0))
	tests := map[string][]byte{
		"unknown level":   bytes.Replace(data, []byte(`"level": "warning"`), []byte(`"level": "severe"`), 1),
		"line 0":          bytes.Replace(data, []byte(`"startLine": 12`), []byte(`"startLine": 0`), 1),
		"no version":      bytes.Replace(data, []byte(`"version": "2.1.0",`), nil, 1),
		"bad baseline":    bytes.Replace(render(t, "sarif", mrReport(0)), []byte(`"baselineState": "new"`), []byte(`"baselineState": "brand-new"`), 1),
		"unknown top key": bytes.Replace(data, []byte(`"version": "2.1.0",`), []byte(`"version": "2.1.0", "extra": 1,`), 1),
	}
	for name, bad := range tests {
		t.Run(name, func(t *testing.T) {
			if bytes.Equal(bad, data) {
				t.Fatal("the mutation did not apply")
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(bad))
			if err != nil {
				t.Fatal(err)
			}
			if err := schema.Validate(inst); err == nil {
				t.Error("the schema accepted an invalid log")
			}
		})
	}
}
