package policy

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseWaivers(t *testing.T) {
	got := ParseWaivers("require-probes/liveness: batch worker, no HTTP; disallow-latest-tag: pinned by digest upstream\n\n  non-root/check:  \nnoreason")
	want := []Waiver{
		{Policy: "require-probes", Rule: "liveness", Reason: "batch worker, no HTTP", Entry: "require-probes/liveness: batch worker, no HTTP"},
		{Policy: "disallow-latest-tag", Reason: "pinned by digest upstream", Entry: "disallow-latest-tag: pinned by digest upstream"},
		{Policy: "non-root", Rule: "check", Entry: "non-root/check:"},
		{Policy: "noreason", Entry: "noreason"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("waivers (-want +got):\n%s", diff)
	}
}

func TestWaiverMatches(t *testing.T) {
	tests := []struct {
		waiver string
		rule   string
		want   bool
	}{
		{"non-root/check", "check", true},
		{"non-root/check", "autogen-check", true},
		{"non-root/check", "autogen-cronjob-check", true},
		{"non-root/check", "autogen-checks", false},
		{"non-root/check", "other", false},
		{"non-root/autogen-check", "autogen-check", true},
		{"non-root/autogen-check", "check", false},
		{"non-root", "anything", true},
		{"non-root/*", "anything", true},
		{"other/check", "check", false},
	}
	for _, tt := range tests {
		t.Run(tt.waiver+"~"+tt.rule, func(t *testing.T) {
			w := ParseWaivers(tt.waiver + ": why")[0]
			if got := w.Matches(Result{Policy: "non-root", Rule: tt.rule}); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// waived is a Deployment (a pod controller: its rules are autogen-*) with a waive
// annotation, and a Pod at line 3 of its file.
func waivedDeployment(annotation string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: prod
  annotations:
    gitgate.dev/waive: "` + annotation + `"
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
` + rootContainers
}

func TestWaivers(t *testing.T) {
	type row struct {
		Policy, Rule, Status, Action, Exception, Message string
		Line                                             int
	}
	tests := []struct {
		name       string
		annotation string
		want       []row
	}{
		{
			name:       "waiver with a reason skips the autogen rule of the rule it names",
			annotation: "non-root/check: vendor image runs as root, OPS-9",
			want: []row{
				{Policy: "labels", Rule: "autogen-name-label", Status: "fail", Action: "Audit", Line: 12},
				{Policy: "non-root", Rule: "autogen-check", Status: "skip", Action: "Enforce", Exception: "waiver: vendor image runs as root, OPS-9", Line: 13},
			},
		},
		{
			name:       "waiver without a reason is an error and waives nothing",
			annotation: "non-root/check",
			want: []row{
				{Policy: "waiver", Rule: "non-root/check", Status: "error", Action: "Enforce", Line: 7,
					Message: `gitgate.dev/waive waiver for non-root/check has no reason, so it waives nothing; write "non-root/check: <why this resource may break the rule>"`},
				{Policy: "labels", Rule: "autogen-name-label", Status: "fail", Action: "Audit", Line: 12},
				{Policy: "non-root", Rule: "autogen-check", Status: "fail", Action: "Enforce", Line: 13},
			},
		},
		{
			name:       "waiver naming a rule that matched nothing is reported",
			annotation: "non-root/chek: typo; labels: Audit only anyway",
			want: []row{
				{Policy: "waiver", Rule: "non-root/chek", Status: "warn", Action: "Audit", Line: 7,
					Message: "gitgate.dev/waive waiver for non-root/chek matched no rule evaluated on this resource; fix the policy/rule name or remove the waiver"},
				{Policy: "labels", Rule: "autogen-name-label", Status: "skip", Action: "Audit", Exception: "waiver: Audit only anyway", Line: 12},
				{Policy: "non-root", Rule: "autogen-check", Status: "fail", Action: "Enforce", Line: 13},
			},
		},
	}
	eng, err := NewEngine(mustSet(t, podRunAsNonRoot, auditLabels), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := eng.Evaluate(context.Background(), mustResource(t, waivedDeployment(tt.annotation)), Request{})
			SortResults(res)
			var got []row
			for _, r := range res {
				msg := ""
				if r.Policy == WaiverPolicy {
					msg = r.Message
				}
				got = append(got, row{r.Policy, r.Rule, string(r.Status), string(r.Action), r.Exception, msg, r.Origin.Line})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
		})
	}
}

// A waiver on a rule that passes says so: it is stale.
func TestWaiverOnPassingRule(t *testing.T) {
	eng, err := NewEngine(mustSet(t, podRunAsNonRoot), Options{})
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(waivedDeployment("non-root/check: legacy"), rootContainers, safeContainers, 1)
	res := eng.Evaluate(context.Background(), mustResource(t, doc), Request{})
	if diff := cmp.Diff([]string{"non-root/autogen-check=pass:Enforce", "waiver/non-root/check=warn:Audit"}, summarise(res)); diff != "" {
		t.Fatalf("results (-want +got):\n%s", diff)
	}
	for _, r := range res {
		if r.Policy == WaiverPolicy && !strings.Contains(r.Message, "waives nothing: the rule does not fail on this resource") {
			t.Errorf("message %q", r.Message)
		}
	}
}

// Check keeps waived results in the report, counted as skips: never silently dropped.
func TestCheckKeepsWaived(t *testing.T) {
	eng, err := NewEngine(mustSet(t, podRunAsNonRoot), Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep := eng.CheckResources(context.Background(), []Resource{mustResource(t, waivedDeployment("non-root/check: legacy"))}, CheckOptions{Workers: 1})
	if rep.Summary.Skip != 1 || rep.Summary.Blocking != 0 || len(rep.Results) != 1 || rep.Results[0].Exception != "waiver: legacy" {
		t.Errorf("summary %+v, results %+v", rep.Summary, rep.Results)
	}
}

// TestCheckGenerateName: objects the API server names (metadata.generateName, as Helm
// hooks and sync Jobs use) are named prefix* in findings, and two of them are never
// "defined more than once" (measured on a public repository: findings read "Job/ns/:").
func TestCheckGenerateName(t *testing.T) {
	eng, err := NewEngine(mustSet(t, podRunAsNonRoot), Options{})
	if err != nil {
		t.Fatal(err)
	}
	job := "apiVersion: v1\nkind: Pod\nmetadata: {generateName: migrate-, namespace: db}\nspec:\n  containers: [{name: m, image: m:1}]\n"
	rep := eng.CheckResources(context.Background(), []Resource{mustResource(t, job), mustResource(t, job)}, CheckOptions{Workers: 1})
	if len(rep.Duplicates) != 0 {
		t.Errorf("duplicates: %+v", rep.Duplicates)
	}
	if len(rep.Results) == 0 {
		t.Fatal("no results")
	}
	for _, r := range rep.Results {
		if r.ResourceID() != "Pod/db/migrate-*" {
			t.Errorf("resource %q, want Pod/db/migrate-*", r.ResourceID())
		}
	}
}
