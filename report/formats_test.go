package report

import (
	"github.com/gitgate/gitgate/policy"

	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Reports built here, not by a check: every format is tested on the same two reports,
// a plain one and a merge-request one (Changes set, baselines classified).

func probeFinding(line int) policy.Result {
	return policy.Result{
		Origin:     policy.Origin{File: "apps/api/overlays/production/kustomization.yaml", Line: line, Col: 3, Target: "api/production"},
		APIVersion: "apps/v1", Kind: "Deployment", Namespace: "production", Name: "api",
		Policy: "require-probes", Rule: "autogen-liveness", Status: policy.StatusFail, Action: policy.Audit,
		Message:  "validation error: a livenessProbe is required. rule autogen-liveness failed at path /spec/template/spec/containers/0/livenessProbe/",
		Path:     "spec.template.spec.containers[0].livenessProbe",
		Severity: "medium", Category: "Best Practices", Remediation: "add a livenessProbe",
	}
}

func privilegedFinding(line int) policy.Result {
	return policy.Result{
		Origin:     policy.Origin{File: "apps/web/base/deployment.yaml", Line: line, Col: 9, Target: "web/production"},
		APIVersion: "apps/v1", Kind: "Deployment", Namespace: "production", Name: "web",
		Policy: "disallow-privilege-escalation", Rule: "autogen-privilege-escalation", Status: policy.StatusFail, Action: policy.Enforce,
		Message:  "validation error: allowPrivilegeEscalation must be false | <always>. rule autogen-privilege-escalation failed at path /spec/template/spec/containers/0/securityContext/",
		Severity: "high", Category: "Pod Security Standards (Restricted)", Remediation: "set allowPrivilegeEscalation: false",
		HelpURL: "https://kyverno.io/policies/pod-security/restricted/disallow-privilege-escalation/",
	}
}

func latestFinding(line int) policy.Result {
	return policy.Result{
		Origin:     policy.Origin{File: "apps/web/base/deployment.yaml", Line: line, Col: 16, Target: "web/staging"},
		APIVersion: "apps/v1", Kind: "Deployment", Namespace: "staging", Name: "web",
		Policy: "disallow-latest-tag", Rule: "autogen-validate-image-tag", Status: policy.StatusFail, Action: policy.Enforce,
		Message: "validation error: an image tag is required and must not be latest",
	}
}

func ruleError(line int) policy.Result {
	return policy.Result{
		Origin:     policy.Origin{File: "apps/api/base/deployment.yaml", Line: line, Col: 1, Target: "api/production"},
		APIVersion: "apps/v1", Kind: "Deployment", Namespace: "production", Name: "api",
		Policy: "quota", Rule: "max-deployments", Status: policy.StatusError, Action: policy.Enforce,
		Message: `needs cluster data: context entry "count" (apiCall) can only be answered by a cluster`,
	}
}

func waivedResult() policy.Result {
	return policy.Result{
		Origin:     policy.Origin{File: "apps/batch/base/job.yaml", Line: 4, Col: 5, Target: "batch/production"},
		APIVersion: "batch/v1", Kind: "Job", Namespace: "production", Name: "migrate",
		Policy: "require-run-as-non-root", Rule: "autogen-run-as-non-root", Status: policy.StatusSkip, Action: policy.Enforce,
		Message: "skipped", Exception: "waiver: the vendor image needs root, OPS-7",
	}
}

func excepted() policy.Result {
	r := waivedResult()
	r.Name, r.Exception = "seed", "platform/legacy-seed (ticket OPS-123)"
	return r
}

// plainReport is what check prints without --base. shift moves every line.
func plainReport(shift int) *policy.Report {
	rs := []policy.Result{probeFinding(12 + shift), privilegedFinding(20 + shift), latestFinding(18 + shift), ruleError(1 + shift), waivedResult(), excepted()}
	policy.SortResults(rs)
	return &policy.Report{
		Summary: policy.Summary{Targets: 4, Files: 9, Resources: 12, Policies: 11, Pass: 30, Fail: 3, Error: 1, Skip: 2, Blocking: 3},
		Results: rs,
		Errors:  []error{&policy.InputError{Origin: policy.Origin{File: "apps/bad/broken.yaml", Line: 3}, Err: fmt.Errorf("malformed YAML: mapping values are not allowed here")}},
		Notices: []string{"policies/old.yaml:4: PolicyException/platform/old (ticket OPS-1) expired (gitgate.dev/expires: 2026-01-31)"},
	}
}

const apiDiff = `--- base/api/production
+++ head/api/production
@@ -10,6 +10,7 @@
       containers:
       - name: api
-        image: harbor.example.com/api:1.2
+        image: harbor.example.com/api:1.3
+        securityContext: {allowPrivilegeEscalation: true}
`

// mrReport is what check --base prints: the privilege escalation is new, the missing
// probe was already on main, and main's latest tag is fixed.
func mrReport(shift int) *policy.Report {
	rep := plainReport(shift)
	for i := range rep.Results {
		switch rep.Results[i].Policy {
		case "disallow-privilege-escalation":
			rep.Results[i].Baseline = policy.BaselineNew
		case "require-probes", "quota":
			rep.Results[i].Baseline = policy.BaselineUnchanged
		}
	}
	var fixed []policy.Result
	for i, r := range rep.Results {
		if r.Policy == "disallow-latest-tag" {
			r.Baseline = policy.BaselineFixed
			fixed = append(fixed, r)
			rep.Results = append(rep.Results[:i], rep.Results[i+1:]...)
			break
		}
	}
	rep.Changes = &policy.Changes{
		Base: "main", BaseCommit: "0123456789abcdef0123456789abcdef01234567",
		Files: []string{"apps/web/base/deployment.yaml", "apps/api/overlays/production/kustomization.yaml"},
		Targets: []policy.TargetChange{
			{Name: "api/production", State: policy.TargetModified, Diff: apiDiff},
			{Name: "web/production", State: policy.TargetModified, HeadBlocking: true, Diff: "--- a\n+++ b\n@@ -1 +1 @@\n-a: 1\n+a: 2\n"},
			{Name: "web/staging", State: policy.TargetModified, BaseBlocking: true},
		},
		Fixed: fixed,
	}
	rep.Changes.CountBaselines(rep.Results)
	return rep
}

func render(t *testing.T, format string, rep *policy.Report) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := CheckFormats().New(format, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(&buf, rep); err != nil {
		t.Fatalf("%s: %v", format, err)
	}
	return buf.Bytes()
}

func TestMRReportFixture(t *testing.T) {
	c := mrReport(0).Changes
	got := []int{c.New, c.NewBlocking, c.Unchanged, c.FixedCount}
	if diff := cmp.Diff([]int{1, 1, 2, 1}, got); diff != "" {
		t.Fatalf("fixture counts (-want +got):\n%s", diff)
	}
}

func TestWriteTextChanges(t *testing.T) {
	tests := []struct {
		name     string
		rep      *policy.Report
		want     []string // lines that must appear, in this order
		wantNone []string
	}{
		{
			name: "plain: no tags, no fixed section",
			rep:  plainReport(0),
			want: []string{
				"# api/production",
				"apps/api/base/deployment.yaml:1:1: Deployment/production/api: quota/max-deployments: error: needs cluster data",
				"apps/api/overlays/production/kustomization.yaml:12:3: Deployment/production/api: require-probes/autogen-liveness: warning: a livenessProbe is required (at spec.template.spec.containers[0].livenessProbe)",
			},
			wantNone: []string{"[new]", "[fixed]", "against main", "waiver"},
		},
		{
			name: "merge request: tags, fixed findings, affected targets, counts",
			rep:  mrReport(0),
			want: []string{
				"[unchanged] apps/api/base/deployment.yaml:1:1: Deployment/production/api: quota/max-deployments: error:",
				"[unchanged] apps/api/overlays/production/kustomization.yaml:12:3: Deployment/production/api: require-probes/autogen-liveness: warning:",
				"[new] apps/web/base/deployment.yaml:20:9: Deployment/production/web: disallow-privilege-escalation/autogen-privilege-escalation: allowPrivilegeEscalation must be false",
				"# fixed",
				"[fixed] apps/web/base/deployment.yaml:18:16: Deployment/staging/web: disallow-latest-tag/autogen-validate-image-tag: an image tag is required",
				"# affected targets",
				"api/production: modified",
				"web/production: modified, newly failing",
				"web/staging: modified, newly passing",
				"against main (0123456789ab): 1 new (1 blocking), 1 fixed, 2 unchanged in 3 affected targets",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(render(t, "text", tt.rep))
			if !strings.HasSuffix(got, "\n"+summaryLine(tt.rep)+"\n") {
				t.Errorf("does not end with the summary line %q:\n%s", summaryLine(tt.rep), got)
			}
			pos := 0
			for _, w := range tt.want {
				i := strings.Index(got[pos:], w)
				if i < 0 {
					t.Fatalf("missing (or out of order) %q in:\n%s", w, got)
				}
				pos += i + len(w)
			}
			for _, w := range tt.wantNone {
				if strings.Contains(got, w) {
					t.Errorf("unexpected %q in:\n%s", w, got)
				}
			}
		})
	}
}

func TestWriteJSONChanges(t *testing.T) {
	tests := []struct {
		name        string
		rep         *policy.Report
		wantChanges bool
		wantBase    map[string]string // policy -> baseline
	}{
		{name: "plain", rep: plainReport(0), wantBase: map[string]string{
			"require-probes": "", "disallow-privilege-escalation": "", "disallow-latest-tag": "", "quota": "",
			"require-run-as-non-root": "",
		}},
		{name: "merge request", rep: mrReport(0), wantChanges: true, wantBase: map[string]string{
			"require-probes": "unchanged", "disallow-privilege-escalation": "new", "quota": "unchanged",
			"require-run-as-non-root": "",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got struct {
				Results []struct {
					Policy, Baseline, Status, Exception string
				}
				Changes *struct {
					Base    string
					New     int
					Fixed   []struct{ Policy, Baseline string }
					Targets []struct{ Name, State, Diff string }
				}
			}
			if err := json.Unmarshal(render(t, "json", tt.rep), &got); err != nil {
				t.Fatal(err)
			}
			base := map[string]string{}
			for _, r := range got.Results {
				base[r.Policy] = r.Baseline
			}
			if diff := cmp.Diff(tt.wantBase, base); diff != "" {
				t.Errorf("baselines (-want +got):\n%s", diff)
			}
			if (got.Changes != nil) != tt.wantChanges {
				t.Fatalf("changes present = %v, want %v", got.Changes != nil, tt.wantChanges)
			}
			if got.Changes != nil {
				if got.Changes.Base != "main" || got.Changes.New != 1 || len(got.Changes.Fixed) != 1 ||
					got.Changes.Fixed[0].Baseline != "fixed" || len(got.Changes.Targets) != 3 || got.Changes.Targets[0].Diff != apiDiff {
					t.Errorf("changes = %+v", got.Changes)
				}
			}
		})
	}
}

var updateGolden = flag.Bool("update", false, "rewrite the report golden files in testdata/golden")

// TestFormatsGolden pins every format's exact output for both reports; the files in
// testdata/golden are what a reviewer reads to see a format. Refresh with
// go test ./report/ -run TestFormatsGolden -update.
func TestFormatsGolden(t *testing.T) {
	ext := map[string]string{"text": "txt", "json": "json", "sarif": "sarif", "junit": "xml", "codequality": "json", "markdown": "md"}
	for _, format := range CheckFormats().Names() {
		for name, rep := range map[string]*policy.Report{"plain": plainReport(0), "mr": mrReport(0)} {
			t.Run(format+"/"+name, func(t *testing.T) {
				got := render(t, format, rep)
				file := filepath.Join("testdata", "golden", name+"."+format+"."+ext[format])
				if *updateGolden {
					if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(file, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(file)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if diff := cmp.Diff(string(want), string(got)); diff != "" {
					t.Errorf("%s differs from %s (-want +got):\n%s", format, file, diff)
				}
			})
		}
	}
}
