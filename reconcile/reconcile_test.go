package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/policy"
	"github.com/gitgate/gitgate/render"
	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func obj(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestCompare(t *testing.T) {
	desired := `apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop, resourceVersion: "7", generation: 3}
spec:
  replicas: 2
  template:
    metadata: {annotations: {restartedAt: "1"}}
    spec: {containers: [{name: api, image: a:1}]}
`
	live := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
  resourceVersion: "9"
  generation: 4
  managedFields:
  - manager: gitgate
    operation: Apply
    fieldsType: FieldsV1
    fieldsV1: {"f:spec": {"f:template": {"f:spec": {"f:containers": {}}}}}
  - manager: kubectl
    operation: Update
    fieldsType: FieldsV1
    fieldsV1: {"f:spec": {"f:replicas": {}}}
  - manager: kube-controller-manager
    operation: Update
    fieldsType: FieldsV1
    fieldsV1: {"f:spec": {"f:paused": {}}}
spec:
  replicas: 5
  paused: true
  template:
    metadata: {annotations: {restartedAt: "2"}}
    spec: {containers: [{name: api, image: a:2}]}
status: {replicas: 5}
`
	tests := []struct {
		name     string
		pointers []string
		managers []string
		want     []FieldDiff
	}{
		{
			name: "every difference, owners named",
			want: []FieldDiff{
				{Path: "/spec/paused", Live: true, LiveSet: true, Managers: []string{"kube-controller-manager"}},
				{Path: "/spec/replicas", Desired: float64(2), Live: float64(5), DesiredSet: true, LiveSet: true, Managers: []string{"kubectl"}},
				{Path: "/spec/template/metadata/annotations/restartedAt", Desired: "1", Live: "2", DesiredSet: true, LiveSet: true},
				{Path: "/spec/template/spec/containers/0/image", Desired: "a:1", Live: "a:2", DesiredSet: true, LiveSet: true},
			},
		},
		{
			name:     "ignoreDifferences pointers and managers",
			pointers: []string{"/spec/template/metadata/annotations/restartedAt"},
			managers: []string{"kube-controller-manager", "kubectl"},
			want: []FieldDiff{
				{Path: "/spec/template/spec/containers/0/image", Desired: "a:1", Live: "a:2", DesiredSet: true, LiveSet: true},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// sigs.k8s.io/yaml decodes numbers as float64, as JSON does.
			got := Compare(obj(t, desired), obj(t, live), tc.pointers, tc.managers)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Compare (-want +got):\n%s", diff)
			}
		})
	}
	if got := Compare(obj(t, desired), obj(t, desired), nil, nil); len(got) != 0 {
		t.Errorf("an object against itself: %v", got)
	}
}

func TestCompareMasksSecrets(t *testing.T) {
	d := obj(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: c2VjcmV0, same: c2FtZQ==}\n")
	l := obj(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: s, annotations: {kubectl.kubernetes.io/last-applied-configuration: '{\"data\":{\"password\":\"b3RoZXI=\"}}'}}\ndata: {password: b3RoZXI=, same: c2FtZQ==}\n")
	got := Compare(d, l, nil, nil)
	shape := regexp.MustCompile(`^<masked [0-9a-f]{8}>$`)
	if len(got) != 1 || got[0].Path != "/data/password" {
		t.Fatalf("Secret diff: %+v", got)
	}
	ds, _ := got[0].Desired.(string)
	ls, _ := got[0].Live.(string)
	if !shape.MatchString(ds) || !shape.MatchString(ls) || ds == ls {
		t.Fatalf("Secret diff not masked as two different digests: %+v", got)
	}
	if ds != policy.MaskValue("c2VjcmV0") {
		t.Errorf("Compare masks differently from policy.MaskValue: %q", ds)
	}
	b, _ := json.Marshal(got)
	if bytes.Contains(b, []byte("c2VjcmV0")) || bytes.Contains(b, []byte("b3RoZXI=")) {
		t.Fatalf("Secret data printed: %s", b)
	}
	r := liveResource(l, "app")
	b, _ = json.Marshal(r.Object.Object)
	if bytes.Contains(b, []byte("b3RoZXI=")) || bytes.Contains(b, []byte("c2FtZQ==")) || l.Object["data"].(map[string]any)["password"] != "b3RoZXI=" {
		t.Fatalf("liveResource: %s (original %v)", b, l.Object["data"])
	}
}

func TestSortApply(t *testing.T) {
	mk := func(kind, name, wave string) policy.Resource {
		u := &unstructured.Unstructured{Object: map[string]any{}}
		u.SetAPIVersion("v1")
		u.SetKind(kind)
		u.SetName(name)
		if wave != "" {
			u.SetAnnotations(map[string]string{"argocd.argoproj.io/sync-wave": wave})
		}
		return policy.Resource{Object: u}
	}
	rs := []policy.Resource{
		mk("Deployment", "web", ""), mk("Job", "migrate", "-1"), mk("Service", "web", ""),
		mk("CustomResourceDefinition", "crd", "5"), mk("ConfigMap", "late", "2"), mk("Namespace", "shop", "3"),
		mk("Widget", "w", ""),
	}
	sortApply(rs)
	var got []string
	for _, r := range rs {
		got = append(got, r.Object.GetKind()+"/"+r.Object.GetName())
	}
	want := []string{"Namespace/shop", "CustomResourceDefinition/crd", "Job/migrate", "Service/web", "Deployment/web", "Widget/w", "ConfigMap/late"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("apply order (-want +got):\n%s", diff)
	}
}

func TestInventoryName(t *testing.T) {
	for app, want := range map[string]string{
		"api-dev":                    "gitgate-inventory-api-dev",
		"order-service/production":   "gitgate-inventory-order-service-production-",
		"Charts/API (values-prod)":   "gitgate-inventory-charts-api-values-prod-",
		strings.Repeat("x", 80):      "gitgate-inventory-" + strings.Repeat("x", 36) + "-",
		"order-service/production/1": "gitgate-inventory-order-service-production-1-",
	} {
		got := inventoryName(app)
		if !strings.HasPrefix(got, want) || len(got) > 63 {
			t.Errorf("inventoryName(%q) = %q, want prefix %q and at most 63 characters", app, got, want)
		}
	}
	if inventoryName("a/b") == inventoryName("a-b") {
		t.Error("a/b and a-b share an inventory")
	}
}

func TestAppsFromApplicationSet(t *testing.T) {
	dir, _ := filepath.Abs("../testdata/gitops")
	repo := render.Repo{FS: os.DirFS(dir), Dir: dir}
	apps, _, err := Apps(context.Background(), repo, AppsOptions{
		Discover: render.DiscoverOptions{RepoURLs: []string{"https://gitlab.internal.company.com/platform/gitops-manifests.git"}},
		Select:   []string{"api-cart-000-*"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range apps {
		names = append(names, a.Name)
		if !a.Prune || !a.SelfHeal || !a.CreateNamespace || a.DefinedIn != "argocd/applicationset.yaml" || len(a.Targets) != 1 {
			t.Errorf("%s: %+v, want prune, selfHeal, CreateNamespace from the ApplicationSet's template", a.Name, a)
		}
	}
	if diff := cmp.Diff([]string{"api-cart-000-dev", "api-cart-000-production", "api-cart-000-staging"}, names); diff != "" {
		t.Errorf("apps (-want +got):\n%s", diff)
	}
	if _, _, err := Apps(context.Background(), repo, AppsOptions{Select: []string{"nothing-*"}}); err == nil {
		t.Error("a --app that matches nothing is not an error")
	}
}

func TestReadSyncPolicy(t *testing.T) {
	spec := obj(t, `syncPolicy:
  automated: {prune: false, selfHeal: true}
  syncOptions: [Validate=false, CreateNamespace=true]
ignoreDifferences:
- group: apps
  kind: Deployment
  jsonPointers: [/spec/replicas]
  managedFieldsManagers: [hpa]
`).Object
	a := &App{}
	readSyncPolicy(a, spec)
	want := &App{SelfHeal: true, CreateNamespace: true, Ignore: []IgnoreRule{{Group: "apps", Kind: "Deployment", JSONPointers: []string{"/spec/replicas"}, ManagedFieldsManagers: []string{"hpa"}}}}
	if diff := cmp.Diff(want, a); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !a.Ignore[0].matches("apps", "Deployment", "x", "y") || a.Ignore[0].matches("", "Deployment", "x", "y") {
		t.Error("ignore rule matching")
	}
}

func sampleReport() *DriftReport {
	return &DriftReport{
		Revision:  "0123456789abcdef",
		Generated: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
		Apps: []AppDrift{
			{App: "api-dev", Objects: []ObjectDrift{
				{Ref: Ref{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "api-dev", Name: "api"}, State: Modified,
					Diffs:         []FieldDiff{{Path: "/spec/replicas", Desired: 2.0, Live: 5.0, DesiredSet: true, LiveSet: true, Managers: []string{"kubectl"}}},
					Violations:    []policy.Result{{Kind: "Deployment", Namespace: "api-dev", Name: "api", Policy: "disallow-privilege-escalation", Rule: "check", Status: policy.StatusFail, Action: policy.Enforce, Message: "<escalation> & more"}},
					DriftViolates: true},
				{Ref: Ref{APIVersion: "v1", Kind: "Secret", Namespace: "api-dev", Name: "db"}, State: Modified,
					Diffs: []FieldDiff{{Path: "/data/password", Desired: policy.MaskValue("c2VjcmV0"), Live: policy.MaskValue("b3RoZXI="), DesiredSet: true, LiveSet: true}}},
				{Ref: Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "api-dev", Name: "old"}, State: Extra},
				{Ref: Ref{APIVersion: "v1", Kind: "Service", Namespace: "api-dev", Name: "api"}, State: InSync},
			}},
			{App: "worker-dev", Objects: []ObjectDrift{{Ref: Ref{APIVersion: "v1", Kind: "Service", Namespace: "worker-dev", Name: "w"}, State: InSync}}},
		},
	}
}

func TestDriftCounts(t *testing.T) {
	r := sampleReport()
	if c := r.Apps[0].Counts(); c != (Counts{InSync: 1, Modified: 2, Extra: 1, Violating: 1, DriftViolating: 1}) {
		t.Errorf("counts = %+v", c)
	}
	if r.ExitCode() != 1 {
		t.Errorf("exit code = %d, want 1", r.ExitCode())
	}
	var clean DriftReport
	clean.Apps = []AppDrift{r.Apps[1]}
	if clean.ExitCode() != 0 {
		t.Errorf("in sync: exit %d", clean.ExitCode())
	}
}

func TestPolicyReports(t *testing.T) {
	reps := PolicyReports(sampleReport())
	if len(reps) != 2 {
		t.Fatalf("%d reports, want one per app and namespace", len(reps))
	}
	pr := reps[0]
	if pr.GetKind() != "PolicyReport" || pr.GetNamespace() != "api-dev" || pr.GetName() != "gitgate-api-dev" {
		t.Fatalf("report %s %s/%s", pr.GetKind(), pr.GetNamespace(), pr.GetName())
	}
	sum := pr.Object["summary"].(map[string]any)
	if sum["fail"] != int64(4) || sum["pass"] != int64(1) {
		t.Errorf("summary = %v, want 3 drift failures + 1 policy failure, 1 pass", sum)
	}
	b, _ := json.Marshal(pr)
	if !strings.Contains(string(b), `"drift":"true"`) {
		t.Errorf("the policy failure caused by drift is not marked: %s", b)
	}
	var u unstructured.Unstructured
	if err := json.Unmarshal(b, &u.Object); err != nil {
		t.Fatal(err)
	}
}

func TestSyncExitCode(t *testing.T) {
	for _, tc := range []struct {
		phases []Phase
		errs   []string
		want   int
	}{
		{[]Phase{Synced, OutOfSync}, nil, 0},
		{[]Phase{Synced, Blocked}, nil, 1},
		{[]Phase{Blocked, Failed}, nil, 2},
		{nil, []string{"x"}, 2},
	} {
		r := &SyncResult{Errors: tc.errs}
		for _, p := range tc.phases {
			r.Apps = append(r.Apps, AppResult{Phase: p})
		}
		if got := r.ExitCode(); got != tc.want {
			t.Errorf("%v %v: exit %d, want %d", tc.phases, tc.errs, got, tc.want)
		}
	}
	conflict := &SyncResult{Apps: []AppResult{{Phase: OutOfSync, Objects: []ObjectResult{{Action: Conflict}}}}}
	if conflict.ExitCode() != 2 {
		t.Errorf("an unresolved conflict: exit %d, want 2", conflict.ExitCode())
	}
}

func TestFingerprint(t *testing.T) {
	live := obj(t, `apiVersion: v1
kind: ConfigMap
metadata:
  name: c
  managedFields:
  - {manager: gitgate, operation: Apply, apiVersion: v1, fieldsType: FieldsV1, fieldsV1: {"f:data": {"f:a": {}}}}
  - {manager: kubectl, operation: Update, apiVersion: v1, fieldsType: FieldsV1, fieldsV1: {"f:data": {"f:b": {}}}}
data: {a: "1", b: "2"}
`)
	desired := obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: \"1\"}\n")
	fp := fingerprint(hashObject(desired), live)
	if fp == "" || fp != fingerprint(hashObject(desired.DeepCopy()), live.DeepCopy()) {
		t.Fatalf("fingerprint not stable: %q", fp)
	}
	changed := desired.DeepCopy()
	changed.Object["data"] = map[string]any{"a": "2"}
	if fingerprint(hashObject(changed), live) == fp {
		t.Error("a changed desired object keeps the fingerprint")
	}
	taken := live.DeepCopy()
	mf := taken.GetManagedFields()
	mf[0].FieldsV1.Raw = []byte(`{"f:data":{}}`) // another manager took f:a over
	taken.SetManagedFields(mf)
	if fingerprint(hashObject(desired), taken) == fp {
		t.Error("a field taken over by another manager keeps the fingerprint")
	}
	taken.SetManagedFields(mf[1:])
	if fingerprint(hashObject(desired), taken) != "" {
		t.Error("an object without gitgate's entry has a fingerprint")
	}
}
