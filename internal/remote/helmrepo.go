package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// index is the part of a Helm repository's index.yaml gitgate reads, stored in the
// cache in this compact form (JSON) so a warm run does not parse the YAML again.
type index struct {
	Entries map[string][]indexEntry `json:"entries"`
}

type indexEntry struct {
	Version string   `json:"version"`
	URLs    []string `json:"urls"`
	Digest  string   `json:"digest,omitempty"`
}

func indexKey(repo string) string { return "index\x00" + strings.TrimSuffix(repo, "/") }

func indexURL(repo string) string { return strings.TrimSuffix(repo, "/") + "/index.yaml" }

// loadIndex is the repository's index: parsed already by this Fetcher, or recorded
// within IndexTTL (any age offline), or downloaded.
func (f *Fetcher) loadIndex(ctx context.Context, repo string) (*index, error) {
	f.mu.Lock()
	idx := f.indexes[repo]
	f.mu.Unlock()
	if idx != nil {
		return idx, nil
	}
	key := indexKey(repo)
	if r, ok := f.cache.getRef(key); ok && f.fresh(r) {
		if b, err := f.cache.get(r.Digest); err == nil {
			idx = &index{}
			if json.Unmarshal(b, idx) != nil {
				idx = nil
			}
		}
	}
	if idx == nil {
		if f.settings.Offline {
			return nil, &OfflineError{URL: redactURL(indexURL(repo)), What: "the repository index"}
		}
		var err error
		if idx, err = f.fetchIndex(ctx, repo); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	f.indexes[repo] = idx
	f.mu.Unlock()
	return idx, nil
}

func (f *Fetcher) fetchIndex(ctx context.Context, repo string) (*index, error) {
	u := indexURL(repo)
	b, _, err := f.get(ctx, u, nil)
	if err != nil {
		return nil, err
	}
	idx := &index{}
	if err := yaml.Unmarshal(b, idx); err != nil {
		return nil, fmt.Errorf("%s: not a Helm repository index: %v; check the repository URL", redactURL(u), err)
	}
	if idx.Entries == nil {
		return nil, fmt.Errorf("%s: the index has no entries; check the repository URL", redactURL(u))
	}
	compact, err := json.Marshal(idx)
	if err != nil {
		return nil, err
	}
	d, err := f.cache.put(compact, "")
	if err != nil {
		return nil, err
	}
	if err := f.cache.putRef(ref{Key: indexKey(repo), Digest: d, Time: time.Now(), URL: u}); err != nil {
		return nil, err
	}
	return idx, nil
}

// chartURL resolves an index entry's URL against the repository (relative URLs are
// relative to the index, as Helm reads them).
func chartURL(repo, entry string) (string, error) {
	base, err := url.Parse(strings.TrimSuffix(repo, "/") + "/")
	if err != nil {
		return "", err
	}
	u, err := base.Parse(entry)
	if err != nil {
		return "", err
	}
	// Credentials in the repository URL go to charts on the same host, as Helm sends a
	// repository's credentials (never to another host).
	if u.User == nil && base.User != nil && strings.EqualFold(u.Host, base.Host) && u.Scheme == base.Scheme {
		u.User = base.User
	}
	return u.String(), nil
}

func (f *Fetcher) httpChart(ctx context.Context, ref ChartRef) (*Chart, error) {
	repo := strings.TrimSuffix(ref.Repo, "/")
	if exactVersion(ref.Version) {
		if c, err := f.recordedChart(ctx, repo, ref.Name, ref.Version); c != nil || err != nil {
			return c, err
		}
	}
	idx, err := f.loadIndex(ctx, repo)
	if err != nil {
		return nil, err
	}
	entries := idx.Entries[ref.Name]
	if len(entries) == 0 {
		return nil, fmt.Errorf("%s: no chart %q in the repository index; check the chart name", redactURL(indexURL(repo)), ref.Name)
	}
	versions := make([]string, len(entries))
	for i, e := range entries {
		versions[i] = e.Version
	}
	v, err := pick(versions, ref.Version)
	if err != nil {
		return nil, fmt.Errorf("%s: chart %s: %v; check the version", redactURL(indexURL(repo)), ref.Name, err)
	}
	if !exactVersion(ref.Version) {
		// A version resolved and recorded before needs no download.
		if c, err := f.recordedChart(ctx, repo, ref.Name, v); c != nil || err != nil {
			return c, err
		}
	}
	var entry indexEntry
	for _, e := range entries {
		if e.Version == v {
			entry = e
			break
		}
	}
	if len(entry.URLs) == 0 {
		return nil, fmt.Errorf("%s: chart %s %s has no download URL in the index", redactURL(indexURL(repo)), ref.Name, v)
	}
	u, err := chartURL(repo, entry.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("%s: chart %s %s: bad URL %q: %v", redactURL(indexURL(repo)), ref.Name, v, redactURL(entry.URLs[0]), err)
	}
	what := fmt.Sprintf("chart %s %s", ref.Name, v)
	var b []byte
	var digest string
	if entry.Digest != "" {
		digest = normDigest(entry.Digest)
		b, err = f.blob(digest, u, what, func() ([]byte, error) {
			b, _, err := f.get(ctx, u, nil)
			return b, err
		})
		if err != nil {
			return nil, err
		}
	} else {
		if f.settings.Offline {
			return nil, &OfflineError{URL: redactURL(u), What: what}
		}
		// No digest in the index: the download's own digest is pinned from now on.
		if b, _, err = f.get(ctx, u, nil); err != nil {
			return nil, err
		}
		if digest, err = f.cache.put(b, ""); err != nil {
			return nil, err
		}
	}
	if err := f.cache.putRef(refRecord(chartKey(repo, ref.Name, v), digest, v, u)); err != nil {
		return nil, err
	}
	return &Chart{Version: v, Digest: digest, Archive: b, URL: redactURL(u)}, nil
}

func refRecord(key, digest, version, u string) ref {
	return ref{Key: key, Digest: digest, Time: time.Now(), Version: version, URL: u}
}

// recordedChart is an exact version recorded before: its blob from the cache (no
// connection) or, if the blob went missing or is corrupted, downloaded again from the
// recorded URL and checked against the recorded digest. nil, nil: not recorded.
func (f *Fetcher) recordedChart(ctx context.Context, repo, name, version string) (*Chart, error) {
	r, ok := f.cache.getRef(chartKey(repo, name, version))
	if !ok {
		return nil, nil
	}
	if r.URL == "" { // not recorded (it held credentials): only the blob, else resolve again
		if b, err := f.cache.get(r.Digest); err == nil {
			return &Chart{Version: version, Digest: r.Digest, Archive: b}, nil
		}
		return nil, nil
	}
	b, err := f.blob(r.Digest, r.URL, fmt.Sprintf("chart %s %s", name, version), func() ([]byte, error) {
		if isOCI(repo) {
			return f.ociBlob(ctx, repo, name, r.Digest)
		}
		b, _, err := f.get(ctx, r.URL, nil)
		return b, err
	})
	if err != nil {
		return nil, err
	}
	return &Chart{Version: version, Digest: r.Digest, Archive: b, URL: redactURL(r.URL)}, nil
}

// normDigest makes an index digest (hex, or sha256:hex) "sha256:<hex>".
func normDigest(d string) string {
	d = strings.ToLower(strings.TrimSpace(d))
	if !strings.Contains(d, ":") {
		return "sha256:" + d
	}
	return d
}
