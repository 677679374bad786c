package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/internal/git"
)

// limitTransport fails a response body past max bytes (a Git pack has no length up
// front).
type limitTransport struct {
	base http.RoundTripper
	max  int64
}

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.max {
		resp.Body.Close()
		return nil, fmt.Errorf("response of %d bytes is over the download limit of %d bytes", resp.ContentLength, t.max)
	}
	resp.Body = &limitBody{rc: resp.Body, left: t.max}
	return resp, nil
}

type limitBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errors.New("response is over the download limit")
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left <= 0 && err == nil {
		// One more byte would be over: ask for it to tell an exact fit from an overrun.
		var one [1]byte
		if m, _ := b.rc.Read(one[:]); m > 0 {
			return n, errors.New("response is over the download limit")
		}
	}
	return n, err
}

func (b *limitBody) Close() error { return b.rc.Close() }

// gitTokenTransport sends the token to a Git server as HTTP basic authentication: Git's
// smart HTTP servers (GitHub, GitLab, Gitea, Bitbucket, git http-backend) take a token
// as the password of basic authentication and refuse it as a bearer token, as the
// fetcher's transport sends it to Helm and OCI servers. Same rule as there: to the host
// the request was made for only, and a configured username and password first.
type gitTokenTransport struct {
	f    *Fetcher
	base http.RoundTripper
}

func (t gitTokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	origin, _ := req.Context().Value(originKey{}).(string)
	if tok := t.f.token; tok != "" && origin != "" && origin == strings.ToLower(req.URL.Host) &&
		req.Header.Get("Authorization") == "" && t.f.credentialFor(req.URL) == nil {
		req = req.Clone(req.Context())
		req.SetBasicAuth("x-access-token", tok)
	}
	return t.base.RoundTrip(req)
}

// Git fetches a repository at a ref (branch, tag, commit) over https (or http for an
// http:// allow entry) through the policy's client, or over ssh (ssh://, scp-like
// git@host:org/repo) through the policy's dialer (sshDial), and writes the commit out
// read-only in the cache. A ref resolved before is reused offline (a branch: the commit
// it had then).
func (f *Fetcher) Git(ctx context.Context, url, gitRef string) (*GitTree, error) {
	if err := f.check(url); err != nil {
		return nil, err
	}
	t, _ := splitURL(url)
	if t.scheme != "https" && t.scheme != "http" && t.scheme != "ssh" {
		return nil, &RefusedError{URL: redactURL(url), Reason: "Git repositories are fetched over https and ssh only"}
	}
	key := "git\x00" + url + "\x00" + gitRef
	if f.settings.Offline {
		what := "ref " + gitRef
		if gitRef == "" {
			what = "HEAD"
		}
		if r, ok := f.cache.getRef(key); ok && r.Dir != "" {
			f.holdTree(r.Dir)
			if _, err := os.Stat(filepath.Join(r.Dir, ".gitgate-complete")); err == nil {
				if _, intact := f.treeIntact(r.Dir); !intact {
					return nil, &OfflineError{URL: redactURL(url), What: what + " as fetched (the cached files of commit " + shortHash(r.Version) + " were changed since)"}
				}
				touch(r.Dir)
				f.record(Resolution{URL: redactURL(url), Constraint: gitRef, Commit: r.Version})
				return &GitTree{URL: redactURL(url), Ref: gitRef, Commit: r.Version, Dir: r.Dir}, nil
			}
		}
		return nil, &OfflineError{URL: redactURL(url), What: what}
	}
	c := &http.Client{
		Transport:     limitTransport{base: gitTokenTransport{f: f, base: f.client.Transport}, max: f.settings.MaxDownloadBytes},
		CheckRedirect: f.client.CheckRedirect,
	}
	var overLimit atomic.Bool // an ssh connection read past the limit (go-git reports only a broken pack)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return f.sshDial(ctx, network, addr, &overLimit)
	}
	gctx, cancel := context.WithTimeout(git.WithSSHDialer(git.WithHTTPClient(withOrigin(ctx, url), c), dial), f.settings.Timeout)
	defer cancel()
	src := git.Source{URL: url, Ref: gitRef, CacheDir: filepath.Join(f.settings.CacheDir, "git"), KeepWorktrees: true}
	if t.scheme == "ssh" {
		// internal/git's ssh credentials, as sync and report's own repository has them;
		// the token is for https only.
		src.Auth = git.Auth{SSHKeyFile: f.settings.SSHKeyFile, KnownHostsFile: f.settings.KnownHostsFile, Flags: git.AuthFlags{SSHKey: "--ssh-key", KnownHosts: "--known-hosts"}}
	}
	// git.Source keeps one object store per URL in the cache and creates it on first use:
	// two targets fetching one repository at once (two bases at two refs) raced there
	// ("repository already exists", "remote not found"). One fetch per URL at a time.
	unlock := lockGit(src.CacheDir, url)
	defer unlock()
	co, err := src.Fetch(gctx)
	rewritten := false
	if err == nil {
		// In use from here on: eviction (this process's or another's) leaves it alone.
		// One evicted between the fetch and the lock is written out again.
		f.holdTree(co.Dir)
		if _, serr := os.Stat(filepath.Join(co.Dir, ".gitgate-complete")); serr != nil {
			co, err = src.Fetch(gctx)
			rewritten = true
		}
	}
	if err == nil {
		if recorded, intact := f.treeIntact(co.Dir); recorded && !intact {
			// git.Source reuses a written-out commit as it finds it: one changed since
			// it was written is removed and written out again from the objects.
			if err = os.RemoveAll(co.Dir); err == nil {
				co, err = src.Fetch(gctx)
				rewritten = true
			}
		}
	}
	// The object store was used now (least-recently-used eviction), whatever the fetch
	// did; and a size counted before the fetch added objects is counted again (cache.evict
	// keeps a store's size with its modification time).
	touch(filepath.Join(src.CacheDir, "repos", gitKey(url)+".git"))
	if err != nil {
		var re *RefusedError
		if errors.As(err, &re) {
			if !strings.Contains(re.URL, "://") { // refused at dial time: name the URL too
				return nil, &RefusedError{URL: redactURL(url), Reason: re.Reason + " (" + re.URL + ")", Allow: re.Allow}
			}
			return nil, re
		}
		reason := strings.TrimPrefix(err.Error(), "git source "+src.String()+": ")
		if overLimit.Load() {
			reason = fmt.Sprintf("the server sent more than the download limit of %d bytes (%s)", f.settings.MaxDownloadBytes, reason)
		}
		if t.scheme != "ssh" || errors.As(err, new(*git.NotFoundError)) || strings.Contains(reason, "repository not found") {
			// (internal/git's ssh messages say what to do themselves)
			reason += "; check the URL and ref, and that remotes.allow names the host"
		}
		return nil, f.redactErr(&notFetchedError{url: redactURL(url), reason: reason, err: err})
	}
	readOnly(co.Dir)
	if err := f.recordTree(co.Dir, rewritten); err != nil {
		return nil, err
	}
	if err := f.cache.putRef(ref{Key: key, Time: time.Now(), Version: co.Commit, URL: url, Dir: co.Dir}); err != nil {
		return nil, err
	}
	touch(co.Dir)
	f.cache.evict(co.Dir)
	f.record(Resolution{URL: redactURL(url), Constraint: gitRef, Commit: co.Commit})
	return &GitTree{URL: redactURL(url), Ref: gitRef, Commit: co.Commit, Dir: co.Dir}, nil
}

// notFetchedError is a Git fetch that failed, worded as the fetcher's other refusals:
// "<url>: not fetched: <reason>".
type notFetchedError struct {
	url, reason string
	err         error
}

func (e *notFetchedError) Error() string { return e.url + ": not fetched: " + e.reason }
func (e *notFetchedError) Unwrap() error { return e.err }

// sshDial opens an ssh fetch's connection as the fetcher's HTTP client opens its
// own: no connection offline; a loopback, private or link-local address refused at
// connect time unless an IP allow entry names it; never a proxy (go-git's own ssh
// dialler takes ALL_PROXY from the environment); the connection bounded by Timeout
// and reads past MaxDownloadBytes failed. The host and port are the URL's own
// (git.WithSSHDialer refuses one ~/.ssh/config rewrites).
func (f *Fetcher) sshDial(ctx context.Context, network, addr string, over *atomic.Bool) (net.Conn, error) {
	if f.settings.Offline {
		return nil, errOfflineDial
	}
	d := &net.Dialer{Timeout: f.settings.Timeout, Control: f.dialControl}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if err := c.SetDeadline(time.Now().Add(f.settings.Timeout)); err != nil {
		c.Close()
		return nil, err
	}
	return &limitConn{Conn: c, left: f.settings.MaxDownloadBytes, max: f.settings.MaxDownloadBytes, over: over}, nil
}

// limitConn fails reads past max bytes (what the server sends, ssh framing included)
// and sets over when it does.
type limitConn struct {
	net.Conn
	left, max int64
	over      *atomic.Bool
}

func (c *limitConn) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.over.Store(true)
		return 0, fmt.Errorf("the server sent more than the download limit of %d bytes", c.max)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	c.left -= int64(n)
	return n, err
}

// readOnly takes the write bits off the files of a written-out commit (directories
// stay writable so an old worktree can still be pruned).
func readOnly(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == ".gitgate-complete" {
			return nil
		}
		if info, err := d.Info(); err == nil && info.Mode().IsRegular() {
			os.Chmod(p, info.Mode().Perm()&^0o222)
		}
		return nil
	})
}

// A written-out commit is verified on every read: its digest (treeDigest) is recorded
// under the directory when it is written, and a tree whose files no longer match is not
// used (written out again online, an error offline). A tree with no record yet (just
// written) is recorded online; offline it is not used.
func treeKey(dir string) string { return "gittree\x00" + dir }

// treeIntact reports whether dir has a recorded digest and whether its files match it.
// A tree is hashed once per Fetcher (one run): the Fetcher's memo of what it resolved
// holds the digest it matched, under treeKey (no constraint key starts so).
func (f *Fetcher) treeIntact(dir string) (recorded, intact bool) {
	r, ok := f.cache.getRef(treeKey(dir))
	if !ok || r.Digest == "" {
		return false, false
	}
	f.mu.Lock()
	seen := f.picked[treeKey(dir)]
	f.mu.Unlock()
	if seen == r.Digest {
		return true, true
	}
	d, _, err := treeDigest(dir)
	if err != nil || d != r.Digest {
		return true, false
	}
	f.mu.Lock()
	f.picked[treeKey(dir)] = d
	f.mu.Unlock()
	return true, true
}

// recordTree records dir's digest when it has none yet, or (fresh) when it was just
// written out again.
func (f *Fetcher) recordTree(dir string, fresh bool) error {
	if r, ok := f.cache.getRef(treeKey(dir)); ok && r.Digest != "" && !fresh {
		return nil // matched by treeIntact just before
	}
	d, size, err := treeDigest(dir)
	if err != nil {
		return err
	}
	return f.cache.putRef(ref{Key: treeKey(dir), Digest: d, Size: size, Time: time.Now()})
}

// touch marks a checkout used now, for least-recently-used eviction.
func touch(dir string) {
	now := time.Now()
	_ = os.Chtimes(dir, now, now)
}

// holdTree takes a shared lock on a checkout this Fetcher returns, held until Close
// (or the process ends): eviction by any process leaves it alone meanwhile.
func (f *Fetcher) holdTree(dir string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, held := f.trees[dir]; held {
		return
	}
	release, _ := lockShared(f.cache.treeLock(dir))
	f.trees[dir] = release
}

// Close releases the checkouts this Fetcher returned: their directories may be
// evicted afterwards. The Fetcher stays usable.
func (f *Fetcher) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for dir, release := range f.trees {
		release()
		delete(f.trees, dir)
	}
}

// treeDigest is a sha256 over a written-out commit: every entry's path, type, executable
// bit and content (a symbolic link's target), in lexical order; and its files' size.
func treeDigest(dir string) (string, int64, error) {
	h := sha256.New()
	var size int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." || rel == ".gitgate-complete" {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%v\x00%v\x00", filepath.ToSlash(rel), info.Mode().Type(), info.Mode().Perm()&0o111 != 0)
		switch {
		case d.IsDir():
		case info.Mode().Type() == fs.ModeSymlink:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			io.WriteString(h, target)
		case info.Mode().IsRegular():
			fh, err := os.Open(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%d\x00", info.Size())
			size += info.Size()
			_, err = io.Copy(h, fh)
			fh.Close()
			if err != nil {
				return err
			}
		}
		h.Write([]byte{0})
		return nil
	})
	if err != nil {
		return "", 0, err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), size, nil
}

func shortHash(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// gitLocks serialise this process's fetches into one Git object store (cache dir and URL).
var gitLocks sync.Map

// gitKey names a URL's object store as git.Source names it (repos/<key>.git: the first
// 8 bytes of the URL's sha256 in hex; the URL as given, for the https and ssh URLs the
// fetcher takes) and so its lock: eviction finds a store's lock by the store's name.
// TestGitStoreKey checks the two agree.
func gitKey(url string) string {
	sum := sha256.Sum256([]byte(url))
	return hex.EncodeToString(sum[:8])
}

// gitLockPath is the lock file of the store named key under gitDir (<cache>/git).
func gitLockPath(gitDir, key string) string {
	return filepath.Join(gitDir, "locks", key+".lock")
}

// lockGit serialises fetches into one Git object store: within this process by a
// mutex, across processes sharing the cache (two CI jobs, check and fetch) by an
// exclusive lock on a file beside the stores (where the system has file locks).
// Eviction takes the same file lock, without waiting, to remove a store: never one a
// fetch is using.
func lockGit(cacheDir, url string) (unlock func()) {
	key := cacheDir + "\x00" + url
	m, _ := gitLocks.LoadOrStore(key, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	release := lockFile(gitLockPath(cacheDir, gitKey(url)))
	return func() {
		release()
		mu.Unlock()
	}
}
