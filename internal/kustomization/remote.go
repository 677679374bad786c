package kustomization

import (
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Kustomize's defaults for a remote base's query: it clones submodules unless told not to
// and gives git 27 seconds.
const (
	DefaultRemoteSubmodules = true
	DefaultRemoteTimeout    = 27 * time.Second
)

// RemoteBase is a kustomize remote resource: a Git repository, a revision and a directory in it.
type RemoteBase struct {
	// Repo is the URL to clone, in a form internal/git.ParseURL accepts (https://host/org/repo(.git),
	// ssh://user@host/org/repo, git@host:org/repo, file:///path).
	Repo string
	// Ref is the ref= (or version=) query value: branch, tag or commit; empty = the default branch.
	Ref string
	// Path is the directory inside the repository, slash-separated, cleaned, "" for the root;
	// a path that leaves the repository (..) is an error.
	Path string
	// Submodules and Timeout from the query, as kustomize reads them (we do not clone
	// submodules: the value is kept so the caller can say so). Absent, empty or unreadable
	// values are kustomize's defaults, DefaultRemoteSubmodules and DefaultRemoteTimeout.
	Submodules bool
	Timeout    time.Duration
}

// ParseRemoteBase parses what kustomize would clone for a resources/components entry; ok
// is false (nil error) for a string kustomize does not treat as a remote repository, and
// err is for a string meant as a remote repository but malformed or refused.
//
// The split follows kustomize's repository spec (api/internal/git, NewRepoSpecFromURL):
//   - an optional "git::" prefix is dropped;
//   - the scheme is https://, http://, ssh:// or file:// (any case); without one, the
//     string is scp-like (user@host:org/repo) or starts with github.com/ or github.com:;
//     anything else without a scheme is a local path (ok false);
//   - github.com is normalized as kustomize does: https://github.com/ unless a user or
//     ssh:// is given, then user@github.com: (scp-like);
//   - the repository ends at the first marker "_git/<repo>", "//" or ".git" (these are
//     substring matches, as in kustomize: "foo.github.io" has a ".git"); without a marker it
//     is the first two path segments (org/repo), or the whole path for file://;
//   - ref= wins over version=; timeout= is whole seconds or a Go duration (> 0);
//     submodules= is a Go boolean.
//
// A local path and a remote plain file are told apart from a repository without a
// network: kustomize itself reads a resource as a file first (an http(s) URL is fetched
// with GET) and only then asks its repository spec, so a URL that is both (say
// https://raw.githubusercontent.com/org/repo/main/app.yaml) is a file to kustomize when
// the GET returns YAML. Offline we cannot GET, so an http(s) URL is a plain file (ok
// false) when kustomize's repository spec refuses it and it has no ref=/version= query,
// or when it has no repository marker ("//", "_git/", ".git"), no ref=/version= query and
// its last segment ends in .yaml, .yml or .json. Everything else the spec accepts is a
// repository. For a resources entry that is not an http(s) URL, kustomize reads a local
// file of that name first; that check is the caller's (it knows the repository).
//
// Differences from kustomize, all refusals of what kustomize would pass to git but git
// could not clone or would clone wrongly: an unreadable query is an error (kustomize drops
// ref= silently and clones the default branch); an scp-like URL whose host is followed by
// "/" instead of ":" (user@host/org/repo, not github.com) is an error (git reads it as a
// local path); a path with several leading slashes that climbs out ("//../x") is an error
// (kustomize trims one slash only and misses it); a scheme kustomize does not know
// ("ftp://", "oci://") is an error rather than a local path that does not exist.
func ParseRemoteBase(s string) (RemoteBase, bool, error) {
	rb := RemoteBase{Submodules: DefaultRemoteSubmodules, Timeout: DefaultRemoteTimeout}
	if strings.TrimSpace(s) == "" || path.IsAbs(s) || filepath.IsAbs(s) {
		return rb, false, nil
	}
	spec, query, _ := strings.Cut(s, "?")
	values, qerr := url.ParseQuery(query)

	rest, forced := cutPrefixFold(spec, "git::")
	scheme, rest := cutRemoteScheme(rest)
	user, rest := cutRemoteUser(rest)
	github := hasPrefixFold(rest, "github.com/") || hasPrefixFold(rest, "github.com:")
	scp := scheme == "" && (user != "" || github)
	web := scheme == "https://" || scheme == "http://"
	hasRef := qerr == nil && (values.Get("ref") != "" || values.Get("version") != "")

	// refuse is for a string meant as a repository; soft is for an http(s) URL that
	// kustomize would fetch as a file when its repository spec refuses it.
	refuse := func(format string, a ...any) (RemoteBase, bool, error) {
		return RemoteBase{}, false, fmt.Errorf("remote base %q: %s", s, fmt.Sprintf(format, a...))
	}
	soft := func(format string, a ...any) (RemoteBase, bool, error) {
		if web && !hasRef {
			return RemoteBase{}, false, nil
		}
		return refuse(format, a...)
	}

	if scheme == "" && !scp {
		if forced || otherScheme.MatchString(rest) {
			return refuse("unsupported scheme: kustomize clones https://, http://, ssh://, file:// or scp-like user@host:org/repo")
		}
		return rb, false, nil // a local path
	}

	var host string
	if scheme == "file://" {
		// Everything after file:// is the path of a repository on disk, user-like part included.
		rest, user = user+rest, ""
	} else {
		sep := strings.Index(rest, "/")
		if scp {
			if colon := strings.Index(rest, ":"); colon > 0 && (sep < 0 || colon < sep) {
				sep = colon
			}
		}
		host = rest
		if sep >= 0 {
			host, rest = rest[:sep+1], rest[sep+1:]
		} else {
			rest = ""
		}
		if github {
			if strings.HasPrefix(scheme, "ssh://") || user != "" {
				scheme, host = "", "github.com:"
			} else {
				scheme, user, host = "https://", "", "github.com/"
			}
		}
		if host == "" {
			return refuse("no host after the scheme")
		}
		if scheme == "" && !strings.HasSuffix(host, ":") { // scp-like after GitHub normalization
			return refuse("an scp-like URL needs ':' between host and path (%s%s:org/repo); git reads %q as a local path", user, strings.TrimSuffix(host, "/"), user+host)
		}
	}

	last := path.Ext(rest) // the URL's last segment, for telling a remote file apart
	repo, sub, found := splitAtMarker(rest)
	if !found {
		if scheme == "file://" {
			repo, sub = rest, ""
		} else if parts := strings.Split(rest, "/"); len(parts) >= 2 {
			repo, sub = strings.Join(parts[:2], "/"), strings.Join(parts[2:], "/")
		} else {
			return soft("no repository after the host: name org/repo, or mark the repository's end with // or .git")
		}
	}
	if repo == "" {
		return soft("no repository after the host: name org/repo, or mark the repository's end with // or .git")
	}
	clean := path.Clean(strings.TrimLeft(sub, "/"))
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return refuse("path %q leaves the repository: name a directory inside it", sub)
	}
	if clean == "." {
		clean = ""
	}
	if web && !found && !hasRef && qerr == nil {
		switch strings.ToLower(last) {
		case ".yaml", ".yml", ".json":
			return RemoteBase{}, false, nil // a remote file kustomize fetches over HTTP
		}
	}
	if qerr != nil {
		return refuse("unreadable query %q (%v): kustomize would ignore ref= and clone the default branch", query, qerr)
	}

	rb.Repo, rb.Path = scheme+user+host+repo, clean
	rb.Ref = values.Get("version")
	if v := values.Get("ref"); v != "" {
		rb.Ref = v
	}
	if v := values.Get("timeout"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			rb.Timeout = time.Duration(n) * time.Second
		} else if d, err := time.ParseDuration(v); err == nil && d > 0 {
			rb.Timeout = d
		}
	}
	if v := values.Get("submodules"); v != "" {
		if b, err := strconv.ParseBool(v); err == nil {
			rb.Submodules = b
		}
	}
	return rb, true, nil
}

// otherScheme is a URL scheme kustomize does not clone (ftp://, oci://, htxxxtp://).
var otherScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

// remoteUser is the user part kustomize recognizes before the host: a letter, then
// letters, digits or dashes, then '@'.
var remoteUser = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*@`)

func cutRemoteScheme(s string) (scheme, rest string) {
	for _, p := range []string{"ssh://", "https://", "http://", "file://"} {
		if r, ok := cutPrefixFold(s, p); ok {
			return p, r
		}
	}
	return "", s
}

func cutRemoteUser(s string) (user, rest string) {
	if m := remoteUser.FindString(s); m != "" {
		return m, s[len(m):]
	}
	return "", s
}

// splitAtMarker splits a repository path from the directory in it at the first explicit
// marker, in kustomize's order: "_git/" (Azure DevOps: the next segment is the
// repository), then "//" (dropped), then ".git" (kept with the repository).
func splitAtMarker(s string) (repo, sub string, ok bool) {
	if i := strings.Index(s, "_git/"); i >= 0 {
		name, after, _ := strings.Cut(s[i+len("_git/"):], "/")
		return s[:i+len("_git/")] + name, after, true
	}
	if i := strings.Index(s, "//"); i >= 0 {
		return s[:i], s[i+2:], true
	}
	if i := strings.Index(s, ".git"); i >= 0 {
		return s[:i+len(".git")], s[i+len(".git"):], true
	}
	return "", "", false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if hasPrefixFold(s, prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
