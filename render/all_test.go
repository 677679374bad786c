package render

import (
	"context"
	"sort"
	"strings"
	"sync"
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
	d := Plan(context.Background(), repo, opts, 2)
	var names []string
	for _, tg := range d.Targets {
		names = append(names, tg.Name+" "+tg.Path+" "+strings.Join(tg.DeployedBy, ","))
	}
	// The overlay the child Application deploys is its target, listed once.
	if diff := cmp.Diff([]string{"bootstrap bootstrap ", "web-prod apps/web/overlays/prod web-prod"}, names); diff != "" {
		t.Errorf("plan (-want +got)\n%s", diff)
	}
	var rendered []Rendered
	var mu sync.Mutex
	RenderPlan(context.Background(), repo, d, 2, nil, func(r Rendered) {
		mu.Lock()
		rendered = append(rendered, r)
		mu.Unlock()
	})
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

// Application files form a directory target of their own, whose render holds the same
// Applications: they are not read a second time, so each of their errors and notices is
// said once; an app-of-apps that deploys its own directory stops there.
func TestPlanReadsEachApplicationOnce(t *testing.T) {
	app := func(name, path string) string {
		return `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: ` + name + `
  namespace: argocd
spec:
  source:
    repoURL: https://git.example.com/platform/gitops.git
    path: ` + path + `
  destination:
    server: https://kubernetes.default.svc
    namespace: x
`
	}
	repo := writeRepo(t, map[string]string{
		"apps/broken.yaml": app("broken", "nope"),
		"apps/self.yaml":   app("self", "apps"),
	})
	opts := DiscoverOptions{RepoURLs: []string{"https://git.example.com/platform/gitops.git"}}
	d := Plan(context.Background(), repo, opts, 2)
	n := 0
	for _, err := range d.Errors {
		if strings.Contains(err.Error(), "nope does not exist") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the missing path is reported %d times, want once: %v", n, d.Errors)
	}
	for _, note := range d.Notices {
		if strings.Contains(note, "deeper than") {
			t.Errorf("an Application deploying its own directory was followed round: %s", note)
		}
	}
}
