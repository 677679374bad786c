package render

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestTargetDepsCoverReads renders every target of the bundled example, of a repo with
// components, generators' files and a file:// chart dependency, and of the jsonnet
// Applications' repo (imports out of the source directory), recording every file
// the render reads: each must be among the target's statically computed dependencies,
// or a change to it would go unnoticed in merge-request mode.
func TestTargetDepsCoverReads(t *testing.T) {
	example, err := filepath.Abs("../testdata/gitops")
	if err != nil {
		t.Fatal(err)
	}
	extra := writeRepo(t, map[string]string{
		"apps/web/base/kustomization.yaml":          "resources: [deployment.yaml]\nconfigMapGenerator:\n- name: cfg\n  files: [conf=files/app.conf]\n  envs: [env.txt]\n",
		"apps/web/base/deployment.yaml":             webRepo["apps/web/base/deployment.yaml"],
		"apps/web/base/files/app.conf":              "x=1\n",
		"apps/web/base/env.txt":                     "A=1\n",
		"apps/web/base/README.md":                   "not read\n",
		"components/probes/kustomization.yaml":      "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n- path: probes.yaml\n  target: {kind: Deployment}\n",
		"components/probes/probes.yaml":             "- op: add\n  path: /metadata/annotations\n  value: {probed: \"yes\"}\n",
		"apps/web/overlays/prod/kustomization.yaml": "resources: [../../base, extra/cm.yaml]\ncomponents: [../../../../components/probes]\npatches:\n- path: patch.yaml\n",
		"apps/web/overlays/prod/patch.yaml":         "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 3}\n",
		"apps/web/overlays/prod/extra/cm.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n",
		"charts/lib/Chart.yaml":                     "apiVersion: v2\nname: lib\nversion: 0.1.0\n",
		"charts/lib/templates/cm.yaml":              "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lib}\n",
		"charts/app/Chart.yaml":                     "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n- name: lib\n  version: 0.1.0\n  repository: file://../lib\n",
		"charts/app/values.yaml":                    "n: 1\n",
		"charts/app/values-prod.yaml":               "n: 2\n",
		"charts/app/templates/cm.yaml":              "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {n: \"{{ .Values.n }}\"}\n",
	})
	jsonnetDir, err := filepath.Abs(jsonnetTestRepo)
	if err != nil {
		t.Fatal(err)
	}
	for name, repo := range map[string]Repo{"example": {FS: os.DirFS(example), Dir: example}, "extra": extra, "helmCharts": writeRepo(t, helmChartsRepo), "jsonnet": {FS: os.DirFS(jsonnetDir), Dir: jsonnetDir}} {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			reads := map[string]map[string]bool{}
			d := Discover(context.Background(), repo, DiscoverOptions{})
			if len(d.Targets) == 0 {
				t.Fatal("no targets")
			}
			for _, tg := range d.Targets {
				r := repo
				got := map[string]bool{}
				r.Trace = func(f string) { mu.Lock(); got[f] = true; mu.Unlock() }
				if _, err := Render(context.Background(), r, tg); err != nil {
					t.Fatalf("%s: %v", tg.Name, err)
				}
				if len(got) == 0 {
					t.Errorf("%s: the render read no file: tracing is broken", tg.Name)
				}
				reads[tg.Name] = got
				deps := targetDeps(repo, tg)
				var missed []string
				for f := range got {
					if !deps.Match(f) {
						missed = append(missed, f)
					}
				}
				sort.Strings(missed)
				if len(missed) > 0 {
					t.Errorf("%s reads files its dependencies miss: %v (deps %v)", tg.Name, missed, deps)
				}
			}
			if name == "jsonnet" {
				// Imports out of the source directory (a lib, another app's file) are read.
				for target, file := range map[string]string{"guestbook": "lib/kube.libsonnet", "tools": "apps/guestbook/ports.libsonnet"} {
					if !reads[target][file] {
						t.Errorf("%s does not read %s: %v", target, file, reads[target])
					}
				}
			}
			if name == "extra" {
				want := []string{
					"apps/web/base/deployment.yaml", "apps/web/base/env.txt", "apps/web/base/files/app.conf",
					"apps/web/base/kustomization.yaml", "apps/web/overlays/prod/extra/cm.yaml",
					"apps/web/overlays/prod/kustomization.yaml", "apps/web/overlays/prod/patch.yaml",
					"components/probes/kustomization.yaml", "components/probes/probes.yaml",
				}
				var got []string
				for f := range reads["web/prod"] {
					got = append(got, f)
				}
				sort.Strings(got)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("web/prod reads (-want +got)\n%s", diff)
				}
				if deps := targetDeps(extra, Target{Kind: Kustomize, Path: "apps/web/overlays/prod"}); deps.Match("apps/web/base/README.md") {
					t.Errorf("a README no kustomization names is a dependency: %v", deps)
				}
				if deps := targetDeps(extra, Target{Kind: Helm, Path: "charts/app", ValueFiles: []string{"charts/app/values-prod.yaml"}}); !deps.Match("charts/lib/templates/cm.yaml") {
					t.Errorf("a file:// dependency's template is not a dependency: %v", deps)
				}
			}
		})
	}
}
