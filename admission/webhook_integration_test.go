//go:build integration

package admission

// Tests against a real kube-apiserver and etcd (controller-runtime's envtest). The binaries
// come from hack/envtest.sh:
//
//	KUBEBUILDER_ASSETS=$(hack/envtest.sh) go test -tags integration ./admission/...

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitgate/gitgate/policy"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func needAPIServer(t *testing.T) {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set: run KUBEBUILDER_ASSETS=$(hack/envtest.sh) go test -tags integration ./admission/... (make test does)")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// validatingWebhook is our registration for the tests: every resource, fail closed,
// kube-system exempt, as deploy/install.yaml but with rules wide enough for any kind.
func validatingWebhook(name string, cc admissionregistrationv1.WebhookClientConfig) *admissionregistrationv1.ValidatingWebhookConfiguration {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	timeout := int32(10)
	scope := admissionregistrationv1.AllScopes
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "validate.gitgate.dev",
			ClientConfig:            cc,
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             &none,
			FailurePolicy:           &fail,
			TimeoutSeconds:          &timeout,
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{"*"}, APIVersions: []string{"*"}, Resources: []string{"*"}, Scope: &scope},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", "gitgate-system"},
			}}},
		}},
	}
}

// mutatingWebhook is the mutating registration for the tests: the validating one's rules,
// namespaces and failure policy, reinvoked if needed, as deploy/install.yaml.
func mutatingWebhook(name string, cc admissionregistrationv1.WebhookClientConfig) *admissionregistrationv1.MutatingWebhookConfiguration {
	v := validatingWebhook(name, cc).Webhooks[0]
	reinvoke := admissionregistrationv1.IfNeededReinvocationPolicy
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "mutate.gitgate.dev", ClientConfig: cc, AdmissionReviewVersions: v.AdmissionReviewVersions,
			SideEffects: v.SideEffects, FailurePolicy: v.FailurePolicy, TimeoutSeconds: v.TimeoutSeconds,
			Rules: v.Rules, NamespaceSelector: v.NamespaceSelector, ReinvocationPolicy: &reinvoke,
		}},
	}
}

// cluster is an API server with our webhooks (validating and mutating) registered and served.
type cluster struct {
	cfg        *rest.Config
	client     client.Client
	reloader   *Reloader
	healthAddr string
	warnings   *warningCollector
}

type warningCollector struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningCollector) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

func (w *warningCollector) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

// startCluster starts envtest with the webhook registered through WebhookInstallOptions
// (it makes the serving certificate and points the API server at it) and runs Serve.
func startCluster(t *testing.T, ropts ReloaderOptions, crds ...*unstructured.Unstructured) *cluster {
	t.Helper()
	needAPIServer(t)
	path, mpath := "/validate", "/mutate"
	env := &envtest.Environment{
		WebhookInstallOptions: envtest.WebhookInstallOptions{
			LocalServingHost:   "127.0.0.1",
			ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{validatingWebhook("gitgate-test", admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Name: "gitgate", Namespace: "gitgate-system", Path: &path}})},
			MutatingWebhooks:   []*admissionregistrationv1.MutatingWebhookConfiguration{mutatingWebhook("gitgate-test", admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Name: "gitgate", Namespace: "gitgate-system", Path: &mpath}})},
		},
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start the API server: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Logf("stop the API server: %v", err)
		}
	})
	c := &cluster{cfg: cfg, warnings: &warningCollector{}}
	wcfg := rest.CopyConfig(cfg)
	wcfg.WarningHandler = c.warnings
	if c.client, err = client.New(wcfg, client.Options{}); err != nil {
		t.Fatal(err)
	}
	if ropts.Interval == 0 {
		ropts.Interval = 200 * time.Millisecond
	}
	c.reloader = NewReloader(ropts)
	wio := env.WebhookInstallOptions
	c.healthAddr = "127.0.0.1:" + strconv.Itoa(freePort(t))
	sopts := DefaultServeOptions()
	sopts.Addr = net.JoinHostPort(wio.LocalServingHost, strconv.Itoa(wio.LocalServingPort))
	sopts.HealthAddr = c.healthAddr
	sopts.MetricsAddr = c.healthAddr // next to the probes, as before --metrics-addr
	sopts.CertDir = wio.LocalServingCertDir
	sopts.Reloader = c.reloader
	startServe(t, sopts)
	return c
}

// startServe runs Serve until the test ends and waits for it to listen.
func startServe(t *testing.T, sopts ServeOptions) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	sopts.Ready = ready
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, sopts) }()
	stopped := false
	t.Cleanup(func() {
		cancel()
		if stopped {
			return
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("serve did not stop within 30s")
		}
	})
	select {
	case <-ready:
	case err := <-done:
		stopped = true
		t.Fatalf("serve stopped: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("the webhook did not listen within 90s")
	}
}

func createNamespace(t *testing.T, c client.Client, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

func toUnstructured(t *testing.T, obj map[string]any) *unstructured.Unstructured {
	t.Helper()
	u, err := decodeObject(mustJSON(t, obj))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestWebhookAgainstAPIServer(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "deny-cm.yaml"), denyLabelledPolicy("first version"))
	writeFile(t, filepath.Join(dir, "add-non-root.yaml"), addNonRootPolicy)
	writeFile(t, filepath.Join(dir, "add-team.yaml"), addTeamPolicy)
	c := startCluster(t, ReloaderOptions{Sources: []Source{DirSource{Path: dir}}})
	ctx := context.Background()
	createNamespace(t, c.client, "shop")

	t.Run("compliant deployment is created", func(t *testing.T) {
		obj := toUnstructured(t, deployment("web", nil))
		if err := c.client.Create(ctx, obj); err != nil {
			t.Fatalf("create: %v", err)
		}
		if w := c.warnings.take(); len(w) != 0 {
			t.Errorf("warnings for a compliant Deployment: %q", w)
		}
	})

	t.Run("non-compliant deployment is rejected with our message", func(t *testing.T) {
		obj := toUnstructured(t, deployment("bad", func(_, ctr map[string]any) { ctr["image"] = "nginx:latest" }))
		err := c.client.Create(ctx, obj)
		if err == nil {
			t.Fatal("a Deployment using :latest was created")
		}
		msg := err.Error()
		for _, want := range []string{`admission webhook "validate.gitgate.dev" denied the request`, "Deployment/shop/bad blocked by policy", "disallow-latest-tag/autogen-image-tag", "uses the mutable :latest tag"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error lacks %q:\n%s", want, msg)
			}
		}
		if !apierrors.IsForbidden(err) {
			t.Errorf("error is not Forbidden: %v", err)
		}
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(obj.GroupVersionKind())
		if err := c.client.Get(ctx, client.ObjectKeyFromObject(obj), got); !apierrors.IsNotFound(err) {
			t.Errorf("the denied Deployment exists (get: %v)", err)
		}
	})

	t.Run("stored mutated as Engine.Mutate mutates, judged as check judges", func(t *testing.T) {
		g := c.reloader.Gate()
		if g == nil {
			t.Fatal("no gate loaded")
		}
		checkOf := func(manifest map[string]any, noMutate bool) (bool, []string) {
			opts := policy.DefaultCheckOptions()
			opts.Workers, opts.NoMutate = 1, noMutate
			rep := g.CheckResources(ctx, []policy.Resource{{Object: toUnstructured(t, manifest)}}, opts)
			if len(rep.Errors) > 0 {
				t.Fatalf("check: %v", rep.Errors)
			}
			var rules []string
			for _, x := range rep.Results {
				if x.Blocking() {
					rules = append(rules, x.Policy+"/"+x.Rule)
				}
			}
			return rep.Blocking(), rules
		}

		manifest := rootDeployment("rooted")
		if blocking, rules := checkOf(manifest, true); !blocking || !slices.ContainsFunc(rules, func(r string) bool { return strings.HasPrefix(r, "require-run-as-non-root/") }) {
			t.Fatalf("check --no-mutate: blocking=%v %v; want require-run-as-non-root to block the manifest as written", blocking, rules)
		}
		if blocking, rules := checkOf(manifest, false); blocking {
			t.Fatalf("check (mutated) blocks %v; the mutation should satisfy every policy", rules)
		}
		obj := toUnstructured(t, manifest)
		if err := c.client.Create(ctx, obj); err != nil {
			t.Fatalf("create: %v (check admits it once mutated)", err)
		}
		if w := c.warnings.take(); len(w) != 0 {
			t.Errorf("warnings for a Deployment compliant once mutated: %q", w)
		}
		stored := &unstructured.Unstructured{}
		stored.SetGroupVersionKind(obj.GroupVersionKind())
		if err := c.client.Get(ctx, client.ObjectKeyFromObject(obj), stored); err != nil {
			t.Fatal(err)
		}
		_, want := engineMutate(t, g, manifest)
		// The API server adds defaults and metadata of its own: every field of
		// Engine.Mutate's object must be stored as it is, nothing of it lost or changed.
		if diff := notStored(want, stored.Object, ""); len(diff) > 0 {
			t.Errorf("the stored object differs from Engine.Mutate's:\n%s", strings.Join(diff, "\n"))
		}
		if v := nested(stored.Object, "spec", "template", "spec", "securityContext", "runAsNonRoot"); v != true {
			t.Errorf("stored runAsNonRoot = %v, want true (added by add-run-as-non-root)", v)
		}
		if v := nested(stored.Object, "metadata", "labels", "team"); v != "platform" {
			t.Errorf("stored team label = %v, want platform (added by add-team-label)", v)
		}

		// Mutated, still violating another policy: denied naming exactly check's rules.
		bad := deployment("rooted-latest", func(pod, ctr map[string]any) {
			delete(pod, "securityContext")
			delete(ctr["securityContext"].(map[string]any), "runAsNonRoot")
			ctr["image"] = "nginx:latest"
		})
		blocking, rules := checkOf(bad, false)
		if !blocking {
			t.Fatal("check admits a :latest image")
		}
		err := c.client.Create(ctx, toUnstructured(t, bad))
		if err == nil || !strings.Contains(err.Error(), `admission webhook "validate.gitgate.dev" denied the request`) {
			t.Fatalf("create: err = %v, want the validating webhook's denial", err)
		}
		for _, r := range rules {
			if !strings.Contains(err.Error(), r+":") {
				t.Errorf("denial does not name %s (check blocks on it):\n%v", r, err)
			}
		}
		if n := strings.Count(err.Error(), "\n"); n != len(rules) {
			t.Errorf("denial names %d rules, check blocks on %d %v:\n%v", n, len(rules), rules, err)
		}
		if strings.Contains(err.Error(), "require-run-as-non-root") {
			t.Errorf("the denial judged the object before mutation:\n%v", err)
		}
	})

	t.Run("audit violation is created and the client sees the warning", func(t *testing.T) {
		obj := toUnstructured(t, deployment("noprobes", func(_, ctr map[string]any) { delete(ctr, "livenessProbe") }))
		if err := c.client.Create(ctx, obj); err != nil {
			t.Fatalf("create: %v", err)
		}
		w := c.warnings.take()
		if len(w) != 1 || !strings.Contains(w[0], "require-probes/autogen-liveness") || !strings.Contains(w[0], "Deployment/shop/noprobes") {
			t.Errorf("warnings %q, want one naming require-probes/autogen-liveness", w)
		}
	})

	t.Run("update is judged, with the old object", func(t *testing.T) {
		obj := toUnstructured(t, deployment("web", nil))
		if err := c.client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Fatal(err)
		}
		containers, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
		containers[0].(map[string]any)["image"] = "nginx"
		_ = unstructured.SetNestedSlice(obj.Object, containers, "spec", "template", "spec", "containers")
		err := c.client.Update(ctx, obj)
		if err == nil || !strings.Contains(err.Error(), "has neither a tag nor a digest") {
			t.Fatalf("update to an untagged image: err = %v, want our denial", err)
		}
	})

	t.Run("dry run is judged like a real request", func(t *testing.T) {
		obj := toUnstructured(t, deployment("dry", func(_, ctr map[string]any) { ctr["image"] = "nginx:latest" }))
		err := c.client.Create(ctx, obj, client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), "disallow-latest-tag") {
			t.Fatalf("dry-run create: err = %v, want our denial", err)
		}
	})

	t.Run("a policy file change takes effect on the next request", func(t *testing.T) {
		cm := func(name string) *unstructured.Unstructured {
			return toUnstructured(t, map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
				"metadata": map[string]any{"name": name, "namespace": "shop", "labels": map[string]any{"gitgate.dev/test": "deny"}}})
		}
		err := c.client.Create(ctx, cm("one"))
		if err == nil || !strings.Contains(err.Error(), "first version") {
			t.Fatalf("before the change: err = %v, want the first version's denial", err)
		}
		before := c.reloader.Status().Reloads
		writeFile(t, filepath.Join(dir, "deny-cm.yaml"), denyLabelledPolicy("second version"))
		deadline := time.Now().Add(15 * time.Second)
		for c.reloader.Status().Reloads == before {
			if time.Now().After(deadline) {
				t.Fatal("the policy change was not loaded within 15s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		err = c.client.Create(ctx, cm("two"))
		if err == nil || !strings.Contains(err.Error(), "second version") {
			t.Fatalf("after the change: err = %v, want the second version's denial", err)
		}

		// a broken edit: the second version keeps serving, /readyz says so without the error text
		writeFile(t, filepath.Join(dir, "deny-cm.yaml"), "kind: ClusterPolicy\nmetadata: {name: [\n")
		deadline = time.Now().Add(15 * time.Second)
		for c.reloader.Status().LastError == "" {
			if time.Now().After(deadline) {
				t.Fatal("the broken policy file was not noticed within 15s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		err = c.client.Create(ctx, cm("three"))
		if err == nil || !strings.Contains(err.Error(), "second version") {
			t.Fatalf("after a broken change: err = %v, want the second version still denying", err)
		}
		resp, err := http.Get("http://" + c.healthAddr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "last good set keeps serving") || strings.Contains(body, "deny-cm.yaml") {
			t.Errorf("/readyz = %d:\n%s\nwant 200 saying the reload failed, without the error text", resp.StatusCode, body)
		}
		resp, err = http.Get("http://" + c.healthAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics := readAll(t, resp)
		for _, want := range []string{`gitgate_policy_reloads_total{result="error"}`, `gitgate_admission_requests_total{verdict="denied"}`, `gitgate_admission_policy_results_total{effect="denied",policy="disallow-latest-tag"}`, "gitgate_admission_request_duration_seconds_bucket"} {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
}

// notStored lists the fields of want that got lacks or holds differently (got may have
// more: the API server's defaults and metadata).
func notStored(want, got any, path string) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: stored %T, want an object", path, got)}
		}
		var out []string
		for k, v := range w {
			out = append(out, notStored(v, g[k], path+"."+k)...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: stored %v, want %v", path, got, want)}
		}
		var out []string
		for i := range w {
			out = append(out, notStored(w[i], g[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	default:
		if fmt.Sprint(want) != fmt.Sprint(got) || (want == nil) != (got == nil) {
			return []string{fmt.Sprintf("%s: stored %v, want %v", path, got, want)}
		}
		return nil
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

// strictNamespacePolicy denies ConfigMaps in namespaces labelled gitgate.dev/strict=true.
const strictNamespacePolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: strict-namespaces
spec:
  rules:
    - name: no-configmaps
      match:
        any:
          - resources:
              kinds: [ConfigMap]
              namespaceSelector:
                matchLabels:
                  gitgate.dev/strict: "true"
      validate:
        failureAction: Enforce
        message: no ConfigMaps in strict namespaces
        deny: {}
`

// denyLabelledPolicy denies ConfigMaps labelled gitgate.dev/test=deny with msg.
func denyLabelledPolicy(msg string) string {
	return fmt.Sprintf(`apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: deny-labelled-configmaps
spec:
  rules:
    - name: deny
      match:
        any:
          - resources:
              kinds: [ConfigMap]
              selector:
                matchLabels:
                  gitgate.dev/test: deny
      validate:
        failureAction: Enforce
        message: %q
        deny: {}
`, msg)
}

// The in-cluster path: cert-controller's rotator fills the (empty) Secret, injects its CA
// into our ValidatingWebhookConfiguration, and the API server then trusts the webhook.
// The test plays the kubelet, projecting the Secret into the certificate directory.
func TestWebhookCertRotator(t *testing.T) {
	needAPIServer(t)
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start the API server: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const ns = "gitgate-system"
	createNamespace(t, c, ns)
	createNamespace(t, c, "shop")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gitgate-webhook-tls", Namespace: ns}}
	if err := c.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	url := fmt.Sprintf("https://localhost:%d/validate", port)
	vwc := validatingWebhook("gitgate-rotated", admissionregistrationv1.WebhookClientConfig{URL: &url})
	if err := c.Create(ctx, vwc); err != nil {
		t.Fatal(err)
	}
	murl := fmt.Sprintf("https://localhost:%d/mutate", port)
	mwc := mutatingWebhook("gitgate-rotated", admissionregistrationv1.WebhookClientConfig{URL: &murl})
	if err := c.Create(ctx, mwc); err != nil {
		t.Fatal(err)
	}

	certDir := t.TempDir()
	kctx, stopKubelet := context.WithCancel(ctx)
	defer stopKubelet()
	go projectSecret(kctx, c, client.ObjectKeyFromObject(secret), certDir)

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "deny-cm.yaml"), denyLabelledPolicy("rotated and trusted"))
	writeFile(t, filepath.Join(dir, "strict.yaml"), strictNamespacePolicy)
	writeFile(t, filepath.Join(dir, "label.yaml"), labelConfigMapsPolicy)
	sopts := DefaultServeOptions()
	sopts.NamespaceLabels = true
	sopts.Addr = "127.0.0.1:" + strconv.Itoa(port)
	sopts.HealthAddr = "127.0.0.1:" + strconv.Itoa(freePort(t))
	sopts.MetricsAddr = "0"
	sopts.CertDir = certDir
	sopts.RestConfig = cfg
	sopts.Reloader = NewReloader(ReloaderOptions{Sources: []Source{DirSource{Path: dir}}})
	sopts.Rotator = &RotatorOptions{
		Namespace: ns, SecretName: secret.Name, ServiceName: "gitgate-webhook", ExtraDNSNames: []string{"localhost"},
		WebhookConfigName: vwc.Name, MutatingWebhookConfigName: mwc.Name, LeaderElectionID: "gitgate-test-rotator",
		ControllerName: fmt.Sprintf("gitgate-cert-rotator-%d", rotatorRuns.Add(1)), // unique in the process
	}
	startServe(t, sopts)

	// the CA the rotator made is in the Secret and in our webhook configuration
	if err := c.Get(ctx, client.ObjectKeyFromObject(secret), secret); err != nil {
		t.Fatal(err)
	}
	ca := secret.Data["ca.crt"]
	if len(ca) == 0 || len(secret.Data["tls.crt"]) == 0 {
		t.Fatalf("the rotator did not fill the Secret: keys %v", keys(secret.Data))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := c.Get(ctx, client.ObjectKeyFromObject(vwc), vwc); err != nil {
			t.Fatal(err)
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(mwc), mwc); err != nil {
			t.Fatal(err)
		}
		if string(vwc.Webhooks[0].ClientConfig.CABundle) == string(ca) && string(mwc.Webhooks[0].ClientConfig.CABundle) == string(ca) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the CA was not injected into the validating and mutating configurations %s within 30s", vwc.Name)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// the API server calls the webhook over TLS with that CA: a denial proves the trust
	deny := toUnstructured(t, map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "x", "namespace": "shop", "labels": map[string]any{"gitgate.dev/test": "deny"}}})
	var last error
	deadline = time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		last = c.Create(ctx, deny.DeepCopy())
		if last != nil && strings.Contains(last.Error(), "rotated and trusted") {
			break
		}
		time.Sleep(200 * time.Millisecond) // the API server caches webhook clients briefly
	}
	if last == nil || !strings.Contains(last.Error(), "rotated and trusted") {
		t.Fatalf("creating a denied ConfigMap: %v, want our denial through the rotated certificate", last)
	}
	allow := toUnstructured(t, map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "y", "namespace": "shop"}})
	if err := c.Create(ctx, allow); err != nil {
		t.Fatalf("creating an allowed ConfigMap: %v", err)
	}
	// ...and the mutating endpoint, trusted with the same CA, labelled it.
	if err := c.Get(ctx, client.ObjectKeyFromObject(allow), allow); err != nil {
		t.Fatal(err)
	}
	if v := allow.GetLabels()["gitgate.dev/mutated"]; v != "yes" {
		t.Errorf("stored ConfigMap labels %v: want gitgate.dev/mutated=yes from /mutate", allow.GetLabels())
	}

	// --namespace-labels: Kyverno's namespaceSelector sees the namespace's labels, read
	// from the cluster through the manager's cache.
	strict := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "strict", Labels: map[string]string{"gitgate.dev/strict": "true"}}}
	if err := c.Create(ctx, strict); err != nil {
		t.Fatal(err)
	}
	inStrict := toUnstructured(t, map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "z", "namespace": "strict"}})
	deadline = time.Now().Add(15 * time.Second)
	for {
		err := c.Create(ctx, inStrict.DeepCopy())
		if err != nil && strings.Contains(err.Error(), "no ConfigMaps in strict namespaces") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a ConfigMap in a namespace labelled strict: %v, want the namespaceSelector policy's denial", err)
		}
		if err == nil {
			_ = c.Delete(ctx, inStrict.DeepCopy()) // the cache had not seen the namespace yet
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A second replica loses the election: it does not rotate, but serves the mounted
	// certificate and is ready.
	second := sopts
	second.Addr = "127.0.0.1:" + strconv.Itoa(freePort(t))
	second.HealthAddr = "127.0.0.1:" + strconv.Itoa(freePort(t))
	second.Reloader = NewReloader(ReloaderOptions{Sources: []Source{DirSource{Path: dir}}})
	ro := *sopts.Rotator
	ro.ControllerName = fmt.Sprintf("gitgate-cert-rotator-%d", rotatorRuns.Add(1))
	second.Rotator = &ro
	startServe(t, second)
	deadline = time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + second.HealthAddr + "/readyz")
		if err == nil {
			body := readAll(t, resp)
			if resp.StatusCode == http.StatusOK && strings.Contains(body, "[+]webhook: listening") {
				break
			}
			err = fmt.Errorf("HTTP %d:\n%s", resp.StatusCode, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("second replica not ready within 15s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rotatorRuns numbers rotator controllers: controller-runtime refuses a name twice in a process.
var rotatorRuns atomic.Int64

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// projectSecret writes the Secret's tls.crt and tls.key into dir whenever they change,
// as the kubelet does for a Secret volume.
func projectSecret(ctx context.Context, c client.Client, key client.ObjectKey, dir string) {
	var last string
	for ctx.Err() == nil {
		var s corev1.Secret
		if err := c.Get(ctx, key, &s); err == nil && len(s.Data["tls.crt"]) > 0 && string(s.Data["tls.crt"]) != last {
			for _, name := range []string{"tls.key", "tls.crt"} {
				tmp := filepath.Join(dir, "."+name)
				if os.WriteFile(tmp, s.Data[name], 0o600) == nil {
					_ = os.Rename(tmp, filepath.Join(dir, name))
				}
			}
			last = string(s.Data["tls.crt"])
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
