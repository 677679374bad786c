package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/gitgate/gitgate/internal/verdictcache"
	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/reconcile"
	"github.com/gitgate/gitgate/render"
)

// reportCacheRun opens the report cache over dir as gitgate report does (without a
// cluster: the cluster's side never goes through it) and renders every app's targets
// through it, judging each app that the cache does not know; it returns each app's
// targets' objects, its blocking findings, and the fates.
type reportCacheResult struct {
	objects  map[string][]policy.Resource
	blocking map[string][]string
	fates    map[string]string
}

func reportCacheRun(t *testing.T, dir, cache string) reportCacheResult {
	t.Helper()
	cacheTraceMu.Lock()
	defer cacheTraceMu.Unlock()
	var mu sync.Mutex
	res := reportCacheResult{objects: map[string][]policy.Resource{}, blocking: map[string][]string{}, fates: map[string]string{}}
	cacheTrace = func(target, fate string) { mu.Lock(); res.fates[target] = fate; mu.Unlock() }
	defer func() { cacheTrace = nil }()
	ctx := context.Background()
	set, err := loadSettings(dir, gateFlags{registries: []string{"harbor.example.com"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	gate, err := set.openGate(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	repo := set.repo(dir)
	apps, _, err := reconcile.Apps(ctx, repo, reconcile.AppsOptions{Discover: set.discover()})
	if err != nil {
		t.Fatal(err)
	}
	vc, err := verdictcache.Open(cache)
	if err != nil {
		t.Fatal(err)
	}
	opts := reconcile.DefaultOptions().Check
	opts.KubeVersion, opts.CRDs = set.kube, set.crds
	run, err := runKey(vc, set, keyedGate(gate, dir), opts)
	if err != nil {
		t.Fatal(err)
	}
	rc := newReportCache(ctx, vc, run, repo, apps, 2)
	for _, a := range apps {
		var desired []policy.Resource
		for _, tg := range a.Targets {
			rs, err := rc.Render(ctx, repo, tg)
			if err != nil {
				t.Fatalf("%s: %v", tg.Name, err)
			}
			res.objects[tg.Name] = rs
			desired = append(desired, rs...)
		}
		if b, ok := rc.Blocking(a); ok {
			res.blocking[a.Name] = b
			continue
		}
		judged := gate.CheckResources(ctx, desired, opts)
		var b []string
		for _, r := range judged.Results {
			if r.Blocking() {
				b = append(b, reconcile.GitFinding(r))
			}
		}
		rc.Judged(a, desired, judged, b)
		res.blocking[a.Name] = b
	}
	vc.Close()
	return res
}

// TestReportCacheHits: which targets come from the cache and which apps' verdicts, run
// after run; what comes from the cache is exactly what rendering and judging give.
func TestReportCacheHits(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	files := map[string]string{
		".gitgate.yaml":          "registries: [harbor.example.com]\n",
		"web/kustomization.yaml": "resources: [deploy.yaml]\nnamespace: web\n",
		// A float written 1.0 comes back from JSON an integer: never stored.
		"web/deploy.yaml":    strings.Replace(reportDeployment("web", "docker.io/library/web:1"), "  replicas: 2\n", "  replicas: 2\n  minReadySeconds: 3\n", 1),
		"secret/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: secret}\ndata: {password: Z2l0LXNlY3JldC12YWx1ZQ==}\n",
		"gadget/gadget.yaml": "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: blue, namespace: default}\nspec: {size: 3}\n",
		"float/cm.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: f, namespace: float}\ndata: {a: b}\nbinaryData: {}\nextra: {ratio: 1.0}\n",
	}
	writeFiles(t, dir, files)
	cache := t.TempDir()

	cold := reportCacheRun(t, dir, cache)
	want := map[string]string{
		"web": "miss", "verdict web": "miss",
		"secret": "render", "verdict secret": "render", // a Secret is never stored
		"gadget": "render", "verdict gadget": "render", // a custom resource: as check
		"float": "render", "verdict float": "render", // would not decode back as rendered
	}
	if !reflect.DeepEqual(cold.fates, want) {
		t.Fatalf("cold: %v, want %v", cold.fates, want)
	}
	if len(cold.blocking["web"]) == 0 {
		t.Fatal("web's registry violates in Git: no blocking finding, the verdict test below proves nothing")
	}
	warm := reportCacheRun(t, dir, cache)
	want["web"], want["verdict web"] = "hit", "hit"
	if !reflect.DeepEqual(warm.fates, want) {
		t.Fatalf("warm: %v, want %v", warm.fates, want)
	}
	for name, rs := range cold.objects {
		got := warm.objects[name]
		if len(got) != len(rs) {
			t.Fatalf("%s: %d objects from the cache, %d rendered", name, len(got), len(rs))
		}
		for i := range rs {
			if got[i].Origin != rs[i].Origin || !reflect.DeepEqual(got[i].Object.Object, rs[i].Object.Object) {
				t.Errorf("%s: object %d from the cache differs from the rendered one:\n%v %v\n%v %v", name, i, got[i].Origin, got[i].Object.Object, rs[i].Origin, rs[i].Object.Object)
			}
		}
	}
	if !reflect.DeepEqual(warm.blocking, cold.blocking) {
		t.Errorf("blocking findings from the cache %v, judged %v", warm.blocking, cold.blocking)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "secret/secret.yaml"))
	if entries := grepDir(t, cache, "Z2l0LXNlY3JldC12YWx1ZQ=="); entries > 0 || len(b) == 0 {
		t.Errorf("the Secret's value is in %d cache files", entries)
	}

	// web changes: its image passes now; its verdict is judged afresh.
	writeFiles(t, dir, map[string]string{"web/deploy.yaml": strings.Replace(files["web/deploy.yaml"], "docker.io/library/web:1", "harbor.example.com/web:1", 1)})
	changed := reportCacheRun(t, dir, cache)
	want["web"], want["verdict web"] = "miss", "miss"
	if !reflect.DeepEqual(changed.fates, want) {
		t.Fatalf("changed: %v, want %v", changed.fates, want)
	}
	if reflect.DeepEqual(changed.blocking["web"], cold.blocking["web"]) {
		t.Errorf("web's blocking findings did not change with its image: %v", changed.blocking["web"])
	}
}

func reportDeployment(name, image string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ` + name + `
  labels: {app.kubernetes.io/name: ` + name + `}
spec:
  replicas: 2
  selector:
    matchLabels: {app.kubernetes.io/name: ` + name + `}
  template:
    metadata:
      labels: {app.kubernetes.io/name: ` + name + `}
    spec:
      automountServiceAccountToken: false
      securityContext: {runAsNonRoot: true, runAsUser: 10001, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: ` + name + `
        image: ` + image + `
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /readyz, port: http}}
        livenessProbe: {httpGet: {path: /healthz, port: http}}
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {cpu: 200m, memory: 128Mi}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
`
}

// grepDir counts the files under dir holding s.
func grepDir(t *testing.T, dir, s string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), s) {
				n++
			}
		}
		return nil
	})
	return n
}

// TestReportCacheInterrupted: with the report interrupted, a target the cache does not
// know renders as render.Render renders it (an interrupted pool runs nothing: never an
// empty target without an error).
func TestReportCacheInterrupted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	writeFiles(t, dir, map[string]string{"web/kustomization.yaml": "resources: [deploy.yaml]\n", "web/deploy.yaml": reportDeployment("web", "harbor.example.com/web:1")})
	set, err := loadSettings(dir, gateFlags{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	repo := set.repo(dir)
	apps, _, err := reconcile.Apps(context.Background(), repo, reconcile.AppsOptions{Discover: set.discover()})
	if err != nil || len(apps) != 1 {
		t.Fatalf("apps %v: %v", apps, err)
	}
	vc, err := verdictcache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rc := newReportCache(context.Background(), vc, "run", repo, apps, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tg := apps[0].Targets[0]
	want, werr := render.Render(ctx, repo, tg)
	got, gerr := rc.Render(ctx, repo, tg)
	if fmt.Sprint(werr) != fmt.Sprint(gerr) || len(got) != len(want) {
		t.Fatalf("interrupted: %d objects, error %v; render.Render: %d, %v", len(got), gerr, len(want), werr)
	}
}
