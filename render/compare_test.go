package render

import (
	"context"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/internal/treediff"
	"github.com/google/go-cmp/cmp"
)

// mrRepo is a small seed-shaped repository: two kustomize apps with base and two
// overlays, an ApplicationSet deploying them, and a chart with per-environment values.
func mrRepo() map[string]string {
	files := map[string]string{
		"argocd/appset.yaml": `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: apps, namespace: argocd}
spec:
  generators:
  - matrix:
      generators:
      - list:
          elements: [{svc: web}, {svc: api}]
      - list:
          elements: [{env: dev}, {env: prod}]
  template:
    metadata: {name: '{{svc}}-{{env}}'}
    spec:
      project: default
      source: {repoURL: https://git.example.com/gitops.git, path: 'apps/{{svc}}/overlays/{{env}}'}
      destination: {server: https://kubernetes.default.svc, namespace: '{{svc}}-{{env}}'}
`,
		"charts/worker/Chart.yaml":             "apiVersion: v2\nname: worker\nversion: 0.1.0\n",
		"charts/worker/values.yaml":            "image: harbor.example.com/worker:1.0\n",
		"charts/worker/templates/deploy.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: worker}\ndata: {image: \"{{ .Values.image }}\"}\n",
		"environments/dev/worker/values.yaml":  "image: harbor.example.com/worker:1.1\n",
		"environments/prod/worker/values.yaml": "image: harbor.example.com/worker:1.0\n",
		"policies/require-labels.yaml":         "# a policy file\n",
		"README.md":                            "docs\n",
	}
	for _, svc := range []string{"web", "api"} {
		files["apps/"+svc+"/base/kustomization.yaml"] = "resources: [deployment.yaml]\n"
		files["apps/"+svc+"/base/deployment.yaml"] = strings.ReplaceAll(webRepo["apps/web/base/deployment.yaml"], "web", svc)
		for _, env := range []string{"dev", "prod"} {
			files["apps/"+svc+"/overlays/"+env+"/kustomization.yaml"] = "resources: [../../base]\npatches:\n- path: patch.yaml\n"
			files["apps/"+svc+"/overlays/"+env+"/patch.yaml"] = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: " + svc + "}\nspec: {replicas: 2}\n"
		}
	}
	return files
}

func TestAffected(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(files map[string]string)
		policies bool
		want     []string
	}{
		{"base file", func(f map[string]string) {
			f["apps/web/base/deployment.yaml"] += "  # edited\n"
		}, false, []string{"web-dev", "web-prod"}},
		{"overlay patch", func(f map[string]string) {
			f["apps/api/overlays/prod/patch.yaml"] = strings.Replace(f["apps/api/overlays/prod/patch.yaml"], "replicas: 2", "replicas: 5", 1)
		}, false, []string{"api-prod"}},
		{"chart environment value", func(f map[string]string) {
			f["environments/dev/worker/values.yaml"] = "image: docker.io/worker:1.1\n"
		}, false, []string{"worker/dev"}},
		{"chart default value", func(f map[string]string) {
			f["charts/worker/values.yaml"] = "image: harbor.example.com/worker:2.0\n"
		}, false, []string{"worker", "worker/dev", "worker/prod"}},
		{"ApplicationSet element added", func(f map[string]string) {
			f["argocd/appset.yaml"] = strings.Replace(f["argocd/appset.yaml"], "[{env: dev}, {env: prod}]", "[{env: dev}, {env: prod}, {env: qa}]", 1)
			f["apps/web/overlays/qa/kustomization.yaml"] = "resources: [../../base]\n"
			f["apps/api/overlays/qa/kustomization.yaml"] = "resources: [../../base]\n"
		}, false, []string{"api-qa", "argocd", "web-qa"}},
		// The ApplicationSet is itself a manifest of the argocd directory, checked as such.
		{"ApplicationSet element field no template uses", func(f map[string]string) {
			f["argocd/appset.yaml"] = strings.Replace(f["argocd/appset.yaml"], "[{svc: web}, {svc: api}]", "[{svc: web}, {svc: api, owner: team-a}]", 1)
		}, false, []string{"argocd"}},
		{"policy change", func(f map[string]string) {
			f["policies/require-labels.yaml"] += "# edited\n"
		}, true, []string{"api-dev", "api-prod", "argocd", "web-dev", "web-prod", "worker", "worker/dev", "worker/prod"}},
		{"rename of a patch", func(f map[string]string) {
			f["apps/web/overlays/dev/replicas.yaml"] = f["apps/web/overlays/dev/patch.yaml"]
			delete(f, "apps/web/overlays/dev/patch.yaml")
			f["apps/web/overlays/dev/kustomization.yaml"] = "resources: [../../base]\npatches:\n- path: replicas.yaml\n"
		}, false, []string{"web-dev"}},
		{"deleted overlay", func(f map[string]string) {
			delete(f, "apps/api/overlays/dev/kustomization.yaml")
			delete(f, "apps/api/overlays/dev/patch.yaml")
		}, false, []string{"api-dev"}},
		{"unrelated file", func(f map[string]string) {
			f["README.md"] = "more docs\n"
		}, false, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			baseFiles := mrRepo()
			headFiles := mrRepo()
			tc.edit(headFiles)
			base, head := writeRepo(t, baseFiles), writeRepo(t, headFiles)
			changed, err := treediff.Diff(base.FS, head.FS)
			if err != nil {
				t.Fatal(err)
			}
			opts := DiscoverOptions{Exclude: []string{"policies"}, RepoURLs: []string{"https://git.example.com/gitops.git"}}
			dBase, dHead := Discover(context.Background(), base, opts), Discover(context.Background(), head, opts)
			got := Affected(base, head, indexTargets(dBase.Targets), indexTargets(dHead.Targets), changed, tc.policies)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("changed %v: affected targets (-want +got)\n%s", changed, diff)
			}
		})
	}
}
