package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/repo"
	"sigs.k8s.io/yaml"
)

// chartServer is a Helm repository on 127.0.0.1 serving charts packaged by Helm's own
// Go packages, every request counted.
type chartServer struct {
	*httptest.Server
	requests atomic.Int64
}

func newChartServer(t *testing.T, name string, versions ...string) *chartServer {
	t.Helper()
	var specs []chartSpecOf
	for _, v := range versions {
		specs = append(specs, chartSpecOf{name, v})
	}
	return serveCharts(t, specs)
}

type chartSpecOf struct{ name, version string }

// serveCharts serves the charts, each packaged with Helm's chartutil.Save.
func serveCharts(t testing.TB, specs []chartSpecOf) *chartServer {
	t.Helper()
	files := map[string][]byte{}
	idx := repo.NewIndexFile()
	for _, spec := range specs {
		name, v := spec.name, spec.version
		c := &chart.Chart{
			Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: name, Version: v, Type: "application"},
			Templates: []*chart.File{{Name: "templates/deploy.yaml", Data: []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n" +
				"  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - name: web\n" +
				"        image: {{ .Values.image }}\n")}},
			Values: map[string]any{"image": "registry.example.com/web:" + v},
		}
		p, err := chartutil.Save(c, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		file := "charts/" + filepath.Base(p)
		files["/"+file] = data
		sum := sha256.Sum256(data)
		if err := idx.MustAdd(c.Metadata, file, "", hex.EncodeToString(sum[:])); err != nil {
			t.Fatal(err)
		}
	}
	idx.SortEntries()
	b, err := yaml.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	files["/index.yaml"] = b
	s := &chartServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		data, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(s.Close)
	return s
}

type remoteReport struct {
	Results []struct {
		Origin struct{ File string }
		Kind   string
	}
	Targets []struct {
		Name     string
		Rendered bool
		Reason   string
		Objects  int
		Remotes  []struct{ Kind, Name, Requested, Resolved, Digest string }
	}
}

func runJSON(t *testing.T, args ...string) (int, remoteReport, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	var rep remoteReport
	if out.Len() > 0 {
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
	}
	return code, rep, errb.String()
}

// TestCheckRemoteChart is a remote chart end to end against a Helm repository on
// 127.0.0.1: an Application's chart at a version range resolves and renders through the
// cache (its status names the version and digest); with the server stopped, --offline
// checks the same from the cache; --offline with an empty cache names what is missing
// (exit 2); a repository whose remotes.allow does not name the host is refused with
// the entry to add and no request reaches the server; `gitgate fetch` fills a cache
// that --offline then uses.
func TestCheckRemoteChart(t *testing.T) {
	t.Setenv("CI", "1")
	t.Setenv("HELM_REPOSITORY_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	t.Setenv("HELM_REGISTRY_CONFIG", filepath.Join(t.TempDir(), "none.json"))
	srv := newChartServer(t, "web", "1.2.3", "1.2.9", "1.3.0")
	dir := t.TempDir()
	app := "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web, namespace: argocd}\nspec:\n  project: default\n" +
		"  source: {repoURL: '" + srv.URL + "', chart: web, targetRevision: 1.2.*}\n  destination: {server: https://kubernetes.default.svc, namespace: web}\n"
	writeFiles(t, dir, map[string]string{
		".gitgate.yaml": "registries: [registry.example.com]\nremotes:\n  allow: ['http://127.0.0.1']\n",
		"apps/web.yaml": app,
	})
	cache := t.TempDir()
	webStatus := func(rep remoteReport) (bool, string, string) {
		for _, tg := range rep.Targets {
			if tg.Name == "web" {
				v := ""
				if len(tg.Remotes) == 1 {
					v = tg.Remotes[0].Resolved
				}
				return tg.Rendered && tg.Objects == 1, v, tg.Reason
			}
		}
		return false, "", "no target"
	}

	code, rep, stderr := runJSON(t, "check", "--cache-dir", cache, "-o", "json", dir)
	if ok, v, _ := webStatus(rep); code > 1 || !ok || v != "1.2.9" {
		t.Fatalf("online: exit %d, web rendered %v at %q; stderr:\n%s", code, ok, v, stderr)
	}
	online := srv.requests.Load()
	if online == 0 {
		t.Fatal("no request reached the chart repository")
	}
	// Findings in the chart point at chart@version:file, never joined onto the
	// directory the user named.
	if len(rep.Results) == 0 {
		t.Fatal("no findings on the chart's Deployment")
	}
	for _, r := range rep.Results {
		if r.Kind == "Deployment" && r.Origin.File != "web@1.2.9:templates/deploy.yaml" {
			t.Errorf("finding at %q, want web@1.2.9:templates/deploy.yaml", r.Origin.File)
		}
	}

	srv.Close()
	code, rep, stderr = runJSON(t, "check", "--offline", "--cache-dir", cache, "-o", "json", dir)
	if ok, v, _ := webStatus(rep); code > 1 || !ok || v != "1.2.9" {
		t.Fatalf("offline from the cache: exit %d, web rendered %v at %q; stderr:\n%s", code, ok, v, stderr)
	}

	code, rep, stderr = runJSON(t, "check", "--offline", "--cache-dir", t.TempDir(), "-o", "json", dir)
	if ok, _, reason := webStatus(rep); code != exitError || ok || reason != "not in the cache (offline)" || !strings.Contains(stderr, "is not in the cache and --offline never connects") {
		t.Fatalf("offline, empty cache: exit %d, reason %q; stderr:\n%s", code, reason, stderr)
	}
	if srv.requests.Load() != online {
		t.Errorf("requests after the server stopped: %d, want %d", srv.requests.Load(), online)
	}

	// Not allowed: refused before any connection, naming the entry to add.
	srv2 := newChartServer(t, "web", "1.2.3")
	writeFiles(t, dir, map[string]string{
		".gitgate.yaml": "registries: [registry.example.com]\nremotes:\n  allow: [charts.example.com]\n",
		"apps/web.yaml": strings.ReplaceAll(app, srv.URL, srv2.URL),
	})
	code, rep, stderr = runJSON(t, "check", "--cache-dir", t.TempDir(), "-o", "json", dir)
	if ok, _, reason := webStatus(rep); code != exitError || ok || reason != "remote source refused" || !strings.Contains(stderr, `"http://127.0.0.1`) {
		t.Fatalf("not allowed: exit %d, reason %q; stderr:\n%s", code, reason, stderr)
	}
	if n := srv2.requests.Load(); n != 0 {
		t.Errorf("a host not in remotes.allow got %d requests", n)
	}

	// gitgate fetch fills the cache that --offline then reads.
	writeFiles(t, dir, map[string]string{".gitgate.yaml": "registries: [registry.example.com]\nremotes:\n  allow: ['http://127.0.0.1']\n"})
	warm := t.TempDir()
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"fetch", "--cache-dir", warm, dir}, &out, &errb); code != exitClean || !strings.Contains(out.String(), "chart web 1.2.* = 1.2.3 from "+srv2.URL) {
		t.Fatalf("fetch: exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	srv2.Close()
	code, rep, stderr = runJSON(t, "check", "--offline", "--cache-dir", warm, "-o", "json", dir)
	if ok, v, _ := webStatus(rep); code > 1 || !ok || v != "1.2.3" {
		t.Fatalf("offline after fetch: exit %d, web rendered %v at %q; stderr:\n%s", code, ok, v, stderr)
	}
}

// TestCheckRemoteChartValuesLine: a finding in a fetched chart points at
// chart@version:template and also at the line of this repository's values file the
// offending value came from (multi-source $values); text output says the same.
func TestCheckRemoteChartValuesLine(t *testing.T) {
	t.Setenv("CI", "1")
	t.Setenv("HELM_REPOSITORY_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	t.Setenv("HELM_REGISTRY_CONFIG", filepath.Join(t.TempDir(), "none.json"))
	srv := newChartServer(t, "web", "1.0.0")
	dir := t.TempDir()
	const self = "https://git.example.com/platform/gitops.git"
	writeFiles(t, dir, map[string]string{
		".gitgate.yaml":    "registries: [registry.example.com]\nrepoURLs: ['" + self + "']\nremotes:\n  allow: ['http://127.0.0.1']\n",
		"values/prod.yaml": "# production\nreplicas: 3\nimage: unlisted.example.org/web:prod\n",
		"apps/web.yaml": "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web, namespace: argocd}\nspec:\n  project: default\n  sources:\n" +
			"  - {repoURL: '" + srv.URL + "', chart: web, targetRevision: 1.0.0, helm: {valueFiles: [$values/values/prod.yaml]}}\n" +
			"  - {repoURL: '" + self + "', targetRevision: HEAD, ref: values}\n" +
			"  destination: {server: https://kubernetes.default.svc, namespace: web}\n",
	})
	t.Chdir(dir)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"check", "--cache-dir", t.TempDir(), "-o", "json", "."}, &out, &errb)
	var rep struct {
		Results []struct {
			Origin     struct{ File string }
			Kind       string
			Status     string
			Message    string
			Path       string
			ValuesFrom []struct {
				Origin struct {
					File         string
					Line, Column int
				}
				Key string
			}
		}
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d: %v\n%s\n%s", code, err, out.String(), errb.String())
	}
	found := false
	for _, r := range rep.Results {
		if r.Status != "fail" || !strings.Contains(r.Message, "allowed registry") {
			continue
		}
		found = true
		if r.Origin.File != "web@1.0.0:templates/deploy.yaml" {
			t.Errorf("finding at %s, want web@1.0.0:templates/deploy.yaml", r.Origin.File)
		}
		if len(r.ValuesFrom) != 1 || r.ValuesFrom[0].Origin.File != "values/prod.yaml" || r.ValuesFrom[0].Origin.Line != 3 || r.ValuesFrom[0].Origin.Column != 8 || r.ValuesFrom[0].Key != "image" {
			t.Errorf("value of %s from %+v, want values/prod.yaml:3:8 (image)", r.Path, r.ValuesFrom)
		}
	}
	if code != exitViolations || !found {
		t.Fatalf("exit %d, registry finding %v\n%s\n%s", code, found, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	run(context.Background(), []string{"check", "--cache-dir", t.TempDir(), "../" + filepath.Base(dir)}, &out, &errb)
	if want := "value from ../" + filepath.Base(dir) + "/values/prod.yaml:3:8 (image)"; !strings.Contains(out.String(), want) {
		t.Errorf("text output does not name the values line:\n%s", out.String())
	}
}
