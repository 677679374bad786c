package policy

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

func TestMaskSecret(t *testing.T) {
	const a, b = "c2VjcmV0LWE=", "c2VjcmV0LWI="
	obj := map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "db", "annotations": map[string]any{
			lastApplied: `{"data":{"password":"` + a + `"}}`, "team": "x",
		}},
		"data":       map[string]any{"password": a, "same": a, "other": b},
		"stringData": map[string]any{"token": "plain-token"},
	}
	got := MaskSecret(obj)
	out, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{a, b, "plain-token"} {
		if strings.Contains(string(out), v) {
			t.Fatalf("masked Secret prints %q: %s", v, out)
		}
	}
	shape := regexp.MustCompile(`^<masked [0-9a-f]{8}>$`)
	data := got["data"].(map[string]any)
	for k, v := range data {
		if !shape.MatchString(v.(string)) {
			t.Errorf("data.%s = %q, want <masked xxxxxxxx>", k, v)
		}
	}
	if data["password"] != data["same"] || data["password"] == data["other"] {
		t.Errorf("equal values must look equal and different ones different: %v", data)
	}
	meta := got["metadata"].(map[string]any)
	if ann := meta["annotations"].(map[string]any); !shape.MatchString(ann[lastApplied].(string)) || ann["team"] != "x" {
		t.Errorf("annotations = %v", ann)
	}
	// The original is untouched.
	if obj["data"].(map[string]any)["password"] != a || !strings.Contains(obj["metadata"].(map[string]any)["annotations"].(map[string]any)[lastApplied].(string), a) {
		t.Errorf("MaskSecret modified its argument: %v", obj)
	}
	cm := map[string]any{"kind": "ConfigMap", "data": map[string]any{"k": "v"}}
	if got := MaskSecret(cm); got["data"].(map[string]any)["k"] != "v" {
		t.Errorf("a ConfigMap was masked: %v", got)
	}
	if MaskValue(a) != MaskValue(a) || MaskValue(a) == MaskValue(b) {
		t.Error("MaskValue is not a function of the value")
	}
}
