package git

import (
	"context"
	"errors"
	"net/http"

	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

type httpClientKey struct{}

// WithHTTPClient returns a context under which Source.Fetch and Source.Read send their
// http(s) requests through c's transport and redirect check (time is bounded by the
// context) instead of go-git's default (http.DefaultTransport). internal/remote uses it
// to hold Git fetches to remotes.allow: its dialer, no proxy, redirects re-checked.
func WithHTTPClient(ctx context.Context, c *http.Client) context.Context {
	return context.WithValue(ctx, httpClientKey{}, c)
}

func contextClient(ctx context.Context) *http.Client {
	c, _ := ctx.Value(httpClientKey{}).(*http.Client)
	return c
}

// contextTransport sends a request through the context's client, or
// http.DefaultTransport as go-git does by default.
type contextTransport struct{}

func (contextTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if c := contextClient(req.Context()); c != nil && c.Transport != nil {
		return c.Transport.RoundTrip(req)
	}
	return http.DefaultTransport.RoundTrip(req)
}

func contextCheckRedirect(req *http.Request, via []*http.Request) error {
	if c := contextClient(req.Context()); c != nil && c.CheckRedirect != nil {
		return c.CheckRedirect(req, via)
	}
	if len(via) >= 10 { // net/http's default
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// go-git's http(s) transport, with the client chosen per request by its context. The
// protocols are global in go-git, so this is installed once; without WithHTTPClient it
// behaves as go-git's default client.
func init() {
	t := githttp.NewClient(&http.Client{Transport: contextTransport{}, CheckRedirect: contextCheckRedirect})
	client.InstallProtocol("https", t)
	client.InstallProtocol("http", t)
}
