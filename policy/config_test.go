package policy

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

const fullConfig = `registries: [harbor.example.com]
policies: [policies]
noBuiltin: false
values: policies/values.yaml
actions:
  require-probes: Enforce
  require-labels: off
  disallow-latest-tag: audit
targets:
  include: ["*/production", "legacy"]
  exclude: [legacy/experimental]
repoURLs: [https://git.example.com/platform/gitops.git]
environments: [dev, staging, production]
clusters:
- {name: prod-eu, server: https://prod-eu.example.com, labels: {env: production}}
kubeVersion: v1.36.3
apiVersions: [monitoring.coreos.com/v1]
`

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig(ConfigFile, []byte(fullConfig))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Registries: []string{"harbor.example.com"},
		Policies:   []string{"policies"},
		Values:     "policies/values.yaml",
		Actions: map[string]ActionOverride{
			"require-probes": "Enforce", "require-labels": ActionOff, "disallow-latest-tag": "Audit",
		},
		Targets:      TargetFilter{Include: []string{"*/production", "legacy"}, Exclude: []string{"legacy/experimental"}},
		RepoURLs:     []string{"https://git.example.com/platform/gitops.git"},
		Environments: []string{"dev", "staging", "production"},
		Clusters:     []ClusterConfig{{Name: "prod-eu", Server: "https://prod-eu.example.com", Labels: map[string]string{"env": "production"}}},
		KubeVersion:  "v1.36.3",
		APIVersions:  []string{"monitoring.coreos.com/v1"},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestParseConfigStrict(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error
	}{
		{
			name: "unknown top-level key",
			yaml: "registries: [a.example.com]\nregistry: [b.example.com]\n",
			want: []string{`.gitgate.yaml:2:1: unknown key "registry"; known keys here: actions, apiVersions, clusters, crds, environments, kubeVersion, limits, mergeRequests, noBuiltin, policies, registries, remotes, repoURLs, targets, values`},
		},
		{
			name: "unknown nested key",
			yaml: "targets:\n  inlcude: [a]\n",
			want: []string{`.gitgate.yaml:2:3: unknown key "targets.inlcude"; known keys here: exclude, include`},
		},
		{
			name: "unknown key in a list item",
			yaml: "clusters:\n- name: a\n  server: https://a\n- nmae: b\n",
			want: []string{`.gitgate.yaml:4:3: unknown key "clusters[1].nmae"; known keys here: context, labels, name, server`},
		},
		{
			name: "every unknown key",
			yaml: "foo: 1\nbar: 2\n",
			want: []string{`.gitgate.yaml:1:1: unknown key "foo"`, `.gitgate.yaml:2:1: unknown key "bar"`},
		},
		{
			name: "bad action",
			yaml: "actions: {require-probes: Block}\n",
			want: []string{`.gitgate.yaml`, `action "Block" must be Enforce, Audit or off`},
		},
		{
			name: "bad glob",
			yaml: "targets: {exclude: [\"apps/[\"]}\n",
			want: []string{`.gitgate.yaml: targets: pattern "apps/["`},
		},
		{
			name: "not YAML",
			yaml: "registries: [a\n",
			want: []string{`.gitgate.yaml: yaml:`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig(ConfigFile, []byte(tt.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not say %q", err, w)
				}
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	c, err := LoadConfig(fstest.MapFS{})
	if err != nil || c == nil {
		t.Fatalf("missing file: %v, %v; want an empty config", c, err)
	}
	_, err = LoadConfig(fstest.MapFS{ConfigFile: {Data: []byte("noBuiltins: true\n")}})
	if err == nil || !strings.Contains(err.Error(), `.gitgate.yaml:1:1: unknown key "noBuiltins"`) {
		t.Errorf("got %v", err)
	}
}

func TestTargetIncluded(t *testing.T) {
	c := &Config{Targets: TargetFilter{Include: []string{"*/production", "legacy"}, Exclude: []string{"legacy/experimental", "web/*"}}}
	tests := map[string]bool{
		"api/production":          true,
		"api/staging":             false, // not included
		"web/production":          false, // excluded wins
		"legacy":                  true,
		"legacy/old":              true, // a pattern matching leading segments takes the subtree
		"legacy/experimental":     false,
		"legacy/experimental/sub": false,
		"legacyish/production":    true,
		"legacyish":               false,
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			if got := c.TargetIncluded(name); got != want {
				t.Errorf("TargetIncluded(%q) = %v, want %v", name, got, want)
			}
		})
	}
	var none *Config
	if !none.TargetIncluded("anything") || !(&Config{}).TargetIncluded("anything") {
		t.Error("no filter must include everything")
	}
}

func TestOverrideActions(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name        string
		actions     map[string]ActionOverride
		want        []string
		wantNotices []string
		wantErr     string
	}{
		{name: "none", want: []string{"labels/autogen-name-label=fail:Audit", "non-root/autogen-check=fail:Enforce"}},
		{
			name:    "Enforce and Audit swap the actions",
			actions: map[string]ActionOverride{"labels": "Enforce", "non-root": "audit"},
			want:    []string{"labels/autogen-name-label=fail:Enforce", "non-root/autogen-check=fail:Audit"},
		},
		{
			name:        "off removes the policy with a notice",
			actions:     map[string]ActionOverride{"labels": ActionOff},
			want:        []string{"non-root/autogen-check=fail:Enforce"},
			wantNotices: []string{"policy labels is off (actions: in .gitgate.yaml): it is not evaluated"},
		},
		{
			name:    "unknown policy is an error naming the loaded ones",
			actions: map[string]ActionOverride{"require-lables": ActionOff},
			wantErr: `.gitgate.yaml: actions: no policy named "require-lables" is loaded; the policies are: labels, non-root`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := mustSet(t, podRunAsNonRoot, auditLabels)
			notices, err := set.OverrideActions(tt.actions)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantNotices, notices); diff != "" {
				t.Errorf("notices (-want +got):\n%s", diff)
			}
			eng, err := NewEngine(set, Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := summarise(eng.Evaluate(ctx, mustResource(t, deployment(2, rootContainers)), Request{}))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
		})
	}
}

// The gate applies .gitgate.yaml's actions to the built-in bundle too.
func TestOpenGateActions(t *testing.T) {
	g, err := OpenGate(GateOptions{Actions: map[string]ActionOverride{"require-labels": ActionOff, "require-probes": "Enforce"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.Join(g.Set.Names(), ","), "require-labels") {
		t.Errorf("require-labels still loaded: %v", g.Set.Names())
	}
	if !strings.Contains(strings.Join(g.Warnings, "\n"), "policy require-labels is off") {
		t.Errorf("no notice for the policy turned off: %v", g.Warnings)
	}
	res := g.Evaluate(context.Background(), mustResource(t, deployment(2, safeContainers)), Request{})
	found := false
	for _, r := range res {
		if r.Policy == "require-probes" && r.Status == StatusFail {
			found = true
			if r.Action != Enforce {
				t.Errorf("require-probes fails with %s, want Enforce", r.Action)
			}
		}
	}
	if !found {
		t.Errorf("require-probes did not fail on a Deployment without probes: %v", summarise(res))
	}
	if _, err := OpenGate(GateOptions{Actions: map[string]ActionOverride{"no-such-policy": "Audit"}}); err == nil {
		t.Error("an override of an unknown policy opened the gate")
	}
}

// The README's full .gitgate.yaml example is a valid config with every key set.
func TestREADMEConfigExample(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "### `.gitgate.yaml`\n")
	if !ok {
		t.Fatal("README has no .gitgate.yaml section")
	}
	_, block, _ := strings.Cut(section, "```yaml\n")
	block, _, ok = strings.Cut(block, "```\n")
	if !ok {
		t.Fatal("no yaml block in the .gitgate.yaml section")
	}
	c, err := ParseConfig(ConfigFile, []byte(block))
	if err != nil {
		t.Fatalf("the README example does not load: %v", err)
	}
	v := reflect.ValueOf(*c)
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsZero() && v.Type().Field(i).Name != "NoBuiltin" {
			t.Errorf("the README example does not show %s", v.Type().Field(i).Tag.Get("json"))
		}
	}
	if c.Actions["require-labels"] != ActionOff {
		t.Errorf("actions: %v", c.Actions)
	}
}

// TestConfigPathsStayInside: policies: and values: naming something outside the
// repository (by "..", or absolute) are an error at the key's line, naming the key and
// the flag that may name outside paths; paths inside are accepted as they are.
func TestConfigPathsStayInside(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       []string // substrings of the error; none: valid
	}{
		{"inside", "policies: [policies, team/policies/../shared]\nvalues: policies/values.yaml\n", nil},
		{"policies ..", "registries: [r.example]\npolicies:\n  - policies\n  - ../../etc\n", []string{".gitgate.yaml:4:5: policies[1]: ../../etc is outside the repository", "--policies"}},
		{"policies absolute", "policies: [/etc]\n", []string{".gitgate.yaml:1:12: policies[0]: /etc is an absolute path"}},
		{"values absolute", "values: /etc/passwd\n", []string{".gitgate.yaml:1:9: values: /etc/passwd is an absolute path", "--values"}},
		{"values ..", "values: x/../../values.yaml\n", []string{".gitgate.yaml:1:9: values: x/../../values.yaml is outside the repository"}},
		{"both, one error each", "policies: [..]\nvalues: ../v.yaml\n", []string{"policies[0]", "values: ../v.yaml"}},
		{"through an alias", "values: &v ../x.yaml\npolicies: [*v]\n", []string{"policies[0]: ../x.yaml is outside"}},
		{"crds ..", "crds: [crds, ../shared/crds]\n", []string{".gitgate.yaml:1:14: crds[1]: ../shared/crds is outside the repository", "--crds"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(ConfigFile, []byte(tc.data))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %q", tc.data)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestOverrideActionsOtherKinds: off turns off a policy of any kind (a MutatingPolicy no
// longer mutates, a VAP no longer judges); Enforce or Audit on a kind without a failure
// action is an error saying so, not "no policy named".
func TestOverrideActionsOtherKinds(t *testing.T) {
	const mpol = `apiVersion: policies.kyverno.io/v1beta1
kind: MutatingPolicy
metadata: {name: add-team}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: "Object{metadata: Object.metadata{labels: {'team': 'platform'}}}"
`
	load := func() *Set {
		set, err := Load(fstest.MapFS{
			"p/mpol.yaml":    {Data: []byte(mpol)},
			"p/vap.yaml":     {Data: []byte(vapRequireTeam)},
			"p/binding.yaml": {Data: []byte(vapBinding("Deny", ""))},
		}, "p")
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	set := load()
	if _, err := set.OverrideActions(map[string]ActionOverride{"add-team": ActionOff, "require-team": ActionOff}); err != nil {
		t.Fatal(err)
	}
	if len(set.MutatingPolicies) != 0 || len(set.ValidatingAdmissionPolicies) != 0 {
		t.Errorf("off left %d MutatingPolicies and %d VAPs", len(set.MutatingPolicies), len(set.ValidatingAdmissionPolicies))
	}
	eng, err := NewEngine(set, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Decode("apps/deploy.yaml", []byte(vapDeployments))
	if err != nil {
		t.Fatal(err)
	}
	if results, _, err := eng.Mutate(context.Background(), rs[0], Request{}); err != nil || len(results) != 0 {
		t.Errorf("a policy turned off still mutates: %v %+v", err, results)
	}
	if results := eng.Evaluate(context.Background(), rs[0], Request{}); len(results) != 0 {
		t.Errorf("a policy turned off still judges: %+v", results)
	}
	_, err = load().OverrideActions(map[string]ActionOverride{"add-team": "Audit"})
	if err == nil || !strings.Contains(err.Error(), "add-team is a MutatingPolicy, which has no failure action to set") {
		t.Errorf("Audit on a MutatingPolicy: %v", err)
	}
}
