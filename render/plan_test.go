package render

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestUniqueNames: names shared by several targets, or equal to another target's path,
// become paths a user can type, and FindTarget then finds every target by its name and
// by its path. (Measured on a public repository: an Application named like another
// target's directory made `render NAME` refuse both.)
func TestUniqueNames(t *testing.T) {
	ts := []Target{
		{Name: "pricelist", Kind: Directory, Path: "storageops/statefulapp", DefinedIn: "apps/pricelist.yaml"},
		{Name: "pl", Kind: Kustomize, Path: "pricelist", DefinedIn: "apps/pl.yaml"},
		{Name: "web", Kind: Kustomize, Path: "web/dev", DefinedIn: "clusters/dev/web.yaml"},
		{Name: "web", Kind: Kustomize, Path: "web/prod", DefinedIn: "clusters/prod/web.yaml"},
		{Name: "db", Kind: Helm, Chart: &RemoteChart{Repo: "https://charts.example.com", Name: "db"}, DefinedIn: "apps/db.yaml"},
	}
	uniqueNames(ts)
	var names []string
	for _, tg := range ts {
		names = append(names, tg.Name)
	}
	want := []string{"apps/pricelist/pricelist", "clusters/dev/web/web", "clusters/prod/web/web", "db", "pl"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Fatalf("names (-want +got)\n%s", diff)
	}
	for _, tg := range ts {
		if got, err := FindTarget(ts, tg.Name); err != nil || got.Name != tg.Name {
			t.Errorf("FindTarget(%q) = %v, %v", tg.Name, got.Name, err)
		}
		if tg.Path == "" {
			continue
		}
		if got, err := FindTarget(ts, tg.Path); err != nil || got.Name != tg.Name {
			t.Errorf("FindTarget(%q) = %v, %v", tg.Path, got.Name, err)
		}
	}
}

// TestPlanFragments: a kustomize Component no kustomization uses is not a target of its
// own (one notice names it), a used one is built through its user; the jsonnet of a
// directory a plugin Application renders is not reported as left over. (Both measured
// on public repositories: Components failing exactly as `kustomize build` fails on them
// counted as render errors; a plugin directory got a contradicting jsonnet notice.)
func TestPlanFragments(t *testing.T) {
	comp := "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [cm.yaml]\n"
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n"
	repo := writeRepo(t, map[string]string{
		"components/used/kustomization.yaml":   comp,
		"components/used/cm.yaml":              cm,
		"components/unused/kustomization.yaml": comp,
		"components/unused/cm.yaml":            cm,
		"app/kustomization.yaml":               "resources: [svc.yaml]\ncomponents: [../components/used]\n",
		"app/svc.yaml":                         "apiVersion: v1\nkind: Service\nmetadata: {name: app}\n",
		"argocd/plugin.yaml": "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: kasane, namespace: argocd}\nspec:\n" +
			"  source: {repoURL: https://git.example.com/gitops.git, path: plugins/kasane, plugin: {name: kasane}}\n  destination: {namespace: x}\n",
		"plugins/kasane/main.jsonnet": "{}\n",
	})
	d := Plan(t.Context(), repo, DiscoverOptions{RepoURLs: []string{"https://git.example.com/gitops.git"}}, 1)
	var got []string
	for _, tg := range d.Targets {
		got = append(got, tg.Name+" "+string(tg.Kind))
	}
	if diff := cmp.Diff([]string{"app kustomize", "argocd directory", "kasane plugin"}, got); diff != "" {
		t.Errorf("targets (-want +got)\n%s", diff)
	}
	var component, jsonnet int
	for _, n := range d.Notices {
		if strings.Contains(n, "Component(s) that no kustomization uses") && strings.Contains(n, "components/unused") && !strings.Contains(n, "components/used") {
			component++
		}
		if strings.Contains(n, ".jsonnet") {
			jsonnet++
		}
	}
	if component != 1 || jsonnet != 0 {
		t.Errorf("notices %q: want one about the unused Component, none about jsonnet", d.Notices)
	}
}

// TestAppProbeSeededByDiscovery: the probe answers from what discovery read for the
// files discovery read whole, and those answers are the ones it gets reading them
// itself, for every target (an Application in a kustomization's resources, the word in
// a comment only, plain manifests).
func TestAppProbeSeededByDiscovery(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"root/kustomization.yaml":   "resources:\n- app.yaml\n",
		"root/app.yaml":             "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\nspec:\n  source:\n    path: web\n",
		"web/kustomization.yaml":    "resources:\n- cm.yaml\n",
		"web/cm.yaml":               "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n",
		"noted/kustomization.yaml":  "resources:\n- cm.yaml\n",
		"noted/cm.yaml":             "# not an Application\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: noted\n",
		"plain/deploy.yaml":         "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n",
		"listed/kustomization.yaml": "resources:\n- list.yaml\n",
		"listed/list.yaml":          "apiVersion: v1\nkind: List\nitems:\n  - kind: ApplicationSet\n    apiVersion: argoproj.io/v1alpha1\n    metadata:\n      name: x\n",
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo := Repo{Dir: dir}.confined()
	d := Discover(context.Background(), repo, DiscoverOptions{})
	if !d.appFiles["root/app.yaml"] || d.appFiles["web/cm.yaml"] || d.appFiles["noted/cm.yaml"] {
		t.Fatalf("discovery's reads: %v", d.appFiles)
	}
	seeded, fresh := newAppProbe(repo), newAppProbe(repo)
	for f, v := range d.appFiles {
		seeded.files[f] = v
	}
	got := map[string]bool{}
	for _, tg := range d.Targets {
		s, f := seeded.mayRenderApps(tg), fresh.mayRenderApps(tg)
		if s != f {
			t.Errorf("%s: seeded probe %v, reading itself %v", tg.Path, s, f)
		}
		got[tg.Path] = f
	}
	if !got["root"] || !got["listed"] || got["web"] || got["noted"] {
		t.Errorf("probe answers %v: want root and listed only", got)
	}
}
