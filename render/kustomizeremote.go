package render

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"

	"github.com/gitgate/gitgate/internal/kustomization"
	"github.com/gitgate/gitgate/internal/repopath"
)

// remoteField reports whether a kustomization field takes remote entries gitgate
// fetches (through Repo.Remotes): resources, bases and components (a Git repository's
// directory, or a file by https), and the files of configMap and secret generators.
func remoteField(field string) bool {
	for _, f := range []string{"resources[", "bases[", "components["} {
		if strings.HasPrefix(field, f) {
			return true
		}
	}
	return strings.Contains(field, "Generator[") && strings.Contains(field, ".files[")
}

// remoteURL is the URL an allow check needs for a remote entry: the repository of a
// Git base, else the entry itself (a file).
func remoteURL(entry string) (string, error) {
	rb, ok, err := kustomization.ParseRemoteBase(entry)
	if err != nil {
		return "", err
	}
	if ok {
		return rb.Repo, nil
	}
	return entry, nil
}

// fetchRemotes rewrites a kustomization's remote entries to what kustomize can read
// without the network: a Git base to its directory in the tree fetched through
// c.remotes (that tree is mounted, read-only and confined, for the rest of the build),
// a file by https to an in-memory file beside the kustomization.
func (c *confinedFS) fetchRemotes(dir string, k map[string]any) error {
	if c.remotes == nil {
		return nil // the pre-scan refused every remote entry
	}
	ctx := c.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	n := 0
	virtual := func(name string, data []byte) string {
		n++
		v := fmt.Sprintf(".gitgate-remote-%d-%s", n, name)
		c.mu.Lock()
		c.virtual[filepath.Join(dir, v)] = data
		c.mu.Unlock()
		return v
	}
	for _, key := range []string{"resources", "bases", "components"} {
		list, _ := k[key].([]any)
		for i, e := range list {
			s, ok := e.(string)
			if !ok || !isRemote(s) {
				continue
			}
			rb, isRepo, err := kustomization.ParseRemoteBase(s)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", rel(c.root, dir), key, err)
			}
			if !isRepo {
				data, err := c.remotes.File(ctx, s)
				if err != nil {
					return fmt.Errorf("%s: %s: %w", rel(c.root, dir), key, err)
				}
				list[i] = virtual(urlBase(s), data)
				continue
			}
			tree, err := c.remotes.Git(ctx, rb.Repo, rb.Ref)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", rel(c.root, dir), key, err)
			}
			root, err := repopath.Open(tree.Dir)
			if err != nil {
				return err
			}
			c.mu.Lock()
			c.mounts = append(c.mounts, root)
			c.mu.Unlock()
			// kustomize takes no absolute roots: the tree relative to the kustomization.
			r, err := filepath.Rel(dir, filepath.Join(root.Dir(), filepath.FromSlash(rb.Path)))
			if err != nil {
				return err
			}
			list[i] = r
		}
	}
	for _, gen := range []string{"configMapGenerator", "secretGenerator"} {
		gens, _ := k[gen].([]any)
		for _, g := range gens {
			m, _ := g.(map[string]any)
			files, _ := m["files"].([]any)
			for i, e := range files {
				s, ok := e.(string)
				if !ok {
					continue
				}
				name, src, hasKey := strings.Cut(s, "=")
				if !hasKey || !isRemote(src) {
					name, src = "", s
				}
				if !isRemote(src) {
					continue
				}
				data, err := c.remotes.File(ctx, src)
				if err != nil {
					return fmt.Errorf("%s: %s files: %w", rel(c.root, dir), gen, err)
				}
				if name == "" {
					name = urlBase(src)
				}
				files[i] = name + "=" + virtual(urlBase(src), data)
			}
		}
	}
	return nil
}

// urlBase is the last path segment of a URL (what kustomize names a fetched file by).
func urlBase(s string) string {
	if u, err := url.Parse(s); err == nil && u.Path != "" {
		if b := path.Base(u.Path); b != "/" && b != "." {
			return b
		}
	}
	return "file"
}
