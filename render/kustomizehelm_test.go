package render

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var helmChartsRepo = map[string]string{
	"apps/web/overlays/prod/kustomization.yaml": `namePrefix: prod-
namespace: prod
helmCharts:
- name: web
  releaseName: shop
  valuesFile: values-prod.yaml
  valuesInline: {replicas: 3}
patches:
- target: {kind: Deployment}
  patch: |-
    - op: add
      path: /metadata/labels
      value: {patched: "yes"}
`,
	"apps/web/overlays/prod/values-prod.yaml":                  "image: harbor.example.com/web:2.0\nreplicas: 1\n",
	"apps/web/overlays/prod/charts/web/Chart.yaml":             "apiVersion: v2\nname: web\nversion: 0.1.0\n",
	"apps/web/overlays/prod/charts/web/values.yaml":            "image: harbor.example.com/web:1.0\nreplicas: 1\n",
	"apps/web/overlays/prod/charts/web/templates/d.yaml":       "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-web\nspec:\n  replicas: {{ .Values.replicas }}\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - name: web\n        image: {{ .Values.image }}\n",
	"apps/web/overlays/prod/charts/web/templates/tests/t.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}-test\n  annotations: {\"helm.sh/hook\": test}\nspec:\n  containers: [{name: t, image: busybox}]\n",
}

// TestKustomizeHelmCharts: a kustomization's helmCharts are rendered in-process from the
// chart in the repository (values file, inline values overriding it, release name) and
// then transformed by the kustomization like any resource; findings point at the
// kustomization that names the chart.
func TestKustomizeHelmCharts(t *testing.T) {
	repo := writeRepo(t, helmChartsRepo)
	rs, err := Render(context.Background(), repo, Target{Name: "web/prod", Kind: Kustomize, Path: "apps/web/overlays/prod"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs {
		got = append(got, r.ID()+" "+r.Origin.File)
		if r.Object.GetKind() == "Deployment" {
			spec := r.Object.Object["spec"].(map[string]any)
			img := spec["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["image"]
			if spec["replicas"] != int64(3) || img != "harbor.example.com/web:2.0" || r.Object.GetLabels()["patched"] != "yes" {
				t.Errorf("deployment: replicas %v (want 3: inline over the values file), image %v (want the values file's), labels %v (want the patch's)", spec["replicas"], img, r.Object.GetLabels())
			}
		}
	}
	want := []string{
		"Deployment/prod/prod-shop-web apps/web/overlays/prod/kustomization.yaml",
		"Pod/prod/prod-shop-test apps/web/overlays/prod/kustomization.yaml",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}

	files := map[string]string{}
	for k, v := range helmChartsRepo {
		files[k] = v
	}
	files["apps/web/overlays/prod/kustomization.yaml"] = "helmCharts:\n- name: web\n  repo: https://charts.example.com\n  version: 1.0.0\n"
	_, err = Render(context.Background(), writeRepo(t, files), Target{Name: "web/prod", Kind: Kustomize, Path: "apps/web/overlays/prod"})
	var re *RemoteError
	if !errors.As(err, &re) || re.URL != "https://charts.example.com" {
		t.Errorf("a chart from a repository: %v, want a RemoteError naming it", err)
	}
}

// A chart that a kustomization's helmCharts renders is part of that kustomization, not a
// target of its own (it would be rendered twice, the second time without the
// kustomization's values); a chart beside it that nothing renders still is.
func TestDiscoverLeavesHelmChartsChartsToTheirKustomization(t *testing.T) {
	files := map[string]string{}
	for k, v := range helmChartsRepo {
		files[k] = v
	}
	files["charts/other/Chart.yaml"] = "apiVersion: v2\nname: other\nversion: 0.1.0\n"
	d := Discover(context.Background(), writeRepo(t, files), DiscoverOptions{})
	var got []string
	for _, tg := range d.Targets {
		got = append(got, string(tg.Kind)+" "+tg.Path)
	}
	want := []string{"helm charts/other", "kustomize apps/web/overlays/prod"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("targets (-want +got)\n%s", diff)
	}
}
