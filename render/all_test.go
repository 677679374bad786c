package render

import (
	"context"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRenderRepoFollowsAppOfApps(t *testing.T) {
	files := map[string]string{}
	for k, v := range webRepo {
		files[k] = v
	}
	// A chart that renders Applications, as app-of-apps charts do.
	files["bootstrap/Chart.yaml"] = "apiVersion: v2\nname: bootstrap\nversion: 0.1.0\n"
	files["bootstrap/values.yaml"] = "envs: [prod]\n"
	files["bootstrap/templates/apps.yaml"] = `{{- range .Values.envs }}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web-{{ . }}
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://git.example.com/platform/gitops.git
    path: apps/web/overlays/{{ . }}
  destination:
    server: https://kubernetes.default.svc
    namespace: web-{{ . }}
{{- end }}
`
	repo := writeRepo(t, files)
	opts := DiscoverOptions{RepoURLs: []string{"https://git.example.com/platform/gitops.git"}}
	d := Discover(context.Background(), repo, opts)
	rendered := Discovered(context.Background(), repo, d, opts, 2, nil, nil)
	var got []string
	for _, r := range rendered {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Target.Name, r.Err)
		}
		for _, res := range r.Resources {
			got = append(got, r.Target.Name+": "+res.ID())
		}
	}
	sort.Strings(got)
	want := []string{
		"bootstrap: Application/argocd/web-prod",
		"web-prod: ConfigMap/prod/prod-web-env-" + nameSuffix(got, "web-prod: ConfigMap/prod/prod-web-env-"),
		"web-prod: Deployment/prod/prod-web",
		"web-prod: Service/prod/prod-web",
		"web/prod: ConfigMap/prod/prod-web-env-" + nameSuffix(got, "web/prod: ConfigMap/prod/prod-web-env-"),
		"web/prod: Deployment/prod/prod-web",
		"web/prod: Service/prod/prod-web",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func nameSuffix(list []string, prefix string) string {
	for _, s := range list {
		if len(s) > len(prefix) && s[:len(prefix)] == prefix {
			return s[len(prefix):]
		}
	}
	return "?"
}
