package remote

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/repo"
	"sigs.k8s.io/yaml"
)

// packageChart packages a chart with Helm's own code and returns the .tgz.
func packageChart(t testing.TB, name, version string) []byte {
	t.Helper()
	c := &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: name, Version: version, Type: "application"},
		Templates: []*chart.File{{
			Name: "templates/cm.yaml",
			Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  version: " + version + "\n"),
		}},
	}
	dir := t.TempDir()
	p, err := chartutil.Save(c, dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// chartVersion loads an archive with Helm's loader and returns its name and version.
func chartVersion(t testing.TB, archive []byte) string {
	t.Helper()
	c, err := loader.LoadArchive(bytes.NewReader(archive))
	if err != nil {
		t.Fatalf("archive does not load: %v", err)
	}
	return c.Metadata.Name + "@" + c.Metadata.Version
}

// helmRepo is an httptest Helm repository: index.yaml plus charts, every request
// counted.
type helmRepo struct {
	srv        *httptest.Server
	requests   atomic.Int64
	indexReads atomic.Int64
	mu         sync.Mutex
	files      map[string][]byte
	// handle, when set, answers before the files (auth checks, redirects).
	handle func(w http.ResponseWriter, r *http.Request) bool
	// auth is every Authorization header seen.
	auth []string
}

type chartSpec struct {
	name, version string
	// absolute: the index names the chart by an absolute URL (else relative).
	absolute bool
	// badDigest: the index's digest does not match the archive.
	badDigest bool
}

func newHelmRepo(t testing.TB, charts ...chartSpec) *helmRepo {
	t.Helper()
	h := &helmRepo{files: map[string][]byte{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		if r.URL.Path == "/index.yaml" {
			h.indexReads.Add(1)
		}
		h.mu.Lock()
		h.auth = append(h.auth, r.Header.Get("Authorization"))
		handle := h.handle
		b, ok := h.files[r.URL.Path]
		h.mu.Unlock()
		if handle != nil && handle(w, r) {
			return
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(h.srv.Close)
	idx := repo.NewIndexFile()
	for _, c := range charts {
		archive := packageChart(t, c.name, c.version)
		file := fmt.Sprintf("charts/%s-%s.tgz", c.name, c.version)
		h.files["/"+file] = archive
		base := ""
		if c.absolute {
			base = h.srv.URL + "/charts"
		}
		digest := strings.TrimPrefix(digestOf(archive), "sha256:")
		if c.badDigest {
			digest = strings.Repeat("0", 64)
		}
		if err := idx.MustAdd(&chart.Metadata{APIVersion: "v2", Name: c.name, Version: c.version}, file, base, digest); err != nil {
			t.Fatal(err)
		}
	}
	idx.SortEntries()
	b, err := yaml.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	h.files["/index.yaml"] = b
	return h
}

func (h *helmRepo) authHeaders() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.auth...)
}

// settings for a test: the cache in a temporary directory, the loopback address
// allowed with plain http, no credential files from the environment.
func testSettings(t testing.TB, cache string) Settings {
	t.Helper()
	if cache == "" {
		cache = t.TempDir()
	}
	none := filepath.Join(t.TempDir(), "none")
	return Settings{
		Allow:                []string{"http://127.0.0.1"},
		CacheDir:             cache,
		HelmRepositoryConfig: none,
		RegistryConfig:       none,
		TokenEnv:             "GITGATE_TEST_NO_TOKEN",
	}
}

func newFetcher(t testing.TB, s Settings) *Fetcher {
	t.Helper()
	f, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// ociRegistry is go-containerregistry's in-process registry on 127.0.0.1.
type ociRegistry struct {
	srv      *httptest.Server
	requests atomic.Int64
	host     string
}

func newRegistry() http.Handler {
	return registry.New(registry.Logger(log.New(io.Discard, "", 0)))
}

func newOCIRegistry(t testing.TB, handler http.Handler) *ociRegistry {
	t.Helper()
	o := &ociRegistry{}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.requests.Add(1)
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(o.srv.Close)
	o.host = strings.TrimPrefix(o.srv.URL, "http://")
	return o
}

// push uploads a chart as Helm does: a config blob, the chart layer, and a manifest
// tagged with the version (+ written as _). It returns the archive.
func (o *ociRegistry) push(t testing.TB, repoPath, name, version string) []byte {
	t.Helper()
	archive := packageChart(t, name, version)
	config, _ := json.Marshal(map[string]string{"name": name, "version": version, "apiVersion": "v2"})
	repoName := strings.Trim(repoPath+"/"+name, "/")
	for _, blob := range [][]byte{config, archive} {
		u := fmt.Sprintf("%s/v2/%s/blobs/uploads/?digest=%s", o.srv.URL, repoName, digestOf(blob))
		resp, err := http.Post(u, "application/octet-stream", bytes.NewReader(blob))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("push blob: %s", resp.Status)
		}
	}
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     ociManifest,
		"config":        map[string]any{"mediaType": helmChartConfig, "digest": digestOf(config), "size": len(config)},
		"layers":        []any{map[string]any{"mediaType": helmChartLayer, "digest": digestOf(archive), "size": len(archive)}},
	}
	mb, _ := json.Marshal(m)
	tag := strings.ReplaceAll(version, "+", "_")
	req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/v2/%s/manifests/%s", o.srv.URL, repoName, tag), bytes.NewReader(mb))
	req.Header.Set("Content-Type", ociManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push manifest: %s", resp.Status)
	}
	return archive
}
