package remote

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

var errOfflineDial = errors.New("--offline: no connection is opened")

// offlineTransport is the transport of an offline Fetcher: every request fails.
type offlineTransport struct{}

func (offlineTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, errOfflineDial }

// credential is a user and password for one origin (scheme://host[:port]) and,
// for Helm repositories, a URL prefix.
type credential struct {
	host     string // host[:port], lower case
	prefix   string // URL prefix it was given for (repositories.yaml), may be empty
	username string
	password string
}

// authTransport adds credentials by the request's own host at every hop, so a
// redirect to another host never carries them.
type authTransport struct {
	f    *Fetcher
	base http.RoundTripper
}

// originKey holds, in a request's context, the host the request was made for: the
// credentials and the token go to that host only, never to one a redirect leads to.
type originKey struct{}

func withOrigin(ctx context.Context, rawURL string) context.Context {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, originKey{}, strings.ToLower(u.Host))
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	origin, _ := req.Context().Value(originKey{}).(string)
	if origin != "" && origin == strings.ToLower(req.URL.Host) && req.Header.Get("Authorization") == "" {
		if c := t.f.credentialFor(req.URL); c != nil {
			req = req.Clone(req.Context())
			req.SetBasicAuth(c.username, c.password)
		} else if tok := t.f.token; tok != "" {
			req = req.Clone(req.Context())
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	return t.base.RoundTrip(req)
}

func (f *Fetcher) credentialFor(u *url.URL) *credential {
	host := strings.ToLower(u.Host)
	var best *credential
	for i := range f.creds {
		c := &f.creds[i]
		if c.host != host {
			continue
		}
		if c.prefix != "" && strings.HasPrefix(u.String(), c.prefix) {
			if best == nil || len(c.prefix) > len(best.prefix) {
				best = c
			}
		} else if best == nil {
			best = c
		}
	}
	return best
}

func (f *Fetcher) newClient() *http.Client {
	if f.settings.Offline {
		return &http.Client{Transport: offlineTransport{}}
	}
	dialer := &net.Dialer{Timeout: f.settings.Timeout, Control: f.dialControl}
	base := &http.Transport{
		Proxy:               nil, // never the environment's proxies
		DialContext:         dialer.DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
		TLSHandshakeTimeout: f.settings.Timeout,
	}
	return &http.Client{
		Transport: &authTransport{f: f, base: base},
		Timeout:   f.settings.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return fmt.Errorf("more than 10 redirects")
			}
			if err := f.check(req.URL.String()); err != nil {
				var re *RefusedError
				if errors.As(err, &re) {
					re.Reason = "redirected from " + redactURL(via[0].URL.String()) + " to a URL " + re.Reason
				}
				return err
			}
			// Authorization set by the caller (an OCI bearer token) is for the first host.
			if !strings.EqualFold(req.URL.Host, via[0].URL.Host) {
				req.Header.Del("Authorization")
			}
			return nil
		},
	}
}

// StatusError is an HTTP response other than 200.
type StatusError struct {
	URL    string
	Status int
}

func (e *StatusError) Error() string {
	hint := ""
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		hint = "; check the credentials for this host (Helm's repositories.yaml, the registry config.json, or the token)"
	case http.StatusNotFound:
		hint = "; check the URL, chart name and version"
	}
	return fmt.Sprintf("%s: HTTP %d %s%s", e.URL, e.Status, http.StatusText(e.Status), hint)
}

// get fetches u (already checked against the allow list) and reads at most
// MaxDownloadBytes of it.
func (f *Fetcher) get(ctx context.Context, u string, header http.Header) ([]byte, http.Header, error) {
	return f.getAs(ctx, u, u, header)
}

// getAs is get with the allow list asked about checkAs (a registry API URL is allowed
// as the repository it serves).
func (f *Fetcher) getAs(ctx context.Context, u, checkAs string, header http.Header) ([]byte, http.Header, error) {
	if err := f.check(checkAs); err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(withOrigin(ctx, u), http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", redactURL(u), err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := f.client.Do(req)
	if err != nil {
		var re *RefusedError
		if errors.As(err, &re) {
			if !strings.Contains(re.URL, "://") { // refused at dial time: name the URL too
				return nil, nil, &RefusedError{URL: redactURL(u), Reason: re.Reason + " (" + re.URL + ")", Allow: re.Allow}
			}
			return nil, nil, re
		}
		return nil, nil, f.redactErr(fmt.Errorf("%s: %w", redactURL(u), err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, resp.Header, &StatusError{URL: redactURL(u), Status: resp.StatusCode}
	}
	max := f.settings.MaxDownloadBytes
	if resp.ContentLength > max {
		return nil, nil, fmt.Errorf("%s: response of %d bytes is over the download limit of %d bytes", redactURL(u), resp.ContentLength, max)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, nil, f.redactErr(fmt.Errorf("%s: %w", redactURL(u), err))
	}
	if int64(len(b)) > max {
		return nil, nil, fmt.Errorf("%s: response is over the download limit of %d bytes", redactURL(u), max)
	}
	return b, resp.Header, nil
}

// loadCredentials reads Helm's repositories.yaml and the registry config.json (a
// missing file is no credentials) and the token.
func (f *Fetcher) loadCredentials() error {
	s := f.settings
	repoFile := s.HelmRepositoryConfig
	if repoFile == "" {
		repoFile = os.Getenv("HELM_REPOSITORY_CONFIG")
	}
	if repoFile == "" {
		repoFile = filepath.Join(helmConfigHome(), "repositories.yaml")
	}
	if b, err := os.ReadFile(repoFile); err == nil {
		var rf struct {
			Repositories []struct {
				Name     string `json:"name"`
				URL      string `json:"url"`
				Username string `json:"username"`
				Password string `json:"password"`
			} `json:"repositories"`
		}
		if err := yaml.Unmarshal(b, &rf); err != nil {
			return fmt.Errorf("helm repository config %s: %v; fix or remove it", repoFile, err)
		}
		f.repoFile = repoFile
		for _, r := range rf.Repositories {
			if r.Name != "" && r.URL != "" {
				if f.aliases == nil {
					f.aliases = map[string]string{}
				}
				f.aliases[r.Name] = r.URL
			}
			if r.Username == "" && r.Password == "" {
				continue
			}
			u, err := url.Parse(r.URL)
			if err != nil || u.Host == "" {
				continue
			}
			f.addCredential(credential{host: strings.ToLower(u.Host), prefix: strings.TrimSuffix(r.URL, "/") + "/", username: r.Username, password: r.Password})
		}
	}
	regFile := s.RegistryConfig
	if regFile == "" {
		regFile = os.Getenv("HELM_REGISTRY_CONFIG")
	}
	if regFile == "" {
		regFile = filepath.Join(helmConfigHome(), "registry", "config.json")
	}
	if b, err := os.ReadFile(regFile); err == nil {
		var cf struct {
			Auths map[string]struct {
				Auth     string `json:"auth"`
				Username string `json:"username"`
				Password string `json:"password"`
			} `json:"auths"`
		}
		if err := json.Unmarshal(b, &cf); err != nil {
			return fmt.Errorf("registry config %s: not JSON; fix or remove it", regFile)
		}
		for host, a := range cf.Auths {
			user, pass := a.Username, a.Password
			if a.Auth != "" {
				dec, err := base64.StdEncoding.DecodeString(a.Auth)
				if err != nil {
					return fmt.Errorf("registry config %s: the auth of %s is not base64; log in again", regFile, host)
				}
				user, pass, _ = strings.Cut(string(dec), ":")
			}
			if user == "" && pass == "" {
				continue
			}
			h := host
			if u, err := url.Parse(host); err == nil && u.Host != "" {
				h = u.Host
			}
			h = strings.ToLower(strings.TrimSuffix(h, "/"))
			if h == "index.docker.io" || h == "docker.io" {
				f.addCredential(credential{host: "registry-1.docker.io", username: user, password: pass})
			}
			f.addCredential(credential{host: h, username: user, password: pass})
		}
	}
	env := s.TokenEnv
	if env == "" {
		env = "GITGATE_REMOTE_TOKEN"
	}
	f.token = strings.TrimSpace(os.Getenv(env))
	if s.TokenFile != "" {
		b, err := os.ReadFile(s.TokenFile)
		if err != nil {
			return fmt.Errorf("remote token file: %w", err)
		}
		f.token = strings.TrimSpace(string(b))
	}
	if f.token != "" {
		f.secrets = append(f.secrets, f.token)
	}
	return nil
}

func (f *Fetcher) addCredential(c credential) {
	f.creds = append(f.creds, c)
	if c.password != "" {
		f.secrets = append(f.secrets, c.password, base64.StdEncoding.EncodeToString([]byte(c.username+":"+c.password)))
	}
}

func helmConfigHome() string {
	if d := os.Getenv("HELM_CONFIG_HOME"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "helm")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".config", "helm")
}
