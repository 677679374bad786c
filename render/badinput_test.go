package render

import (
	"context"
	"strings"
	"testing"
)

// TestBadInputOthersStillRender: a chart with a missing dependency and an
// ApplicationSet naming a path that does not exist are reported, naming what is wrong,
// and every other target still renders.
func TestBadInputOthersStillRender(t *testing.T) {
	files := map[string]string{
		"charts/broken/Chart.yaml":        "apiVersion: v2\nname: broken\nversion: 0.1.0\ndependencies:\n- name: common\n  version: 1.0.0\n",
		"charts/broken/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
		"charts/fine/Chart.yaml":          "apiVersion: v2\nname: fine\nversion: 0.1.0\n",
		"charts/fine/templates/cm.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: f}\n",
		"argocd/set.yaml": `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: set, namespace: argocd}
spec:
  generators:
  - list: {elements: [{env: dev}, {env: nowhere}]}
  template:
    metadata: {name: 'web-{{env}}'}
    spec:
      project: default
      source: {repoURL: https://git.example.com/gitops.git, path: 'apps/web/overlays/{{env}}'}
      destination: {server: https://kubernetes.default.svc, namespace: '{{env}}'}
`,
	}
	for k, v := range webRepo {
		files[k] = v
	}
	files["apps/web/overlays/dev/kustomization.yaml"] = "namespace: dev\nresources: [../../base]\n"
	repo := writeRepo(t, files)
	opts := DiscoverOptions{RepoURLs: []string{"https://git.example.com/gitops.git"}}
	d := Plan(context.Background(), repo, opts, 2)
	var discoverErrs []string
	for _, e := range d.Errors {
		discoverErrs = append(discoverErrs, e.Error())
	}
	if joined := strings.Join(discoverErrs, "\n"); !strings.Contains(joined, "argocd/set.yaml") || !strings.Contains(joined, "apps/web/overlays/nowhere") {
		t.Errorf("the missing ApplicationSet path must be an error naming the file and path, got %q", joined)
	}
	rendered := RenderPlan(context.Background(), repo, d, 2, nil, nil)
	ok := map[string]bool{}
	for _, r := range rendered {
		switch {
		case r.Target.Name == "broken":
			if r.Err == nil || !strings.Contains(r.Err.Error(), "common") {
				t.Errorf("broken chart: got %v, want an error naming the missing dependency", r.Err)
			}
		case r.Err != nil:
			t.Errorf("%s: %v", r.Target.Name, r.Err)
		default:
			ok[r.Target.Name] = len(r.Resources) > 0
		}
	}
	for _, name := range []string{"fine", "web-dev", "web/prod"} {
		if !ok[name] {
			t.Errorf("target %s did not render (rendered: %v)", name, ok)
		}
	}
}
