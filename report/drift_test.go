package report

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/reconcile"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func sampleDriftReport() *reconcile.DriftReport {
	return &reconcile.DriftReport{
		Revision:  "0123456789abcdef",
		Generated: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
		Apps: []reconcile.AppDrift{
			{App: "api-dev", Objects: []reconcile.ObjectDrift{
				{Ref: reconcile.Ref{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "api-dev", Name: "api"}, State: reconcile.Modified,
					Diffs:         []reconcile.FieldDiff{{Path: "/spec/replicas", Desired: 2.0, Live: 5.0, DesiredSet: true, LiveSet: true, Managers: []string{"kubectl"}}},
					Violations:    []policy.Result{{Kind: "Deployment", Namespace: "api-dev", Name: "api", Policy: "disallow-privilege-escalation", Rule: "check", Status: policy.StatusFail, Action: policy.Enforce, Message: "<escalation> & more"}},
					DriftViolates: true},
				{Ref: reconcile.Ref{APIVersion: "v1", Kind: "Secret", Namespace: "api-dev", Name: "db"}, State: reconcile.Modified,
					Diffs: []reconcile.FieldDiff{{Path: "/data/password", Desired: policy.MaskValue("c2VjcmV0"), Live: policy.MaskValue("b3RoZXI="), DesiredSet: true, LiveSet: true}}},
				{Ref: reconcile.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "api-dev", Name: "old"}, State: reconcile.Extra},
				{Ref: reconcile.Ref{APIVersion: "v1", Kind: "Service", Namespace: "api-dev", Name: "api"}, State: reconcile.InSync},
			}},
			{App: "worker-dev", Objects: []reconcile.ObjectDrift{{Ref: reconcile.Ref{APIVersion: "v1", Kind: "Service", Namespace: "worker-dev", Name: "w"}, State: reconcile.InSync}}},
		},
	}
}

func TestDriftFormats(t *testing.T) {
	r := sampleDriftReport()
	for _, name := range DriftFormats().Names() {
		w, err := DriftFormats().New(name, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := w.Write(&b, r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out := b.String()
		want := []string{"api-dev", "/spec/replicas", "worker-dev"}
		if name != "json" {
			want = append(want, "drift violates policy")
		}
		for _, want := range want {
			if !strings.Contains(out, want) {
				t.Errorf("%s output lacks %q:\n%s", name, want, out)
			}
		}
		if out := os.Getenv("GITGATE_HTML_OUT"); name == "html" && out != "" { // for hack/report-screenshot.sh
			if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if name == "html" && (strings.Contains(out, "<escalation>") || !strings.Contains(out, "&lt;escalation&gt;")) {
			t.Errorf("html does not escape messages")
		}
		if name == "markdown" && (strings.Contains(out, "<escalation>") || strings.Contains(out, "<masked")) {
			t.Errorf("markdown does not escape messages and masked values:\n%s", out)
		}
	}
	if got := DriftFormats().Names(); strings.Join(got, " ") != "html json markdown text" {
		t.Errorf("drift formats = %v", got)
	}
}

// A Secret's drift, compared by reconcile from real values, is printed by no format.
func TestDriftFormatsMaskSecrets(t *testing.T) {
	obj := func(s string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(s), &u.Object); err != nil {
			t.Fatal(err)
		}
		return u
	}
	const git, live = "Z2l0LXNlY3JldC12YWx1ZQ==", "bGl2ZS1zZWNyZXQtdmFsdWU="
	d := obj("apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: api}\ndata: {password: " + git + "}\n")
	l := obj("apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: api}\ndata: {password: " + live + "}\n")
	diffs := reconcile.Compare(d, l, nil, nil)
	if len(diffs) != 1 {
		t.Fatalf("diffs = %+v", diffs)
	}
	r := &reconcile.DriftReport{Revision: "0123456789abcdef", Apps: []reconcile.AppDrift{{App: "api", Objects: []reconcile.ObjectDrift{
		{Ref: reconcile.Ref{APIVersion: "v1", Kind: "Secret", Namespace: "api", Name: "db"}, State: reconcile.Modified, Diffs: diffs},
	}}}}
	for _, name := range DriftFormats().Names() {
		w, _ := DriftFormats().New(name, Options{})
		var b bytes.Buffer
		if err := w.Write(&b, r); err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{git, live, "git-secret-value", "live-secret-value"} {
			if strings.Contains(b.String(), v) {
				t.Fatalf("%s report prints the Secret's value %q", name, v)
			}
		}
		shown := map[string]string{"text": `"<masked [0-9a-f]{8}>" -> live "<masked [0-9a-f]{8}>"`, "markdown": `&lt;masked [0-9a-f]{8}&gt;`, "html": `&lt;masked [0-9a-f]{8}&gt;`}
		if re, ok := shown[name]; ok && !regexp.MustCompile(re).MatchString(b.String()) {
			t.Errorf("%s report does not show the masked values as %s:\n%s", name, re, b.String())
		}
		if !strings.Contains(b.String(), "/data/password") {
			t.Errorf("%s report does not show the Secret's changed key:\n%s", name, b.String())
		}
	}
}

func TestSyncFormats(t *testing.T) {
	if got := SyncFormats().Names(); strings.Join(got, " ") != "json text" {
		t.Errorf("sync formats = %v", got)
	}
	if _, err := SyncFormats().New("html", Options{}); err == nil || !strings.Contains(err.Error(), "the formats are json, text") {
		t.Errorf("sync -o html: %v", err)
	}
}
