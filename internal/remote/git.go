package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
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

// Git fetches a repository at a ref (branch, tag, commit) over https (or http for an
// http:// allow entry) through the policy's client, and writes the commit out
// read-only in the cache. A ref resolved before is reused offline (a branch: the commit
// it had then).
func (f *Fetcher) Git(ctx context.Context, url, gitRef string) (*GitTree, error) {
	if err := f.check(url); err != nil {
		return nil, err
	}
	t, _ := splitURL(url)
	if t.scheme != "https" && t.scheme != "http" {
		return nil, &RefusedError{URL: redactURL(url), Reason: "Git repositories are fetched over https only for now (ssh is not supported by the fetcher yet)"}
	}
	key := "git\x00" + url + "\x00" + gitRef
	if f.settings.Offline {
		if r, ok := f.cache.getRef(key); ok && r.Dir != "" {
			if _, err := os.Stat(filepath.Join(r.Dir, ".gitgate-complete")); err == nil {
				f.record(Resolution{URL: redactURL(url), Constraint: gitRef, Commit: r.Version})
				return &GitTree{URL: redactURL(url), Ref: gitRef, Commit: r.Version, Dir: r.Dir}, nil
			}
		}
		what := "ref " + gitRef
		if gitRef == "" {
			what = "HEAD"
		}
		return nil, &OfflineError{URL: redactURL(url), What: what}
	}
	c := &http.Client{
		Transport:     limitTransport{base: f.client.Transport, max: f.settings.MaxDownloadBytes},
		CheckRedirect: f.client.CheckRedirect,
	}
	gctx, cancel := context.WithTimeout(git.WithHTTPClient(withOrigin(ctx, url), c), f.settings.Timeout)
	defer cancel()
	co, err := git.Source{URL: url, Ref: gitRef, CacheDir: filepath.Join(f.settings.CacheDir, "git"), KeepWorktrees: true}.Fetch(gctx)
	if err != nil {
		var re *RefusedError
		if errors.As(err, &re) {
			return nil, re
		}
		return nil, f.redactErr(fmt.Errorf("%w; check the URL and ref, and that remotes.allow names the host", err))
	}
	readOnly(co.Dir)
	if err := f.cache.putRef(ref{Key: key, Time: time.Now(), Version: co.Commit, URL: url, Dir: co.Dir}); err != nil {
		return nil, err
	}
	f.record(Resolution{URL: redactURL(url), Constraint: gitRef, Commit: co.Commit})
	return &GitTree{URL: redactURL(url), Ref: gitRef, Commit: co.Commit, Dir: co.Dir}, nil
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
