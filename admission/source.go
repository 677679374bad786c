package admission

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing/fstest"

	"github.com/gitgate/gitgate/policy"
)

// Limits on what a policy source may hold: policies are small; anything bigger is a
// mistake (a manifest directory named as a policy source) or an attack.
const (
	maxPolicyFileBytes  = 4 << 20
	maxPolicySourceSize = 64 << 20
	maxPolicyFiles      = 10000
	maxDirDepth         = 32
)

// Snapshot is one consistent read of a policy source: its files held in memory, so a
// reload never sees a half-written update, and a version that changes with the content.
type Snapshot struct {
	// Version changes whenever the content does: a content hash for a directory, the
	// commit for Git.
	Version string
	// Display names the source in findings and logs.
	Display string
	// Policies holds the policy files, relative to Display.
	Policies fs.FS
	// Config is the repository's .gitgate.yaml when the source is a repository (Git);
	// nil for a plain directory.
	Config *policy.Config
	// Values is the values file .gitgate.yaml names, read from the same commit.
	Values *policy.Values
}

// Source is where policies come from. Snapshot must be safe to call repeatedly; it is
// called on every poll and should be cheap when nothing changed.
type Source interface {
	Snapshot(ctx context.Context) (*Snapshot, error)
	String() string
}

// DirSource is a directory (or one file) of policies on disk, such as a mounted
// ConfigMap. Entries whose name starts with a dot are skipped, as in `gitgate check`, so
// a ConfigMap volume's ..data and ..<timestamp> directories are not read twice; the
// file symlinks into them are followed, so an atomic symlink swap is one change.
type DirSource struct {
	Path string
}

func (d DirSource) String() string { return d.Path }

// Snapshot reads every policy file under the directory into memory.
func (d DirSource) Snapshot(ctx context.Context) (*Snapshot, error) {
	files := fstest.MapFS{}
	var total int64
	st, err := os.Stat(d.Path)
	if err != nil {
		return nil, fmt.Errorf("policy directory %s: %w", d.Path, err)
	}
	if !st.IsDir() {
		data, err := readLimited(d.Path)
		if err != nil {
			return nil, err
		}
		files[filepath.Base(d.Path)] = &fstest.MapFile{Data: data, Mode: 0o644}
		return &Snapshot{Version: "sha256:" + hashFiles(files)[:16], Display: filepath.ToSlash(filepath.Dir(d.Path)), Policies: files}, nil
	}
	var walk func(dir, rel string, depth int) error
	walk = func(dir, rel string, depth int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if depth > maxDirDepth {
			return fmt.Errorf("policy directory %s: deeper than %d levels (a symlink loop?)", dir, maxDirDepth)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("policy directory %s: %w", dir, err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			full := filepath.Join(dir, e.Name())
			r := path.Join(rel, e.Name())
			st, err := os.Stat(full) // follows symlinks
			if errors.Is(err, fs.ErrNotExist) {
				continue // a dangling symlink mid-swap: the next poll sees the new set
			}
			if err != nil {
				return fmt.Errorf("policy file %s: %w", full, err)
			}
			if st.IsDir() {
				if err := walk(full, r, depth+1); err != nil {
					return err
				}
				continue
			}
			if !st.Mode().IsRegular() || !policyFile(e.Name()) {
				continue
			}
			if len(files) >= maxPolicyFiles {
				return fmt.Errorf("policy directory %s: more than %d policy files", d.Path, maxPolicyFiles)
			}
			data, err := readLimited(full)
			if err != nil {
				return err
			}
			total += int64(len(data))
			if total > maxPolicySourceSize {
				return fmt.Errorf("policy directory %s: more than %d bytes of policy files", d.Path, maxPolicySourceSize)
			}
			files[r] = &fstest.MapFile{Data: data, Mode: 0o644}
		}
		return nil
	}
	if err := walk(d.Path, "", 0); err != nil {
		return nil, err
	}
	return &Snapshot{Version: "sha256:" + hashFiles(files)[:16], Display: filepath.ToSlash(filepath.Clean(d.Path)), Policies: files}, nil
}

func policyFile(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

func readLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("policy file %s: %w", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("policy file %s: %w", name, err)
	}
	if len(data) > maxPolicyFileBytes {
		return nil, fmt.Errorf("policy file %s: larger than %d bytes; is it a policy?", name, maxPolicyFileBytes)
	}
	return data, nil
}

// hashFiles is a content hash over the sorted file names and contents.
func hashFiles(files fstest.MapFS) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n].Data))
		h.Write(files[n].Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// RepoSource is a repository checkout on disk, read the way `gitgate check DIR` reads it:
// its .gitgate.yaml (registries, noBuiltin, values, policies) and the policy directories
// that file names, by default policies/. A change to any of them is one reload.
type RepoSource struct {
	Root string
}

func (r RepoSource) String() string { return r.Root }

// WatchPaths are the repository root and its policy directories.
func (r RepoSource) WatchPaths() []string {
	paths := []string{r.Root}
	if cfg, err := policy.LoadConfig(os.DirFS(r.Root)); err == nil {
		for _, d := range r.policyDirs(cfg) {
			paths = append(paths, filepath.Join(r.Root, d))
		}
	}
	return paths
}

func (r RepoSource) policyDirs(cfg *policy.Config) []string {
	if len(cfg.Policies) > 0 {
		return cfg.Policies
	}
	if st, err := os.Stat(filepath.Join(r.Root, "policies")); err == nil && st.IsDir() {
		return []string{"policies"}
	}
	return nil
}

// Snapshot reads .gitgate.yaml, the values file it names and the policy directories.
func (r RepoSource) Snapshot(ctx context.Context) (*Snapshot, error) {
	root := os.DirFS(r.Root)
	cfg, err := policy.LoadConfig(root)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Root, err)
	}
	files := fstest.MapFS{}
	h := sha256.New()
	if data, err := os.ReadFile(filepath.Join(r.Root, policy.ConfigFile)); err == nil {
		fmt.Fprintf(h, "%s\x00%d\x00", policy.ConfigFile, len(data))
		h.Write(data)
	}
	for _, d := range r.policyDirs(cfg) {
		d = filepath.ToSlash(filepath.Clean(d))
		snap, err := DirSource{Path: filepath.Join(r.Root, d)}.Snapshot(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: policies: %s in %s: %w", r.Root, d, policy.ConfigFile, err)
		}
		for name, f := range snap.Policies.(fstest.MapFS) {
			files[path.Join(d, name)] = f
		}
	}
	snap := &Snapshot{Display: filepath.ToSlash(filepath.Clean(r.Root)), Policies: files, Config: cfg}
	if cfg.Values != "" {
		name := filepath.Join(r.Root, cfg.Values)
		data, err := readLimited(name)
		if err != nil {
			return nil, fmt.Errorf("%s: values: %w", r.Root, err)
		}
		fmt.Fprintf(h, "values\x00%d\x00", len(data))
		h.Write(data)
		v, err := policy.LoadValues(fstest.MapFS{"values.yaml": {Data: data}}, "values.yaml")
		if err != nil {
			return nil, fmt.Errorf("%s: values file %s: %w", r.Root, cfg.Values, err)
		}
		snap.Values = v
	}
	h.Write([]byte(hashFiles(files)))
	snap.Version = "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
	return snap, nil
}
