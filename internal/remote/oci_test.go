package remote

import (
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOCIChart(t *testing.T) {
	o := newOCIRegistry(t, newRegistry())
	want := map[string][]byte{}
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0+build.1", "2.0.0-beta.1"} {
		want[v] = o.push(t, "charts", "oapp", v)
	}
	s := testSettings(t, "")
	f := newFetcher(t, s)
	for _, tc := range []struct{ repo, version, want string }{
		{"oci://" + o.host + "/charts", "1.0.0", "1.0.0"},
		{o.host + "/charts", "1.1.0", "1.1.0"}, // Argo CD's form, no scheme
		{"oci://" + o.host + "/charts/", "~1", "1.2.0+build.1"},
		{o.host + "/charts", "1.2.0+build.1", "1.2.0+build.1"}, // + is _ in the tag
		{o.host + "/charts", "", "1.2.0+build.1"},
		{o.host + "/charts", ">=2.0.0-0", "2.0.0-beta.1"},
	} {
		c, err := f.Chart(ctx, ChartRef{Repo: tc.repo, Name: "oapp", Version: tc.version})
		if err != nil {
			t.Fatalf("%s %q: %v", tc.repo, tc.version, err)
		}
		if c.Version != tc.want || string(c.Archive) != string(want[tc.want]) || c.Digest != digestOf(want[tc.want]) {
			t.Errorf("%s %q: got %s %s, want %s", tc.repo, tc.version, c.Version, c.Digest, tc.want)
		}
		if got := chartVersion(t, c.Archive); got != "oapp@"+tc.want {
			t.Errorf("archive is %s", got)
		}
	}
	if _, err := f.Chart(ctx, ChartRef{Repo: o.host + "/charts", Name: "oapp", Version: "3.0.0"}); err == nil {
		t.Error("a missing tag resolved")
	}

	// Warm: the registry stopped, online and offline, exact and range.
	o.srv.Close()
	before := o.requests.Load()
	for _, offline := range []bool{false, true} {
		s.Offline = offline
		g := newFetcher(t, s)
		for _, v := range []string{"1.0.0", "~1"} {
			c, err := g.Chart(ctx, ChartRef{Repo: "oci://" + o.host + "/charts", Name: "oapp", Version: v})
			if err != nil {
				t.Fatalf("warm offline=%v %q: %v", offline, v, err)
			}
			if digestOf(c.Archive) != c.Digest {
				t.Errorf("warm %q: digest mismatch", v)
			}
		}
	}
	if n := o.requests.Load() - before; n != 0 {
		t.Errorf("%d requests with a warm cache", n)
	}
}

func TestOCIOfflineAndRefused(t *testing.T) {
	o := newOCIRegistry(t, newRegistry())
	o.push(t, "charts", "oapp", "1.0.0")
	s := testSettings(t, "")
	s.Offline = true
	_, err := newFetcher(t, s).Chart(ctx, ChartRef{Repo: o.host + "/charts", Name: "oapp", Version: "1.0.0"})
	if !errors.As(err, new(*OfflineError)) || !strings.Contains(err.Error(), o.host) {
		t.Errorf("offline, empty cache: %v", err)
	}
	s.Offline = false
	s.Allow = []string{"ghcr.io"}
	_, err = newFetcher(t, s).Chart(ctx, ChartRef{Repo: "oci://" + o.host + "/charts", Name: "oapp", Version: "1.0.0"})
	if !errors.As(err, new(*RefusedError)) {
		t.Errorf("not allowed: %v", err)
	}
	// An https-only entry for the loopback address: the registry is plain http, so the
	// fetcher speaks https to it and fails, it never downgrades.
	s.Allow = []string{"127.0.0.1"}
	if _, err = newFetcher(t, s).Chart(ctx, ChartRef{Repo: "oci://" + o.host + "/charts", Name: "oapp", Version: "1.0.0"}); err == nil {
		t.Error("an https-only entry fetched over plain http")
	}
}

func TestOCITamperedLayerRefused(t *testing.T) {
	reg := newRegistry()
	var layer string
	o := newOCIRegistry(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if layer != "" && strings.HasSuffix(r.URL.Path, "/blobs/"+layer) && r.Method == http.MethodGet {
			w.Write([]byte("not the chart"))
			return
		}
		reg.ServeHTTP(w, r)
	}))
	layer = digestOf(o.push(t, "charts", "oapp", "1.0.0"))
	s := testSettings(t, "")
	_, err := newFetcher(t, s).Chart(ctx, ChartRef{Repo: o.host + "/charts", Name: "oapp", Version: "1.0.0"})
	if err == nil || !strings.Contains(err.Error(), "refusing") || !strings.Contains(err.Error(), layer) {
		t.Fatalf("want the tampered layer refused, got %v", err)
	}
	if p, _ := (&cache{dir: s.CacheDir}).blobPath(digestOf([]byte("not the chart"))); fileExists(p) {
		t.Error("the tampered layer was stored")
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// A registry that wants a bearer token from its realm, which wants the registry
// config's basic credentials: the token handshake of real registries.
func TestOCITokenHandshake(t *testing.T) {
	const user, password = "robot", "reg-Pa55word"
	reg := newRegistry()
	var realm string
	o := newOCIRegistry(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			if r.URL.Query().Get("scope") != "repository:charts/oapp:pull" {
				http.Error(w, "scope", http.StatusBadRequest)
				return
			}
			w.Write([]byte(`{"token":"reg-token-1"}`))
			return
		}
		if r.Method == http.MethodGet && r.Header.Get("Authorization") != "Bearer reg-token-1" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`",service="test",scope="repository:charts/oapp:pull"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	realm = o.srv.URL + "/token"
	archive := o.push(t, "charts", "oapp", "1.0.0")
	config := func(pw string) string {
		p := filepath.Join(t.TempDir(), "config.json")
		auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pw))
		os.WriteFile(p, []byte(`{"auths":{"`+o.host+`":{"auth":"`+auth+`"}}}`), 0o600)
		return p
	}
	s := testSettings(t, "")
	s.Allow = []string{"http://" + o.host + "/charts"} // a host/path entry covers the registry's API and realm
	s.RegistryConfig = config(password)
	c, err := newFetcher(t, s).Chart(ctx, ChartRef{Repo: o.host + "/charts", Name: "oapp", Version: "^1"})
	if err != nil || string(c.Archive) != string(archive) {
		t.Fatalf("with the registry's credentials: %v", err)
	}
	if _, err := newFetcher(t, s).Chart(ctx, ChartRef{Repo: o.host + "/other", Name: "oapp", Version: "1.0.0"}); !errors.As(err, new(*RefusedError)) {
		t.Errorf("a repository outside the allowed path: %v", err)
	}
	s.RegistryConfig = config("wrong-" + password)
	s.CacheDir = t.TempDir()
	_, err = newFetcher(t, s).Chart(ctx, ChartRef{Repo: o.host + "/charts", Name: "oapp", Version: "1.0.0"})
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "credentials") {
		t.Fatalf("wrong credentials: want a 401 naming the credentials, got %v", err)
	}
	if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString([]byte(user+":wrong-"+password))) {
		t.Errorf("the error shows the password: %v", err)
	}
}
