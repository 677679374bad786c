package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Media types of a Helm chart in an OCI registry.
const (
	helmChartLayer  = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	helmChartConfig = "application/vnd.cncf.helm.config.v1+json"
	ociManifest     = "application/vnd.oci.image.manifest.v1+json"
)

// isOCI says whether a chart repository is an OCI registry: oci://, or Argo CD's
// registry host and path without a scheme.
func isOCI(repo string) bool {
	return strings.HasPrefix(repo, "oci://") || !strings.Contains(repo, "://")
}

// ociRoot is the canonical form oci://host/path of an OCI repository.
func ociRoot(repo string) string {
	return "oci://" + strings.Trim(strings.TrimPrefix(repo, "oci://"), "/")
}

// ociRepo is the registry's base URL (https, or http when an allow entry written with
// http:// names it) and the repository path of a chart.
func (f *Fetcher) ociRepo(repo, name string) (base, path string) {
	rest := strings.TrimPrefix(ociRoot(repo), "oci://")
	host, p, _ := strings.Cut(rest, "/")
	path = strings.Trim(p+"/"+name, "/")
	scheme := "https"
	if f.check("http://"+rest) == nil {
		scheme = "http"
	}
	return scheme + "://" + host, path
}

// registryGet is get with the registry token handshake: a 401 with a Bearer challenge
// asks the realm (which must be allowed too) for a token and tries once more.
func (f *Fetcher) registryGet(ctx context.Context, u, accept string) ([]byte, http.Header, error) {
	h := http.Header{}
	if accept != "" {
		h.Set("Accept", accept)
	}
	pu, _ := url.Parse(u)
	f.mu.Lock()
	tok := f.tokens[pu.Host]
	f.mu.Unlock()
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	as := registryRepoURL(u)
	b, hdr, err := f.getAs(ctx, u, as, h)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
		return b, hdr, err
	}
	challenge := hdr.Get("WWW-Authenticate")
	if !strings.HasPrefix(strings.ToLower(challenge), "bearer ") {
		return b, hdr, err
	}
	tok, terr := f.registryToken(ctx, challenge, pu.Host, as)
	if terr != nil {
		return nil, nil, fmt.Errorf("%s: %w", redactURL(u), terr)
	}
	f.mu.Lock()
	f.tokens[pu.Host] = tok
	f.mu.Unlock()
	h.Set("Authorization", "Bearer "+tok)
	return f.getAs(ctx, u, as, h)
}

// registryRepoURL is the oci:// repository a registry API URL (/v2/<repo>/...) serves,
// so a host/path allow entry covers its API; other URLs as they are.
func registryRepoURL(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return u
	}
	rest, ok := strings.CutPrefix(pu.Path, "/v2/")
	if !ok {
		return u
	}
	for _, marker := range []string{"/manifests/", "/blobs/", "/tags/"} {
		if i := strings.LastIndex(rest, marker); i >= 0 {
			rest = rest[:i]
			break
		}
	}
	return "oci://" + pu.Host + "/" + rest
}

// registryToken asks a Bearer challenge's realm for a token (with the credentials for
// the realm's own host, if any).
func (f *Fetcher) registryToken(ctx context.Context, challenge, registryHost, registryAs string) (string, error) {
	params := map[string]string{}
	for _, part := range splitChallenge(challenge[len("bearer "):]) {
		k, v, ok := strings.Cut(part, "=")
		if ok {
			params[strings.ToLower(strings.TrimSpace(k))] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	realm := params["realm"]
	if realm == "" {
		return "", errors.New("the registry asks for a token but names no realm")
	}
	ru, err := url.Parse(realm)
	if err != nil {
		return "", fmt.Errorf("token realm %q: %v", redactURL(realm), err)
	}
	q := ru.Query()
	for _, k := range []string{"service", "scope"} {
		if params[k] != "" {
			q.Set(k, params[k])
		}
	}
	ru.RawQuery = q.Encode()
	checkAs := ru.String()
	if strings.EqualFold(ru.Host, registryHost) { // the registry's own realm: as allowed as the registry
		checkAs = registryAs
	}
	b, _, err := f.getAs(ctx, ru.String(), checkAs, nil)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	var t struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(b, &t) != nil || (t.Token == "" && t.AccessToken == "") {
		return "", fmt.Errorf("token realm %s gave no token", redactURL(realm))
	}
	if t.Token == "" {
		t.Token = t.AccessToken
	}
	f.mu.Lock()
	f.secrets = append(f.secrets, t.Token)
	f.mu.Unlock()
	return t.Token, nil
}

// splitChallenge splits a=b,c="d,e" on the commas outside quotes.
func splitChallenge(s string) []string {
	var parts []string
	quoted, start := false, 0
	for i, r := range s {
		switch r {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

// ociTags lists a repository's tags (reused within IndexTTL, any age offline).
func (f *Fetcher) ociTags(ctx context.Context, repo, name string) ([]string, error) {
	base, path := f.ociRepo(repo, name)
	key := "tags\x00" + ociRoot(repo) + "/" + name
	f.mu.Lock()
	tags, ok := f.tags[key]
	f.mu.Unlock()
	if ok {
		return tags, nil
	}
	if r, ok := f.cache.getRef(key); ok && f.fresh(r) {
		if b, err := f.cache.get(r.Digest); err == nil && json.Unmarshal(b, &tags) == nil {
			f.mu.Lock()
			f.tags[key] = tags
			f.mu.Unlock()
			return tags, nil
		}
	}
	u := base + "/v2/" + path + "/tags/list?n=1000"
	if f.settings.Offline {
		return nil, &OfflineError{URL: redactURL(ociRoot(repo) + "/" + name), What: "the tag list"}
	}
	tags = nil
	for page := 0; u != "" && page < 100; page++ {
		b, hdr, err := f.registryGet(ctx, u, "")
		if err != nil {
			return nil, err
		}
		var tl struct {
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal(b, &tl); err != nil {
			return nil, fmt.Errorf("%s: not a tag list: %v", redactURL(u), err)
		}
		tags = append(tags, tl.Tags...)
		u = nextLink(u, hdr.Get("Link"))
	}
	b, _ := json.Marshal(tags)
	d, err := f.cache.put(b, "")
	if err != nil {
		return nil, err
	}
	if err := f.cache.putRef(ref{Key: key, Digest: d, Time: time.Now()}); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.tags[key] = tags
	f.mu.Unlock()
	return tags, nil
}

// nextLink is the rel="next" URL of a Link header, resolved against u; "" if none.
func nextLink(u, link string) string {
	if link == "" || !strings.Contains(link, `rel="next"`) {
		return ""
	}
	start, end := strings.Index(link, "<"), strings.Index(link, ">")
	if start < 0 || end < start {
		return ""
	}
	base, err := url.Parse(u)
	if err != nil {
		return ""
	}
	next, err := base.Parse(link[start+1 : end])
	if err != nil {
		return ""
	}
	return next.String()
}

type manifest struct {
	MediaType string `json:"mediaType"`
	Config    struct {
		MediaType string `json:"mediaType"`
	} `json:"config"`
	Layers []struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	} `json:"layers"`
}

func (f *Fetcher) ociChart(ctx context.Context, ref ChartRef) (*Chart, error) {
	root := ociRoot(ref.Repo)
	v := ref.Version
	if exactVersion(v) {
		if c, err := f.recordedChart(ctx, root, ref.Name, v); c != nil || err != nil {
			return c, err
		}
	} else {
		tags, err := f.ociTags(ctx, ref.Repo, ref.Name)
		if err != nil {
			return nil, err
		}
		versions := make([]string, len(tags))
		for i, t := range tags {
			versions[i] = strings.ReplaceAll(t, "_", "+") // Helm writes + as _ in tags
		}
		if v, err = pick(versions, ref.Version); err != nil {
			return nil, fmt.Errorf("%s/%s: %v; check the version", redactURL(root), ref.Name, err)
		}
		if c, err := f.recordedChart(ctx, root, ref.Name, v); c != nil || err != nil {
			return c, err
		}
	}
	base, path := f.ociRepo(ref.Repo, ref.Name)
	tag := strings.ReplaceAll(v, "+", "_")
	shown := redactURL(root + "/" + ref.Name + ":" + tag)
	if f.settings.Offline {
		return nil, &OfflineError{URL: shown, What: fmt.Sprintf("chart %s %s", ref.Name, v)}
	}
	mu := base + "/v2/" + path + "/manifests/" + tag
	mb, hdr, err := f.registryGet(ctx, mu, ociManifest)
	if err != nil {
		return nil, err
	}
	md := digestOf(mb)
	if hd := hdr.Get("Docker-Content-Digest"); hd != "" && !strings.EqualFold(hd, md) {
		return nil, fmt.Errorf("%s: the manifest has digest %s but the registry says %s; refusing it", shown, md, hd)
	}
	var m manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, fmt.Errorf("%s: not an OCI manifest: %v", shown, err)
	}
	layer := -1
	for i, l := range m.Layers {
		if l.MediaType == helmChartLayer {
			layer = i
			break
		}
	}
	if layer < 0 {
		return nil, fmt.Errorf("%s: not a Helm chart (no %s layer; config %s)", shown, helmChartLayer, m.Config.MediaType)
	}
	l := m.Layers[layer]
	if l.Size > f.settings.MaxDownloadBytes {
		return nil, fmt.Errorf("%s: the chart layer is %d bytes, over the download limit of %d bytes", shown, l.Size, f.settings.MaxDownloadBytes)
	}
	digest := normDigest(l.Digest)
	if _, err := f.cache.blobPath(digest); err != nil {
		return nil, fmt.Errorf("%s: layer %w", shown, err)
	}
	if _, err := f.cache.put(mb, md); err != nil {
		return nil, err
	}
	if err := f.cache.putRef(refRecord("manifest\x00"+root+"/"+ref.Name+":"+tag, md, v, mu)); err != nil {
		return nil, err
	}
	bu := base + "/v2/" + path + "/blobs/" + digest
	b, err := f.blob(digest, bu, fmt.Sprintf("chart %s %s", ref.Name, v), func() ([]byte, error) {
		return f.ociBlob(ctx, root, ref.Name, digest)
	})
	if err != nil {
		return nil, err
	}
	if err := f.cache.putRef(refRecord(chartKey(root, ref.Name, v), digest, v, bu)); err != nil {
		return nil, err
	}
	return &Chart{Version: v, Digest: digest, Archive: b, URL: redactURL(bu)}, nil
}

// ociBlob downloads a blob of a chart's repository (verified by the caller).
func (f *Fetcher) ociBlob(ctx context.Context, repo, name, digest string) ([]byte, error) {
	base, path := f.ociRepo(repo, name)
	b, _, err := f.registryGet(ctx, base+"/v2/"+path+"/blobs/"+digest, "")
	return b, err
}
