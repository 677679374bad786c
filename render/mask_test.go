package render

import (
	"regexp"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/policy"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// A rendered diff shows that a Secret's value changed, never the value: the digests of
// policy.MaskSecret stand in for it.
func TestRenderedDiffMasksSecrets(t *testing.T) {
	secret := func(password string) []policy.Resource {
		return []policy.Resource{{Object: &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Secret",
			"metadata": map[string]any{"name": "db", "namespace": "api", "annotations": map[string]any{
				"kubectl.kubernetes.io/last-applied-configuration": `{"data":{"password":"` + password + `"}}`,
			}},
			"data":       map[string]any{"password": password, "user": "YWRtaW4="},
			"stringData": map[string]any{"token": "plain-" + password},
		}}}}
	}
	const base, head = "YmFzZS12YWx1ZQ==", "aGVhZC12YWx1ZQ=="
	diff := unifiedDiff("api/production", DiffYAML(secret(base)), DiffYAML(secret(head)))
	if diff == "" {
		t.Fatal("a changed Secret value gives no diff")
	}
	for _, v := range []string{base, head, "YWRtaW4=", "plain-"} {
		if strings.Contains(diff, v) {
			t.Fatalf("rendered diff prints the Secret value %q:\n%s", v, diff)
		}
	}
	changed := regexp.MustCompile(`(?m)^[-+]\s+password: <masked [0-9a-f]{8}>$`)
	if n := len(changed.FindAllString(diff, -1)); n != 2 {
		t.Errorf("want the password shown as changed (one - and one + line), got %d:\n%s", n, diff)
	}
	if regexp.MustCompile(`(?m)^[-+]\s+user:`).MatchString(diff) {
		t.Errorf("an unchanged key shows as changed:\n%s", diff)
	}
}
