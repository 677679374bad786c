package remote

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// allowEntry is one remotes.allow pattern, parsed.
type allowEntry struct {
	raw string
	// http: the entry was written with http:// (plain http permitted for it).
	http bool
	// host is lower case, without port; port is empty for any port.
	host, port string
	// path is a prefix ("/org/charts") matched on path segments; empty: any.
	path string
	// prefix is set for an IP address or CIDR entry: it matches those addresses and
	// permits dialling them even when private, loopback or link-local.
	prefix netip.Prefix
	isIP   bool
}

func parseAllow(raw string) (allowEntry, error) {
	e := allowEntry{raw: raw}
	s := strings.TrimSpace(raw)
	if s == "" {
		return e, fmt.Errorf("remotes.allow: empty entry")
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		switch strings.ToLower(scheme) {
		case "http":
			e.http = true
		case "https", "oci", "ssh":
		default:
			return e, fmt.Errorf("remotes.allow %q: scheme %s is not fetched (https, oci, ssh, or http:// for plain http)", raw, scheme)
		}
		s = rest
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		e.prefix, e.isIP = p.Masked(), true
		return e, nil
	}
	hostport, path, _ := strings.Cut(s, "/")
	if path != "" {
		e.path = "/" + strings.Trim(path, "/")
	}
	if a, err := netip.ParseAddr(strings.Trim(hostport, "[]")); err == nil {
		e.prefix, e.isIP = netip.PrefixFrom(a, a.BitLen()), true
		e.host = a.String()
		return e, nil
	}
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		e.host, e.port = strings.ToLower(h), p
	} else {
		e.host = strings.ToLower(hostport)
	}
	if a, err := netip.ParseAddr(e.host); err == nil {
		e.prefix, e.isIP = netip.PrefixFrom(a, a.BitLen()), true
		e.host = a.String()
	}
	if e.host == "" || strings.ContainsAny(e.host, " @?#") {
		return e, fmt.Errorf("remotes.allow %q: want a host, host/path, host:port, http://host or an IP address or CIDR", raw)
	}
	return e, nil
}

// matches says whether the entry permits host (no brackets), port and path.
func (e allowEntry) matches(host, port, path string) bool {
	if e.isIP && e.path == "" && e.port == "" && e.host == "" {
		a, err := netip.ParseAddr(host)
		return err == nil && e.prefix.Contains(a.Unmap())
	}
	if e.isIP {
		a, err := netip.ParseAddr(host)
		if err != nil || !e.prefix.Contains(a.Unmap()) {
			return false
		}
	} else if !strings.EqualFold(e.host, host) {
		return false
	}
	if e.port != "" && e.port != port {
		return false
	}
	if e.path == "" {
		return true
	}
	p := "/" + strings.Trim(path, "/")
	for _, prefix := range []string{e.path, e.path + ".git"} { // org/repo names org/repo.git too
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			return true
		}
	}
	return false
}

// target is a URL split the way the allow list reads it.
type target struct {
	scheme, host, port, path string
}

// splitURL reads an https, http, oci or ssh URL, an scp-like git@host:path, or Argo
// CD's OCI form host/path without a scheme.
func splitURL(raw string) (target, error) {
	s := strings.TrimPrefix(strings.TrimSpace(raw), "git::") // kustomize's go-getter prefix
	if !strings.Contains(s, "://") {
		colon, slash := strings.Index(s, ":"), strings.Index(s, "/")
		if at := strings.Index(s, "@"); at > 0 && colon > at && (slash < 0 || colon < slash) {
			// scp-like user@host:path
			return target{scheme: "ssh", host: strings.ToLower(s[at+1 : colon]), path: "/" + s[colon+1:]}, nil
		}
		s = "oci://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return target{}, err
	}
	if u.Host == "" {
		return target{}, fmt.Errorf("no host")
	}
	return target{scheme: strings.ToLower(u.Scheme), host: strings.ToLower(u.Hostname()), port: u.Port(), path: u.Path}, nil
}

// check is Check on a parsed list.
func (f *Fetcher) check(raw string) error {
	shown := redactURL(raw)
	t, err := splitURL(raw)
	if err != nil {
		return &RefusedError{URL: shown, Reason: fmt.Sprintf("not a URL gitgate reads (%v)", err)}
	}
	switch t.scheme {
	case "https", "oci", "ssh", "http":
	default:
		return &RefusedError{URL: shown, Reason: fmt.Sprintf("scheme %s is not fetched (https, oci and ssh only; plain http for an allow entry written http://)", t.scheme)}
	}
	for _, e := range f.allow {
		if !e.matches(t.host, t.port, t.path) {
			continue
		}
		if t.scheme == "http" && !e.http {
			continue
		}
		return nil
	}
	if t.scheme == "http" {
		return &RefusedError{URL: shown, Reason: "plain http is fetched only from an allow entry written with http://", Allow: t.entry(false)}
	}
	return &RefusedError{URL: shown, Reason: "host not in remotes.allow", Allow: t.entry(false)}
}

// AllowEntry is the remotes.allow entry that would permit raw, read as the Fetcher
// reads it: host[:port], with http:// for plain http; with repo, also the path without
// ".git" (host/org/repo: the one Git repository, not its whole host). Empty for what is
// not a URL.
func AllowEntry(raw string, repo bool) string {
	t, err := splitURL(raw)
	if err != nil {
		return ""
	}
	return t.entry(repo)
}

func (t target) entry(repo bool) string {
	e := t.host
	if t.port != "" {
		e = net.JoinHostPort(t.host, t.port)
	}
	if t.scheme == "http" {
		return "http://" + e
	}
	if p := strings.TrimSuffix(strings.Trim(t.path, "/"), ".git"); repo && p != "" {
		e += "/" + p
	}
	return e
}

// dialAllowed refuses, at connect time, an address that is loopback, private,
// link-local, unspecified or multicast unless an IP/CIDR allow entry names it.
func (f *Fetcher) dialAllowed(address string) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("dial %s: not an IP address", address)
	}
	a = a.Unmap()
	if !(a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsUnspecified() || a.IsMulticast() || a.IsInterfaceLocalMulticast()) {
		return nil
	}
	for _, e := range f.allow {
		if e.isIP && e.prefix.Contains(a) {
			return nil
		}
	}
	return &RefusedError{URL: address, Reason: "the address is loopback, private or link-local", Allow: a.String()}
}

func (f *Fetcher) dialControl(network, address string, _ syscall.RawConn) error {
	if f.settings.Offline {
		return errOfflineDial
	}
	return f.dialAllowed(address)
}
