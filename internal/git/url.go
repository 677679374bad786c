// Package git is gitgate's one way to read Git: the change a merge request makes and the
// base revision as an overlay of the working tree (check --base), fetching a repository
// at a revision into a cache and writing it out (sync, report), and reading a tree at a
// revision without a checkout (serve's policy source). It classifies repository URLs,
// resolves revisions, builds credentials and keeps them out of messages, each once. It
// is the only package that imports go-git; no git binary is needed.
package git

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Kind is what a repository URL names.
type Kind int

const (
	// Local is a path on disk (a working tree or a bare repository).
	Local Kind = iota
	// File is a file:// URL.
	File
	// HTTP is an https:// or http:// URL.
	HTTP
	// SSH is an ssh:// URL or the scp-like user@host:org/repo.
	SSH
	// Other is another scheme go-git's transports know (git://, or one a test installs).
	Other
)

func (k Kind) String() string {
	return [...]string{"local path", "file URL", "HTTP URL", "SSH URL", "URL"}[k]
}

// Endpoint is a classified repository URL.
type Endpoint struct {
	// Raw is the URL or path as given.
	Raw  string
	Kind Kind
	// Dir is the repository's directory for Local and File endpoints (absolute for Local).
	Dir string
}

// ParseURL classifies a repository URL: a local path, file://, https:// or http://,
// ssh:// or scp-like [user@]host:path (a colon before any slash, as Git reads it).
func ParseURL(raw string) (Endpoint, error) {
	if strings.TrimSpace(raw) == "" {
		return Endpoint{}, errors.New("empty repository URL")
	}
	ep := Endpoint{Raw: raw}
	if scheme, rest, ok := strings.Cut(raw, "://"); ok && !strings.ContainsAny(scheme, "/\\") {
		switch strings.ToLower(scheme) {
		case "file":
			ep.Kind, ep.Dir = File, rest
			if ep.Dir == "" {
				return Endpoint{}, fmt.Errorf("%s: no path", raw)
			}
		case "https", "http":
			ep.Kind = HTTP
		case "ssh", "git+ssh", "ssh+git":
			ep.Kind = SSH
		default:
			ep.Kind = Other
		}
		return ep, nil
	}
	colon, slash := strings.Index(raw, ":"), strings.Index(raw, "/")
	if colon > 0 && (slash < 0 || colon < slash) && !isDriveLetter(raw, colon) {
		ep.Kind = SSH
		return ep, nil
	}
	abs, err := filepath.Abs(raw)
	if err != nil {
		return Endpoint{}, fmt.Errorf("%s: %w", raw, err)
	}
	ep.Kind, ep.Dir = Local, abs
	return ep, nil
}

func isDriveLetter(s string, colon int) bool {
	return colon == 1 && filepath.VolumeName(s[:2]) != ""
}

// remote is the URL go-git is given: file:// for a local path.
func (e Endpoint) remote() string {
	if e.Kind == Local {
		return "file://" + filepath.ToSlash(e.Dir)
	}
	return e.Raw
}

// String is the URL with its credentials redacted.
func (e Endpoint) String() string { return Redact(e.Raw) }

// sshUser is the user an SSH URL names ("git" when it names none).
func (e Endpoint) sshUser() string {
	if strings.Contains(e.Raw, "://") {
		if u, err := url.Parse(e.Raw); err == nil && u.User != nil && u.User.Username() != "" {
			return u.User.Username()
		}
		return "git"
	}
	if at := strings.Index(e.Raw, "@"); at > 0 && at < strings.Index(e.Raw, ":") {
		return e.Raw[:at]
	}
	return "git"
}

// sshHostPort is the host and port an SSH URL names (port "22" when it names none),
// as go-git reads the URL.
func (e Endpoint) sshHostPort() (host, port string) {
	tep, err := transport.NewEndpoint(e.Raw)
	if err != nil {
		return e.Raw, "22"
	}
	if tep.Port <= 0 {
		return tep.Host, "22"
	}
	return tep.Host, strconv.Itoa(tep.Port)
}

// userinfo is the user (and password) part of a URL in text: scheme://USERINFO@host.
var userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)([^/@\s"']+)@`)

// Redact removes credentials from every URL in s: the password of user:password@
// becomes xxxxx, and for http(s) a user name alone (a token given as https://TOKEN@host)
// too; an SSH user name (git@) stays.
func Redact(s string) string {
	return userinfo.ReplaceAllStringFunc(s, func(m string) string {
		sub := userinfo.FindStringSubmatch(m)
		scheme, info := sub[1], sub[2]
		user, _, hasPassword := strings.Cut(info, ":")
		switch {
		case hasPassword:
			return scheme + user + ":xxxxx@"
		case strings.HasPrefix(strings.ToLower(scheme), "http"):
			return scheme + "xxxxx@"
		}
		return m
	})
}

// redactedError shows its error with URL credentials and known secrets replaced;
// errors.Is and errors.As still see the original.
type redactedError struct {
	err     error
	secrets []string
}

func (e *redactedError) Error() string {
	s := Redact(e.err.Error())
	for _, secret := range e.secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "xxxxx")
		}
	}
	return s
}

func (e *redactedError) Unwrap() error { return e.err }

// redact wraps err so that its text shows neither URL credentials nor the secrets.
func redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	return &redactedError{err: err, secrets: secrets}
}
