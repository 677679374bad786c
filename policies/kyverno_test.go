package policies

import (
	"io/fs"
	"testing"

	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	"github.com/kyverno/kyverno/pkg/config"
	policyvalidation "github.com/kyverno/kyverno/pkg/validation/policy"
	"sigs.k8s.io/yaml"
)

// TestKyvernoAcceptsPolicies runs Kyverno's own policy validation, the check `kyverno test`
// runs before it evaluates anything. It matters because `kyverno test` (v1.19.1) does not fail
// on an invalid policy: it logs "skipping invalid policy", reports every expected result of
// that policy as "Skip / Invalid Policy" and still counts them as passed, exit code 0. This
// test imports Kyverno only as a test dependency; the package itself imports nothing.
func TestKyvernoAcceptsPolicies(t *testing.T) {
	sa := config.KyvernoUserName(config.KyvernoServiceAccountName())
	for _, name := range policyNames(t) {
		t.Run(name, func(t *testing.T) {
			data, err := fs.ReadFile(FS, name+"/policy.yaml")
			if err != nil {
				t.Fatal(err)
			}
			var pol kyvernov1.ClusterPolicy
			if err := yaml.UnmarshalStrict(data, &pol); err != nil {
				t.Fatalf("%s/policy.yaml: %v", name, err)
			}
			if _, err := policyvalidation.Validate(&pol, nil, nil, true, sa, sa); err != nil {
				t.Errorf("%s/policy.yaml: kyverno rejects the policy: %v", name, err)
			}
		})
	}
}
