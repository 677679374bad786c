// Package remote fetches what a repository's renders need from outside it — Helm charts
// from HTTP Helm repositories and OCI registries, single files by https, other Git
// repositories — through one content-addressed cache, verified on every read, only from
// the hosts .gitgate.yaml's remotes.allow names, and never with --offline. It is the
// only code of gitgate that opens a network connection for rendering.
package remote

import (
	"fmt"
	"time"
)

// Settings are every remote-source option, from .gitgate.yaml and the flags, in one
// place.
type Settings struct {
	// Allow are .gitgate.yaml remotes.allow patterns: a host ("charts.example.com"), a
	// host and path prefix ("ghcr.io/org/charts", "github.com/org/repo"), an explicit
	// scheme for plain http ("http://charts.internal"), a host:port, or an IP address
	// or CIDR that permits private, loopback or link-local addresses. Nothing else is
	// fetched.
	Allow []string
	// CacheDir holds the cache (default $XDG_CACHE_HOME/gitgate).
	CacheDir string
	// Offline never connects: everything comes from the cache, what is missing is an
	// *OfflineError naming it.
	Offline bool
	// MaxCacheBytes bounds the cache; the least recently used entries are evicted past
	// it (0: DefaultMaxCacheBytes).
	MaxCacheBytes int64
	// MaxDownloadBytes bounds one response (0: DefaultMaxDownloadBytes).
	MaxDownloadBytes int64
	// Timeout bounds one request (0: DefaultTimeout).
	Timeout time.Duration
	// IndexTTL is how long a Helm repository's index.yaml is reused before it is asked
	// again (0: DefaultIndexTTL); offline, any cached index is used.
	IndexTTL time.Duration
	// HelmRepositoryConfig and RegistryConfig are Helm's own credential files
	// (repositories.yaml; the registry config.json in Docker's format); empty means
	// Helm's default locations.
	HelmRepositoryConfig, RegistryConfig string
	// TokenEnv names an environment variable holding a bearer token sent to every
	// allowed host (GITGATE_REMOTE_TOKEN when empty); TokenFile a file holding one.
	// A host with its own credentials (repositories.yaml, config.json) gets those
	// instead, and neither is sent on past a redirect to another host.
	TokenEnv, TokenFile string
	// SSHKeyFile is the private key for ssh Git URLs (passphrase:
	// $GITGATE_SSH_KEY_PASSPHRASE; empty: the ssh agent's keys), KnownHostsFile the
	// known_hosts every ssh server's key is checked against (empty: $SSH_KNOWN_HOSTS,
	// else ~/.ssh/known_hosts): --ssh-key and --known-hosts.
	SSHKeyFile, KnownHostsFile string
}

// Defaults.
const (
	DefaultMaxCacheBytes    = 4 << 30
	DefaultMaxDownloadBytes = 100 << 20
	DefaultTimeout          = 60 * time.Second
	DefaultIndexTTL         = 10 * time.Minute
)

// ChartRef names a chart as an Argo CD source, a Chart.yaml dependency or a kustomize
// helmCharts entry names one.
type ChartRef struct {
	// Repo is an HTTP(S) Helm repository URL, an oci:// URL, or a registry host and
	// path without a scheme (Argo CD's OCI form).
	Repo string
	// Name is the chart's name.
	Name string
	// Version is an exact version, a semver constraint ("1.14.*", "^2.0", ">=1 <2"), or
	// empty for the newest stable version; resolved as Argo CD resolves targetRevision.
	Version string
}

func (r ChartRef) String() string {
	v := r.Version
	if v == "" {
		v = "latest"
	}
	return fmt.Sprintf("%s %s@%s", r.Repo, r.Name, v)
}

// Chart is a fetched chart.
type Chart struct {
	Ref ChartRef
	// Version is the version the reference resolved to.
	Version string
	// Digest is "sha256:<hex>" of Archive: from the index's digest or the OCI manifest,
	// verified on download and on every read from the cache.
	Digest string
	// Archive is the chart's .tgz.
	Archive []byte
	// URL is where it was downloaded from, credentials redacted.
	URL string
}

// GitTree is another Git repository's commit, written out read-only in the cache.
type GitTree struct {
	URL, Ref string
	// Commit is the full hash the ref resolved to.
	Commit string
	// Dir holds the commit's files.
	Dir string
}

// RefusedError is a remote source gitgate will not fetch: not in remotes.allow, a
// scheme it does not speak, a private address, a redirect elsewhere.
type RefusedError struct {
	URL    string
	Reason string
	// Allow is the remotes.allow entry that would permit it, when one would.
	Allow string
}

func (e *RefusedError) Error() string {
	msg := fmt.Sprintf("%s: not fetched: %s", e.URL, e.Reason)
	if e.Allow != "" {
		msg += fmt.Sprintf("; to fetch it, add %q to remotes.allow in .gitgate.yaml", e.Allow)
	}
	return msg
}

// OfflineError is a remote source --offline needs and the cache does not hold.
type OfflineError struct {
	URL string
	// What is missing: "the index", "chart cert-manager 1.14.5", "ref v1.2".
	What string
}

func (e *OfflineError) Error() string {
	return fmt.Sprintf("%s: %s is not in the cache and --offline never connects; run 'gitgate fetch' (or check without --offline) once to fill the cache", e.URL, e.What)
}
