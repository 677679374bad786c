package render

import (
	"fmt"
	"testing"

	"github.com/gitgate/gitgate/policy"
)

// TestHelmValuesLine: each field of a rendered object names the values-file lines its
// value came from, when that can be told: the effective setting only (a later file, the
// inline values or a parameter overriding it hides it), a string built from several
// values lists each, an ambiguous or unrelated value names none.
func TestHelmValuesLine(t *testing.T) {
	dir := t.TempDir()
	helmWriteFiles(t, dir, map[string]string{
		"charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 1.0.0\n",
		"charts/web/values.yaml": "image:\n  repository: registry.example.com/web\n  tag: \"1.0\"\nreplicas: 1\n" +
			"debug: false\nport: 8080\nlabels:\n  tier: web\n",
		"charts/web/templates/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n" +
			"  labels: {tier: {{ .Values.labels.tier }}, team: {{ .Values.team }}}\nspec:\n  replicas: {{ .Values.replicas }}\n" +
			"  template:\n    spec:\n      containers:\n      - name: web\n        image: {{ .Values.image.repository }}:{{ .Values.image.tag }}\n" +
			"        env:\n        - {name: DEBUG, value: {{ .Values.debug | quote }}}\n        - {name: FIXED, value: \"1\"}\n" +
			"        ports:\n        - containerPort: {{ .Values.port }}\n        - containerPort: {{ .Values.metricsPort }}\n",
		"values/prod.yaml": "replicas: 1\nimage:\n  tag: latest\nteam: shop\nmetricsPort: 8080\n",
	})
	tg := Target{Name: "web", Kind: Helm, Path: "charts/web", ValueFiles: []string{"values/prod.yaml"},
		Values: map[string]any{"labels": map[string]any{"tier": "front"}}}
	rs, err := Render(t.Context(), Repo{Dir: dir}, tg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Values == nil {
		t.Fatalf("want one Deployment with a value locator, got %d resources", len(rs))
	}
	at := func(file string, line, col int, key string) string {
		return fmt.Sprintf("%s:%d:%d (%s)", file, line, col, key)
	}
	for _, c := range []struct {
		path []string
		want string
	}{
		// prod.yaml sets replicas: 1 too; it is the later file, so its line.
		{[]string{"spec", "replicas"}, at("values/prod.yaml", 1, 11, "replicas")},
		// Built from two values: the chart's repository and prod's tag (the chart's
		// tag "1.0" is overridden).
		{[]string{"spec", "template", "spec", "containers", "0", "image"},
			at("charts/web/values.yaml", 2, 15, "image.repository") + " and " + at("values/prod.yaml", 3, 8, "image.tag")},
		{[]string{"metadata", "labels", "team"}, at("values/prod.yaml", 4, 7, "team")},
		// Overridden by the inline values: not told.
		{[]string{"metadata", "labels", "tier"}, ""},
		// 8080 is set by two keys; the field's name (containerPort) matches neither.
		{[]string{"spec", "template", "spec", "containers", "0", "ports", "0", "containerPort"}, ""},
		// "false" is the string of the quoted bool: no leaf has that string.
		{[]string{"spec", "template", "spec", "containers", "0", "env", "0", "value"}, ""},
		{[]string{"spec", "template", "spec", "containers", "0", "env", "1", "value"}, ""},
		{[]string{"spec", "template", "spec", "containers", "0", "name"}, ""},
		{[]string{"spec", "absent"}, ""},
	} {
		got := ""
		if vs := rs[0].Values.LocateValue(c.path); len(vs) > 0 {
			got = policy.ValuesFromText(vs)
		}
		if got != c.want {
			t.Errorf("%s: value from %q, want %q", policy.FieldPath(c.path), got, c.want)
		}
	}
}
