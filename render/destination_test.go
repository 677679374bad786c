package render

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/gitgate/gitgate/policy"
	"github.com/google/go-cmp/cmp"
)

// An Application's destination cluster is carried on its target, the local one as zero;
// the same source on two clusters is two targets (sync applies each to its cluster),
// on the local cluster under both of its names one.
func TestDestinationTargets(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"apps/web/deploy.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n",
		"argocd/apps.yaml": `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: web, namespace: argocd}
spec:
  generators:
  - clusters: {}
  template:
    metadata: {name: 'web-{{name}}'}
    spec:
      project: default
      source: {repoURL: https://git.example.com/gitops.git, path: apps/web}
      destination: {server: '{{server}}', namespace: web}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: web-local, namespace: argocd}
spec:
  project: default
  source: {repoURL: https://git.example.com/gitops.git, path: apps/web}
  destination: {name: in-cluster, namespace: web}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: web-named, namespace: argocd}
spec:
  project: default
  source: {repoURL: https://git.example.com/gitops.git, path: apps/web}
  destination: {name: edge, namespace: web}
`,
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo := argoRepo(dir,
		policy.ClusterConfig{Name: "local", Server: "https://kubernetes.default.svc"},
		policy.ClusterConfig{Name: "prod", Server: "https://prod.example.com:6443"})
	d := Plan(context.Background(), repo, DiscoverOptions{}, 0)
	got := map[string]Destination{}
	for _, tg := range d.Targets {
		if tg.Path == "apps/web" {
			got[tg.Name] = tg.Destination
		}
	}
	// web-local and web-local's generated twin (server https://kubernetes.default.svc)
	// render alike on the local cluster: one target.
	want := map[string]Destination{
		"web-local": {},
		"web-named": {Name: "edge"},
		"web-prod":  {Server: "https://prod.example.com:6443"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("destinations (-want +got)\n%s\nerrors %v", diff, d.Errors)
	}
	if !(Destination{Server: "https://kubernetes.default.svc/"}).Local() || (Destination{Name: "edge"}).Local() || !(Destination{}).Local() {
		t.Error("Local")
	}
}
