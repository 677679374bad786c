package render

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gitgate/gitgate/internal/remote"
	"github.com/gitgate/gitgate/policy"
)

// chartShelf is a Remotes serving charts packaged by Helm's own chartutil.Save, by repo
// and name; a version constraint picks the one version it holds if it satisfies it. It
// records what was asked.
type chartShelf struct {
	mu     sync.Mutex
	charts map[string][]*remote.Chart // repo|name, in the order put
	files  map[string][]byte          // url -> content
	asked  []string
}

func (s *chartShelf) Chart(_ context.Context, ref remote.ChartRef) (*remote.Chart, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, ref.String())
	for _, c := range s.charts[ref.Repo+"|"+ref.Name] {
		if ref.Version == "" || chartutil.IsCompatibleRange(ref.Version, c.Version) {
			out := *c
			out.Ref = ref
			return &out, nil
		}
	}
	return nil, errors.New("no version of " + ref.Name + " matches " + ref.Version)
}

func (s *chartShelf) Check(string) error { return nil }

func (s *chartShelf) File(_ context.Context, url string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, url)
	if data, ok := s.files[url]; ok {
		return data, nil
	}
	return nil, errors.New("no such file")
}

func (s *chartShelf) Git(context.Context, string, string) (*remote.GitTree, error) {
	return nil, errors.New("no repositories on a chart shelf")
}

// put packages files as a chart with Helm and shelves it under repo.
func (s *chartShelf) put(t *testing.T, repo string, files map[string]string) {
	t.Helper()
	dir := t.TempDir()
	helmWriteFiles(t, filepath.Join(dir, "src"), files)
	ch, err := loader.Load(filepath.Join(dir, "src"))
	if err != nil {
		t.Fatal(err)
	}
	tgz, err := chartutil.Save(ch, dir)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if s.charts == nil {
		s.charts = map[string][]*remote.Chart{}
	}
	s.charts[repo+"|"+ch.Name()] = append(s.charts[repo+"|"+ch.Name()], &remote.Chart{Version: ch.Metadata.Version, Digest: "sha256:" + hex.EncodeToString(sum[:]), Archive: data, URL: repo + "/" + filepath.Base(tgz)})
}

// TestRenderRemoteChart: an Argo CD source with chart: renders the fetched chart with
// the values files inside it and the $ref values file of this repository, release name
// the Application's; findings point at chart@version:templates/file and its line.
func TestRenderRemoteChart(t *testing.T) {
	shelf := &chartShelf{}
	shelf.put(t, "https://charts.example.com", map[string]string{
		"Chart.yaml":       "apiVersion: v2\nname: web\nversion: 1.2.3\n",
		"values.yaml":      "replicas: 1\nimage: registry.example.com/web:1.0\nteam: none\n",
		"values-prod.yaml": "replicas: 3\n",
		"templates/deploy.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n" +
			"  replicas: {{ .Values.replicas | quote }}\n  image: {{ .Values.image }}\n  team: {{ .Values.team }}\n",
	})
	repo := writeRepo(t, map[string]string{
		"apps/web.yaml": `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: web-prod, namespace: argocd}
spec:
  project: default
  sources:
  - repoURL: https://charts.example.com
    chart: web
    targetRevision: 1.2.*
    helm:
      valueFiles: [values-prod.yaml, $values/env/prod/web.yaml]
  - repoURL: https://git.example.com/gitops.git
    ref: values
  destination: {server: https://kubernetes.default.svc, namespace: web}
`,
		"env/prod/web.yaml": "team: payments\n",
	})
	opts := DiscoverOptions{RepoURLs: []string{"https://git.example.com/gitops.git"}}
	repo.Remotes = shelf
	d := Plan(t.Context(), repo, opts, 1)
	var chartTarget *Target
	for i, tg := range d.Targets {
		if tg.Chart != nil {
			chartTarget = &d.Targets[i]
		}
	}
	if chartTarget == nil {
		t.Fatalf("no chart target in %+v (errors %v, notices %v)", d.Targets, d.Errors, d.Notices)
	}
	want := Target{Name: "web-prod", Kind: Helm, DefinedIn: "apps/web.yaml", DeployedBy: []string{"web-prod"}, Namespace: "web",
		ReleaseName: "web-prod", ValueFiles: []string{"env/prod/web.yaml"},
		Chart: &RemoteChart{Repo: "https://charts.example.com", Name: "web", Version: "1.2.*", ValueFiles: []string{"values-prod.yaml"}}}
	if diff := cmp.Diff(want, *chartTarget); diff != "" {
		t.Fatalf("target (-want +got)\n%s", diff)
	}
	rs, err := Render(t.Context(), repo, *chartTarget)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("want 1 object, got %d", len(rs))
	}
	got := rs[0]
	if o := got.Origin; o.File != "web@1.2.3:templates/deploy.yaml" || o.Line != 1 || o.Target != "web-prod" {
		t.Errorf("origin %+v, want web@1.2.3:templates/deploy.yaml line 1", o)
	}
	data, _, _ := unstructured.NestedMap(got.Object.Object, "data")
	wantData := map[string]any{"replicas": "3", "image": "registry.example.com/web:1.0", "team": "payments"}
	if diff := cmp.Diff(wantData, data); diff != "" {
		t.Errorf("values (-want +got)\n%s", diff)
	}
	if got.Object.GetName() != "web-prod" || got.Object.GetNamespace() != "web" {
		t.Errorf("release name / namespace: %s/%s", got.Object.GetNamespace(), got.Object.GetName())
	}

	// Without Remotes (remotes.allow names nothing) the target is listed and refused.
	repo.Remotes = nil
	_, err = Render(t.Context(), repo, *chartTarget)
	var re *RemoteError
	if !errors.As(err, &re) || re.URL != "https://charts.example.com" || !strings.Contains(err.Error(), `add "charts.example.com" there`) {
		t.Fatalf("want a *RemoteError naming the repository and the remotes.allow entry to add, got %v", err)
	}
	if st := (Rendered{Target: *chartTarget, Err: err}).Status(); st.Rendered || st.Reason != "remote source" {
		t.Errorf("status %+v", st)
	}
}

// TestRenderChartRemoteDependency: a chart of this repository whose Chart.yaml depends
// on a chart repository is rendered with the dependency fetched at the version its
// Chart.lock pins; a Chart.lock out of step with Chart.yaml is refused as Helm refuses
// it, naming the lock.
func TestRenderChartRemoteDependency(t *testing.T) {
	shelf := &chartShelf{}
	shelf.put(t, "https://charts.example.com/stable", map[string]string{
		"Chart.yaml":           "apiVersion: v2\nname: cache\nversion: 2.1.0\n",
		"values.yaml":          "size: 1\n",
		"templates/cache.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cache\ndata:\n  size: {{ .Values.size | quote }}\n",
	})
	deps := []*chart.Dependency{{Name: "cache", Version: "2.x", Repository: "https://charts.example.com/stable"}}
	lock := []*chart.Dependency{{Name: "cache", Version: "2.1.0", Repository: "https://charts.example.com/stable"}}
	digest, err := helmHashReq(deps, lock)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"app/Chart.yaml":  "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n- name: cache\n  version: 2.x\n  repository: https://charts.example.com/stable\n",
		"app/Chart.lock":  "dependencies:\n- name: cache\n  repository: https://charts.example.com/stable\n  version: 2.1.0\ndigest: " + digest + "\ngenerated: \"2026-01-01T00:00:00Z\"\n",
		"app/values.yaml": "cache:\n  size: 5\n",
	}
	repo := writeRepo(t, files)
	repo.Remotes = shelf
	rs, err := Render(t.Context(), repo, Target{Name: "app", Kind: Helm, Path: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Object.GetName() != "app-cache" || rs[0].Origin.File != "cache@2.1.0:templates/cache.yaml" {
		t.Fatalf("got %d objects: %+v", len(rs), rs)
	}
	if data, _, _ := unstructured.NestedMap(rs[0].Object.Object, "data"); data["size"] != "5" {
		t.Errorf("parent values not applied to the dependency: %v", data)
	}
	if diff := cmp.Diff([]string{"https://charts.example.com/stable cache@2.1.0"}, shelf.asked); diff != "" {
		t.Errorf("fetched (-want +got)\n%s", diff)
	}

	files["app/Chart.yaml"] = strings.Replace(files["app/Chart.yaml"], "version: 2.x", "version: 3.x", 1)
	repo = writeRepo(t, files)
	repo.Remotes = shelf
	_, err = Render(t.Context(), repo, Target{Name: "app", Kind: Helm, Path: "app"})
	if err == nil || !strings.Contains(err.Error(), "app/Chart.lock: the lock file (Chart.lock) is out of sync") {
		t.Fatalf("want the out-of-sync lock refused, got %v", err)
	}
}

// TestRenderKustomizeHelmChartsRepo: a kustomize helmCharts entry with a repo renders the
// chart fetched through Remotes (kustomize would run helm pull); a chart vendored where
// kustomize looks first (chartHome/name-version/name) is used as it is; without Remotes,
// or when Remotes refuses the host, the entry is refused at its file:line.
func TestRenderKustomizeHelmChartsRepo(t *testing.T) {
	shelf := &chartShelf{}
	shelf.put(t, "oci://registry.example.com/charts", map[string]string{
		"Chart.yaml":        "apiVersion: v2\nname: web\nversion: 1.2.3\n",
		"values.yaml":       "size: 1\n",
		"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  size: {{ .Values.size | quote }}\n",
	})
	files := map[string]string{
		"app/kustomization.yaml": "helmCharts:\n- name: web\n  repo: oci://registry.example.com/charts\n  version: 1.2.3\n  releaseName: front\n  valuesInline: {size: 4}\n",
	}
	repo := writeRepo(t, files)
	repo.Remotes = shelf
	tg := Target{Name: "app", Kind: Kustomize, Path: "app"}
	rs, err := Render(t.Context(), repo, tg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Object.GetName() != "front" {
		t.Fatalf("got %+v", rs)
	}
	if data, _, _ := unstructured.NestedMap(rs[0].Object.Object, "data"); data["size"] != "4" {
		t.Errorf("valuesInline not applied: %v", data)
	}
	if diff := cmp.Diff([]string{"oci://registry.example.com/charts web@1.2.3"}, shelf.asked); diff != "" {
		t.Errorf("fetched (-want +got)\n%s", diff)
	}

	// Vendored where kustomize looks first: not fetched.
	files["app/charts/web-1.2.3/web/Chart.yaml"] = "apiVersion: v2\nname: web\nversion: 1.2.3\n"
	files["app/charts/web-1.2.3/web/templates/cm.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: vendored\n"
	vendored := writeRepo(t, files)
	vendored.Remotes = shelf
	shelf.asked = nil
	if rs, err := Render(t.Context(), vendored, tg); err != nil || len(rs) != 1 || rs[0].Object.GetName() != "vendored" || len(shelf.asked) != 0 {
		t.Errorf("vendored chart: %v, %+v, asked %v", err, rs, shelf.asked)
	}

	repo.Remotes = nil
	_, err = Render(t.Context(), repo, tg)
	if err == nil || !strings.Contains(err.Error(), "app/kustomization.yaml:3") || !strings.Contains(err.Error(), `add "registry.example.com" there`) {
		t.Errorf("without remotes: want the entry refused at its line with the allow entry, got %v", err)
	}
	repo.Remotes = refusingRemotes{shelf}
	_, err = Render(t.Context(), repo, tg)
	if err == nil || !strings.Contains(err.Error(), "app/kustomization.yaml:3") || !strings.Contains(err.Error(), "refused for the test") {
		t.Errorf("refused host: want the entry refused at its line with the fetcher's reason, got %v", err)
	}
}

type refusingRemotes struct{ *chartShelf }

func (refusingRemotes) Check(url string) error {
	return &remote.RefusedError{URL: url, Reason: "refused for the test"}
}

// TestCompareRemoteChartVersion: a merge request that moves an Application's chart from
// 1.2.3 to 1.3.0 makes exactly that target affected; base and head render their own
// versions, and the change carries both resolutions.
func TestCompareRemoteChartVersion(t *testing.T) {
	shelf := &chartShelf{}
	for _, v := range []string{"1.2.3", "1.3.0"} {
		shelf.put(t, "https://charts.example.com", map[string]string{
			"Chart.yaml":        "apiVersion: v2\nname: web\nversion: " + v + "\n",
			"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: {{ .Chart.Version | quote }}\n",
		})
	}
	app := func(v string) string {
		return "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web, namespace: argocd}\nspec:\n  project: default\n" +
			"  source: {repoURL: https://charts.example.com, chart: web, targetRevision: " + v + "}\n" +
			"  destination: {server: https://kubernetes.default.svc, namespace: web}\n"
	}
	other := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other, namespace: x}\n"
	base := writeRepo(t, map[string]string{"apps/web.yaml": app("1.2.3"), "plain/cm.yaml": other})
	head := writeRepo(t, map[string]string{"apps/web.yaml": app("1.3.0"), "plain/cm.yaml": other})
	base.Remotes, head.Remotes = shelf, shelf
	gate, err := policy.OpenGate(policy.GateOptions{NoBuiltin: true})
	if err != nil {
		t.Fatal(err)
	}
	rep := Compare(t.Context(), base, head, CompareOptions{Workers: 1, Check: policy.DefaultCheckOptions(), BaseGate: gate, HeadGate: gate})
	if len(rep.Errors) > 0 {
		t.Fatalf("errors: %v", rep.Errors)
	}
	var names []string
	for _, tc := range rep.Changes.Targets {
		names = append(names, tc.Name)
	}
	// apps: the directory holding the Application, itself checked as a manifest.
	if diff := cmp.Diff([]string{"apps", "web"}, names); diff != "" {
		t.Fatalf("affected (-want +got)\n%s", diff)
	}
	tc := rep.Changes.Targets[1]
	if len(tc.BaseRemotes) != 1 || tc.BaseRemotes[0].Resolved != "1.2.3" || len(tc.HeadRemotes) != 1 || tc.HeadRemotes[0].Resolved != "1.3.0" {
		t.Errorf("remotes: base %+v head %+v", tc.BaseRemotes, tc.HeadRemotes)
	}
	if !strings.Contains(tc.Diff, "-  version: 1.2.3") || !strings.Contains(tc.Diff, "+  version: 1.3.0") {
		t.Errorf("the rendered diff does not show the version change:\n%s", tc.Diff)
	}
	if len(rep.Targets) != 2 || len(rep.Targets[1].Remotes) != 1 || rep.Targets[1].Remotes[0].String() != "chart web 1.3.0 from https://charts.example.com" {
		t.Errorf("head target status: %+v", rep.Targets)
	}
}

// gitShelf serves other repositories' trees from directories, by URL.
type gitShelf struct {
	chartShelf
	trees map[string]string // url -> dir
}

func (g *gitShelf) Git(_ context.Context, url, ref string) (*remote.GitTree, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked = append(g.asked, url+"@"+ref)
	dir, ok := g.trees[url]
	if !ok {
		return nil, errors.New("no such repository")
	}
	return &remote.GitTree{URL: url, Ref: ref, Commit: "0123456789abcdef0123456789abcdef01234567", Dir: dir}, nil
}

// TestRenderOtherRepository: Applications whose source is another Git repository are
// targets rendered from its tree (fetched through Remotes; its kind told from it): a
// kustomize overlay, and a chart with a values file of its own repository and a $ref
// values file of this one. Origins are url@commit:file. Without Remotes the targets are
// still listed and refused naming the remotes.allow entry.
func TestRenderOtherRepository(t *testing.T) {
	other := writeRepo(t, map[string]string{
		"deploy/prod/kustomization.yaml": "resources: [cm.yaml]\nnamePrefix: prod-\n",
		"deploy/prod/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n",
		"chart/Chart.yaml":               "apiVersion: v2\nname: api\nversion: 0.1.0\n",
		"chart/values.yaml":              "size: 1\nteam: none\n",
		"chart/values-prod.yaml":         "size: 3\n",
		"chart/templates/cm.yaml":        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: api\ndata:\n  size: {{ .Values.size | quote }}\n  team: {{ .Values.team }}\n",
	})
	const otherURL = "https://git.example.com/team/app.git"
	files := map[string]string{
		"apps/app.yaml": `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: app, namespace: argocd}
spec:
  project: default
  source: {repoURL: ` + otherURL + `, targetRevision: v1.2.0, path: deploy/prod}
  destination: {server: https://kubernetes.default.svc, namespace: app}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: api, namespace: argocd}
spec:
  project: default
  sources:
  - repoURL: ` + otherURL + `
    targetRevision: main
    path: chart
    helm: {valueFiles: [values-prod.yaml, $here/env/api.yaml]}
  - {repoURL: https://git.example.com/gitops.git, ref: here}
  destination: {server: https://kubernetes.default.svc, namespace: api}
`,
		"env/api.yaml": "team: payments\n",
	}
	repo := writeRepo(t, files)
	shelf := &gitShelf{trees: map[string]string{otherURL: other.Dir}}
	repo.Remotes = shelf
	d := Plan(t.Context(), repo, DiscoverOptions{RepoURLs: []string{"https://git.example.com/gitops.git"}}, 1)
	got := map[string]Target{}
	for _, tg := range d.Targets {
		got[tg.Name] = tg
	}
	app, api := got["app"], got["api"]
	if app.Kind != Kustomize || app.Repo == nil || app.Repo.Revision != "v1.2.0" || app.Path != "deploy/prod" {
		t.Fatalf("app target: %+v (all: %+v, errors %v)", app, d.Targets, d.Errors)
	}
	if api.Kind != Helm || api.Repo == nil || !cmp.Equal(api.Repo.ValueFiles, []string{"chart/values-prod.yaml"}) || !cmp.Equal(api.ValueFiles, []string{"env/api.yaml"}) {
		t.Fatalf("api target: %+v", api)
	}
	rs, err := Render(t.Context(), repo, app)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Object.GetName() != "prod-app" || rs[0].Origin.File != otherURL+"@0123456789ab:deploy/prod/cm.yaml" {
		t.Fatalf("app: %d objects, %+v", len(rs), rs)
	}
	rs, err = Render(t.Context(), repo, api)
	if err != nil {
		t.Fatal(err)
	}
	if data, _, _ := unstructured.NestedMap(rs[0].Object.Object, "data"); len(rs) != 1 || data["size"] != "3" || data["team"] != "payments" {
		t.Fatalf("api: %+v", rs)
	}
	// What a target fetched is recorded.
	r := All(t.Context(), repo, []Target{app}, 1, nil, nil)[0]
	if len(r.Remotes) != 1 || r.Remotes[0].String() != "git v1.2.0 = 0123456789abcdef0123456789abcdef01234567 from "+otherURL {
		t.Errorf("recorded: %+v", r.Remotes)
	}

	repo.Remotes = nil
	d = Plan(t.Context(), repo, DiscoverOptions{RepoURLs: []string{"https://git.example.com/gitops.git"}}, 1)
	var listed []string
	for _, tg := range d.Targets {
		if tg.Repo != nil {
			listed = append(listed, tg.Name+" "+string(tg.Kind))
			_, err := Render(t.Context(), repo, tg)
			if err == nil || !strings.Contains(err.Error(), `add "git.example.com" there`) {
				t.Errorf("%s without remotes: %v", tg.Name, err)
			}
		}
	}
	// Without the tree, the kind is what the source says (helm) or a directory.
	if diff := cmp.Diff([]string{"api helm", "app directory"}, listed); diff != "" {
		t.Errorf("listed without remotes (-want +got)\n%s", diff)
	}
}

// TestRenderKustomizeRemoteBase: kustomize remote resources through Remotes: a Git base
// (https://host/org/repo//dir?ref=) read from the fetched tree, confined to it; a file
// by https; a configMapGenerator file by https keeping kustomize's key (the URL's base
// name). Without Remotes each is refused at its file:line naming the entry to add.
func TestRenderKustomizeRemoteBase(t *testing.T) {
	bases := writeRepo(t, map[string]string{
		"web/kustomization.yaml": "resources: [deploy.yaml]\n",
		"web/deploy.yaml":        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n",
	})
	const repoURL = "https://git.example.com/team/bases"
	shelf := &gitShelf{trees: map[string]string{repoURL: bases.Dir}}
	shelf.files = map[string][]byte{
		"https://files.example.com/extra.yaml": []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: extra\n"),
		"https://files.example.com/app.conf":   []byte("level=debug\n"),
	}
	repo := writeRepo(t, map[string]string{
		"app/kustomization.yaml": "namePrefix: prod-\nresources:\n- " + repoURL + "//web?ref=v1.2.0\n- https://files.example.com/extra.yaml\n" +
			"configMapGenerator:\n- name: conf\n  files: [https://files.example.com/app.conf]\n",
	})
	tg := Target{Name: "app", Kind: Kustomize, Path: "app"}
	repo.Remotes = shelf
	rs, err := Render(t.Context(), repo, tg)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]policy.Resource{}
	for _, r := range rs {
		got[r.Object.GetKind()+"/"+r.Object.GetName()] = r
	}
	if len(rs) != 3 || got["ConfigMap/prod-web"].Object == nil || got["Service/prod-extra"].Object == nil {
		t.Fatalf("got %v", maps.Keys(got))
	}
	var conf map[string]any
	for k, r := range got {
		if strings.HasPrefix(k, "ConfigMap/prod-conf-") {
			conf, _, _ = unstructured.NestedMap(r.Object.Object, "data")
		}
	}
	if conf["app.conf"] != "level=debug\n" {
		t.Errorf("generator file: %v", conf)
	}
	if !slices.Contains(shelf.asked, repoURL+"@v1.2.0") {
		t.Errorf("asked %v", shelf.asked)
	}

	// A base that cannot be fetched is named at its line, with the fetcher's reason.
	shelf.trees = nil
	_, err = Render(t.Context(), repo, tg)
	if err == nil || !strings.Contains(err.Error(), "app/kustomization.yaml:3: resources[0]: no such repository") {
		t.Errorf("unfetchable base: %v", err)
	}

	repo.Remotes = nil
	_, err = Render(t.Context(), repo, tg)
	for _, want := range []string{"app/kustomization.yaml:3: resources[0]", `add "git.example.com/team/bases" there`, "app/kustomization.yaml:4: resources[1]", `add "files.example.com" there`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("without remotes: want %q in %v", want, err)
		}
	}
}
