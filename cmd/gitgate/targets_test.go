package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestTargetsListWhatCheckRenders holds `targets` and `check` to one target list under
// .gitgate.yaml's targets: and environments:. Every target plants an Audit finding (an
// image without a tag), so the targets check's findings name are exactly the targets it
// rendered; they must be the ones `targets` lists, and the filter's notice must be printed
// once by each command (and carried once in check's JSON report).
func TestTargetsListWhatCheckRenders(t *testing.T) {
	dir := t.TempDir()
	deploy := func(name string) string {
		return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ` + name + `
spec:
  selector: {matchLabels: {app: ` + name + `}}
  template:
    metadata: {labels: {app: ` + name + `}}
    spec:
      containers:
        - name: app
          image: nginx
`
	}
	files := map[string]string{
		".gitgate.yaml":                    "targets:\n  exclude: [apps/b]\nenvironments: [dev]\n",
		"charts/web/Chart.yaml":            "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"charts/web/values.yaml":           "name: web\n",
		"charts/web/values-dev.yaml":       "name: web-dev\n",
		"charts/web/values-prod.yaml":      "name: web-prod\n",
		"charts/web/templates/deploy.yaml": strings.Replace(deploy("X"), "X", "{{ .Values.name }}", -1),
	}
	for _, app := range []string{"a", "b", "c"} {
		files["apps/"+app+"/kustomization.yaml"] = "resources: [deploy.yaml]\n"
		files["apps/"+app+"/deploy.yaml"] = deploy(app)
	}
	writeFiles(t, dir, files)
	t.Setenv("CI", "1")

	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"targets", "-o", "json", dir}, &out, &errb); code != 0 {
		t.Fatalf("targets exited %d: %s", code, errb.String())
	}
	var listed []struct{ Name string }
	if err := json.Unmarshal(out.Bytes(), &listed); err != nil {
		t.Fatalf("targets -o json: %v\n%s", err, out.String())
	}
	var names []string
	for _, tg := range listed {
		names = append(names, tg.Name)
	}
	slices.Sort(names)
	targetsNotices := strings.Count(errb.String(), "left out by the target filter")

	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"check", "-o", "json", dir}, &out, &errb); code > 1 {
		t.Fatalf("check exited %d: %s", code, errb.String())
	}
	var rep struct {
		Summary struct{ Targets int }
		Results []struct {
			Origin struct{ Target string }
		}
		Notices []string
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("check -o json: %v\n%s", err, out.String())
	}
	var checked []string
	for _, r := range rep.Results {
		if !slices.Contains(checked, r.Origin.Target) {
			checked = append(checked, r.Origin.Target)
		}
	}
	slices.Sort(checked)

	if !slices.Equal(names, checked) {
		t.Errorf("targets lists %q, check rendered %q", names, checked)
	}
	if rep.Summary.Targets != len(names) {
		t.Errorf("check's summary counts %d targets, targets lists %d", rep.Summary.Targets, len(names))
	}
	// The filter did what .gitgate.yaml says: apps/b and the prod environment left out,
	// a, c, the chart's defaults and dev kept.
	for _, n := range names {
		if strings.Contains(n, "apps/b") || strings.Contains(n, "prod") {
			t.Errorf("target %s listed although .gitgate.yaml leaves it out", n)
		}
	}
	if len(names) != 4 {
		t.Errorf("want 4 targets (apps/a, apps/c, the chart's defaults and dev), got %q", names)
	}
	// Once on each command's stderr, and once in check's JSON report.
	jsonNotices := 0
	for _, n := range rep.Notices {
		jsonNotices += strings.Count(n, "left out by the target filter")
	}
	checkNotices := strings.Count(errb.String(), "left out by the target filter")
	if targetsNotices != 1 || checkNotices != 1 || jsonNotices != 1 {
		t.Errorf("the target filter's notice: targets printed it %d times, check %d (and %d in its JSON); want once each", targetsNotices, checkNotices, jsonNotices)
	}
}

// TestCheckReportsEveryTarget: check's JSON report lists every target `targets` lists,
// Applications an app-of-apps chart renders included, with its object count and whether
// it rendered (and why not); the text summary counts the ones that did not, by reason.
func TestCheckReportsEveryTarget(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"bootstrap/Chart.yaml": "apiVersion: v2\nname: bootstrap\nversion: 0.1.0\n",
		"bootstrap/templates/child.yaml": `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: child
  namespace: argocd
spec:
  source:
    repoURL: https://git.example.com/gitops.git
    path: apps/good
  destination:
    server: https://kubernetes.default.svc
    namespace: shop
`,
		"apps/good/kustomization.yaml": "resources: [cm.yaml]\n",
		"apps/good/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: good\n",
		"apps/bad/kustomization.yaml":  "resources: [missing.yaml]\n",
		".gitgate.yaml":                "repoURLs: [https://git.example.com/gitops.git]\n",
	}
	writeFiles(t, dir, files)
	t.Setenv("CI", "1")
	var out, errb bytes.Buffer
	run(context.Background(), []string{"targets", "-o", "json", dir}, &out, &errb)
	var listed []struct{ Name, Path string }
	if err := json.Unmarshal(out.Bytes(), &listed); err != nil {
		t.Fatalf("targets -o json: %v\n%s\n%s", err, out.String(), errb.String())
	}
	var names []string
	for _, tg := range listed {
		names = append(names, tg.Name+" "+tg.Path)
	}

	out.Reset()
	errb.Reset()
	text := filepath.Join(t.TempDir(), "out.txt")
	if code := run(context.Background(), []string{"check", "-o", "json", "-o", "text=" + text, dir}, &out, &errb); code != 2 {
		t.Errorf("check exited %d, want 2 (a target did not render): %s", code, errb.String())
	}
	var rep struct {
		Targets []struct {
			Name, Path, Reason string
			Objects            int
			Rendered           bool
			DeployedBy         []string
		}
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("check -o json: %v\n%s", err, out.String())
	}
	var got []string
	for _, tg := range rep.Targets {
		got = append(got, tg.Name+" "+tg.Path)
		switch tg.Path {
		case "apps/good":
			if tg.Name != "child" || !tg.Rendered || tg.Objects != 1 || !slices.Equal(tg.DeployedBy, []string{"child"}) {
				t.Errorf("the overlay the child Application deploys: %+v", tg)
			}
		case "apps/bad":
			if tg.Rendered || tg.Reason != "render error" {
				t.Errorf("the broken kustomization: %+v", tg)
			}
		case "bootstrap":
			if !tg.Rendered || tg.Objects != 1 {
				t.Errorf("the app-of-apps chart: %+v", tg)
			}
		}
	}
	want := []string{"apps/bad apps/bad", "bootstrap bootstrap", "child apps/good"}
	if !slices.Equal(names, want) || !slices.Equal(got, want) {
		t.Errorf("targets lists %q, check reports %q; want %q", names, got, want)
	}
	summary, err := os.ReadFile(text)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(summary), "1 of 3 targets not rendered (1 render error)") {
		t.Errorf("the text summary does not count the target that did not render:\n%s", summary)
	}
}

// TestCheckSubdirectory: check DIR for a directory inside a repository checks the targets
// in it exactly as a check of the whole repository would (settings, names, bases from
// outside DIR), never its bases and patches as plain manifests; a base alone checks the
// targets that build on it.
func TestCheckSubdirectory(t *testing.T) {
	dir := t.TempDir()
	cm := func(name string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata: {a: b}\n"
	}
	files := map[string]string{
		".gitgate.yaml":                             "environments: [dev, prod]\n",
		"apps/web/base/kustomization.yaml":          "resources: [cm.yaml]\n",
		"apps/web/base/cm.yaml":                     cm("web"),
		"apps/web/overlays/dev/kustomization.yaml":  "namePrefix: dev-\nresources: [../../base]\npatches: [{path: patch.yaml}]\n",
		"apps/web/overlays/dev/patch.yaml":          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata: {a: dev}\n",
		"apps/web/overlays/prod/kustomization.yaml": "namePrefix: prod-\nresources: [../../base]\n",
		"apps/db/kustomization.yaml":                "resources: [cm.yaml]\n",
		"apps/db/cm.yaml":                           cm("db"),
	}
	writeFiles(t, dir, files)
	t.Setenv("CI", "1")
	for _, c := range []struct {
		sub     string
		targets []string
		objects int
	}{
		{".", []string{"apps/db", "web/dev", "web/prod"}, 3},
		{"apps/web", []string{"web/dev", "web/prod"}, 2},
		{"apps/web/overlays/prod", []string{"web/prod"}, 1},
		{"apps/web/base", []string{"web/dev", "web/prod"}, 2},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"check", "-o", "json", filepath.Join(dir, filepath.FromSlash(c.sub))}, &out, &errb)
		if code > 1 {
			t.Errorf("check %s exited %d: %s", c.sub, code, errb.String())
			continue
		}
		var rep struct {
			Summary struct{ Resources int }
			Targets []struct{ Name string }
		}
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("check %s: %v\n%s", c.sub, err, out.String())
		}
		var names []string
		for _, tg := range rep.Targets {
			names = append(names, tg.Name)
		}
		if !slices.Equal(names, c.targets) || rep.Summary.Resources != c.objects {
			t.Errorf("check %s: targets %q and %d resources, want %q and %d", c.sub, names, rep.Summary.Resources, c.targets, c.objects)
		}
	}
}

// TestCheckSubdirectoryOfArchive: a repository with neither .git nor .gitgate.yaml (a
// git archive, a zip download) checked from its root as check SUBDIR takes the working
// directory as the root and says so: the overlay is one target, its patch never a plain
// manifest, its base not "outside the repository".
func TestCheckSubdirectoryOfArchive(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"apps/web/base/kustomization.yaml":         "resources: [cm.yaml]\n",
		"apps/web/base/cm.yaml":                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata: {a: b}\n",
		"apps/web/overlays/dev/kustomization.yaml": "namePrefix: dev-\nresources: [../../base]\npatches: [{path: patch.yaml}]\n",
		"apps/web/overlays/dev/patch.yaml":         "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata: {a: dev}\n",
	})
	t.Chdir(dir)
	t.Setenv("CI", "1")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"check", "-o", "json", "apps/web/overlays/dev"}, &out, &errb)
	if code != exitClean {
		t.Fatalf("exit %d: %s\n%s", code, errb.String(), out.String())
	}
	var rep struct {
		Summary struct{ Resources int }
		Targets []struct{ Name, Path string }
		Notices []string
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(rep.Targets) != 1 || rep.Targets[0].Path != "apps/web/overlays/dev" || rep.Summary.Resources != 1 {
		t.Errorf("targets %+v, %d resources; want the overlay alone, 1 resource", rep.Targets, rep.Summary.Resources)
	}
	if !slices.ContainsFunc(rep.Notices, func(n string) bool {
		return strings.Contains(n, "the working directory is taken as the repository root")
	}) {
		t.Errorf("no notice about the assumed root: %q", rep.Notices)
	}
}

// writeFiles writes a repository of slash-separated paths and contents under dir.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCheckOnlyNotRendered: a directory whose only targets are not rendered by design (a
// config management plugin) still gets its report, with the target and why, exit 0;
// before, -o json printed nothing and the text said "no resources found".
func TestCheckOnlyNotRendered(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		".gitgate.yaml":          "repoURLs: [https://git.example.com/r.git]\n",
		"apps/x.yaml":            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: x, namespace: argocd}\nspec:\n  source: {repoURL: https://git.example.com/r.git, path: plugins/x, plugin: {name: cmp}}\n  destination: {namespace: x}\n",
		"plugins/x/main.jsonnet": "{}\n",
	})
	t.Setenv("CI", "1")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"check", "-o", "json", filepath.Join(dir, "plugins")}, &out, &errb)
	var rep struct {
		Targets []struct {
			Name, Kind, Reason string
			Rendered           bool
		}
	}
	if err := json.Unmarshal(out.Bytes(), &rep); code != exitClean || err != nil {
		t.Fatalf("exit %d, %v\nstdout:\n%s\nstderr:\n%s", code, err, out.String(), errb.String())
	}
	if len(rep.Targets) != 1 || rep.Targets[0].Name != "x" || rep.Targets[0].Rendered || rep.Targets[0].Reason != "config management plugin" {
		t.Errorf("targets %+v", rep.Targets)
	}
}

// TestRenderMutated: render --mutated applies the repository's mutate policy (what the
// cluster would store); plain render prints the manifest as written.
func TestRenderMutated(t *testing.T) {
	t.Setenv("CI", "1")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"policies/add-non-root.yaml": "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: add-non-root}\nspec:\n  rules:\n" +
			"  - name: add-run-as-non-root\n    match: {any: [{resources: {kinds: [Pod]}}]}\n    mutate:\n      patchStrategicMerge:\n" +
			"        spec:\n          securityContext:\n            +(runAsNonRoot): true\n",
		"apps/web/kustomization.yaml": "resources: [deploy.yaml]\n",
		"apps/web/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {matchLabels: {app: web}}\n" +
			"  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: registry.example.com/web:1}]\n",
	})
	t.Chdir(dir)
	render := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"render"}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, stderr := render("--mutated", "apps/web")
	if code != exitClean || !strings.Contains(out, "runAsNonRoot: true") || !strings.Contains(out, "image: registry.example.com/web:1") {
		t.Errorf("render --mutated: exit %d\n%s\n%s", code, out, stderr)
	}
	code, out, stderr = render("apps/web")
	if code != exitClean || strings.Contains(out, "runAsNonRoot") {
		t.Errorf("render: exit %d\n%s\n%s", code, out, stderr)
	}
}

// TestRenderMutatedMutatingPolicy: render --mutated applies a MutatingPolicy
// (policies.kyverno.io) too: its applyConfiguration merged into the Deployment.
func TestRenderMutatedMutatingPolicy(t *testing.T) {
	t.Setenv("CI", "1")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"policies/mpol.yaml": "apiVersion: policies.kyverno.io/v1beta1\nkind: MutatingPolicy\nmetadata: {name: add-non-root}\nspec:\n" +
			"  matchConstraints:\n    resourceRules:\n    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}\n" +
			"  mutations:\n  - patchType: ApplyConfiguration\n    applyConfiguration:\n      expression: >\n" +
			"        Object{spec: Object.spec{template: Object.spec.template{spec: Object.spec.template.spec{securityContext: Object.spec.template.spec.securityContext{runAsNonRoot: true}}}}}\n",
		"apps/web/kustomization.yaml": "resources: [deploy.yaml]\n",
		"apps/web/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {matchLabels: {app: web}}\n" +
			"  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: registry.example.com/web:1}]\n",
	})
	t.Chdir(dir)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"render", "--mutated", "apps/web"}, &out, &errb)
	if code != exitClean || !strings.Contains(out.String(), "runAsNonRoot: true") || !strings.Contains(out.String(), "image: registry.example.com/web:1") {
		t.Errorf("render --mutated: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
}
