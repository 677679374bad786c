package remote

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var ctx = context.Background()

func standardRepo(t testing.TB) *helmRepo {
	return newHelmRepo(t,
		chartSpec{name: "app", version: "1.0.0"},
		chartSpec{name: "app", version: "1.2.0", absolute: true},
		chartSpec{name: "app", version: "1.3.0-rc.1"},
		chartSpec{name: "app", version: "2.0.0"},
		chartSpec{name: "other", version: "0.1.0"},
	)
}

func TestHTTPRepositoryResolves(t *testing.T) {
	h := standardRepo(t)
	f := newFetcher(t, testSettings(t, ""))
	for _, tc := range []struct{ version, want string }{
		{"1.0.0", "1.0.0"},             // exact, relative URL
		{"1.2.0", "1.2.0"},             // exact, absolute URL
		{"^1.0", "1.2.0"},              // range: newest match, prerelease left out
		{"1.*", "1.2.0"},               // wildcard
		{">=1.3.0-0 <2", "1.3.0-rc.1"}, // a constraint naming a prerelease admits it
		{"", "2.0.0"},                  // latest stable
		{"*", "2.0.0"},
	} {
		c, err := f.Chart(ctx, ChartRef{Repo: h.srv.URL, Name: "app", Version: tc.version})
		if err != nil {
			t.Fatalf("%q: %v", tc.version, err)
		}
		if c.Version != tc.want {
			t.Errorf("%q resolved to %s, want %s", tc.version, c.Version, tc.want)
		}
		if got := chartVersion(t, c.Archive); got != "app@"+tc.want {
			t.Errorf("%q: archive is %s", tc.version, got)
		}
		if c.Digest != digestOf(c.Archive) {
			t.Errorf("%q: digest %s is not the archive's", tc.version, c.Digest)
		}
	}
	// The index was read once for all of them.
	if index := h.indexReads.Load(); index != 1 {
		t.Errorf("index.yaml read %d times, want 1", index)
	}
	res := f.Resolved()
	if len(res) != 7 {
		t.Fatalf("Resolved: %d entries, want 7: %+v", len(res), res)
	}
	for i := 1; i < len(res); i++ {
		if res[i-1].Constraint > res[i].Constraint {
			t.Errorf("Resolved not sorted: %+v", res)
		}
	}
	if _, err := f.Chart(ctx, ChartRef{Repo: h.srv.URL, Name: "app", Version: "9.9.9"}); err == nil || !strings.Contains(err.Error(), "9.9.9") {
		t.Errorf("missing version: %v", err)
	}
	if _, err := f.Chart(ctx, ChartRef{Repo: h.srv.URL, Name: "nope", Version: "1.0.0"}); err == nil || !strings.Contains(err.Error(), `no chart "nope"`) {
		t.Errorf("missing chart: %v", err)
	}
}

func TestDigestMismatchRefused(t *testing.T) {
	h := newHelmRepo(t, chartSpec{name: "app", version: "1.0.0", badDigest: true})
	s := testSettings(t, "")
	f := newFetcher(t, s)
	_, err := f.Chart(ctx, ChartRef{Repo: h.srv.URL, Name: "app", Version: "1.0.0"})
	if err == nil || !strings.Contains(err.Error(), "refusing") || !strings.Contains(err.Error(), h.srv.URL) {
		t.Fatalf("want a refused digest naming the URL, got %v", err)
	}
	if _, ok := f.cache.getRef(chartKey(h.srv.URL, "app", "1.0.0")); ok {
		t.Error("a refused chart was recorded")
	}
	entries, _ := os.ReadDir(filepath.Join(s.CacheDir, "sha256"))
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(s.CacheDir, "sha256", e.Name()))
		if len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b {
			t.Errorf("the refused archive was stored as %s", e.Name())
		}
	}
}

func TestCacheReuseWithServerStopped(t *testing.T) {
	h := standardRepo(t)
	s := testSettings(t, "")
	f := newFetcher(t, s)
	want := map[string]string{}
	for _, v := range []string{"1.0.0", "^1.0", ""} {
		c, err := f.Chart(ctx, ChartRef{Repo: h.srv.URL, Name: "app", Version: v})
		if err != nil {
			t.Fatal(err)
		}
		want[v] = c.Digest
	}
	h.srv.Close()
	before := h.requests.Load()
	for _, offline := range []bool{false, true} {
		s.Offline = offline
		g := newFetcher(t, s)
		for v, d := range want {
			c, err := g.Chart(ctx, ChartRef{Repo: h.srv.URL, Name: "app", Version: v})
			if err != nil {
				t.Fatalf("offline=%v %q: %v", offline, v, err)
			}
			if c.Digest != d || digestOf(c.Archive) != d {
				t.Errorf("offline=%v %q: digest %s, want %s", offline, v, c.Digest, d)
			}
		}
	}
	if n := h.requests.Load() - before; n != 0 {
		t.Errorf("%d requests with a warm cache", n)
	}
}

func TestOfflineEmptyCache(t *testing.T) {
	h := standardRepo(t)
	s := testSettings(t, "")
	s.Offline = true
	f := newFetcher(t, s)
	for _, v := range []string{"1.0.0", "^1"} {
		_, err := f.Chart(ctx, ChartRef{Repo: h.srv.URL, Name: "app", Version: v})
		var oe *OfflineError
		if !errors.As(err, &oe) || !strings.Contains(oe.URL, h.srv.URL) || !strings.Contains(err.Error(), "index") {
			t.Errorf("%q: want an OfflineError naming the index of %s, got %v", v, h.srv.URL, err)
		}
	}
	if _, err := f.File(ctx, h.srv.URL+"/index.yaml"); !errors.As(err, new(*OfflineError)) {
		t.Errorf("File offline: %v", err)
	}
	// Not just unused: the client itself cannot connect.
	if _, _, err := f.get(ctx, h.srv.URL+"/index.yaml", nil); err == nil {
		t.Error("an offline Fetcher's client connected")
	}
	if n := h.requests.Load(); n != 0 {
		t.Errorf("offline: %d requests reached the server", n)
	}
}

func TestNotAllowed(t *testing.T) {
	h := standardRepo(t)
	s := testSettings(t, "")
	s.Allow = []string{"charts.example.com"}
	f := newFetcher(t, s)
	_, err := f.Chart(ctx, ChartRef{Repo: h.srv.URL, Name: "app", Version: "1.0.0"})
	var re *RefusedError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "remotes.allow") {
		t.Fatalf("want a refusal naming remotes.allow, got %v", err)
	}
	if !strings.HasPrefix(re.Allow, "http://127.0.0.1:") {
		t.Errorf("suggested key %q, want http://127.0.0.1:port", re.Allow)
	}
	// The private address is refused at dial time even when the host name is allowed.
	s.Allow = []string{"http://localhost"}
	g := newFetcher(t, s)
	local := strings.Replace(h.srv.URL, "127.0.0.1", "localhost", 1)
	if err := g.Check(local); err != nil {
		t.Fatalf("Check(%s): %v", local, err)
	}
	_, err = g.Chart(ctx, ChartRef{Repo: local, Name: "app", Version: "1.0.0"})
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "loopback") || !strings.Contains(re.URL, local) {
		t.Errorf("localhost: want a loopback refusal, got %v", err)
	}
	if n := h.requests.Load(); n != 0 {
		t.Errorf("%d requests reached a server that is not allowed", n)
	}
}

func TestCheck(t *testing.T) {
	f := newFetcher(t, Settings{
		Allow:    []string{"charts.example.com", "ghcr.io/org/charts", "http://plain.internal:8080", "10.1.0.0/16", "github.com/org/repo"},
		CacheDir: t.TempDir(), HelmRepositoryConfig: "/nonexistent", RegistryConfig: "/nonexistent",
	})
	for _, tc := range []struct {
		url   string
		ok    bool
		allow string
	}{
		{"https://charts.example.com/stable", true, ""},
		{"https://CHARTS.example.com:8443/x", true, ""},
		{"http://charts.example.com", false, "http://charts.example.com"},
		{"oci://ghcr.io/org/charts", true, ""},
		{"ghcr.io/org/charts/sub", true, ""},
		{"ghcr.io/org/chartsx", false, "ghcr.io"},
		{"oci://ghcr.io/other", false, "ghcr.io"},
		{"http://plain.internal:8080/x", true, ""},
		{"http://plain.internal:9090/x", false, "http://plain.internal:9090"},
		{"https://10.1.2.3/x", true, ""},
		{"https://10.2.0.1/x", false, "10.2.0.1"},
		{"git@github.com:org/repo.git", true, ""},
		{"https://github.com/org/repo.gitx", false, "github.com"},
		{"https://github.com/org/repo//path?ref=v1", true, ""},
		{"git::https://github.com/org/repo//path?ref=v1", true, ""},
		{"github.com/org/repo/path?ref=v1", true, ""},
		{"git@github.com:org/repo/path", true, ""},
		{"https://github.com/org/other", false, "github.com"},
		{"ftp://charts.example.com/x", false, ""},
		{"file:///etc/passwd", false, ""},
	} {
		err := f.Check(tc.url)
		if tc.ok != (err == nil) {
			t.Errorf("Check(%s) = %v, want ok=%v", tc.url, err, tc.ok)
			continue
		}
		var re *RefusedError
		if err != nil && (!errors.As(err, &re) || re.Allow != tc.allow) {
			t.Errorf("Check(%s) = %#v, want the key %q suggested", tc.url, err, tc.allow)
		}
	}
}

func TestRedirectToDisallowedHost(t *testing.T) {
	elsewhere := standardRepo(t)
	h := standardRepo(t)
	target := strings.Replace(elsewhere.srv.URL, "127.0.0.1", "localhost", 1)
	h.handle = func(w http.ResponseWriter, r *http.Request) bool {
		http.Redirect(w, r, target+r.URL.Path, http.StatusFound)
		return true
	}
	f := newFetcher(t, testSettings(t, ""))
	_, err := f.Chart(ctx, ChartRef{Repo: h.srv.URL, Name: "app", Version: "1.0.0"})
	var re *RefusedError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "redirected") || !strings.Contains(err.Error(), "localhost") {
		t.Fatalf("want a refused redirect naming localhost, got %v", err)
	}
	if n := elsewhere.requests.Load(); n != 0 {
		t.Errorf("%d requests reached the redirect target", n)
	}
}

func TestHugeAndEndlessResponses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request)
	}{
		{"huge", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(int64(1)<<40))
			w.Write(make([]byte, 1<<16))
		}},
		{"endless", func(w http.ResponseWriter, r *http.Request) {
			chunk := make([]byte, 32<<10)
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHelmRepo(t)
			h.handle = func(w http.ResponseWriter, r *http.Request) bool { tc.handler(w, r); return true }
			s := testSettings(t, "")
			s.MaxDownloadBytes = 1 << 20
			s.Timeout = 20 * time.Second
			f := newFetcher(t, s)
			start := time.Now()
			_, err := f.Chart(ctx, ChartRef{Repo: h.srv.URL, Name: "app", Version: "1.0.0"})
			if err == nil || !strings.Contains(err.Error(), "download limit") {
				t.Fatalf("want the download limit, got %v", err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
			if _, err := f.File(ctx, h.srv.URL+"/file.yaml"); err == nil || !strings.Contains(err.Error(), "download limit") {
				t.Errorf("File: want the download limit, got %v", err)
			}
		})
	}
}

func TestCredentials(t *testing.T) {
	const user, password = "robot", "s3cret-Pa55word"
	h := standardRepo(t)
	other := standardRepo(t)
	other.files = h.files // the same archives: packaging again may differ in timestamps
	otherURL := strings.Replace(other.srv.URL, "127.0.0.1", "localhost", 1)
	h.handle = func(w http.ResponseWriter, r *http.Request) bool {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != password {
			w.WriteHeader(http.StatusUnauthorized)
			return true
		}
		if strings.HasPrefix(r.URL.Path, "/charts/other") {
			http.Redirect(w, r, otherURL+r.URL.Path, http.StatusFound)
			return true
		}
		return false
	}
	repoFile := func(pw string) string {
		p := filepath.Join(t.TempDir(), "repositories.yaml")
		os.WriteFile(p, []byte(fmt.Sprintf("apiVersion: v1\nrepositories:\n- name: mine\n  url: %s\n  username: %s\n  password: %s\n", h.srv.URL, user, pw)), 0o600)
		return p
	}

	s := testSettings(t, "")
	s.HelmRepositoryConfig = repoFile("wrong-" + password)
	f := newFetcher(t, s)
	_, err := f.Chart(ctx, ChartRef{Repo: h.srv.URL, Name: "app", Version: "1.0.0"})
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "credentials") {
		t.Fatalf("want a 401 naming the credentials, got %v", err)
	}
	if strings.Contains(err.Error(), password) {
		t.Fatalf("the error shows the password: %v", err)
	}

	s.HelmRepositoryConfig = repoFile(password)
	s.Allow = append(s.Allow, "http://localhost")
	s.Allow = append(s.Allow, "127.0.0.1") // the redirect target's address
	g := newFetcher(t, s)
	if _, err := g.Chart(ctx, ChartRef{Repo: h.srv.URL, Name: "app", Version: "1.0.0"}); err != nil {
		t.Fatalf("right credentials: %v", err)
	}
	// A chart redirected to another host gets there without the credentials.
	if _, err := g.Chart(ctx, ChartRef{Repo: h.srv.URL, Name: "other", Version: "0.1.0"}); err != nil {
		t.Fatalf("redirected chart: %v", err)
	}
	if other.requests.Load() == 0 {
		t.Fatal("the redirect target was not asked")
	}
	for _, a := range other.authHeaders() {
		if a != "" {
			t.Errorf("credentials crossed a redirect to another host: %q", a)
		}
	}
}

func TestToken(t *testing.T) {
	h := standardRepo(t)
	h.handle = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "Bearer tok-123" {
			w.WriteHeader(http.StatusForbidden)
			return true
		}
		return false
	}
	s := testSettings(t, "")
	s.TokenFile = filepath.Join(t.TempDir(), "token")
	os.WriteFile(s.TokenFile, []byte("tok-123\n"), 0o600)
	f := newFetcher(t, s)
	if _, err := f.Chart(ctx, ChartRef{Repo: h.srv.URL, Name: "app", Version: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	// Not across a redirect to another (allowed) host.
	other := standardRepo(t)
	other.files = h.files // the same archives: packaging again may differ in timestamps
	h.handle = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "Bearer tok-123" {
			w.WriteHeader(http.StatusForbidden)
			return true
		}
		if strings.HasPrefix(r.URL.Path, "/charts/other") {
			http.Redirect(w, r, strings.Replace(other.srv.URL, "127.0.0.1", "localhost", 1)+r.URL.Path, http.StatusFound)
			return true
		}
		return false
	}
	s.Allow = append(s.Allow, "http://localhost", "127.0.0.1")
	if _, err := newFetcher(t, s).Chart(ctx, ChartRef{Repo: h.srv.URL, Name: "other", Version: "0.1.0"}); err != nil {
		t.Fatal(err)
	}
	if len(other.authHeaders()) == 0 {
		t.Fatal("the redirect target was not asked")
	}
	for _, a := range other.authHeaders() {
		if a != "" {
			t.Errorf("the token crossed a redirect: %q", a)
		}
	}
	s.TokenFile = ""
	g := newFetcher(t, Settings{Allow: s.Allow, CacheDir: t.TempDir(), HelmRepositoryConfig: s.HelmRepositoryConfig, RegistryConfig: s.RegistryConfig, TokenEnv: "GITGATE_TEST_NO_TOKEN"})
	if _, err := g.Chart(ctx, ChartRef{Repo: h.srv.URL, Name: "app", Version: "1.0.0"}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("without the token: %v", err)
	}
}

func TestCorruptedBlob(t *testing.T) {
	h := standardRepo(t)
	s := testSettings(t, "")
	f := newFetcher(t, s)
	c, err := f.Chart(ctx, ChartRef{Repo: h.srv.URL, Name: "app", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := f.cache.blobPath(c.Digest)
	corrupt := func() {
		b, _ := os.ReadFile(p)
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	corrupt()
	before := h.requests.Load()
	c2, err := newFetcher(t, s).Chart(ctx, ChartRef{Repo: h.srv.URL, Name: "app", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if c2.Digest != c.Digest || digestOf(c2.Archive) != c.Digest {
		t.Errorf("refetched %s, want %s", digestOf(c2.Archive), c.Digest)
	}
	if h.requests.Load() == before {
		t.Error("a corrupted blob was served without a refetch")
	}
	corrupt()
	s.Offline = true
	_, err = newFetcher(t, s).Chart(ctx, ChartRef{Repo: h.srv.URL, Name: "app", Version: "1.0.0"})
	if !errors.As(err, new(*OfflineError)) || !strings.Contains(err.Error(), "corrupted") {
		t.Errorf("offline with a corrupted blob: %v", err)
	}
}

func TestConcurrentFetchersShareCache(t *testing.T) {
	h := standardRepo(t)
	o := newOCIRegistry(t, newRegistry())
	o.push(t, "charts", "oapp", "1.0.0")
	o.push(t, "charts", "oapp", "1.1.0")
	s := testSettings(t, "")
	fs := []*Fetcher{newFetcher(t, s), newFetcher(t, s)}
	refs := []ChartRef{
		{Repo: h.srv.URL, Name: "app", Version: "1.0.0"},
		{Repo: h.srv.URL, Name: "app", Version: "^1"},
		{Repo: h.srv.URL, Name: "app", Version: ""},
		{Repo: h.srv.URL, Name: "other", Version: "0.1.0"},
		{Repo: "oci://" + o.host + "/charts", Name: "oapp", Version: "1.0.0"},
		{Repo: o.host + "/charts", Name: "oapp", Version: "~1"},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 8; i++ {
		for _, f := range fs {
			wg.Add(1)
			go func(f *Fetcher, i int) {
				defer wg.Done()
				for j := range refs {
					r := refs[(i+j)%len(refs)]
					c, err := f.Chart(ctx, r)
					if err == nil && digestOf(c.Archive) != c.Digest {
						err = fmt.Errorf("%s: archive does not match %s", r, c.Digest)
					}
					if err != nil {
						errs <- err
					}
				}
			}(f, i)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	entries, _ := os.ReadDir(filepath.Join(s.CacheDir, "sha256"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestEviction(t *testing.T) {
	c := &cache{dir: t.TempDir(), max: 3500}
	var ds []string
	for i := 0; i < 3; i++ {
		b := []byte(strings.Repeat(fmt.Sprint(i), 1000))
		d, err := c.put(b, "")
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
		p, _ := c.blobPath(d)
		old := time.Now().Add(time.Duration(i-10) * time.Minute)
		os.Chtimes(p, old, old)
	}
	// Three fit. Reading the first makes it the most recently used, so the fourth put
	// evicts the least recently used one, the second, and no more.
	if _, err := c.get(ds[0]); err != nil {
		t.Fatal(err)
	}
	d3, err := c.put([]byte(strings.Repeat("3", 1000)), "")
	if err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]bool{ds[0]: true, ds[1]: false, ds[2]: true, d3: true} {
		_, err := c.get(d)
		if (err == nil) != want {
			t.Errorf("blob %s present=%v, want %v", d[:15], err == nil, want)
		}
	}
	var total int64
	entries, _ := os.ReadDir(filepath.Join(c.dir, "sha256"))
	for _, e := range entries {
		info, _ := e.Info()
		total += info.Size()
	}
	if total > 3500 {
		t.Errorf("cache holds %d bytes, bound 3500", total)
	}
}

func TestFile(t *testing.T) {
	h := standardRepo(t)
	h.files["/files/a.yaml"] = []byte("a: 1\n")
	s := testSettings(t, "")
	f := newFetcher(t, s)
	b, err := f.File(ctx, h.srv.URL+"/files/a.yaml")
	if err != nil || string(b) != "a: 1\n" {
		t.Fatalf("File: %q, %v", b, err)
	}
	h.srv.Close()
	s.Offline = true
	b, err = newFetcher(t, s).File(ctx, h.srv.URL+"/files/a.yaml")
	if err != nil || string(b) != "a: 1\n" {
		t.Fatalf("File from the cache: %q, %v", b, err)
	}
	if _, err := f.File(ctx, "oci://"+strings.TrimPrefix(h.srv.URL, "http://")+"/x"); err == nil {
		t.Error("File fetched an oci URL")
	}
}

func TestPick(t *testing.T) {
	versions := []string{"1.0.0", "v1.2.0", "1.14.3", "1.14.5", "1.15.0-rc.1", "2.0.0", "not-semver"}
	for _, tc := range []struct{ constraint, want string }{
		{"1.0.0", "1.0.0"},
		{"1.0", "1.0.0"},     // Argo CD reads it as a version; semver-equal matches
		{"1.2.0", "v1.2.0"},  // the index's spelling is kept
		{"v1.2.0", "v1.2.0"}, // as written
		{"1.14.*", "1.14.5"},
		{"~1.14.0", "1.14.5"},
		{">=1.0 <1.14", "v1.2.0"},
		{"^1", "1.14.5"}, // no prerelease unless named
		{">=1.15.0-0 <2", "1.15.0-rc.1"},
		{"", "2.0.0"},
		{"3.0.0", ""},
		{"^3", ""},
		{"not a constraint", ""},
	} {
		got, err := pick(versions, tc.constraint)
		if got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("pick(%q) = %q, %v; want %q", tc.constraint, got, err, tc.want)
		}
	}
}

func TestCredentialsInURLNotCached(t *testing.T) {
	const password = "url-Pa55word"
	h := standardRepo(t)
	h.handle = func(w http.ResponseWriter, r *http.Request) bool {
		if _, p, ok := r.BasicAuth(); !ok || p != password {
			w.WriteHeader(http.StatusUnauthorized)
			return true
		}
		return false
	}
	s := testSettings(t, "")
	repoURL := strings.Replace(h.srv.URL, "http://", "http://ci:"+password+"@", 1)
	f := newFetcher(t, s)
	for _, v := range []string{"1.0.0", "^1"} {
		c, err := f.Chart(ctx, ChartRef{Repo: repoURL, Name: "app", Version: v})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(c.URL, password) {
			t.Errorf("Chart.URL shows the password: %s", c.URL)
		}
	}
	for _, r := range f.Resolved() {
		if strings.Contains(r.URL, password) {
			t.Errorf("Resolved shows the password: %s", r.URL)
		}
	}
	filepath.WalkDir(s.CacheDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), password) {
				t.Errorf("%s holds the password", p)
			}
		}
		return nil
	})
	// Warm, offline: the exact version and the range from the records.
	s.Offline = true
	for _, v := range []string{"1.0.0", "^1"} {
		if _, err := newFetcher(t, s).Chart(ctx, ChartRef{Repo: repoURL, Name: "app", Version: v}); err != nil {
			t.Errorf("offline %q: %v", v, err)
		}
	}
	_, err := newFetcher(t, Settings{Allow: s.Allow, CacheDir: t.TempDir(), HelmRepositoryConfig: s.HelmRepositoryConfig, RegistryConfig: s.RegistryConfig, TokenEnv: s.TokenEnv}).Chart(ctx, ChartRef{Repo: strings.Replace(repoURL, password, "wrong", 1), Name: "app", Version: "1.0.0"})
	if err == nil || strings.Contains(err.Error(), "wrong") || !strings.Contains(err.Error(), "401") {
		t.Errorf("a wrong password in the URL: %v", err)
	}
}

// TestChartRepositoryAlias: a Chart.yaml dependency written as @name or alias:name is
// the repository Helm's repositories.yaml names so; an unknown name says where it looked
// and what to do.
func TestChartRepositoryAlias(t *testing.T) {
	h := newHelmRepo(t, chartSpec{name: "app", version: "1.0.0"})
	s := testSettings(t, "")
	s.HelmRepositoryConfig = filepath.Join(t.TempDir(), "repositories.yaml")
	if err := os.WriteFile(s.HelmRepositoryConfig, []byte("apiVersion: \"\"\nrepositories:\n- name: stable\n  url: "+h.srv.URL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFetcher(t, s)
	for _, repo := range []string{"@stable", "alias:stable"} {
		c, err := f.Chart(ctx, ChartRef{Repo: repo, Name: "app", Version: "1.x"})
		if err != nil || c.Version != "1.0.0" {
			t.Errorf("%s: %v", repo, err)
		}
	}
	_, err := f.Chart(ctx, ChartRef{Repo: "@incubator", Name: "app"})
	if err == nil || !strings.Contains(err.Error(), `Helm knows no repository named "incubator"`) || !strings.Contains(err.Error(), s.HelmRepositoryConfig) {
		t.Errorf("unknown alias: %v", err)
	}
}

// TestAllowEntry: the entry a refusal suggests is the one the allow list then reads.
func TestAllowEntry(t *testing.T) {
	for _, tc := range []struct {
		url  string
		repo bool
		want string
	}{
		{"https://charts.example.com/stable", false, "charts.example.com"},
		{"oci://registry.example.com:5000/charts", false, "registry.example.com:5000"},
		{"registry.example.com/charts", false, "registry.example.com"},
		{"http://127.0.0.1:8080/index.yaml", false, "http://127.0.0.1:8080"},
		{"https://user:secret@git.example.com/team/bases.git", true, "git.example.com/team/bases"},
		{"git@github.com:org/repo.git", true, "github.com/org/repo"},
	} {
		got := AllowEntry(tc.url, tc.repo)
		if got != tc.want {
			t.Errorf("AllowEntry(%q, %v) = %q, want %q", tc.url, tc.repo, got, tc.want)
			continue
		}
		f := newFetcher(t, Settings{Allow: []string{got}, CacheDir: t.TempDir(), HelmRepositoryConfig: "/nonexistent", RegistryConfig: "/nonexistent"})
		if err := f.Check(tc.url); err != nil {
			t.Errorf("%s allowed by %q: %v", tc.url, got, err)
		}
	}
}
