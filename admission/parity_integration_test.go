//go:build integration

package admission

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

type parityItem struct {
	res      policy.Resource
	blocking bool
	rules    []string // blocking policy/rule
	warnings []string // non-blocking findings' policy/rule (Audit failures)
}

// The webhook and `gitgate check` cannot disagree: for every resource the seed-shaped
// repository testdata/gitops renders to, the API server's verdict on a server-side dry-run
// create (with our webhook registered) equals check's pass/fail for that resource, with
// the gate built from the repository's .gitgate.yaml as check builds it. Kinds the API
// server does not know (Argo CD, Tekton, Argo Rollouts) get a schemaless CRD first, so
// every resource reaches the webhook.
func TestParityWithCheck(t *testing.T) {
	needAPIServer(t)
	ctx := context.Background()
	root, err := filepath.Abs("../testdata/gitops")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := policy.LoadConfig(os.DirFS(root))
	if err != nil {
		t.Fatal(err)
	}
	gopts := policy.GateOptions{NoBuiltin: cfg.NoBuiltin, Registries: cfg.Registries}
	if st, err := os.Stat(filepath.Join(root, "policies")); err == nil && st.IsDir() {
		gopts.PolicyDirs = []policy.Source{{FS: os.DirFS(root), Root: "policies", Display: "policies"}}
	}
	if len(cfg.Policies) > 0 || cfg.Values != "" {
		t.Fatalf("testdata/gitops/.gitgate.yaml sets policies or values; extend this test to build the gate as check does")
	}
	gate, err := policy.OpenGate(gopts)
	if err != nil {
		t.Fatal(err)
	}

	// Render as check does, and judge each resource on its own.
	repo := render.Repo{FS: os.DirFS(root), Dir: root, KubeVersion: cfg.KubeVersion, APIVersions: cfg.APIVersions}
	dopts := render.DiscoverOptions{RepoURLs: cfg.RepoURLs}
	d := render.Plan(ctx, repo, dopts, 2)
	if len(d.Errors) > 0 {
		t.Fatalf("discover: %v", d.Errors)
	}
	var items []parityItem
	for _, r := range render.RenderPlan(ctx, repo, d, 2, nil, nil) {
		if r.Err != nil {
			t.Fatalf("render %s: %v", r.Target, r.Err)
		}
		for _, res := range r.Resources {
			if g := res.Object.GroupVersionKind().Group; g == "kustomize.config.k8s.io" || g == "config.kubernetes.io" {
				continue // tooling configuration, not cluster objects (check skips them too)
			}
			opts := policy.DefaultCheckOptions()
			opts.Workers = 1
			rep := gate.CheckResources(ctx, []policy.Resource{res}, opts)
			if len(rep.Errors) > 0 {
				t.Fatalf("check %s: %v", res.ID(), rep.Errors)
			}
			it := parityItem{res: res, blocking: rep.Blocking()}
			for _, x := range rep.Results {
				switch {
				case x.Blocking():
					it.rules = append(it.rules, x.Policy+"/"+x.Rule)
				case x.Finding():
					it.warnings = append(it.warnings, x.Policy+"/"+x.Rule)
				}
			}
			items = append(items, it)
		}
	}
	if len(items) < 20 {
		t.Fatalf("testdata/gitops rendered %d resources; expected the whole example", len(items))
	}

	c := startCluster(t, ReloaderOptions{Gate: gopts})
	installCRDs(t, c, items)

	// Cluster-scoped objects first (a rendered Namespace must be created before it
	// exists), then the namespaces, then everything else.
	sort.SliceStable(items, func(i, j int) bool {
		return (items[i].res.Object.GetNamespace() == "") && (items[j].res.Object.GetNamespace() != "")
	})
	created := map[string]bool{}
	var admitted, denied, warned int
	for _, it := range items {
		obj := it.res.Object.DeepCopy()
		if ns := obj.GetNamespace(); ns != "" && !created[ns] {
			createNamespace(t, c.client, ns)
			created[ns] = true
		}
		obj.SetResourceVersion("")
		c.warnings.take()
		err := c.client.Create(ctx, obj, client.DryRunAll)
		warnings := c.warnings.take()
		if err != nil && !strings.Contains(err.Error(), `admission webhook "validate.gitgate.dev" denied the request`) {
			t.Errorf("%s (%s): the API server refused it for another reason than our webhook: %v", it.res.ID(), it.res.Origin.Target, err)
			continue
		}
		apiDenied := err != nil
		if apiDenied {
			denied++
		} else {
			admitted++
		}
		if apiDenied != it.blocking {
			t.Errorf("%s (%s): API server denied=%v, gitgate check blocking=%v (%v); error: %v", it.res.ID(), it.res.Origin.Target, apiDenied, it.blocking, it.rules, err)
			continue
		}
		for _, rule := range it.rules { // and the denial names every rule check blocks on
			if !strings.Contains(err.Error(), rule+":") {
				t.Errorf("%s: denial does not name %s:\n%v", it.res.ID(), rule, err)
			}
		}
		if !apiDenied { // and the client sees one warning per Audit finding of check
			if len(warnings) != len(it.warnings) {
				t.Errorf("%s: %d warnings from the API server, gitgate check has %d Audit findings %v: %q", it.res.ID(), len(warnings), len(it.warnings), it.warnings, warnings)
			}
			for _, rule := range it.warnings {
				if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, ": "+rule+": ") }) {
					t.Errorf("%s: no warning names %s: %q", it.res.ID(), rule, warnings)
				}
			}
			warned += len(warnings)
		}
	}
	t.Logf("parity over %d rendered resources: %d admitted (%d Audit warnings), %d denied, identical to gitgate check", len(items), admitted, warned, denied)
	if admitted == 0 || denied == 0 {
		t.Errorf("the example should have both compliant and violating resources (admitted %d, denied %d)", admitted, denied)
	}
}

// installCRDs installs a schemaless CRD for every rendered kind the API server does not
// serve; envtest waits until they are served.
func installCRDs(t *testing.T, c *cluster, items []parityItem) {
	t.Helper()
	mapper := c.client.RESTMapper()
	seen := map[schema.GroupKind]bool{}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, it := range items {
		gvk := it.res.Object.GroupVersionKind()
		if seen[gvk.GroupKind()] {
			continue
		}
		seen[gvk.GroupKind()] = true
		_, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err == nil {
			continue
		}
		if !meta.IsNoMatchError(err) {
			t.Fatalf("look up %s: %v", gvk, err)
		}
		if gvk.Group == "" {
			t.Fatalf("%s: a core kind the API server does not serve", gvk)
		}
		singular := strings.ToLower(gvk.Kind)
		plural := singular + "s"
		switch {
		case strings.HasSuffix(singular, "y"):
			plural = strings.TrimSuffix(singular, "y") + "ies"
		case strings.HasSuffix(singular, "s"):
			plural = singular + "es"
		}
		scope := apiextensionsv1.NamespaceScoped
		if policy.ClusterScoped(gvk.Kind) {
			scope = apiextensionsv1.ClusterScoped
		}
		preserve := true
		crds = append(crds, &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: plural + "." + gvk.Group},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: gvk.Group,
				Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: plural, Singular: singular, Kind: gvk.Kind, ListKind: gvk.Kind + "List"},
				Scope: scope,
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
					Name: gvk.Version, Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: &preserve}},
				}},
			},
		})
	}
	if len(crds) == 0 {
		return
	}
	if _, err := envtest.InstallCRDs(c.cfg, envtest.CRDInstallOptions{CRDs: crds}); err != nil {
		t.Fatalf("install CRDs: %v", err)
	}
	names := make([]string, 0, len(crds))
	for _, crd := range crds {
		names = append(names, crd.Name)
	}
	t.Logf("installed schemaless CRDs for %s", strings.Join(names, ", "))
}
