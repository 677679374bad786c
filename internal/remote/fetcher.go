package remote

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/gitgate/gitgate/internal/git"
)

// Fetcher fetches remote sources through the cache. It is safe for concurrent use, and
// several processes may share one cache directory.
type Fetcher struct {
	settings Settings
	allow    []allowEntry
	cache    *cache
	client   *http.Client
	creds    []credential
	token    string
	// secrets are every credential value, replaced in error texts.
	secrets []string
	// aliases are Helm's repository names (repositories.yaml) by name, for Chart.yaml
	// dependencies written as @name or alias:name; repoFile is where they came from.
	aliases  map[string]string
	repoFile string

	mu       sync.Mutex
	resolved map[string]Resolution
	indexes  map[string]*index // parsed Helm repository indexes by repository URL
	tags     map[string][]string
	tokens   map[string]string // registry bearer tokens by host
	// picked are the versions constraints resolved to in this Fetcher, so a constraint
	// asked again is not matched against the index again.
	picked map[string]string
	// trees are the checkouts this Fetcher returned, each with the release of its
	// shared lock (holdTree).
	trees map[string]func()
}

// Resolution is one remote source as this Fetcher resolved it.
type Resolution struct {
	// URL is the repository (credentials redacted); Name the chart (empty for a file
	// or a Git repository).
	URL, Name string
	// Constraint is what was asked (a version, a constraint, a Git ref; empty: latest).
	Constraint string
	// Version is what it resolved to (a chart version; empty for a file).
	Version string
	// Digest is "sha256:<hex>" of the content; Commit the full hash for Git.
	Digest, Commit string
}

// New checks the settings, reads the credential files and opens the cache.
func New(s Settings) (*Fetcher, error) {
	if s.MaxCacheBytes == 0 {
		s.MaxCacheBytes = DefaultMaxCacheBytes
	}
	if s.MaxDownloadBytes == 0 {
		s.MaxDownloadBytes = DefaultMaxDownloadBytes
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if s.IndexTTL == 0 {
		s.IndexTTL = DefaultIndexTTL
	}
	if s.CacheDir == "" {
		dir, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		s.CacheDir = dir
	}
	f := &Fetcher{
		settings: s,
		cache:    &cache{dir: s.CacheDir, max: s.MaxCacheBytes},
		resolved: map[string]Resolution{},
		indexes:  map[string]*index{},
		tags:     map[string][]string{},
		tokens:   map[string]string{},
		picked:   map[string]string{},
		trees:    map[string]func(){},
	}
	for _, a := range s.Allow {
		e, err := parseAllow(a)
		if err != nil {
			return nil, fmt.Errorf(".gitgate.yaml %w", err)
		}
		f.allow = append(f.allow, e)
	}
	if err := f.loadCredentials(); err != nil {
		return nil, err
	}
	f.client = f.newClient()
	return f, nil
}

// CacheDir is the cache's directory.
func (f *Fetcher) CacheDir() string { return f.settings.CacheDir }

// Check says whether url may be fetched at all (allow list, scheme) without
// connecting: nil or a *RefusedError.
func (f *Fetcher) Check(url string) error { return f.check(url) }

// Resolved lists what this Fetcher resolved so far, sorted.
func (f *Fetcher) Resolved() []Resolution {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Resolution, 0, len(f.resolved))
	for _, r := range f.resolved {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.URL != b.URL {
			return a.URL < b.URL
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Constraint < b.Constraint
	})
	return out
}

func (f *Fetcher) record(r Resolution) {
	f.mu.Lock()
	f.resolved[r.URL+"\x00"+r.Name+"\x00"+r.Constraint] = r
	f.mu.Unlock()
}

func redactURL(u string) string { return git.Redact(u) }

// redactErr hides every known credential value in err's text.
func (f *Fetcher) redactErr(err error) error {
	if err == nil {
		return nil
	}
	f.mu.Lock()
	secrets := append([]string(nil), f.secrets...)
	f.mu.Unlock()
	return &redactedError{err: err, secrets: secrets}
}

type redactedError struct {
	err     error
	secrets []string
}

func (e *redactedError) Error() string {
	s := git.Redact(e.err.Error())
	for _, secret := range e.secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "xxxxx")
		}
	}
	return s
}

func (e *redactedError) Unwrap() error { return e.err }

// blob returns the verified content of digest from the cache, or, on a miss or a
// corrupted entry, from fetch (verified against digest and stored). Offline, a miss
// is an *OfflineError for url and what.
func (f *Fetcher) blob(digest, url, what string, fetch func() ([]byte, error)) ([]byte, error) {
	b, err := f.cache.get(digest)
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errCorrupt) {
		return nil, fmt.Errorf("%s: %s: %w", redactURL(url), what, err)
	}
	if f.settings.Offline {
		if errors.Is(err, errCorrupt) {
			what += " (the cached copy was corrupted and removed)"
		}
		return nil, &OfflineError{URL: redactURL(url), What: what}
	}
	b, err = fetch()
	if err != nil {
		return nil, err
	}
	if d := digestOf(b); !strings.EqualFold(d, digest) {
		return nil, fmt.Errorf("%s: %s has digest %s, but %s; refusing it (the source changed or was tampered with: check the repository, or update the pinned digest)", redactURL(url), what, d, digest)
	}
	if _, err := f.cache.put(b, digest); err != nil {
		return nil, err
	}
	return b, nil
}

// Chart resolves ref and returns the verified archive.
func (f *Fetcher) Chart(ctx context.Context, ref ChartRef) (*Chart, error) {
	if ref.Name == "" {
		return nil, fmt.Errorf("%s: no chart name", redactURL(ref.Repo))
	}
	if name, ok := repoAlias(ref.Repo); ok {
		u, found := f.aliases[name]
		if !found {
			where := f.repoFile
			if where == "" {
				where = "no repositories.yaml was found"
			}
			return nil, fmt.Errorf("%s: Helm knows no repository named %q (%s); write the repository's URL in Chart.yaml, or add it with 'helm repo add %s URL'", ref.Repo, name, where, name)
		}
		ref.Repo = u
	}
	if err := f.check(ref.Repo); err != nil {
		return nil, err
	}
	root := strings.TrimSuffix(ref.Repo, "/")
	if isOCI(ref.Repo) {
		root = ociRoot(ref.Repo)
	}
	pickKey := root + "\x00" + ref.Name + "\x00" + ref.Version
	f.mu.Lock()
	v, picked := f.picked[pickKey]
	f.mu.Unlock()
	var c *Chart
	var err error
	if picked {
		c, err = f.recordedChart(ctx, root, ref.Name, v)
	}
	if c == nil && err == nil {
		if isOCI(ref.Repo) {
			c, err = f.ociChart(ctx, ref)
		} else {
			c, err = f.httpChart(ctx, ref)
		}
	}
	if err != nil {
		return nil, f.redactErr(err)
	}
	f.mu.Lock()
	f.picked[pickKey] = c.Version
	f.mu.Unlock()
	c.Ref = ref
	f.record(Resolution{URL: redactURL(ref.Repo), Name: ref.Name, Constraint: ref.Version, Version: c.Version, Digest: c.Digest})
	return c, nil
}

// chartKey names the record of an exact chart version.
func chartKey(repo, name, version string) string {
	return "chart\x00" + strings.TrimSuffix(repo, "/") + "\x00" + name + "\x00" + version
}

// exactVersion says whether v names one version rather than a constraint, as Argo CD
// tells them (versions.IsVersion: what semver.NewVersion accepts is exact).
func exactVersion(v string) bool {
	if v == "" {
		return false
	}
	_, err := semver.NewVersion(v)
	return err == nil
}

// pick is the newest of versions that satisfies constraint (empty: newest stable),
// as Argo CD resolves targetRevision; exact versions match as written first.
func pick(versions []string, constraint string) (string, error) {
	if constraint != "" && exactVersion(constraint) {
		for _, v := range versions {
			if v == constraint {
				return v, nil
			}
		}
		want, _ := semver.NewVersion(constraint)
		for _, v := range versions {
			if sv, err := semver.NewVersion(v); err == nil && sv.Equal(want) {
				return v, nil
			}
		}
		return "", fmt.Errorf("version %s not found", constraint)
	}
	expr := constraint
	if expr == "" {
		expr = "*"
	}
	c, err := semver.NewConstraint(expr)
	if err != nil {
		return "", fmt.Errorf("version %q is neither a version nor a semver constraint: %v", constraint, err)
	}
	var best *semver.Version
	bestRaw := ""
	for _, v := range versions {
		sv, err := semver.NewVersion(v)
		if err != nil || !c.Check(sv) {
			continue
		}
		if best == nil || sv.GreaterThan(best) {
			best, bestRaw = sv, v
		}
	}
	if best == nil {
		return "", fmt.Errorf("no version matches %q", expr)
	}
	return bestRaw, nil
}

// fresh says whether a record is recent enough to be reused without asking again.
func (f *Fetcher) fresh(r ref) bool {
	return f.settings.Offline || time.Since(r.Time) < f.settings.IndexTTL
}

// File fetches one https URL, through the cache: a copy younger than IndexTTL (any
// copy offline) is reused.
func (f *Fetcher) File(ctx context.Context, url string) ([]byte, error) {
	if err := f.check(url); err != nil {
		return nil, err
	}
	if t, _ := splitURL(url); t.scheme != "https" && t.scheme != "http" {
		return nil, &RefusedError{URL: redactURL(url), Reason: "a remote file is fetched by https only"}
	}
	key := "file\x00" + url
	if r, ok := f.cache.getRef(key); ok && f.fresh(r) {
		if b, err := f.cache.get(r.Digest); err == nil {
			f.record(Resolution{URL: redactURL(url), Digest: r.Digest})
			return b, nil
		}
	}
	if f.settings.Offline {
		return nil, &OfflineError{URL: redactURL(url), What: "the file"}
	}
	b, _, err := f.get(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	d, err := f.cache.put(b, "")
	if err != nil {
		return nil, err
	}
	if err := f.cache.putRef(ref{Key: key, Digest: d, Time: time.Now()}); err != nil {
		return nil, err
	}
	f.record(Resolution{URL: redactURL(url), Digest: d})
	return b, nil
}

// repoAlias is the repository name of a Chart.yaml dependency written as @name or
// alias:name (Helm's names from repositories.yaml).
func repoAlias(repo string) (string, bool) {
	if n, ok := strings.CutPrefix(repo, "@"); ok && n != "" {
		return n, true
	}
	if n, ok := strings.CutPrefix(repo, "alias:"); ok && n != "" {
		return n, true
	}
	return "", false
}
