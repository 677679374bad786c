package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/internal/git/gittest"
	"github.com/gitgate/gitgate/policy"
)

// trustBase is a small repository at its merge base: one kustomize target with a Pod
// that breaks no Enforce rule, the built-in bundle and the repository's own policy.
func trustBase(gitgateYAML string) map[string]string {
	return map[string]string{
		".gitgate.yaml":                 gitgateYAML,
		"apps/web/kustomization.yaml":   "resources: [pod.yaml]\n",
		"apps/web/pod.yaml":             trustPod("false"),
		"policies/require-team.yaml":    requireTeamPolicy,
		"policies/README.md":            "the platform team's policies\n",
		"apps/other/kustomization.yaml": "resources: [cm.yaml]\n",
		"apps/other/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other, namespace: web}\ndata: {k: v}\n",
	}
}

func trustPod(escalation string) string {
	return `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: web
  labels: {team: web}
spec:
  containers:
  - name: web
    image: harbor.example.com/web/web:1.0
    securityContext:
      privileged: ` + escalation + `
      allowPrivilegeEscalation: ` + escalation + `
      runAsNonRoot: true
`
}

const requireTeamPolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-team
spec:
  rules:
  - name: team
    match:
      any:
      - resources: {kinds: [Pod]}
    validate:
      failureAction: Enforce
      message: a Pod needs a team label
      pattern:
        metadata:
          labels:
            team: "?*"
`

type trustReport struct {
	Results []policy.Result
	Notices []string
	Changes struct {
		NewBlocking int
		Policy      *policy.PolicyChange
	}
}

// checkTrust commits base as main, writes head's changes into the working tree and runs
// check --base main with the given outputs.
func checkTrust(t *testing.T, base, head map[string]string, args ...string) (int, trustReport, string, string) {
	t.Helper()
	r := gittest.Init(t, "")
	r.Branch("main", r.CommitFiles("base", base))
	r.Write(head)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"check", "--base", "main", "-o", "json"}, append(args, r.Dir)...), &stdout, &stderr)
	var rep trustReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d: %v\nstdout:\n%s\nstderr:\n%s", code, err, stdout.String(), stderr.String())
	}
	return code, rep, stdout.String(), stderr.String()
}

func trustFindings(rep trustReport) map[string]policy.Result {
	out := map[string]policy.Result{}
	for _, r := range rep.Results {
		if r.Policy == policy.TrustPolicy {
			out[r.Rule] = r
		}
	}
	return out
}

// TestCheckBaseTrustNoBuiltin is issue 12's probe: a merge request that sets
// noBuiltin: true and makes the Pod privileged. It is judged by the merge base's rules
// (the new privilege escalation finding blocks), and the noBuiltin change is itself a
// blocking finding, with the findings it would remove as its blast radius.
func TestCheckBaseTrustNoBuiltin(t *testing.T) {
	const cfg = "registries: [harbor.example.com]\n"
	code, rep, out, stderr := checkTrust(t, trustBase(cfg), map[string]string{
		".gitgate.yaml":     cfg + "noBuiltin: true\n",
		"apps/web/pod.yaml": trustPod("true"),
	})
	if code != exitViolations {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, stderr)
	}
	tf := trustFindings(rep)
	b, ok := tf[policy.TrustBuiltinDisabled]
	if !ok || !b.Blocking() || !strings.HasSuffix(b.Origin.File, ".gitgate.yaml") || b.Origin.Line != 2 {
		t.Errorf("no blocking builtin-disabled finding at .gitgate.yaml:2: %+v", tf)
	}
	if r, ok := tf[policy.TrustEnforcementRemoved]; !ok || !r.Blocking() || !strings.Contains(r.Message, "disallow-privilege-escalation") {
		t.Errorf("no blocking enforcement-removed finding naming the removed rule: %+v", tf)
	}
	// The built-in policies are not each reported as removed: builtin-disabled says it once.
	if _, ok := tf[policy.TrustPolicyRemoved]; ok {
		t.Errorf("built-in policies reported one by one: %+v", tf)
	}
	var escalation bool
	for _, r := range rep.Results {
		if r.Policy == "disallow-privilege-escalation" && r.Baseline == policy.BaselineNew && r.Blocking() {
			escalation = true
		}
	}
	if !escalation {
		t.Errorf("the privileged Pod was not judged by the base's built-in policies: %+v", rep.Results)
	}
	pc := rep.Changes.Policy
	if pc == nil || pc.JudgedBy != policy.JudgedByBase || !pc.Weakened || pc.RemovedBlocking() == 0 {
		t.Fatalf("policy change %+v", pc)
	}
	if rep.Changes.NewBlocking < 3 {
		t.Errorf("newBlocking %d, want the escalation and two trust findings", rep.Changes.NewBlocking)
	}
}

// TestCheckBaseTrustAllowed: the same change in a repository whose base allows policy
// changes from merge requests is judged by head's rules (no built-in bundle: nothing
// blocks) and the weakening is a warning.
func TestCheckBaseTrustAllowed(t *testing.T) {
	const cfg = "registries: [harbor.example.com]\nmergeRequests: {trustPolicyChanges: true}\n"
	code, rep, out, stderr := checkTrust(t, trustBase(cfg), map[string]string{
		".gitgate.yaml":     cfg + "noBuiltin: true\n",
		"apps/web/pod.yaml": trustPod("true"),
	})
	if code != exitClean {
		t.Fatalf("exit %d, want 0\n%s\n%s", code, out, stderr)
	}
	tf := trustFindings(rep)
	b, ok := tf[policy.TrustBuiltinDisabled]
	if !ok || b.Blocking() || b.Status != policy.StatusWarn || !strings.Contains(b.Message, "trustPolicyChanges") {
		t.Errorf("builtin-disabled should be a warning naming the setting: %+v", tf)
	}
	for _, r := range rep.Results {
		if r.Policy == "disallow-privilege-escalation" {
			t.Errorf("judged by the base's rules although the base trusts policy changes: %+v", r)
		}
	}
	if pc := rep.Changes.Policy; pc == nil || pc.JudgedBy != policy.JudgedByHead || pc.RemovedBlocking() == 0 {
		t.Errorf("policy change %+v", pc)
	}
}

// TestCheckBaseTrustSelfGranted: a merge request cannot grant itself trust; turning
// trustPolicyChanges on is itself a weakening.
func TestCheckBaseTrustSelfGranted(t *testing.T) {
	const cfg = "registries: [harbor.example.com]\n"
	code, rep, out, stderr := checkTrust(t, trustBase(cfg), map[string]string{
		".gitgate.yaml":     cfg + "noBuiltin: true\nmergeRequests: {trustPolicyChanges: true}\n",
		"apps/web/pod.yaml": trustPod("true"),
	})
	if code != exitViolations {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, stderr)
	}
	if _, ok := trustFindings(rep)[policy.TrustChangesTrusted]; !ok || rep.Changes.Policy.JudgedBy != policy.JudgedByBase {
		t.Errorf("self-granted trust: %+v %+v", trustFindings(rep), rep.Changes.Policy)
	}
}

// TestCheckBaseTrustPolicySide walks the other weakenings: a repository policy deleted
// (the Pod without a team label then passes), a built-in turned to Audit, an exception
// added, and a targets: exclude. Each is its own blocking finding at its line.
func TestCheckBaseTrustPolicySide(t *testing.T) {
	const cfg = "registries: [harbor.example.com]\n"
	unlabelled := strings.Replace(trustPod("false"), "  labels: {team: web}\n", "", 1)
	code, rep, out, stderr := checkTrust(t, trustBase(cfg), map[string]string{
		".gitgate.yaml":              cfg + "actions:\n  require-probes: Audit\n  disallow-privilege-escalation: Audit\ntargets:\n  exclude: [apps/other]\n",
		"policies/require-team.yaml": "",
		"policies/exception.yaml": `apiVersion: kyverno.io/v2
kind: PolicyException
metadata: {name: let-web-be, namespace: web}
spec:
  exceptions:
  - {policyName: require-run-as-non-root, ruleNames: ["*"]}
  match:
    any:
    - resources: {kinds: [Pod], namespaces: [web]}
`,
		"apps/web/pod.yaml": unlabelled,
	})
	if code != exitViolations {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, stderr)
	}
	tf := trustFindings(rep)
	for rule, where := range map[string]string{
		policy.TrustPolicyRemoved:      "require-team.yaml",
		policy.TrustActionLowered:      ".gitgate.yaml",
		policy.TrustExceptionAdded:     "exception.yaml",
		policy.TrustTargetsNarrowed:    ".gitgate.yaml",
		policy.TrustEnforcementRemoved: "",
	} {
		r, ok := tf[rule]
		if !ok || !r.Blocking() || !strings.Contains(r.Origin.File, where) {
			t.Errorf("%s: want a blocking finding in %q, got %+v", rule, where, r)
		}
	}
	if r := tf[policy.TrustActionLowered]; r.Origin.Line == 0 || !strings.Contains(r.Message, "disallow-privilege-escalation") {
		t.Errorf("action-lowered: %+v", r)
	}
	var team bool
	for _, r := range rep.Results {
		team = team || (r.Policy == "require-team" && r.Blocking() && r.Baseline == policy.BaselineNew)
	}
	if !team {
		t.Errorf("the deleted policy did not judge the merge request: %+v", rep.Results)
	}
}

// TestCheckBaseTrustTightening: a policy change that only adds findings is no
// weakening: head is judged by the base's rules, and the findings head's new policy
// would add are reported, not enforced, before it merges.
func TestCheckBaseTrustTightening(t *testing.T) {
	const cfg = "registries: [harbor.example.com]\n"
	stricter := strings.Replace(requireTeamPolicy, "name: require-team\n", "name: require-owner\n", 1)
	stricter = strings.ReplaceAll(stricter, "team", "owner")
	code, rep, out, stderr := checkTrust(t, trustBase(cfg), map[string]string{"policies/require-owner.yaml": stricter})
	_ = out
	if code != exitClean {
		t.Fatalf("exit %d, want 0\n%s", code, stderr)
	}
	if len(trustFindings(rep)) != 0 {
		t.Errorf("a tightening reported as weakening: %+v", trustFindings(rep))
	}
	pc := rep.Changes.Policy
	if pc == nil || len(pc.Added) == 0 || len(pc.Removed) != 0 || pc.Weakened {
		t.Fatalf("policy change %+v", pc)
	}
	if pc.Added[0].Policy != "require-owner" {
		t.Errorf("added %+v", pc.Added)
	}
}

// TestCheckBaseTrustEveryFormat: the trust finding shows in every -o format.
func TestCheckBaseTrustEveryFormat(t *testing.T) {
	const cfg = "registries: [harbor.example.com]\n"
	dir := t.TempDir()
	var args []string
	for _, f := range []string{"text", "sarif", "junit", "codequality", "markdown"} {
		args = append(args, "-o", f+"="+filepath.Join(dir, f))
	}
	code, _, _, stderr := checkTrust(t, trustBase(cfg), map[string]string{".gitgate.yaml": cfg + "noBuiltin: true\n"}, args...)
	if code != exitViolations {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, f := range []string{"text", "sarif", "junit", "codequality", "markdown"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(policy.TrustPolicy)) || !bytes.Contains(data, []byte(policy.TrustBuiltinDisabled)) {
			t.Errorf("%s does not show the merge-request-trust finding:\n%s", f, data)
		}
	}
}

// TestCheckBaseTrustCELKinds: deleting a MutatingPolicy and lowering a
// ValidatingAdmissionPolicyBinding from Deny to Audit are weakenings too, each a
// blocking finding at its file, as for ClusterPolicies.
func TestCheckBaseTrustCELKinds(t *testing.T) {
	const cfg = "registries: [harbor.example.com]\n"
	const mpol = `apiVersion: policies.kyverno.io/v1beta1
kind: MutatingPolicy
metadata: {name: add-owner}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [configmaps]}
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: "Object{metadata: Object.metadata{labels: {'owner': 'platform'}}}"
`
	const vap = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: cm-small}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [configmaps]}
  validations:
  - expression: "size(object.data) < 10"
`
	binding := func(action string) string {
		return "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata: {name: cm-small}\nspec:\n  policyName: cm-small\n  validationActions: [" + action + "]\n"
	}
	base := trustBase(cfg)
	base["policies/add-owner.yaml"] = mpol
	base["policies/cm-small.yaml"] = vap + "---\n" + binding("Deny")
	code, rep, out, stderr := checkTrust(t, base, map[string]string{
		"policies/add-owner.yaml": "",
		"policies/cm-small.yaml":  vap + "---\n" + binding("Audit"),
	})
	if code != exitViolations {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, stderr)
	}
	var removed, lowered bool
	for _, r := range rep.Results {
		if r.Policy != policy.TrustPolicy || !r.Blocking() {
			continue
		}
		removed = removed || (r.Rule == policy.TrustPolicyRemoved && r.Kind == "MutatingPolicy" && r.Name == "add-owner" && strings.HasSuffix(r.Origin.File, "add-owner.yaml"))
		lowered = lowered || (r.Rule == policy.TrustActionLowered && r.Kind == "ValidatingAdmissionPolicyBinding" && strings.HasSuffix(r.Origin.File, "cm-small.yaml"))
	}
	if !removed || !lowered {
		t.Errorf("removed MutatingPolicy %v, lowered binding %v: %+v", removed, lowered, trustFindings(rep))
	}
}
