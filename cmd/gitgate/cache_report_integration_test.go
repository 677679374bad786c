//go:build integration

package main

// gitgate report with the verdict cache against a real kube-apiserver and etcd
// (controller-runtime's envtest; KUBEBUILDER_ASSETS=$(hack/envtest.sh) go test -tags
// integration -run ReportCache ./cmd/gitgate/).

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/git/gittest"
	"github.com/gitgate/gitgate/report"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	sigsyaml "sigs.k8s.io/yaml"
)

// startAPIServer starts kube-apiserver and etcd and returns a kubeconfig file for an
// administrator and a client.
func startAPIServer(t *testing.T) (string, client.Client) {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set: run KUBEBUILDER_ASSETS=$(hack/envtest.sh) go test -tags integration ./cmd/gitgate/")
	}
	te := &envtest.Environment{}
	cfg, err := te.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() { _ = te.Stop() })
	user, err := te.AddUser(envtest.User{Name: "gitgate-test", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p, c
}

const reportAppSet = `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: shop, namespace: argocd}
spec:
  generators:
  - list:
      elements: [{svc: api}, {svc: worker}]
  template:
    metadata: {name: '{{svc}}-dev'}
    spec:
      project: default
      source: {repoURL: https://git.example.com/gitops.git, targetRevision: main, path: 'apps/{{svc}}/dev'}
      destination: {server: https://kubernetes.default.svc, namespace: '{{svc}}-dev'}
      syncPolicy: {automated: {prune: true}, syncOptions: [CreateNamespace=true]}
`

// reportRepo: apps api-dev and worker-dev (kustomize, an ApplicationSet; worker-dev has
// a Secret), platform (a CRD and a custom resource), legacy (plain manifests whose image
// the gate blocks, put in the cluster by hand).
func reportRepo() map[string]string {
	files := map[string]string{
		".gitgate.yaml":      "registries: [harbor.example.com]\nrepoURLs: [https://git.example.com/gitops.git]\n",
		"argocd/shop.yaml":   reportAppSet,
		"legacy/deploy.yaml": strings.Replace(reportDeployment("legacy", "docker.io/library/legacy:1"), "  labels:", "  namespace: legacy\n  labels:", 1),
		"legacy/hook.yaml":   "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  namespace: legacy\n  annotations: {argocd.argoproj.io/hook: PreSync}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: m, image: harbor.example.com/m:1}]\n",
		"platform/crd.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  names: {kind: Gadget, plural: gadgets, singular: gadget, listKind: GadgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
`,
		"platform/gadget.yaml": "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: blue, namespace: default}\nspec: {size: 3}\n",
	}
	for _, svc := range []string{"api", "worker"} {
		files["apps/"+svc+"/dev/kustomization.yaml"] = "resources: [deployment.yaml, service.yaml]\n"
		files["apps/"+svc+"/dev/deployment.yaml"] = reportDeployment(svc, "harbor.example.com/shop/"+svc+":1.0.0")
		files["apps/"+svc+"/dev/service.yaml"] = "apiVersion: v1\nkind: Service\nmetadata: {name: " + svc + "}\nspec:\n  selector: {app.kubernetes.io/name: " + svc + "}\n  ports: [{name: http, port: 80, targetPort: http}]\n"
	}
	files["apps/worker/dev/kustomization.yaml"] = "resources: [deployment.yaml, service.yaml, secret.yaml]\n"
	files["apps/worker/dev/secret.yaml"] = "apiVersion: v1\nkind: Secret\nmetadata: {name: worker-db}\ndata: {password: Z2l0LXNlY3JldC12YWx1ZQ==}\n"
	return files
}

// reportRun is one gitgate report: exit code, every -o format, stderr, and the fate of
// each target and app verdict ("verdict <app>") in the verdict cache.
func reportRun(t *testing.T, kubeconfig, cache, url string, extra ...string) cacheRun {
	t.Helper()
	cacheTraceMu.Lock()
	defer cacheTraceMu.Unlock()
	out := t.TempDir()
	args := []string{"report", "--kubeconfig", kubeconfig, "--cache-dir", cache}
	for _, f := range report.DriftFormats().Names() {
		args = append(args, "-o", f+"="+filepath.Join(out, f))
	}
	args = append(append(args, extra...), url)
	var mu sync.Mutex
	fates := map[string]string{}
	cacheTrace = func(target, fate string) { mu.Lock(); fates[target] = fate; mu.Unlock() }
	defer func() { cacheTrace = nil }()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	r := cacheRun{code: code, outs: map[string][]byte{}, stderr: stderr.String(), fates: fates}
	for _, f := range report.DriftFormats().Names() {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatalf("-o %s not written (exit %d): %v\n%s", f, code, err, stderr.String())
		}
		r.outs[f] = b
	}
	return r
}

func wantFates(t *testing.T, what string, got cacheRun, want map[string]string) {
	t.Helper()
	for k, f := range want {
		if got.fates[k] != f {
			t.Errorf("%s: %s: %q, want %q (all: %v)", what, k, got.fates[k], f, got.fates)
		}
	}
	for k := range got.fates {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected %s: %q", what, k, got.fates[k])
		}
	}
}

// TestReportCacheEnvtest: on a real API server, a report from a cold cache, a warm one
// and after one app changed is byte-identical, in every -o format, exit code and stderr,
// to an uncached report of the same commit and cluster; which targets were rendered and
// which apps judged is asserted run by run.
func TestReportCacheEnvtest(t *testing.T) {
	kubeconfig, c := startAPIServer(t)
	ctx := context.Background()
	bare := gittest.InitBare(t, filepath.Join(t.TempDir(), "gitops.git"))
	files := reportRepo()
	// A repository policy replacing a built-in one: the gate's warning names it with the
	// path of the commit's worktree, which differs from commit to commit.
	builtin, err := os.ReadFile("../../policies/disallow-latest-tag/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files["policies/disallow-latest-tag.yaml"] = string(builtin)
	bare.CommitFiles("initial", files)
	url := "file://" + bare.Dir
	cache := t.TempDir()
	fixed := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	reportClock = func() time.Time { return fixed }
	t.Cleanup(func() { reportClock = nil })

	var so, se bytes.Buffer
	if code := run(ctx, []string{"sync", "--once", "--kubeconfig", kubeconfig, "--cache-dir", cache, url}, &so, &se); code != 1 { // legacy is blocked
		t.Fatalf("sync: exit %d, want 1 (legacy blocked)\n%s\n%s", code, so.String(), se.String())
	}
	// Drift in the cluster: api's image from a registry the gate refuses (drift that
	// breaks a policy), and legacy put in by hand with 3 replicas where Git has 2 (its
	// image fails in Git too: that violation is not drift's, which only Git's verdict
	// tells).
	dep := &unstructured.Unstructured{}
	dep.SetGroupVersionKind(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"})
	if err := c.Get(ctx, client.ObjectKey{Namespace: "api-dev", Name: "api"}, dep); err != nil {
		t.Fatal(err)
	}
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	containers[0].(map[string]any)["image"] = "docker.io/library/api:evil"
	_ = unstructured.SetNestedSlice(dep.Object, containers, "spec", "template", "spec", "containers")
	if err := c.Update(ctx, dep); err != nil {
		t.Fatal(err)
	}
	for _, y := range []string{"apiVersion: v1\nkind: Namespace\nmetadata: {name: legacy}\n", strings.Replace(reportRepo()["legacy/deploy.yaml"], "replicas: 2", "replicas: 3", 1)} {
		u := &unstructured.Unstructured{}
		if err := yamlToUnstructured(y, u); err != nil {
			t.Fatal(err)
		}
		if err := c.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}

	uncached := reportRun(t, kubeconfig, cache, url, "--no-cache")
	if uncached.code != 1 || !strings.Contains(string(uncached.outs["json"]), `"driftViolates": true`) || len(uncached.fates) != 0 {
		t.Fatalf("uncached report: exit %d, fates %v, want exit 1, drift that violates, no cache\n%s\n%s", uncached.code, uncached.fates, uncached.outs["text"], uncached.stderr)
	}
	if strings.Contains(uncached.stderr+string(uncached.outs["json"]), "git-secret-value") || strings.Contains(string(uncached.outs["json"]), "Z2l0LXNlY3JldC12YWx1ZQ==") {
		t.Fatal("a Secret value printed")
	}

	cold := reportRun(t, kubeconfig, cache, url)
	sameOutput(t, "cold", uncached, cold)
	wantFates(t, "cold", cold, map[string]string{
		"api-dev": "miss", "verdict api-dev": "miss",
		"legacy": "miss", "verdict legacy": "miss",
		"worker-dev": "render", "verdict worker-dev": "render", // a Secret: never stored
		"platform": "render", "verdict platform": "render", // a CRD: never stored
	})

	warm := reportRun(t, kubeconfig, cache, url)
	sameOutput(t, "warm", uncached, warm)
	wantFates(t, "warm", warm, map[string]string{
		"api-dev": "hit", "verdict api-dev": "hit",
		"legacy": "hit", "verdict legacy": "hit",
		"worker-dev": "render", "verdict worker-dev": "render",
		"platform": "render", "verdict platform": "render",
	})

	// One app changes in Git: api-dev's image tag.
	bare.CommitFiles("api 1.0.1", map[string]string{"apps/api/dev/deployment.yaml": strings.Replace(files["apps/api/dev/deployment.yaml"], ":1.0.0", ":1.0.1", 1)})
	changedUncached := reportRun(t, kubeconfig, cache, url, "--no-cache")
	if bytes.Equal(changedUncached.outs["json"], uncached.outs["json"]) {
		t.Fatal("the change changed no report: the comparison below would prove nothing")
	}
	changed := reportRun(t, kubeconfig, cache, url)
	sameOutput(t, "changed", changedUncached, changed)
	wantFates(t, "changed", changed, map[string]string{
		"api-dev": "miss", "verdict api-dev": "miss",
		"legacy": "hit", "verdict legacy": "hit",
		"worker-dev": "render", "verdict worker-dev": "render",
		"platform": "render", "verdict platform": "render",
	})
	// The cluster's side is never cached: drift made now shows in a warm report.
	if err := c.Get(ctx, client.ObjectKey{Namespace: "legacy", Name: "legacy"}, dep); err != nil {
		t.Fatal(err)
	}
	_ = unstructured.SetNestedField(dep.Object, int64(5), "spec", "replicas")
	if err := c.Update(ctx, dep); err != nil {
		t.Fatal(err)
	}
	liveUncached := reportRun(t, kubeconfig, cache, url, "--no-cache")
	live := reportRun(t, kubeconfig, cache, url)
	if bytes.Equal(liveUncached.outs["json"], changedUncached.outs["json"]) {
		t.Fatal("the cluster's change changed no report")
	}
	sameOutput(t, "cluster changed", liveUncached, live)
	if live.fates["verdict legacy"] != "hit" {
		t.Errorf("cluster changed: legacy's verdict %q, want hit (Git did not change)", live.fates["verdict legacy"])
	}
}

func yamlToUnstructured(y string, u *unstructured.Unstructured) error {
	return sigsyaml.Unmarshal([]byte(y), &u.Object)
}
