//go:build integration

package reconcile

import (
	"context"
	"strings"
	"testing"

	gitsrc "github.com/gitgate/gitgate/internal/git"
	"github.com/gitgate/gitgate/policy"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// gadgetCRD is installed in the cluster by the test, not in the repository: another
// team's operator. Its schema has a type, a minimum and a CEL rule with a message.
const gadgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.org}
spec:
  group: example.org
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
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
            x-kubernetes-validations:
            - rule: self.size <= 10
              message: a gadget holds at most 10
`

// doohickeyCRD is in the repository, in the same app as its object.
const doohickeyCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: doohickeys.example.org}
spec:
  group: example.org
  names: {kind: Doohickey, plural: doohickeys, singular: doohickey, listKind: DoohickeyList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              colour: {type: string, enum: [red, green]}
`

func gadget(size string) string {
	return "apiVersion: example.org/v1\nkind: Gadget\nmetadata: {name: g1}\nspec: {size: " + size + "}\n"
}

func crdApp(name string) string {
	return `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: ` + name + `, namespace: argocd}
spec:
  project: default
  source: {repoURL: https://git.example.com/platform/gitops.git, path: ` + name + `}
  destination: {server: https://kubernetes.default.svc, namespace: ` + name + `}
  syncPolicy: {automated: {prune: true}, syncOptions: [CreateNamespace=true]}
`
}

// TestSyncBlocksRejectedCustomResource: a custom resource the API server would reject
// blocks its app before anything of it is applied, with the API server's message, both
// when its CRD is only in the cluster and when it is in the same app; the same object
// created directly is rejected by the real API server with the same message.
func TestSyncBlocksRejectedCustomResource(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()

	crd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(gadgetCRD), &crd.Object); err != nil {
		t.Fatal(err)
	}
	if err := e.client.Create(ctx, crd); err != nil {
		t.Fatal(err)
	}
	var established bool
	s0 := &Syncer{Client: e.client}
	if err := s0.waitEstablished(ctx, "gadgets.example.org"); err == nil {
		established = true
	}
	if !established {
		t.Fatal("gadgets.example.org not established")
	}

	files := map[string]string{
		".gitgate.yaml":             "repoURLs: [https://git.example.com/platform/gitops.git]\n",
		"argocd/gadgets.yaml":       crdApp("gadgets"),
		"argocd/doohickeys.yaml":    crdApp("doohickeys"),
		"gadgets/configmap.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: gadget-settings}\ndata: {k: v}\n",
		"gadgets/gadget.yaml":       gadget("50"),
		"doohickeys/crd.yaml":       doohickeyCRD,
		"doohickeys/doohickey.yaml": "apiVersion: example.org/v1\nkind: Doohickey\nmetadata: {name: d1}\nspec: {colour: blue}\n",
	}
	g := newGitRepo(t, files)
	gate, err := policy.OpenGate(policy.GateOptions{NoBuiltin: true})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, e: e, git: g, src: gitsrc.Source{URL: "file://" + g.bare, CacheDir: t.TempDir()}, gate: gate}
	sync := func() *SyncResult {
		repo, rev, apps := h.checkout(ctx)
		opts := DefaultOptions()
		opts.Check.CRDs = policy.NewCRDSet() // as gitgate sync: crds: and --crds, here none
		s := &Syncer{Client: e.client, Gate: gate, Opts: opts}
		return s.Sync(ctx, repo, rev, apps)
	}

	r := sync()
	if r.ExitCode() != 1 {
		t.Fatalf("exit %d, want 1 (blocked)\n%s", r.ExitCode(), dump(t, r))
	}
	for app, want := range map[string][]string{
		"gadgets":    {"Gadget/gadgets/g1", "a gadget holds at most 10", "served by the cluster"},
		"doohickeys": {"Doohickey/doohickeys/d1", "spec.colour", `"blue"`, "doohickeys/crd.yaml"},
	} {
		a := appResult(r, app)
		if a.Phase != Blocked || a.Writes > 1 { // the inventory's status is the one write allowed
			t.Fatalf("%s: phase %s, %d writes, want Blocked with nothing applied\n%s", app, a.Phase, a.Writes, dump(t, r))
		}
		var msgs []string
		for _, f := range a.Findings {
			if f.Blocking() {
				msgs = append(msgs, f.ResourceID()+": "+f.Message+" "+f.Origin.String()+" ("+f.Remediation+")")
			}
		}
		all := strings.Join(msgs, "\n")
		for _, w := range want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: blocking findings lack %q:\n%s", app, w, all)
			}
		}
	}
	// Nothing of a blocked app reached the cluster: not its namespace's ConfigMap, not its CRD.
	if err := e.client.Get(ctx, types.NamespacedName{Namespace: "gadgets", Name: "gadget-settings"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the blocked app's ConfigMap: err = %v, want NotFound", err)
	}
	if err := e.client.Get(ctx, types.NamespacedName{Name: "doohickeys.example.org"}, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}}); !apierrors.IsNotFound(err) {
		t.Fatalf("the blocked app's CRD: err = %v, want NotFound", err)
	}

	// The real API server agrees: the same Gadget created directly is rejected with the message.
	ns := &corev1.Namespace{}
	ns.Name = "direct"
	if err := e.client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	direct := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(gadget("50")), &direct.Object); err != nil {
		t.Fatal(err)
	}
	direct.SetNamespace("direct")
	err = e.client.Create(ctx, direct)
	if err == nil || !strings.Contains(err.Error(), "a gadget holds at most 10") {
		t.Fatalf("the API server on the same Gadget: %v, want the CRD rule's message", err)
	}

	// Fixed in Git: both apps sync, the Doohickey after its CRD.
	g.commit("fix", map[string]string{
		"gadgets/gadget.yaml":       gadget("5"),
		"doohickeys/doohickey.yaml": "apiVersion: example.org/v1\nkind: Doohickey\nmetadata: {name: d1}\nspec: {colour: red}\n",
	}, nil)
	r = sync()
	if r.ExitCode() != 0 {
		t.Fatalf("after the fix: exit %d\n%s", r.ExitCode(), dump(t, r))
	}
	for _, id := range []struct{ kind, ns, name string }{{"Gadget", "gadgets", "g1"}, {"Doohickey", "doohickeys", "d1"}} {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("example.org/v1")
		u.SetKind(id.kind)
		if err := e.client.Get(ctx, types.NamespacedName{Namespace: id.ns, Name: id.name}, u); err != nil {
			t.Fatalf("%s after the fix: %v", id.kind, err)
		}
	}
}
