package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/apis/v1alpha1"
	clistore "github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/store"
	"github.com/kyverno/kyverno/pkg/cel/libs"
	"github.com/kyverno/kyverno/pkg/clients/dclient"
	"github.com/kyverno/kyverno/pkg/engine/adapters"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	enginecontext "github.com/kyverno/kyverno/pkg/engine/context"
	"github.com/kyverno/kyverno/pkg/engine/context/loaders"
	"github.com/kyverno/kyverno/pkg/engine/factories"
	"github.com/kyverno/kyverno/pkg/engine/jmespath"
	"github.com/kyverno/kyverno/pkg/engine/variables"
	yaml3 "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

// testData is what a kyverno-test.yaml supplies in place of a cluster, fed to the engine
// as `kyverno test` (v1.19.1, cmd/cli/kubectl-kyverno/commands/test/test.go and its
// store and processor packages) feeds it:
//
//   - apiCallResponses: canned bodies for ClusterPolicy apiCall context entries (by
//     service.url or urlPath, and method; a status outside 2xx is the entry's error) and
//     for the CEL http library (by url and method);
//   - globalContextEntries: the values of globalReference context entries and of CEL
//     globalContext.Get, with fieldPath and projections resolved by Kyverno's own code;
//   - clusterResources: an in-memory API holding those objects, their CRDs and the
//     test's resources, which apiCall and configMap context entries and CEL resource.Get
//     and resource.List read; each resource's namespace must be there (its labels are
//     the namespace labels), as the CLI requires.
//
// A lookup the test does not supply behaves as in the CLI: an apiCall or configMap
// entry without clusterResources, or a globalReference without globalContextEntries, is
// not loaded (a rule reading it then fails or errors as it does with the CLI); CEL
// globalContext.Get of an unknown entry is null. Nothing is ever contacted: an http
// call with no canned response is refused, and image registry entries still need
// values (NeedsClusterDataError).
type testData struct {
	apiCalls map[string]apiCallMock // "METHOD:url" or "url"
	gctx     loaders.Store          // nil: no globalContextEntries
	gce      map[string]any         // the entries' resolved values, for CEL
	httpMock map[string]any         // apiCallResponses as the CEL http library sees them
	cluster  *testCluster           // nil: no clusterResources
}

type apiCallMock struct {
	status int
	body   any
}

// testCluster is the in-memory API of a test's clusterResources.
type testCluster struct {
	client dclient.Interface
	raw    engineapi.RawClient
	cm     engineapi.ConfigmapResolver
}

// loadTestData reads a test's apiCallResponses, globalContextEntries and
// clusterResources. rel resolves a path of the test (confined to the test's
// filesystem), show names it in errors; resources are the test's resources, which the
// CLI puts into its cluster too.
//
// It is never nil: every test's lookups behave as in the CLI, with or without these fields.
func loadTestData(fsys fs.FS, t v1alpha1.Test, rel func(string) (string, error), show func(string) string, resources []Resource) (*testData, error) {
	d := &testData{}
	if err := v1alpha1.ValidateAPICallResponses(t.APICallResponses); err != nil {
		return nil, err
	}
	if err := v1alpha1.ValidateGlobalContextEntries(t.GlobalContextEntries); err != nil {
		return nil, err
	}
	if len(t.APICallResponses) > 0 {
		d.apiCalls = map[string]apiCallMock{}
		d.httpMock = map[string]any{}
		for _, m := range t.APICallResponses {
			body, err := v1alpha1.RawExtensionToObject(m.Response.Body)
			if err != nil {
				return nil, fmt.Errorf("apiCallResponses %q: invalid body: %w", m.ResolvedURL(), err)
			}
			status := m.Response.StatusCode
			if status == 0 {
				status = 200
			}
			key := m.ResolvedURL()
			if method := strings.ToUpper(strings.TrimSpace(m.Method)); method != "" {
				key = method + ":" + key
			}
			d.apiCalls[key] = apiCallMock{status: status, body: body}
			d.httpMock[key] = map[string]any{"body": body, "statusCode": status}
		}
	}
	if len(t.GlobalContextEntries) > 0 {
		entries := make([]v1alpha1.GlobalContextEntryValue, len(t.GlobalContextEntries))
		copy(entries, t.GlobalContextEntries)
		for i := range entries {
			e := &entries[i]
			if e.ResourceFiles == nil {
				continue
			}
			var all []runtime.RawExtension
			for _, f := range e.ResourceFiles {
				raws, err := readRawObjects(fsys, rel, show, f)
				if err != nil {
					return nil, fmt.Errorf("globalContextEntries %q resourceFiles %q: %w", e.Name, f, err)
				}
				all = append(all, raws...)
			}
			if all == nil {
				all = []runtime.RawExtension{}
			}
			e.Resources, e.ResourceFiles = all, nil
		}
		d.gctx = clistore.NewMockGCtxStore(entries)
		d.gce = map[string]any{}
		for _, e := range entries {
			v, err := clistore.ResolveGlobalContextMockData(e)
			if err != nil {
				return nil, err
			}
			d.gce[e.Name] = v
		}
	}
	if len(t.ClusterResources) > 0 {
		c, err := loadTestCluster(fsys, t.ClusterResources, rel, show, resources)
		if err != nil {
			return nil, err
		}
		d.cluster = c
	}
	return d, nil
}

// readRawObjects reads every non-empty document of a file of the test as JSON.
func readRawObjects(fsys fs.FS, rel func(string) (string, error), show func(string) string, name string) ([]runtime.RawExtension, error) {
	rp, err := rel(name)
	if err != nil {
		return nil, err
	}
	b, err := ReadFileLimit(fsys, rp, 0)
	if err != nil {
		return nil, &InputError{Origin: Origin{File: show(rp)}, Err: unwrapPathErr(err)}
	}
	var out []runtime.RawExtension
	err = eachDocument(show(rp), b, func(root *yaml3.Node, v any) error {
		m, ok := v.(map[string]any)
		if !ok || len(m) == 0 {
			if v == nil || ok {
				return nil
			}
			return &InputError{Origin: Origin{File: show(rp), Line: root.Line}, Err: fmt.Errorf("document is not an object")}
		}
		raw, err := json.Marshal(m)
		if err != nil {
			return err
		}
		out = append(out, runtime.RawExtension{Raw: raw})
		return nil
	})
	return out, err
}

// loadTestCluster builds the in-memory API of a test's clusterResources files
// (cli.kyverno.io/v1alpha1 ClusterResource: resources, and CRDs by path relative to the
// test) with the test's resources, as the CLI's fake cluster does: every object listed
// and read by its resource name (a CRD's plural, else the guessed one).
func loadTestCluster(fsys fs.FS, files []string, rel func(string) (string, error), show func(string) string, resources []Resource) (*testCluster, error) {
	// The test's resources once each, as the CLI's "unique" resources.
	var objects []*unstructured.Unstructured
	seen := map[string]bool{}
	for _, r := range resources {
		key := r.Object.GetAPIVersion() + "/" + r.ID()
		if !seen[key] {
			seen[key] = true
			objects = append(objects, r.Object.DeepCopy())
		}
	}
	type crdVersion struct {
		gvr  schema.GroupVersionResource
		kind string
	}
	var crds []crdVersion
	for _, f := range files {
		rp, err := rel(f)
		if err != nil {
			return nil, fmt.Errorf("clusterResources: %w", err)
		}
		var cr v1alpha1.ClusterResource
		if err := readStrict(fsys, rp, show(rp), &cr, "Kyverno cluster resources file (cli.kyverno.io/v1alpha1 ClusterResource)"); err != nil {
			return nil, err
		}
		for i, o := range cr.Spec.Resources {
			if o == nil || o.GetKind() == "" || o.GetAPIVersion() == "" {
				return nil, &InputError{Origin: Origin{File: show(rp)}, Err: fmt.Errorf("spec.resources[%d]: not a Kubernetes object (apiVersion and kind are required)", i)}
			}
			obj, err := jsonCopy(o.Object)
			if err != nil {
				return nil, &InputError{Origin: Origin{File: show(rp)}, Err: fmt.Errorf("spec.resources[%d]: %w", i, err)}
			}
			objects = append(objects, &unstructured.Unstructured{Object: obj})
		}
		for _, c := range cr.Spec.CRDs {
			cp, err := rel(c)
			if err != nil {
				return nil, fmt.Errorf("clusterResources %s: crds: %w", show(rp), err)
			}
			b, err := ReadFileLimit(fsys, cp, 0)
			if err != nil {
				return nil, &InputError{Origin: Origin{File: show(cp)}, Err: fmt.Errorf("CRD named by %s: %w", show(rp), unwrapPathErr(err))}
			}
			rs, err := Decode(show(cp), b)
			if err != nil {
				return nil, err
			}
			for _, r := range rs {
				if r.Object.GetKind() != "CustomResourceDefinition" {
					return nil, &InputError{Origin: r.Origin, Err: fmt.Errorf("%s is not a CustomResourceDefinition (named in %s spec.crds)", FormatID(r.Object.GetKind(), r.Object.GetNamespace(), r.Object.GetName()), show(rp))}
				}
				group, _, _ := unstructured.NestedString(r.Object.Object, "spec", "group")
				plural, _, _ := unstructured.NestedString(r.Object.Object, "spec", "names", "plural")
				kind, _, _ := unstructured.NestedString(r.Object.Object, "spec", "names", "kind")
				versions, _, _ := unstructured.NestedSlice(r.Object.Object, "spec", "versions")
				for _, v := range versions {
					vm, _ := v.(map[string]any)
					if storage, _ := vm["storage"].(bool); storage {
						name, _ := vm["name"].(string)
						crds = append(crds, crdVersion{schema.GroupVersionResource{Group: group, Version: name, Resource: plural}, kind})
					}
				}
				obj, err := jsonCopy(r.Object.Object)
				if err != nil {
					return nil, err
				}
				objects = append(objects, &unstructured.Unstructured{Object: obj})
			}
		}
	}
	scheme := runtime.NewScheme()
	listKinds := map[schema.GroupVersionResource]string{}
	var registered []schema.GroupVersionResource
	gvrToGVK := map[schema.GroupVersionResource]schema.GroupVersionKind{}
	register := func(gvr schema.GroupVersionResource, gvk schema.GroupVersionKind) {
		if _, ok := listKinds[gvr]; ok {
			return
		}
		listKinds[gvr] = gvk.Kind + "List"
		registered = append(registered, gvr)
		gvrToGVK[gvr] = gvk
		if !scheme.Recognizes(gvk) {
			scheme.AddKnownTypeWithName(gvk, &unstructured.Unstructured{})
		}
		list := gvk
		list.Kind += "List"
		if !scheme.Recognizes(list) {
			scheme.AddKnownTypeWithName(list, &unstructured.UnstructuredList{})
		}
	}
	for _, c := range crds {
		register(c.gvr, c.gvr.GroupVersion().WithKind(c.kind))
	}
	crdKinds := map[schema.GroupVersionKind]bool{}
	for _, c := range crds {
		crdKinds[c.gvr.GroupVersion().WithKind(c.kind)] = true
	}
	var objs []runtime.Object
	for _, o := range objects {
		gvk := o.GroupVersionKind()
		if !crdKinds[gvk] {
			gvr, _ := meta.UnsafeGuessKindToResource(gvk)
			register(gvr, gvk)
		}
		objs = append(objs, o)
	}
	client, err := fakeAPI(scheme, listKinds, objs, registered, gvrToGVK)
	if err != nil {
		return nil, err
	}
	return &testCluster{client: client, raw: adapters.Client(client), cm: configMapResolver{client}}, nil
}

// fakeAPI is Kyverno's CLI fake cluster (ext/cluster DClient) without the typed
// clientset, which nothing here reads.
func fakeAPI(scheme *runtime.Scheme, listKinds map[schema.GroupVersionResource]string, objects []runtime.Object, registered []schema.GroupVersionResource, gvrToGVK map[schema.GroupVersionResource]schema.GroupVersionKind) (c dclient.Interface, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("clusterResources: in-memory API: %v", r)
		}
	}()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, listKinds, objects...)
	disco := dclient.NewFakeDiscoveryClient(registered)
	for gvr, gvk := range gvrToGVK {
		disco.AddGVRToGVKMapping(gvr, gvk)
	}
	return dclient.NewFakeClientWithDisco(dyn, nil, disco), nil
}

// configMapResolver reads configMap context entries from the in-memory API.
type configMapResolver struct{ client dclient.Interface }

func (r configMapResolver) Get(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	u, err := r.client.GetResource(ctx, "v1", "ConfigMap", namespace, name)
	if err != nil {
		return nil, err
	}
	var cm corev1.ConfigMap
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &cm); err != nil {
		return nil, err
	}
	return &cm, nil
}

// namespaceLabels are the labels of the test resource's namespace in the cluster, as
// the CLI reads them when a test has clusterResources: an error when the namespace is
// not there.
func (c *testCluster) namespaceLabels(ctx context.Context, r Resource) (map[string]string, error) {
	ns, err := c.client.GetResource(ctx, "v1", "Namespace", "", r.Object.GetNamespace())
	if err != nil {
		return nil, fmt.Errorf("%s: failed to get the resource's namespace from the test's clusterResources (%w); add the Namespace to a clusterResources file", r.ID(), err)
	}
	return ns.GetLabels(), nil
}

// celContext is the context CEL policies read in the test: with clusterResources the
// in-memory API (and nothing else: the CLI then ignores the context file, canned http
// responses and global context entries for CEL policies), else the context file's
// objects and images with the global context entries and canned http responses.
func (d *testData) celContext(fromFile *libs.FakeContextProvider) libs.Context {
	if fromFile == nil {
		fromFile = libs.NewFakeContextProvider()
	}
	if d == nil {
		return fromFile
	}
	if d.cluster != nil {
		return &clusterContext{FakeContextProvider: libs.NewFakeContextProvider(), client: d.cluster.client}
	}
	for name, v := range d.gce {
		fromFile.AddGlobalReference(name, v)
	}
	if len(d.httpMock) > 0 {
		fromFile.SetHTTPMocks(d.httpMock)
	}
	return fromFile
}

// clusterContext answers CEL resource.Get and resource.List from the in-memory API as
// Kyverno's context provider answers them from a cluster (label selectors, every
// namespace for ""); the rest (no images, no global context entries) as the fake one.
type clusterContext struct {
	*libs.FakeContextProvider
	client dclient.Interface
}

func (c *clusterContext) resource(apiVersion, resource string) (schema.GroupVersionResource, []string, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return schema.GroupVersionResource{}, nil, err
	}
	parts := strings.Split(resource, "/")
	return gv.WithResource(parts[0]), parts[1:], nil
}

func (c *clusterContext) GetResource(apiVersion, resource, namespace, name string) (*unstructured.Unstructured, error) {
	gvr, sub, err := c.resource(apiVersion, resource)
	if err != nil {
		return nil, err
	}
	ri := c.client.GetDynamicInterface().Resource(gvr)
	if namespace != "" {
		return ri.Namespace(namespace).Get(context.TODO(), name, metav1.GetOptions{}, sub...)
	}
	return ri.Get(context.TODO(), name, metav1.GetOptions{}, sub...)
}

func (c *clusterContext) ListResources(apiVersion, resource, namespace string, l map[string]string) (*unstructured.UnstructuredList, error) {
	gvr, _, err := c.resource(apiVersion, resource)
	if err != nil {
		return nil, err
	}
	sel := labels.Everything()
	if len(l) > 0 {
		sel = labels.SelectorFromSet(l)
	}
	ri := c.client.GetDynamicInterface().Resource(gvr)
	if namespace != "" {
		return ri.Namespace(namespace).List(context.TODO(), metav1.ListOptions{LabelSelector: sel.String()})
	}
	return ri.List(context.TODO(), metav1.ListOptions{LabelSelector: sel.String()})
}

func (c *clusterContext) GetHTTPMocks() map[string]any { return nil }

func (c *clusterContext) Clone() libs.Context {
	return &clusterContext{FakeContextProvider: c.FakeContextProvider.Clone().(*libs.FakeContextProvider), client: c.client}
}

// contextLoader loads a rule's context entries in a test: values first (init), then
// the test's canned apiCall responses, its global context entries and its cluster, as
// the CLI's context loader (cmd/cli/kubectl-kyverno/store/contextloader.go) does.
func (d *testData) contextLoader(pol kyvernov1.PolicyInterface, rule kyvernov1.Rule, init engineapi.Initializer) engineapi.ContextLoader {
	opts := []factories.ContextLoaderFactoryOptions{factories.WithInitializer(init)}
	if d.gctx != nil {
		opts = append(opts, factories.WithGlobalContextStore(d.gctx))
	}
	var cm engineapi.ConfigmapResolver
	if d.cluster != nil {
		cm = d.cluster.cm
	}
	inner := factories.DefaultContextLoaderFactory(cm, opts...)(pol, rule)
	return testLoader{inner: inner, data: d, policy: pol.GetName(), rule: rule.Name}
}

type testLoader struct {
	inner        engineapi.ContextLoader
	data         *testData
	policy, rule string
}

func (l testLoader) Load(ctx context.Context, jp jmespath.Interface, _ engineapi.RawClient, _ engineapi.RegistryClientFactory, entries []kyvernov1.ContextEntry, jc enginecontext.Interface) error {
	if err := factories.RunContextLoaderInitializers(l.inner, jc); err != nil {
		return err
	}
	var client engineapi.RawClient
	if l.data.cluster != nil {
		client = l.data.cluster.raw
	}
	remaining := make([]kyvernov1.ContextEntry, 0, len(entries))
	for _, entry := range entries {
		switch {
		case entry.APICall != nil && len(l.data.apiCalls) > 0:
			done, err := l.mockAPICall(jp, entry, jc)
			if err != nil {
				return err
			}
			if done {
				continue
			}
			if err := l.refuseService(entry, client); err != nil {
				return err
			}
			remaining = append(remaining, withDefaultMethod(entry))
		case entry.ImageRegistry != nil:
			// The CLI would ask the registry; gitgate never does.
			if v, err := jc.Query(strconv.Quote(entry.Name)); err == nil && v != nil {
				continue // supplied by the values file
			}
			return &NeedsClusterDataError{Policy: l.policy, Rule: l.rule, Entry: entry.Name, Source: "imageRegistry"}
		case entry.APICall != nil:
			if err := l.refuseService(entry, client); err != nil {
				return err
			}
			remaining = append(remaining, withDefaultMethod(entry))
		default:
			// apiCall and configMap entries without clusterResources, and
			// globalReference entries without globalContextEntries, are not loaded
			// (Kyverno's loader skips them), as in the CLI.
			remaining = append(remaining, entry)
		}
	}
	return factories.LoadContextLoaderEntriesWithoutInitializers(l.inner, ctx, jp, client, nil, remaining, jc)
}

// mockAPICall answers an apiCall entry from the test's apiCallResponses when one
// matches its URL (service.url, else urlPath, variables substituted) and method, as the
// CLI's context loader does; false when none matches.
func (l testLoader) mockAPICall(jp jmespath.Interface, entry kyvernov1.ContextEntry, jc enginecontext.Interface) (bool, error) {
	ac, err := variables.SubstituteAllInType(logr.Discard(), jc, entry.APICall.DeepCopy())
	if err != nil {
		return false, fmt.Errorf("failed to substitute variables in apiCall context entry %q: %w", entry.Name, err)
	}
	url := ac.URLPath
	if ac.Service != nil {
		url = ac.Service.URL
	}
	if url == "" {
		return false, nil
	}
	method := string(ac.Method)
	if method == "" {
		method = "GET"
	}
	m, ok := l.data.apiCalls[method+":"+url]
	if !ok {
		if m, ok = l.data.apiCalls[url]; !ok {
			return false, nil
		}
	}
	if m.status < 200 || m.status >= 300 {
		return false, fmt.Errorf("HTTP %d from apiCall mock for context entry %q (v1 apiCall treats non-2xx as failure)", m.status, entry.Name)
	}
	data, err := json.Marshal(m.body)
	if err != nil {
		return false, err
	}
	if ac.JMESPath != "" {
		var raw any
		if err := json.Unmarshal(data, &raw); err != nil {
			return false, fmt.Errorf("failed to unmarshal mock body for %q: %w", entry.Name, err)
		}
		res, err := jp.Search(ac.JMESPath, raw)
		if err != nil {
			return false, fmt.Errorf("failed to apply JMESPath %q for context entry %q: %w", ac.JMESPath, entry.Name, err)
		}
		if data, err = json.Marshal(res); err != nil {
			return false, err
		}
	}
	return true, jc.AddContextEntry(entry.Name, data)
}

// withDefaultMethod is an apiCall entry with its method defaulted to GET, as the CLI
// loads policies with their schema's defaults (Kyverno's fake API refuses a call
// without a method).
func withDefaultMethod(entry kyvernov1.ContextEntry) kyvernov1.ContextEntry {
	if entry.APICall == nil || entry.APICall.Method != "" {
		return entry
	}
	e := *entry.DeepCopy()
	e.APICall.Method = "GET"
	return e
}

// refuseService stops an apiCall entry that calls a service (service.url) the test's
// apiCallResponses do not answer from being loaded with a cluster: Kyverno's loader
// would send the request (so would the CLI); gitgate never contacts anything. Without
// clusterResources the loader skips the entry, as the CLI's does.
func (l testLoader) refuseService(entry kyvernov1.ContextEntry, client engineapi.RawClient) error {
	if client == nil || entry.APICall.Service == nil {
		return nil
	}
	return fmt.Errorf("context entry %q calls the service %s, which gitgate never contacts (kyverno test would); answer it in the test's apiCallResponses", entry.Name, entry.APICall.Service.URL)
}

// selectorLabels are the labels the values file's namespaceSelector gives a namespace:
// with them the CLI does not read the namespace from the test's cluster.
func selectorLabels(v *Values, ns string) map[string]string {
	if v == nil {
		return nil
	}
	for _, s := range v.NamespaceSelectors {
		if s.Name == ns {
			return s.Labels
		}
	}
	return nil
}
