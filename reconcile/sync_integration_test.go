//go:build integration

package reconcile

// Tests against a real kube-apiserver and etcd (controller-runtime's envtest), with a bare
// Git repository made by the test. The binaries come from hack/envtest.sh:
//
//	KUBEBUILDER_ASSETS=$(hack/envtest.sh) go test -tags integration ./reconcile/...

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gitsrc "github.com/gitgate/gitgate/internal/git"
	"github.com/gitgate/gitgate/internal/git/gittest"
	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func needAPIServer(t *testing.T) {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set: run KUBEBUILDER_ASSETS=$(hack/envtest.sh) go test -tags integration ./reconcile/... (make test does)")
	}
}

// writeCounter counts the API requests that change something (dry runs excluded).
type writeCounter struct {
	rt     http.RoundTripper
	writes atomic.Int64
}

func (w *writeCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !strings.Contains(r.URL.RawQuery, "dryRun=All") {
		w.writes.Add(1)
	}
	return w.rt.RoundTrip(r)
}

type connRefused struct{}

func (connRefused) Error() string { return "connection refused" }

var errConnRefused = connRefused{}

type env struct {
	env     *envtest.Environment
	cfg     *rest.Config
	client  client.Client
	counter *writeCounter
}

func startEnv(t *testing.T) *env {
	t.Helper()
	needAPIServer(t)
	te := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join("testdata", "crds")}, ErrorIfCRDPathMissing: true}
	cfg, err := te.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() { _ = te.Stop() })
	e := &env{env: te, cfg: rest.CopyConfig(cfg), counter: &writeCounter{}}
	e.cfg.QPS, e.cfg.Burst = -1, 0
	e.cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { e.counter.rt = rt; return e.counter }
	e.client, err = client.New(e.cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// gitRepo is the Git repository a sync reads: a bare repository (file://bare) committed
// to through internal/git/gittest.
type gitRepo struct {
	bare string
	repo *gittest.Repo
}

func newGitRepo(t *testing.T, files map[string]string) *gitRepo {
	t.Helper()
	r := gittest.InitBare(t, filepath.Join(t.TempDir(), "gitops.git"))
	g := &gitRepo{bare: r.Dir, repo: r}
	g.commit("initial", files, nil)
	return g
}

// commit writes files, removes the paths in remove, and commits on master.
func (g *gitRepo) commit(msg string, files map[string]string, remove []string) {
	all := map[string]string{}
	for name, content := range files {
		all[name] = content
	}
	for _, name := range remove {
		all[name] = "" // gittest: "" removes the file
	}
	g.repo.CommitFiles(msg, all)
}

const appSet = `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: services
  namespace: argocd
spec:
  generators:
  - list:
      elements:
      - service: api
      - service: worker
  template:
    metadata:
      name: '{{service}}-dev'
    spec:
      project: default
      source:
        repoURL: https://git.example.com/platform/gitops.git
        targetRevision: main
        path: 'apps/{{service}}/overlays/dev'
      destination:
        server: https://kubernetes.default.svc
        namespace: '{{service}}-dev'
      syncPolicy:
        automated: {prune: true, selfHeal: true}
        syncOptions: [CreateNamespace=true]
      ignoreDifferences:
      - group: apps
        kind: Deployment
        jsonPointers: [/spec/template/metadata/annotations/restartedAt]
`

func deployment(svc, tag string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ` + svc + `
  labels:
    app.kubernetes.io/name: ` + svc + `
  annotations:
    argocd.argoproj.io/sync-wave: "1"
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: ` + svc + `
  template:
    metadata:
      labels:
        app.kubernetes.io/name: ` + svc + `
    spec:
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: ` + svc + `
        image: harbor.example.com/shop/` + svc + `:` + tag + `
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

// The Secret's value in Git and the one someone puts in the cluster: neither may be printed.
const (
	gitSecret  = "Z2l0LXNlY3JldC12YWx1ZQ==" // git-secret-value
	liveSecret = "bGl2ZS1zZWNyZXQtdmFsdWU=" // live-secret-value
)

func seed() map[string]string {
	files := map[string]string{
		".gitgate.yaml":        "registries: [harbor.example.com]\nrepoURLs: [https://git.example.com/platform/gitops.git]\n",
		"argocd/services.yaml": appSet,
	}
	for _, svc := range []string{"api", "worker"} {
		base := "apps/" + svc + "/base/"
		files[base+"kustomization.yaml"] = "resources: [deployment.yaml, service.yaml, configmap.yaml]\nlabels:\n- pairs: {app.kubernetes.io/part-of: shop}\n"
		files[base+"deployment.yaml"] = deployment(svc, "1.0.0")
		files[base+"service.yaml"] = "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + svc + "\nspec:\n  selector: {app.kubernetes.io/name: " + svc + "}\n  ports: [{name: http, port: 80, targetPort: http}]\n"
		files[base+"configmap.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + svc + "-settings\ndata:\n  LOG_LEVEL: info\n"
		files["apps/"+svc+"/overlays/dev/kustomization.yaml"] = "resources: [../../base]\n"
	}
	files["apps/worker/overlays/dev/kustomization.yaml"] = "resources: [../../base, secret.yaml]\n"
	files["apps/worker/overlays/dev/secret.yaml"] = "apiVersion: v1\nkind: Secret\nmetadata: {name: worker-db}\ndata: {password: " + gitSecret + "}\n"
	// An Application of plain manifests: a CRD and an object of it in the same sync (the
	// CRD first), a Namespace it brings itself, sync waves.
	files["argocd/platform.yaml"] = `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: platform, namespace: argocd}
spec:
  project: default
  source: {repoURL: https://git.example.com/platform/gitops.git, path: platform}
  destination: {server: https://kubernetes.default.svc, namespace: platform}
  syncPolicy: {automated: {prune: false}}
`
	files["platform/widget.yaml"] = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: blue\n  annotations: {argocd.argoproj.io/sync-wave: \"-5\"}\nspec: {size: 3}\n"
	files["platform/namespace.yaml"] = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: platform\n  annotations: {argocd.argoproj.io/sync-wave: \"3\"}\n"
	files["platform/crd.yaml"] = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
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
`
	return files
}

// harness runs gitgate's pieces the way the sync command does.
type harness struct {
	t    *testing.T
	e    *env
	git  *gitRepo
	src  gitsrc.Source
	gate *policy.Gate
}

func newHarness(t *testing.T, e *env) *harness {
	g := newGitRepo(t, seed())
	gate, err := policy.OpenGate(policy.GateOptions{Registries: []string{"harbor.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, e: e, git: g, src: gitsrc.Source{URL: "file://" + g.bare, CacheDir: t.TempDir()}, gate: gate}
}

func (h *harness) checkout(ctx context.Context) (render.Repo, string, []App) {
	h.t.Helper()
	co, err := h.src.Fetch(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	repo := render.Repo{FS: os.DirFS(co.Dir), Dir: co.Dir}
	apps, errs, err := Apps(ctx, repo, AppsOptions{Discover: render.DiscoverOptions{Exclude: []string{"policies"}, RepoURLs: []string{"https://git.example.com/platform/gitops.git"}}})
	if err != nil || len(errs) > 0 {
		h.t.Fatalf("apps: %v %v", err, errs)
	}
	return repo, co.Commit, apps
}

func (h *harness) sync(ctx context.Context, c client.Client, resync bool) *SyncResult {
	h.t.Helper()
	repo, rev, apps := h.checkout(ctx)
	opts := DefaultOptions()
	opts.Resync = resync
	s := &Syncer{Client: c, Gate: h.gate, Opts: opts}
	return s.Sync(ctx, repo, rev, apps)
}

func (h *harness) report(ctx context.Context) *DriftReport {
	h.t.Helper()
	repo, rev, apps := h.checkout(ctx)
	rp := &Reporter{Client: h.e.client, Gate: h.gate, Opts: DefaultOptions()}
	return rp.Report(ctx, repo, rev, apps)
}

func phases(r *SyncResult) map[string]Phase {
	m := map[string]Phase{}
	for _, a := range r.Apps {
		m[a.App] = a.Phase
	}
	return m
}

func dump(t *testing.T, r *SyncResult) string {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	// The messages once more as they are (JSON escapes their quotes), for the tests that
	// look for one; every field is in the JSON above, for the tests that look for a value.
	var msgs strings.Builder
	for _, e := range r.Errors {
		fmt.Fprintf(&msgs, "error: %s\n", e)
	}
	for _, a := range r.Apps {
		if a.Error != "" {
			fmt.Fprintf(&msgs, "%s: error: %s\n", a.App, a.Error)
		}
		for _, o := range a.Objects {
			if o.Message != "" {
				fmt.Fprintf(&msgs, "%s: %s %s: %s\n", a.App, o.Ref, o.Action, o.Message)
			}
		}
	}
	return string(b) + "\n" + msgs.String()
}

func getDeploy(t *testing.T, c client.Client, ns, name string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, d); err != nil {
		t.Fatalf("get Deployment %s/%s: %v", ns, name, err)
	}
	return d
}

func hasApplyManager(obj metav1.Object, manager string) bool {
	for _, mf := range obj.GetManagedFields() {
		if mf.Manager == manager && mf.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}

// resourceVersions of every object the apps' inventories list, and the inventories.
func resourceVersions(t *testing.T, c client.Client) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	cms := &corev1.ConfigMapList{}
	if err := c.List(ctx, cms, client.InNamespace("gitgate-system")); err != nil {
		t.Fatal(err)
	}
	s := &Syncer{Client: c, Opts: DefaultOptions()}
	for _, cm := range cms.Items {
		out["inventory/"+cm.Name] = cm.ResourceVersion
		inv, err := s.readInventory(ctx, cm.Data["app"])
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range inv.Objects {
			u := ref.object()
			if err := c.Get(ctx, client.ObjectKeyFromObject(u), u); err != nil {
				t.Fatalf("%s: %v", ref, err)
			}
			out[ref.String()] = u.GetResourceVersion()
		}
	}
	return out
}

func TestSyncLifecycle(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	h := newHarness(t, e)

	// 1. First sync: every object exists, applied with our field manager, in created namespaces.
	r := h.sync(ctx, e.client, false)
	if r.ExitCode() != 0 {
		t.Fatalf("first sync: exit %d\n%s", r.ExitCode(), dump(t, r))
	}
	if got := phases(r); got["api-dev"] != Synced || got["worker-dev"] != Synced || got["platform"] != Synced || len(got) != 3 {
		t.Fatalf("phases = %v\n%s", got, dump(t, r))
	}
	d := getDeploy(t, e.client, "api-dev", "api")
	if !hasApplyManager(d, FieldManager) {
		t.Fatalf("Deployment api-dev/api has no %s apply entry: %+v", FieldManager, d.ManagedFields)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "harbor.example.com/shop/api:1.0.0" {
		t.Fatalf("image = %s", img)
	}
	for _, name := range []string{"api-settings"} {
		cm := &corev1.ConfigMap{}
		if err := e.client.Get(ctx, types.NamespacedName{Namespace: "api-dev", Name: name}, cm); err != nil || !hasApplyManager(cm, FieldManager) {
			t.Fatalf("ConfigMap api-dev/%s: %v %+v", name, err, cm.ManagedFields)
		}
	}

	widget := &unstructured.Unstructured{}
	widget.SetAPIVersion("example.com/v1")
	widget.SetKind("Widget")
	if err := e.client.Get(ctx, types.NamespacedName{Namespace: "platform", Name: "blue"}, widget); err != nil || !hasApplyManager(widget, FieldManager) {
		t.Fatalf("Widget platform/blue (its CRD in the same sync): %v", err)
	}

	// 2. A second sync with no change writes nothing: no API write, resourceVersions unchanged.
	before := resourceVersions(t, e.client)
	if len(before) != 13 {
		t.Fatalf("inventories list %d objects, want 10 objects and 3 inventories: %v", len(before), before)
	}
	w0 := e.counter.writes.Load()
	start := time.Now()
	r = h.sync(ctx, e.client, true)
	if r.ExitCode() != 0 {
		t.Fatalf("resync: %s", dump(t, r))
	}
	if n := e.counter.writes.Load() - w0; n != 0 {
		t.Fatalf("no-change resync made %d API writes\n%s", n, dump(t, r))
	}
	if after := resourceVersions(t, e.client); !equalMaps(before, after) {
		t.Fatalf("resourceVersions changed on a no-change resync:\nbefore %v\nafter  %v", before, after)
	}
	t.Logf("no-change resync of 3 apps: 0 writes in %s", time.Since(start).Round(time.Millisecond))

	// 3. A new commit changes the image: the next sync applies it.
	h.git.commit("api 1.1.0", map[string]string{"apps/api/base/deployment.yaml": deployment("api", "1.1.0")}, nil)
	r = h.sync(ctx, e.client, true)
	if r.ExitCode() != 0 {
		t.Fatalf("image change: %s", dump(t, r))
	}
	if img := getDeploy(t, e.client, "api-dev", "api").Spec.Template.Spec.Containers[0].Image; img != "harbor.example.com/shop/api:1.1.0" {
		t.Fatalf("image after the commit = %s\n%s", img, dump(t, r))
	}

	// 4. Someone else's object with the same labels, then the ConfigMap removed from Git:
	// ours is pruned, theirs is never touched.
	theirs := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "api-extra", Namespace: "api-dev", Labels: map[string]string{"app.kubernetes.io/part-of": "shop", "app.kubernetes.io/name": "api"}}, Data: map[string]string{"k": "v"}}
	if err := e.client.Create(ctx, theirs, client.FieldOwner("someone-else")); err != nil {
		t.Fatal(err)
	}
	h.git.commit("api: drop settings", map[string]string{"apps/api/base/kustomization.yaml": "resources: [deployment.yaml, service.yaml]\nlabels:\n- pairs: {app.kubernetes.io/part-of: shop}\n"}, []string{"apps/api/base/configmap.yaml"})
	r = h.sync(ctx, e.client, true)
	if r.ExitCode() != 0 {
		t.Fatalf("prune: %s", dump(t, r))
	}
	err := e.client.Get(ctx, types.NamespacedName{Namespace: "api-dev", Name: "api-settings"}, &corev1.ConfigMap{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("api-dev/api-settings after removal from Git: err = %v, want NotFound\n%s", err, dump(t, r))
	}
	if err := e.client.Get(ctx, types.NamespacedName{Namespace: "api-dev", Name: "api-extra"}, &corev1.ConfigMap{}); err != nil {
		t.Fatalf("someone else's ConfigMap was touched: %v", err)
	}
	if err := e.client.Get(ctx, types.NamespacedName{Namespace: "worker-dev", Name: "worker-settings"}, &corev1.ConfigMap{}); err != nil {
		t.Fatalf("the other app's ConfigMap: %v", err)
	}

	// 5. A kubectl-scale-style change: the report shows /spec/replicas changed by kubectl;
	// selfHeal restores it on the next sync.
	patch := []byte(`{"spec":{"replicas":5}}`)
	if err := e.client.Patch(ctx, getDeploy(t, e.client, "api-dev", "api"), client.RawPatch(types.MergePatchType, patch), client.FieldOwner("kubectl")); err != nil {
		t.Fatal(err)
	}
	rep := h.report(ctx)
	obj := findObject(rep, "api-dev", "Deployment/api-dev/api")
	if obj == nil || obj.State != Modified {
		t.Fatalf("report: Deployment api not Modified: %+v", obj)
	}
	if len(obj.Diffs) != 1 || obj.Diffs[0].Path != "/spec/replicas" || !contains(obj.Diffs[0].Managers, "kubectl") {
		t.Fatalf("report diffs = %+v, want only /spec/replicas changed by kubectl", obj.Diffs)
	}
	if rep.ExitCode() != 1 {
		t.Fatalf("report exit code with drift = %d, want 1", rep.ExitCode())
	}
	if c := findApp(rep, "worker-dev").Counts(); c.Drifted() || c.InSync != 4 {
		t.Fatalf("worker-dev counts = %+v, want 4 in sync", c)
	}
	r = h.sync(ctx, e.client, true)
	if got := *getDeploy(t, e.client, "api-dev", "api").Spec.Replicas; got != 2 || r.ExitCode() != 0 {
		t.Fatalf("selfHeal: replicas = %d (exit %d)\n%s", got, r.ExitCode(), dump(t, r))
	}

	// An HPA scaling (kube-controller-manager owns replicas then) is not drift, and a resync
	// does not fight it.
	if err := e.client.Patch(ctx, getDeploy(t, e.client, "api-dev", "api"), client.RawPatch(types.MergePatchType, []byte(`{"spec":{"replicas":4}}`)), client.FieldOwner("kube-controller-manager")); err != nil {
		t.Fatal(err)
	}
	if obj := findObject(h.report(ctx), "api-dev", "Deployment/api-dev/api"); obj == nil || obj.State != InSync {
		t.Fatalf("replicas scaled by kube-controller-manager reported as drift: %+v", obj)
	}
	w0 = e.counter.writes.Load()
	r = h.sync(ctx, e.client, true)
	if n := e.counter.writes.Load() - w0; n != 0 || *getDeploy(t, e.client, "api-dev", "api").Spec.Replicas != 4 {
		t.Fatalf("resync fought the autoscaler: %d writes\n%s", n, dump(t, r))
	}

	// 6. Drift that breaks policy is marked as such; PolicyReports are written.
	esc := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"worker","securityContext":{"allowPrivilegeEscalation":true}}]}}}}`)
	if err := e.client.Patch(ctx, getDeploy(t, e.client, "worker-dev", "worker"), client.RawPatch(types.StrategicMergePatchType, esc), client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	rep = h.report(ctx)
	obj = findObject(rep, "worker-dev", "Deployment/worker-dev/worker")
	if obj == nil || !obj.DriftViolates || !obj.Blocking() {
		t.Fatalf("report: worker drift not marked as violating: %+v", obj)
	}
	if err := WritePolicyReports(ctx, e.client, PolicyReports(rep)); err != nil {
		t.Fatal(err)
	}
	pr := &unstructured.Unstructured{}
	pr.SetAPIVersion("wgpolicyk8s.io/v1alpha2")
	pr.SetKind("PolicyReport")
	if err := e.client.Get(ctx, types.NamespacedName{Namespace: "worker-dev", Name: "gitgate-worker-dev"}, pr); err != nil {
		t.Fatalf("PolicyReport worker-dev/gitgate-worker-dev: %v", err)
	}
	if fail, _, _ := unstructured.NestedInt64(pr.Object, "summary", "fail"); fail < 2 {
		t.Fatalf("PolicyReport summary.fail = %d, want the drift and the policy failure", fail)
	}
	r = h.sync(ctx, e.client, true) // selfHeal puts it back
	if r.ExitCode() != 0 {
		t.Fatalf("heal: %s", dump(t, r))
	}
	if sc := getDeploy(t, e.client, "worker-dev", "worker").Spec.Template.Spec.Containers[0].SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Fatalf("selfHeal did not restore allowPrivilegeEscalation: %+v\n%s", sc, dump(t, r))
	}

	// Secret drift is reported with its values masked, in every format.
	sec := &corev1.Secret{}
	if err := e.client.Get(ctx, types.NamespacedName{Namespace: "worker-dev", Name: "worker-db"}, sec); err != nil {
		t.Fatal(err)
	}
	if err := e.client.Patch(ctx, sec, client.RawPatch(types.MergePatchType, []byte(`{"data":{"password":"`+liveSecret+`"}}`)), client.FieldOwner("kubectl")); err != nil {
		t.Fatal(err)
	}
	rep = h.report(ctx)
	if obj := findObject(rep, "worker-dev", "Secret/worker-dev/worker-db"); obj == nil || obj.State != Modified || len(obj.Diffs) != 1 || obj.Diffs[0].Path != "/data/password" {
		t.Fatalf("Secret drift: %+v", obj)
	}
	// The formats print what the report holds (report/ tests them on reconcile.Compare's
	// Secret diffs); here the report itself, every field of it, holds no value.
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{string(js), fmt.Sprintf("%+v", rep)} {
		for _, v := range []string{gitSecret, liveSecret, "git-secret-value", "live-secret-value"} {
			if strings.Contains(out, v) {
				t.Fatalf("the drift report holds the Secret's value %q", v)
			}
		}
	}
	for _, pr := range PolicyReports(rep) {
		b, _ := pr.MarshalJSON()
		if bytes.Contains(b, []byte(liveSecret)) || bytes.Contains(b, []byte(gitSecret)) {
			t.Fatalf("PolicyReport prints the Secret's value")
		}
	}
	r = h.sync(ctx, e.client, true)
	if out := dump(t, r); r.ExitCode() != 0 || strings.Contains(out, liveSecret) || strings.Contains(out, gitSecret) {
		t.Fatalf("sync after Secret drift (exit %d):\n%s", r.ExitCode(), out)
	}
	if err := e.client.Get(ctx, types.NamespacedName{Namespace: "worker-dev", Name: "worker-db"}, sec); err != nil || string(sec.Data["password"]) != "git-secret-value" {
		t.Fatalf("selfHeal did not restore the Secret: %v", err)
	}

	// Without selfHeal (the platform app): a resync of the same revision shows drift and
	// leaves it; an explicit sync reports the conflict with the other field manager (exit 2);
	// --force-conflicts takes the field back.
	if err := e.client.Patch(ctx, widget, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"size":7}}`)), client.FieldOwner("kubectl")); err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		w := widget.DeepCopy()
		if err := e.client.Get(ctx, client.ObjectKeyFromObject(w), w); err != nil {
			t.Fatal(err)
		}
		n, _, _ := unstructured.NestedInt64(w.Object, "spec", "size")
		return n
	}
	r = h.sync(ctx, e.client, true)
	if a := appResult(r, "platform"); a.Phase != OutOfSync || a.Count(Drifted) != 1 || size() != 7 || r.ExitCode() != 0 {
		t.Fatalf("resync without selfHeal: size %d\n%s", size(), dump(t, r))
	}
	r = h.sync(ctx, e.client, false)
	if a := appResult(r, "platform"); a.Phase != OutOfSync || a.Count(Conflict) != 1 || size() != 7 || r.ExitCode() != 2 || !strings.Contains(dump(t, r), `conflict with "kubectl"`) {
		t.Fatalf("sync without --force-conflicts: size %d, exit %d\n%s", size(), r.ExitCode(), dump(t, r))
	}
	{
		repo, rev, apps := h.checkout(ctx)
		opts := DefaultOptions()
		opts.ForceConflicts = true
		r = (&Syncer{Client: e.client, Gate: h.gate, Opts: opts}).Sync(ctx, repo, rev, apps)
	}
	if a := appResult(r, "platform"); a.Phase != Synced || size() != 3 || r.ExitCode() != 0 {
		t.Fatalf("--force-conflicts: size %d\n%s", size(), dump(t, r))
	}

	// Prune is the app's choice: platform does not prune, so an object removed from Git is
	// kept (and stays in the inventory) until a sync with --prune.
	h.git.commit("platform: drop the widget", nil, []string{"platform/widget.yaml"})
	r = h.sync(ctx, e.client, false)
	if a := appResult(r, "platform"); a.Phase != OutOfSync || a.Count(KeptPrune) != 1 || r.ExitCode() != 0 {
		t.Fatalf("removed from Git without prune:\n%s", dump(t, r))
	}
	if err := e.client.Get(ctx, client.ObjectKeyFromObject(widget), widget.DeepCopy()); err != nil {
		t.Fatalf("the widget was pruned although the app does not prune: %v", err)
	}
	{
		repo, rev, apps := h.checkout(ctx)
		opts := DefaultOptions()
		opts.Prune = true
		r = (&Syncer{Client: e.client, Gate: h.gate, Opts: opts}).Sync(ctx, repo, rev, apps)
	}
	if a := appResult(r, "platform"); a.Phase != Synced || a.Count(Pruned) != 1 {
		t.Fatalf("--prune:\n%s", dump(t, r))
	}
	if err := e.client.Get(ctx, client.ObjectKeyFromObject(widget), widget.DeepCopy()); !apierrors.IsNotFound(err) {
		t.Fatalf("--prune left the widget: %v", err)
	}

	// 7. A policy violation committed to one app blocks that app only.
	bad := strings.Replace(deployment("api", "1.2.0"), "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", 1)
	h.git.commit("api: escalate, worker: 2.0.0", map[string]string{"apps/api/base/deployment.yaml": bad, "apps/worker/base/deployment.yaml": deployment("worker", "2.0.0")}, nil)
	r = h.sync(ctx, e.client, true)
	if got := phases(r); got["api-dev"] != Blocked || got["worker-dev"] != Synced || r.ExitCode() != 1 {
		t.Fatalf("phases = %v exit %d, want api-dev Blocked, worker-dev Synced, exit 1\n%s", got, r.ExitCode(), dump(t, r))
	}
	if img := getDeploy(t, e.client, "api-dev", "api").Spec.Template.Spec.Containers[0].Image; img != "harbor.example.com/shop/api:1.1.0" {
		t.Fatalf("blocked app was touched: image %s", img)
	}
	if img := getDeploy(t, e.client, "worker-dev", "worker").Spec.Template.Spec.Containers[0].Image; img != "harbor.example.com/shop/worker:2.0.0" {
		t.Fatalf("the other app did not sync: image %s", img)
	}
	cm := &corev1.ConfigMap{}
	if err := e.client.Get(ctx, types.NamespacedName{Namespace: "gitgate-system", Name: inventoryName("api-dev")}, cm); err != nil || !strings.Contains(cm.Data["status"], `"phase":"Blocked"`) {
		t.Fatalf("stored status of api-dev: %v %q", err, cm.Data["status"])
	}

	// 8. The API server goes away in the middle of a sync: the error is reported (exit 2),
	// and the next run converges.
	h.git.commit("fix api, worker 2.1.0", map[string]string{"apps/api/base/deployment.yaml": deployment("api", "1.3.0"), "apps/worker/base/deployment.yaml": deployment("worker", "2.1.0")}, nil)
	repo, rev, apps := h.checkout(ctx)
	// The client reaches the API server through a TCP proxy on 127.0.0.1 that goes down
	// (listener closed, open connections cut) as the sync sends its second apply.
	px := startProxy(t, e.cfg.Host)
	cfg := rest.CopyConfig(e.cfg)
	cfg.Host = "https://" + px.addr
	var applies atomic.Int64
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodPatch && !strings.Contains(r.URL.RawQuery, "dryRun") && applies.Add(1) == 2 {
				px.stop()
			}
			return rt.RoundTrip(r)
		})
	}
	proxied, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions()
	opts.Workers = 1
	r = (&Syncer{Client: proxied, Gate: h.gate, Opts: opts}).Sync(ctx, repo, rev, apps)
	if r.ExitCode() != 2 || applies.Load() < 2 {
		t.Fatalf("sync with the API server gone: exit %d after %d applies, want 2\n%s", r.ExitCode(), applies.Load(), dump(t, r))
	}
	if out := dump(t, r); !strings.Contains(out, "connection refused") && !strings.Contains(out, "connection reset") && !strings.Contains(out, "EOF") {
		t.Fatalf("the error does not say what happened:\n%s", out)
	}
	t.Logf("sync while the API server went away:\n%s", dump(t, r))
	px.start()
	r = (&Syncer{Client: proxied, Gate: h.gate, Opts: opts}).Sync(ctx, repo, rev, apps)
	if r.ExitCode() != 0 {
		t.Fatalf("after the API server is back: %s", dump(t, r))
	}
	if img := getDeploy(t, e.client, "api-dev", "api").Spec.Template.Spec.Containers[0].Image; img != "harbor.example.com/shop/api:1.3.0" {
		t.Fatalf("did not converge: image %s", img)
	}
	// A server that is not there at all.
	dead := rest.CopyConfig(e.cfg)
	dead.Host = "https://127.0.0.1:1"
	deadClient, err := client.New(dead, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r = (&Syncer{Client: deadClient, Gate: h.gate, Opts: opts}).Sync(ctx, repo, rev, apps)
	if r.ExitCode() != 2 || len(r.Errors) == 0 {
		t.Fatalf("closed port: exit %d\n%s", r.ExitCode(), dump(t, r))
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// proxy forwards TCP connections on 127.0.0.1 to the API server; stop takes it down as a
// stopped server goes (new connections refused, open ones cut), start brings it back on
// the same address.
type proxy struct {
	t        *testing.T
	addr     string
	upstream string
	mu       sync.Mutex
	ln       net.Listener
	conns    map[net.Conn]bool
}

func startProxy(t *testing.T, upstream string) *proxy {
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, upstream: u.Host, conns: map[net.Conn]bool{}}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) start() {
	addr := p.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

func appResult(r *SyncResult, app string) AppResult {
	for _, a := range r.Apps {
		if a.App == app {
			return a
		}
	}
	return AppResult{}
}

func findApp(r *DriftReport, app string) AppDrift {
	for _, a := range r.Apps {
		if a.App == app {
			return a
		}
	}
	return AppDrift{}
}

func findObject(r *DriftReport, app, id string) *ObjectDrift {
	a := findApp(r, app)
	for i := range a.Objects {
		if a.Objects[i].Ref.String() == id {
			return &a.Objects[i]
		}
	}
	return nil
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
