package git

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	gogit "github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// This file is the one revision resolver: the same rules for a local repository's
// references and a remote's advertised ones, and commits (full or short hashes) looked
// up among the objects, after a fetch for a remote.

// resolveName resolves rev among references: "" or HEAD (a symbolic HEAD followed; a
// HEAD without the symref capability or a detached one names the branch at the same
// commit, if any), a full reference name, or a short one expanded by Git's rules
// (plumbing.RefRevParseRules: tags before branches, then remote-tracking branches).
// The hash is the reference's: an annotated tag's object, not yet its commit.
func resolveName(refs []*plumbing.Reference, rev string) (plumbing.ReferenceName, plumbing.Hash, bool) {
	byName := make(map[plumbing.ReferenceName]*plumbing.Reference, len(refs))
	for _, r := range refs {
		byName[r.Name()] = r
	}
	follow := func(n plumbing.ReferenceName) (plumbing.ReferenceName, plumbing.Hash, bool) {
		for range 5 {
			r, ok := byName[n]
			if !ok {
				return "", plumbing.ZeroHash, false
			}
			if r.Type() == plumbing.HashReference {
				return n, r.Hash(), true
			}
			n = r.Target()
		}
		return "", plumbing.ZeroHash, false
	}
	if rev == "" || rev == "HEAD" {
		n, h, ok := follow(plumbing.HEAD)
		if ok && n == plumbing.HEAD {
			var branches []string
			for _, r := range refs {
				if r.Name().IsBranch() && r.Type() == plumbing.HashReference && r.Hash() == h {
					branches = append(branches, string(r.Name()))
				}
			}
			if len(branches) > 0 {
				sort.Strings(branches)
				return plumbing.ReferenceName(branches[0]), h, true
			}
		}
		return n, h, ok
	}
	for _, rule := range plumbing.RefRevParseRules {
		if n, h, ok := follow(plumbing.ReferenceName(fmt.Sprintf(rule, rev))); ok {
			return n, h, true
		}
	}
	return "", plumbing.ZeroHash, false
}

// commitish reports whether rev may be a full or abbreviated commit hash.
func commitish(rev string) bool {
	if len(rev) < 4 || len(rev) > 40 {
		return false
	}
	for _, c := range rev {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// peel is the commit h names: a commit, or an annotated tag's (through tags of tags).
func peel(repo *gogit.Repository, h plumbing.Hash) (*object.Commit, error) {
	for range 10 {
		if c, err := repo.CommitObject(h); err == nil {
			return c, nil
		}
		tag, err := repo.TagObject(h)
		if err != nil {
			return nil, fmt.Errorf("commit %s is not in the repository", short(h))
		}
		h = tag.Target
	}
	return nil, fmt.Errorf("tag %s: too many levels of tags", short(h))
}

func short(h plumbing.Hash) string { return ShortRev(h.String()) }

// ShortRev is how gitgate shows a commit id: its first 12 characters.
func ShortRev(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// lookupCommit finds a commit by its full or abbreviated hash among the objects.
func lookupCommit(repo *gogit.Repository, rev string) (*object.Commit, error) {
	if len(rev) == 40 {
		return peel(repo, plumbing.NewHash(rev))
	}
	h, err := repo.ResolveRevision(plumbing.Revision(strings.ToLower(rev)))
	if err != nil {
		return nil, err
	}
	return peel(repo, *h)
}

// NotFoundError is a revision that names no branch, tag or commit.
type NotFoundError struct {
	Rev    string
	Remote bool
}

func (e *NotFoundError) Error() string {
	if e.Rev == "" || e.Rev == "HEAD" {
		return "the repository has no HEAD; name a branch, tag or commit"
	}
	where := "in the repository"
	if e.Remote {
		where = "on the remote"
	}
	return fmt.Sprintf("revision %q is neither a branch, a tag nor a commit %s", e.Rev, where)
}

// localRefs are a repository's references, HEAD included.
func localRefs(repo *gogit.Repository) ([]*plumbing.Reference, error) {
	iter, err := repo.Storer.IterReferences()
	if err != nil {
		return nil, err
	}
	var refs []*plumbing.Reference
	err = iter.ForEach(func(r *plumbing.Reference) error {
		refs = append(refs, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if head, err := repo.Storer.Reference(plumbing.HEAD); err == nil {
		refs = append(refs, head)
	}
	return refs, nil
}

// resolveLocal resolves rev in a repository on disk: a reference by resolveName, else a
// full or short commit hash, else a revision expression go-git understands (HEAD~2,
// main^). The error is a *NotFoundError when nothing matches.
func resolveLocal(repo *gogit.Repository, rev string) (plumbing.ReferenceName, plumbing.Hash, error) {
	refs, err := localRefs(repo)
	if err != nil {
		return "", plumbing.ZeroHash, err
	}
	if n, h, ok := resolveName(refs, rev); ok {
		return n, h, nil
	}
	if rev == "" {
		rev = "HEAD"
	}
	h, err := repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return "", plumbing.ZeroHash, &NotFoundError{Rev: rev}
	}
	return "", *h, nil
}

// fetcher fetches from a repository's "origin" remote.
type fetcher struct {
	repo    *gogit.Repository
	auth    transport.AuthMethod
	shallow bool // fetch branches and tags with depth 1 (falling back to full history)
	// proxy routes an ssh fetch through the context's SSHDialer (sshProxy).
	proxy transport.ProxyOptions
}

// list is the remote's references (ls-remote).
func (f fetcher) list(ctx context.Context) ([]*plumbing.Reference, error) {
	rem, err := f.repo.Remote("origin")
	if err != nil {
		return nil, err
	}
	refs, err := rem.ListContext(ctx, &gogit.ListOptions{Auth: f.auth, ProxyOptions: f.proxy})
	if err != nil {
		return nil, fmt.Errorf("list references: %w", err)
	}
	return refs, nil
}

// resolve resolves rev against the remote's references and brings its commit into the
// repository: a branch or tag fetched alone (shallow where allowed), a commit hash by
// fetching every branch and tag first. Nothing is fetched when the commit is there.
func (f fetcher) resolve(ctx context.Context, refs []*plumbing.Reference, rev string) (plumbing.ReferenceName, *object.Commit, error) {
	if name, tip, ok := resolveName(refs, rev); ok {
		if c, err := peel(f.repo, tip); err == nil {
			return name, c, nil
		}
		depth := 0
		if f.shallow {
			depth = 1
		}
		spec := gitconfig.RefSpec("+" + string(name) + ":" + string(name))
		err := f.fetch(ctx, []gitconfig.RefSpec{spec}, depth)
		if err != nil && depth > 0 { // some servers cannot serve shallow fetches
			err = f.fetch(ctx, []gitconfig.RefSpec{spec}, 0)
		}
		if err != nil {
			return "", nil, fmt.Errorf("fetch %s: %w", name, err)
		}
		c, err := peel(f.repo, tip)
		if err != nil {
			return "", nil, fmt.Errorf("%s after fetch: %w", name, err)
		}
		return name, c, nil
	}
	if !commitish(rev) {
		return "", nil, &NotFoundError{Rev: rev, Remote: true}
	}
	if c, err := lookupCommit(f.repo, rev); err == nil {
		return "", c, nil
	}
	// A commit: the remote advertises references only, so fetch them all, then look.
	if err := f.fetch(ctx, []gitconfig.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"}, 0); err != nil {
		return "", nil, fmt.Errorf("fetch: %w", err)
	}
	c, err := lookupCommit(f.repo, rev)
	if err != nil {
		return "", nil, &NotFoundError{Rev: rev, Remote: true}
	}
	return "", c, nil
}

func (f fetcher) fetch(ctx context.Context, specs []gitconfig.RefSpec, depth int) error {
	err := f.repo.FetchContext(ctx, &gogit.FetchOptions{RemoteName: "origin", RefSpecs: specs, Auth: f.auth, Depth: depth, Tags: gogit.NoTags, Force: true, ProxyOptions: f.proxy})
	if errors.Is(err, gogit.NoErrAlreadyUpToDate) {
		return nil
	}
	return err
}
