package policies

import (
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The shapes below are the few fields of a ClusterPolicy and a Kyverno CLI Test this test
// reads; the Kyverno engine itself checks the rest (`gitgate test policies`).

type clusterPolicy struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Background *bool  `json:"background"`
		Rules      []rule `json:"rules"`
	} `json:"spec"`
}

type rule struct {
	Name  string `json:"name"`
	Match struct {
		Any []struct {
			Resources struct {
				Kinds []string `json:"kinds"`
			} `json:"resources"`
		} `json:"any"`
	} `json:"match"`
	Validate *struct {
		FailureAction string `json:"failureAction"`
		Message       string `json:"message"`
	} `json:"validate"`
}

type cliTest struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Policies   []string `json:"policies"`
	Resources  []string `json:"resources"`
	Variables  string   `json:"variables"`
	Results    []struct {
		Policy    string   `json:"policy"`
		Rule      string   `json:"rule"`
		Kind      string   `json:"kind"`
		Resources []string `json:"resources"`
		Result    string   `json:"result"`
	} `json:"results"`
}

func policyNames(t *testing.T) []string {
	t.Helper()
	matches, err := fs.Glob(FS, "*/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(matches) == 0 {
		t.Fatal("no policies embedded")
	}
	var names []string
	for _, m := range matches {
		names = append(names, path.Dir(m))
	}
	return names
}

func readPolicy(t *testing.T, name string) clusterPolicy {
	t.Helper()
	data, err := fs.ReadFile(FS, name+"/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var p clusterPolicy
	if err := yaml.Unmarshal(data, &p); err != nil {
		t.Fatalf("%s/policy.yaml: %v", name, err)
	}
	return p
}

func TestPoliciesAreWellFormed(t *testing.T) {
	for _, name := range policyNames(t) {
		t.Run(name, func(t *testing.T) {
			p := readPolicy(t, name)
			if p.APIVersion != "kyverno.io/v1" || p.Kind != "ClusterPolicy" {
				t.Errorf("%s/policy.yaml is %s %s, want kyverno.io/v1 ClusterPolicy", name, p.APIVersion, p.Kind)
			}
			if p.Metadata.Name != name {
				t.Errorf("%s/policy.yaml: metadata.name is %q, want the directory name %q", name, p.Metadata.Name, name)
			}
			for _, key := range []string{
				"policies.kyverno.io/title",
				"policies.kyverno.io/category",
				"policies.kyverno.io/severity",
				"policies.kyverno.io/description",
				"gitgate.dev/remediation",
			} {
				if strings.TrimSpace(p.Metadata.Annotations[key]) == "" {
					t.Errorf("%s/policy.yaml: annotation %s is missing; add it", name, key)
				}
			}
			if sev := p.Metadata.Annotations["policies.kyverno.io/severity"]; !slices.Contains([]string{"high", "medium", "low"}, sev) {
				t.Errorf("%s/policy.yaml: severity %q, want high, medium or low", name, sev)
			}
			if rem := p.Metadata.Annotations["gitgate.dev/remediation"]; !strings.HasSuffix(rem, ".") || strings.Contains(strings.TrimSuffix(rem, "."), "\n") {
				t.Errorf("%s/policy.yaml: remediation %q should be one sentence ending in a period", name, rem)
			}
			if p.Spec.Background == nil || !*p.Spec.Background {
				t.Errorf("%s/policy.yaml: spec.background should be true", name)
			}
			if len(p.Spec.Rules) == 0 {
				t.Fatalf("%s/policy.yaml has no rules", name)
			}
			for _, r := range p.Spec.Rules {
				if r.Validate == nil {
					t.Errorf("%s/policy.yaml: rule %s is not a validate rule", name, r.Name)
					continue
				}
				if a := r.Validate.FailureAction; a != "Enforce" && a != "Audit" {
					t.Errorf("%s/policy.yaml: rule %s: validate.failureAction %q, want Enforce or Audit", name, r.Name, a)
				}
				if strings.TrimSpace(r.Validate.Message) == "" {
					t.Errorf("%s/policy.yaml: rule %s has no message; say what to do", name, r.Name)
				}
				// Autogen rule names get "autogen-cronjob-" (16 characters) in front and are cut at 63.
				if len(r.Name) > 63-len("autogen-cronjob-") {
					t.Errorf("%s/policy.yaml: rule name %s is too long for its autogen rules", name, r.Name)
				}
			}
		})
	}
}

// TestEveryRuleIsTested checks each policy's kyverno-test.yaml expects at least one pass and
// one fail for every rule, and for the autogen rules Kyverno derives for Deployment and CronJob.
func TestEveryRuleIsTested(t *testing.T) {
	disk := os.DirFS(".")
	for _, name := range policyNames(t) {
		t.Run(name, func(t *testing.T) {
			p := readPolicy(t, name)
			data, err := fs.ReadFile(disk, name+"/kyverno-test.yaml")
			if err != nil {
				t.Fatalf("%s has no kyverno-test.yaml: %v", name, err)
			}
			var ct cliTest
			if err := yaml.Unmarshal(data, &ct); err != nil {
				t.Fatalf("%s/kyverno-test.yaml: %v", name, err)
			}
			if ct.APIVersion != "cli.kyverno.io/v1alpha1" || ct.Kind != "Test" {
				t.Errorf("%s/kyverno-test.yaml is %s %s, want cli.kyverno.io/v1alpha1 Test", name, ct.APIVersion, ct.Kind)
			}
			for _, f := range append(append([]string{}, ct.Resources...), ct.Variables) {
				if f == "" {
					continue
				}
				if _, err := fs.Stat(disk, path.Join(name, f)); err != nil {
					t.Errorf("%s/kyverno-test.yaml names %s: %v", name, f, err)
				}
			}
			got := map[string]map[string]bool{} // rule -> result -> seen
			for _, r := range ct.Results {
				if r.Policy != name {
					continue
				}
				if got[r.Rule] == nil {
					got[r.Rule] = map[string]bool{}
				}
				got[r.Rule][r.Result] = true
			}
			controllers := strings.Split(p.Metadata.Annotations["pod-policies.kyverno.io/autogen-controllers"], ",")
			var want []string
			for _, r := range p.Spec.Rules {
				want = append(want, r.Name)
				if !matchesPod(r) {
					continue
				}
				if slices.Contains(controllers, "Deployment") {
					want = append(want, "autogen-"+r.Name)
				}
				if slices.Contains(controllers, "CronJob") {
					want = append(want, "autogen-cronjob-"+r.Name)
				}
			}
			for _, w := range want {
				for _, result := range []string{"pass", "fail"} {
					if !got[w][result] {
						t.Errorf("%s/kyverno-test.yaml expects no %s for rule %s; add a resource that does", name, result, w)
					}
				}
			}
		})
	}
}

func matchesPod(r rule) bool {
	for _, a := range r.Match.Any {
		if slices.Contains(a.Resources.Kinds, "Pod") {
			return true
		}
	}
	return false
}

// TestRegistryVariable checks the registry policies read RegistriesVariable, so the name the
// engine injects and the name the YAML reads cannot drift apart.
func TestRegistryVariable(t *testing.T) {
	for _, name := range []string{"restrict-image-registries", "tekton-restrict-image-registries"} {
		data, err := fs.ReadFile(FS, name+"/policy.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "to_array("+RegistriesVariable+")") {
			t.Errorf("%s/policy.yaml does not read %s", name, RegistriesVariable)
		}
	}
}
