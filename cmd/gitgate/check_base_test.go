package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/internal/git/gittest"
	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// gitRepo copies the bundled example into a fresh Git repository (made through internal/git/gittest: the
// test needs no git binary), commits it, and names that commit main.
func gitRepo(t *testing.T) (string, *gittest.Repo) {
	t.Helper()
	return gitRepoOf(t, "../../testdata/gitops")
}

// gitRepoOf is gitRepo of the repository at src.
func gitRepoOf(t *testing.T, src string) (string, *gittest.Repo) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "gitops")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	repo := gittest.Init(t, dir)
	repo.Branch("main", repo.Commit("the example"))
	return dir, repo
}

func editFile(t *testing.T, file, old, new string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	if err := os.WriteFile(file, bytes.Replace(data, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

type mrReport struct {
	Results []struct {
		Origin   struct{ Target string }
		Kind     string
		Name     string
		Policy   string
		Rule     string
		Status   string
		Baseline string
	}
	Changes struct {
		Base       string
		BaseCommit string
		Targets    []struct {
			Name  string
			State string
			Diff  string
		}
		Fixed []struct {
			Origin   struct{ Target string }
			Policy   string
			Baseline string
		}
		New, Unchanged, NewBlocking int
	}
}

// TestCheckBase is merge-request mode end to end: a branch commits one new violation
// (cart-ledger-003's dev image moves to docker.io) and the working tree fixes an old one
// (gateway-session-002's staging image moves to the allowed registry, not yet staged).
// Only those two targets are checked; the new finding fails the check, the fixed one is
// reported as fixed, and cart-ledger-003-dev's old :latest finding as unchanged.
func TestCheckBase(t *testing.T) {
	dir, repo := gitRepo(t)
	editFile(t, filepath.Join(dir, "apps/cart-ledger-003/overlays/dev/kustomization.yaml"),
		"newName: harbor.example.com/identity/cart-ledger-003", "newName: docker.io/identity/cart-ledger-003")
	repo.Commit("move the dev image")
	editFile(t, filepath.Join(dir, "apps/gateway-session-002/overlays/staging/kustomization.yaml"),
		"newName: docker.io/platform/gateway-session-002", "newName: harbor.example.com/platform/gateway-session-002")

	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"check", "--base", "main", "-o", "json", dir}, &stdout, &stderr)
	if code != exitViolations {
		t.Fatalf("exit %d, want 1; stderr:\n%s\nstdout:\n%s", code, stderr.String(), stdout.String())
	}
	var rep mrReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	var targets []string
	for _, tc := range rep.Changes.Targets {
		targets = append(targets, tc.Name+" "+tc.State)
		if !strings.Contains(tc.Diff, "docker.io") {
			t.Errorf("%s: the rendered diff does not show the image change:\n%s", tc.Name, tc.Diff)
		}
	}
	if diff := cmp.Diff([]string{"cart-ledger-003-dev modified", "gateway-session-002-staging modified"}, targets); diff != "" {
		t.Errorf("affected targets (-want +got)\n%s", diff)
	}
	var results []string
	for _, r := range rep.Results {
		results = append(results, r.Origin.Target+" "+r.Policy+" "+r.Baseline)
	}
	sort.Strings(results)
	want := []string{
		"cart-ledger-003-dev disallow-latest-tag unchanged",
		"cart-ledger-003-dev restrict-image-registries new",
	}
	if diff := cmp.Diff(want, results); diff != "" {
		t.Errorf("findings (-want +got)\n%s", diff)
	}
	if len(rep.Changes.Fixed) != 1 || rep.Changes.Fixed[0].Origin.Target != "gateway-session-002-staging" || rep.Changes.Fixed[0].Policy != "restrict-image-registries" {
		t.Errorf("fixed = %+v, want gateway-session-002-staging's restrict-image-registries", rep.Changes.Fixed)
	}
	if rep.Changes.NewBlocking != 1 || rep.Changes.Base != "main" || len(rep.Changes.BaseCommit) != 40 {
		t.Errorf("changes = %+v", rep.Changes)
	}

	// The same run writing SARIF and Code Quality reports, twice: the SARIF is valid
	// 2.1.0 with baseline states, and the Code Quality fingerprints do not move.
	reports := t.TempDir()
	var fingerprints [2][]string
	for i := range 2 {
		sarif, cq := filepath.Join(reports, "gitgate.sarif"), filepath.Join(reports, "cq.json")
		code := run(context.Background(), []string{"check", "--base", "main", "-o", "sarif=" + sarif, "-o", "codequality=" + cq, dir}, io.Discard, io.Discard)
		if code != exitViolations {
			t.Fatalf("run %d with reports: exit %d, want 1", i, code)
		}
		data, err := os.ReadFile(sarif)
		if err != nil {
			t.Fatal(err)
		}
		validateSARIF(t, data)
		if !bytes.Contains(data, []byte(`"baselineState": "new"`)) || !bytes.Contains(data, []byte(`"baselineState": "unchanged"`)) {
			t.Errorf("SARIF has no new and unchanged baseline states:\n%s", data)
		}
		var issues []struct{ Fingerprint string }
		data, err = os.ReadFile(cq)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &issues); err != nil || len(issues) == 0 {
			t.Fatalf("code quality report: %v, %d issues\n%s", err, len(issues), data)
		}
		for _, is := range issues {
			fingerprints[i] = append(fingerprints[i], is.Fingerprint)
		}
	}
	if diff := cmp.Diff(fingerprints[0], fingerprints[1]); diff != "" {
		t.Errorf("Code Quality fingerprints moved between two runs (-first +second)\n%s", diff)
	}

	// Fixing without breaking anything passes, though old findings remain.
	editFile(t, filepath.Join(dir, "apps/cart-ledger-003/overlays/dev/kustomization.yaml"),
		"newName: docker.io/identity/cart-ledger-003", "newName: harbor.example.com/identity/cart-ledger-003")
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"check", "--base", "main", dir}, &stdout, &stderr); code != exitClean {
		t.Fatalf("after the fix: exit %d, want 0; stderr:\n%s\nstdout:\n%s", code, stderr.String(), stdout.String())
	}
}

// TestCheckBasePlan: merge-request mode sees the targets check and targets see, on a
// base read from Git objects alone: the Applications an app-of-apps chart renders name
// the overlays they deploy (api-prod, not the leaf overlay's path), the one kustomize
// warning of the change is printed once with its file and line, and a fixed finding is
// reported as fixed.
func TestCheckBasePlan(t *testing.T) {
	dir, _ := gitRepoOf(t, "../../testdata/shapes/app-of-apps")
	editFile(t, filepath.Join(dir, "apps/api/overlays/prod/kustomization.yaml"), "newName: docker.io/library/api", "newName: registry.example.com/api")
	editFile(t, filepath.Join(dir, "apps/api/overlays/dev/kustomization.yaml"), "resources:", "commonLabels: {team: api}\nresources:")

	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"check", "--base", "main", "-o", "json", dir}, &stdout, &stderr)
	if code != exitClean {
		t.Fatalf("exit %d, want 0; stderr:\n%s\nstdout:\n%s", code, stderr.String(), stdout.String())
	}
	var rep struct {
		mrReport
		Notices []string
		Targets []struct {
			Name       string
			DeployedBy []string
			Rendered   bool
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	var targets, fixed []string
	for _, tc := range rep.Changes.Targets {
		targets = append(targets, tc.Name+" "+tc.State)
	}
	for _, f := range rep.Changes.Fixed {
		fixed = append(fixed, f.Origin.Target+" "+f.Policy)
	}
	if diff := cmp.Diff([]string{"api-dev modified", "api-prod modified"}, targets); diff != "" {
		t.Errorf("affected targets (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff([]string{"api-prod restrict-image-registries"}, fixed); diff != "" {
		t.Errorf("fixed (-want +got)\n%s", diff)
	}
	var statuses []string
	for _, ts := range rep.Targets {
		statuses = append(statuses, fmt.Sprintf("%s %v %v", ts.Name, ts.DeployedBy, ts.Rendered))
	}
	if diff := cmp.Diff([]string{"api-dev [api-dev] true", "api-prod [api-prod] true"}, statuses); diff != "" {
		t.Errorf("report targets (-want +got)\n%s", diff)
	}
	var warned []string
	for _, n := range rep.Notices {
		if strings.Contains(n, "commonLabels") {
			warned = append(warned, n)
		}
	}
	if len(warned) != 1 || !strings.HasPrefix(warned[0], "apps/api/overlays/dev/kustomization.yaml:2: commonLabels is deprecated") {
		t.Errorf("want the one kustomize warning at its file:line, got %q (all notices: %q)", warned, rep.Notices)
	}
}

// TestCheckBaseMissingRef: a base the clone does not have is exit 2 with what to fetch.
func TestCheckBaseMissingRef(t *testing.T) {
	dir, _ := gitRepo(t)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"check", "--base", "origin/release", dir}, &stdout, &stderr); code != exitError {
		t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "git fetch --depth=50 origin release") {
		t.Errorf("stderr does not say what to fetch:\n%s", stderr.String())
	}
}

// TestCheckBasePolicyBlastRadius: a change to .gitgate.yaml (here, allowing docker.io)
// re-evaluates every target under both settings and reports which targets it makes pass
// (or fail) before it merges.
func TestCheckBasePolicyBlastRadius(t *testing.T) {
	dir, repo := gitRepo(t)
	// The base trusts policy changes (a policy repository): head's rules judge it. Without
	// that, widening registries is a blocking merge-request-trust finding (check_trust_test.go).
	editFile(t, filepath.Join(dir, ".gitgate.yaml"), "registries: [harbor.example.com]", "mergeRequests: {trustPolicyChanges: true}\nregistries: [harbor.example.com]")
	repo.Branch("main", repo.Commit("trust policy changes"))
	editFile(t, filepath.Join(dir, ".gitgate.yaml"), "registries: [harbor.example.com]", "registries: [harbor.example.com, docker.io]")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"check", "--base", "main", "-o", "json", dir}, &stdout, &stderr); code != exitClean {
		t.Fatalf("exit %d, want 0; stderr:\n%s", code, stderr.String())
	}
	var rep struct {
		Changes struct {
			PoliciesChanged bool
			Targets         []struct {
				Name                       string
				BaseBlocking, HeadBlocking bool
			}
			New, FixedCount int
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	var passing, failing []string
	for _, tc := range rep.Changes.Targets {
		if tc.BaseBlocking && !tc.HeadBlocking {
			passing = append(passing, tc.Name)
		}
		if !tc.BaseBlocking && tc.HeadBlocking {
			failing = append(failing, tc.Name)
		}
	}
	want := []string{"api-cart-000-dev", "api-cart-000-production", "api-cart-000-staging", "gateway-session-002-staging",
		"svc-worker-000", "svc-worker-000/dev", "svc-worker-000/production", "svc-worker-000/staging",
		"worker-inventory-001-dev", "worker-inventory-001-production", "worker-inventory-001-staging"}
	if diff := cmp.Diff(want, passing); diff != "" {
		t.Errorf("newly passing targets (-want +got)\n%s", diff)
	}
	if len(failing) != 0 || !rep.Changes.PoliciesChanged || rep.Changes.FixedCount != len(want) {
		t.Errorf("newly failing %v, changes %+v", failing, rep.Changes)
	}
}

// validateSARIF fails the test unless data is valid against the official SARIF 2.1.0
// schema vendored in report/testdata (see its README).
func validateSARIF(t *testing.T, data []byte) {
	t.Helper()
	f, err := os.Open("../../report/testdata/sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	const id = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(id, doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile(id)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("SARIF is not JSON: %v", err)
	}
	if err := schema.Validate(inst); err != nil {
		t.Errorf("not valid SARIF 2.1.0: %v", err)
	}
}

// TestCheckTargetFilter: targets: include/exclude and environments: in .gitgate.yaml
// decide which targets a check renders.
func TestCheckTargetFilter(t *testing.T) {
	dir, _ := gitRepo(t)
	cfg := "registries: [harbor.example.com]\ntargets:\n  exclude: ['tekton/*', 'api-cart-000-*']\nenvironments: [dev]\n"
	if err := os.WriteFile(filepath.Join(dir, ".gitgate.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	run(context.Background(), []string{"check", "-o", "json", dir}, &stdout, &stderr)
	var rep struct {
		Results []struct{ Origin struct{ Target string } }
		Notices []string
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	seen := map[string]bool{}
	for _, r := range rep.Results {
		seen[r.Origin.Target] = true
	}
	for name := range seen {
		if strings.HasPrefix(name, "tekton/") || strings.HasPrefix(name, "api-cart-000-") || strings.HasPrefix(name, "svc-worker-000/") && name != "svc-worker-000/dev" {
			t.Errorf("target %s was checked", name)
		}
	}
	if !seen["svc-worker-000/dev"] || !seen["worker-inventory-001-dev"] {
		t.Errorf("targets the filter keeps were not checked: %v", seen)
	}
	if !strings.Contains(strings.Join(rep.Notices, "\n"), "left out by the target filter (targets: in .gitgate.yaml)") {
		t.Errorf("no notice of the left-out targets: %v", rep.Notices)
	}
}

// TestCheckActionOverrides: actions: in .gitgate.yaml turns a policy to Audit (its
// findings warn) or off (gone, with a warning), for check as for every command.
func TestCheckActionOverrides(t *testing.T) {
	dir, _ := gitRepo(t)
	cfg := "registries: [harbor.example.com]\nactions:\n  restrict-image-registries: Audit\n  disallow-latest-tag: \"off\"\n"
	if err := os.WriteFile(filepath.Join(dir, ".gitgate.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	run(context.Background(), []string{"check", "-o", "json", dir}, &stdout, &stderr)
	var rep struct {
		Results []struct{ Policy, Action, Status string }
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	registry := 0
	for _, r := range rep.Results {
		switch r.Policy {
		case "restrict-image-registries":
			registry++
			if r.Action != "Audit" || r.Status != "fail" {
				t.Errorf("restrict-image-registries result %+v, want an Audit failure (a warning)", r)
			}
		case "disallow-latest-tag":
			t.Errorf("disallow-latest-tag is off but reported %+v", r)
		}
	}
	if registry == 0 {
		t.Errorf("no restrict-image-registries finding: the example plants several\n%s", stdout.String())
	}
}
