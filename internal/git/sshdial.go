package git

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"golang.org/x/net/proxy"
)

// SSHDialer opens the TCP connection of an ssh fetch.
type SSHDialer func(ctx context.Context, network, addr string) (net.Conn, error)

type sshDialerKey struct{}

// WithSSHDialer returns a context under which Source.Fetch and Source.Read open the
// connections of ssh URLs through d instead of go-git's own dialler, which takes
// ALL_PROXY from the environment. Under it an ssh URL is dialled at its own host and
// port only: one that ~/.ssh/config rewrites (Hostname, Port; go-git reads it) is
// refused before d is called. internal/remote uses it to hold ssh fetches to
// remotes.allow as WithHTTPClient holds https ones. Without it, ssh fetches behave as
// go-git's by default (sync and report's own repository).
func WithSSHDialer(ctx context.Context, d SSHDialer) context.Context {
	return context.WithValue(ctx, sshDialerKey{}, d)
}

// go-git's ssh transport has no dialler option; what it has is a proxy URL
// (Fetch/ListOptions.ProxyOptions), opened with golang.org/x/net/proxy.FromURL, which
// also builds dialers of schemes registered with it. A fetch under WithSSHDialer
// registers its dialer under a number and gives go-git the proxy URL
// gitgate-ssh://<number>: proxy.FromURL hands go-git that dialer and nothing reads the
// environment.
const sshDialScheme = "gitgate-ssh"

var (
	sshDialers sync.Map // number -> *sshDial
	sshDialSeq atomic.Int64
)

func init() {
	proxy.RegisterDialerType(sshDialScheme, func(u *url.URL, _ proxy.Dialer) (proxy.Dialer, error) {
		d, ok := sshDialers.Load(u.Host)
		if !ok {
			return nil, fmt.Errorf("ssh dialer %s is no longer registered", u.Host)
		}
		return d.(*sshDial), nil
	})
}

// sshDial is one fetch's dialler: want is the URL's host:port.
type sshDial struct {
	want string
	dial SSHDialer
}

func (d *sshDial) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

func (d *sshDial) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if addr != d.want {
		return nil, fmt.Errorf("the ssh configuration (~/.ssh/config Hostname or Port) sends %s to %s; a remote source is dialled only at the host and port its URL names: write the real host and port in the URL", d.want, addr)
	}
	return d.dial(ctx, network, addr)
}

// sshProxy is the ProxyOptions of a fetch from ep under ctx's SSHDialer (none for
// other URLs or without one), and the release of its registration.
func sshProxy(ctx context.Context, ep Endpoint) (transport.ProxyOptions, func()) {
	d, _ := ctx.Value(sshDialerKey{}).(SSHDialer)
	if d == nil || ep.Kind != SSH {
		return transport.ProxyOptions{}, func() {}
	}
	host, port := ep.sshHostPort()
	id := strconv.FormatInt(sshDialSeq.Add(1), 10)
	sshDialers.Store(id, &sshDial{want: net.JoinHostPort(host, port), dial: d})
	return transport.ProxyOptions{URL: sshDialScheme + "://" + id}, func() { sshDialers.Delete(id) }
}

// useSSHDialer routes f's ssh connections through ctx's SSHDialer, if any, until
// release.
func (f *fetcher) useSSHDialer(ctx context.Context, ep Endpoint) (release func()) {
	f.proxy, release = sshProxy(ctx, ep)
	return release
}
