package git

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/google/go-cmp/cmp"

	"github.com/gitgate/gitgate/internal/git/gittest"
)

// TestOpenChange: the change since the merge base counts committed, staged, unstaged
// and untracked files (or only staged ones with Staged), and the base revision reads
// as the merge base had it without a checkout; Materialize writes just what is asked.
func TestOpenChange(t *testing.T) {
	repo := gittest.Init(t, "")
	repo.Write(map[string]string{
		"apps/web/kustomization.yaml": "resources: [a.yaml]\n",
		"apps/web/a.yaml":             "a: base\n",
		"apps/web/gone.yaml":          "gone: base\n",
		"apps/api/b.yaml":             "b: base\n",
		"apps/api/link.yaml":          "->b.yaml",
		"docs/README.md":              "docs\n",
	})
	base := repo.Commit("base")
	repo.Branch("main", base)
	repo.CommitFiles("branch", map[string]string{"apps/web/a.yaml": "a: committed\n", "apps/web/gone.yaml": ""})
	repo.Write(map[string]string{"apps/api/b.yaml": "b: staged\n"})
	repo.Stage("apps/api/b.yaml")
	repo.Write(map[string]string{"docs/README.md": "unstaged\n", "apps/new/c.yaml": "c: untracked\n"})

	for _, tc := range []struct {
		staged bool
		want   []string
	}{
		{false, []string{"apps/api/b.yaml", "apps/new/c.yaml", "apps/web/a.yaml", "apps/web/gone.yaml", "docs/README.md"}},
		{true, []string{"apps/api/b.yaml", "apps/web/a.yaml", "apps/web/gone.yaml"}},
	} {
		ch, err := OpenChange(repo.Dir, "main", ChangeOptions{Staged: tc.staged})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, ch.Files); diff != "" {
			t.Errorf("staged=%v: changed files (-want +got)\n%s", tc.staged, diff)
		}
		if ch.BaseCommit != base {
			t.Errorf("base commit %s, want %s", ch.BaseCommit, base)
		}
		for p, want := range map[string]string{"apps/web/a.yaml": "a: base\n", "apps/web/gone.yaml": "gone: base\n", "apps/api/b.yaml": "b: base\n"} {
			if got, err := fs.ReadFile(ch.BaseFS, p); err != nil || string(got) != want {
				t.Errorf("base %s = %q, %v; want %q", p, got, err, want)
			}
		}
		if _, err := fs.Stat(ch.BaseFS, "apps/new/c.yaml"); !tc.staged && err == nil {
			t.Errorf("an untracked file exists at the base")
		}
		var names []string
		_ = fs.WalkDir(ch.BaseFS, "apps/web", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				names = append(names, p)
			}
			return err
		})
		sort.Strings(names)
		if diff := cmp.Diff([]string{"apps/web/a.yaml", "apps/web/gone.yaml", "apps/web/kustomization.yaml"}, names); diff != "" {
			t.Errorf("base listing of apps/web (-want +got)\n%s", diff)
		}
	}

	ch, err := OpenChange(repo.Dir, "main", ChangeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := Materialize(ch.BaseFS, []string{"apps/web/", "apps/api/link.yaml", "apps/api/missing.yaml"}, dst); err != nil {
		t.Fatal(err)
	}
	var got []string
	_ = filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			r, _ := filepath.Rel(dst, p)
			got = append(got, filepath.ToSlash(r))
		}
		return nil
	})
	sort.Strings(got)
	if diff := cmp.Diff([]string{"apps/api/link.yaml", "apps/web/a.yaml", "apps/web/gone.yaml", "apps/web/kustomization.yaml"}, got); diff != "" {
		t.Errorf("materialized (-want +got)\n%s", diff)
	}
	if target, err := os.Readlink(filepath.Join(dst, "apps/api/link.yaml")); err != nil || target != "b.yaml" {
		t.Errorf("a symlink is materialized as %q, %v; want a link to b.yaml", target, err)
	}
	if data, _ := os.ReadFile(filepath.Join(dst, "apps/web/a.yaml")); string(data) != "a: base\n" {
		t.Errorf("materialized a.yaml = %q, want the base's", data)
	}
	if data, _ := os.ReadFile(filepath.Join(repo.Dir, "apps/web/a.yaml")); string(data) != "a: committed\n" {
		t.Errorf("the working tree's a.yaml became %q: materializing wrote through", data)
	}
}

// TestWorktreeChangesMatchesStatus: the one-walk change detection agrees with go-git's
// Worktree.Status on staged, unstaged, untracked, ignored and deleted files.
func TestWorktreeChangesMatchesStatus(t *testing.T) {
	repo := struct{ Dir string }{t.TempDir()}
	writeFiles(t, repo.Dir, map[string]string{
		".gitignore":           "*.log\nbuild/\n",
		"apps/web/a.yaml":      "a: 1\n",
		"apps/web/b.yaml":      "b: 1\n",
		"apps/api/c.yaml":      "c: 1\n",
		"apps/api/sub/d.yaml":  "d: 1\n",
		"apps/api/.gitignore":  "local.yaml\n",
		"charts/x/Chart.yaml":  "name: x\n",
		"charts/x/values.yaml": "v: 1\n",
	})
	g, err := gogit.PlainInit(repo.Dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, _ := g.Worktree()
	if err := wt.AddWithOptions(&gogit.AddOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	h, err := wt.Commit("base", &gogit.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Unix(1700000000, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		t.Helper()
		full := filepath.Join(repo.Dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check := func(step string) {
		t.Helper()
		commit, _ := g.CommitObject(h)
		tree, _ := commit.Tree()
		st, err := wt.Status()
		if err != nil {
			t.Fatal(err)
		}
		for _, staged := range []bool{false, true} {
			want := []string{}
			for p, s := range st {
				if s.Staging != gogit.Unmodified && s.Staging != gogit.Untracked || !staged && s.Worktree != gogit.Unmodified {
					want = append(want, p)
				}
			}
			got, ok := worktreeChanges(g, repo.Dir, tree, staged)
			if !ok {
				t.Fatalf("%s: the fast path gave up", step)
			}
			list := []string{}
			for p := range got {
				list = append(list, p)
			}
			sort.Strings(want)
			sort.Strings(list)
			if diff := cmp.Diff(want, list); diff != "" {
				t.Errorf("%s, staged=%v: (-Status +worktreeChanges)\n%s", step, staged, diff)
			}
		}
	}
	check("clean")
	write("apps/web/a.yaml", "a: 2\n") // same size, new content
	write("apps/new.yaml", "new: 1\n")
	write("debug.log", "ignored\n")
	write("build/out.yaml", "ignored\n")
	write("apps/api/local.yaml", "ignored by a nested .gitignore\n")
	os.Remove(filepath.Join(repo.Dir, "apps/api/sub/d.yaml"))
	check("unstaged")
	write("charts/x/values.yaml", "v: 2\n")
	if _, err := wt.Add("charts/x/values.yaml"); err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Remove("apps/web/b.yaml"); err != nil {
		t.Fatal(err)
	}
	write("charts/x/values.yaml", "v: 3\n") // staged, then changed again
	check("staged")
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOpenChangeMaxBlobSize: a changed file whose base blob is over MaxBlobSize is not
// read; Stat gives its size and reading it fails naming the limit.
func TestOpenChangeMaxBlobSize(t *testing.T) {
	repo := gittest.Init(t, "")
	big := strings.Repeat("x: padding padding padding\n", 100)
	repo.Write(map[string]string{"apps/big.yaml": big, "apps/small.yaml": "a: base\n"})
	repo.Branch("main", repo.Commit("base"))
	repo.CommitFiles("branch", map[string]string{"apps/big.yaml": "x: small now\n", "apps/small.yaml": "a: head\n"})

	ch, err := OpenChange(repo.Dir, "main", ChangeOptions{MaxBlobSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fs.ReadFile(ch.BaseFS, "apps/small.yaml"); err != nil || string(got) != "a: base\n" {
		t.Errorf("small base file = %q, %v", got, err)
	}
	if st, err := fs.Stat(ch.BaseFS, "apps/big.yaml"); err != nil || st.Size() != int64(len(big)) {
		t.Errorf("stat of the big base file: %v, %v; want size %d", st, err, len(big))
	}
	_, err = fs.ReadFile(ch.BaseFS, "apps/big.yaml")
	if err == nil || !strings.Contains(err.Error(), "over the 1000-byte limit") || !strings.Contains(err.Error(), "--max-file-size") {
		t.Errorf("reading the big base file: %v, want the limit named", err)
	}
}

// The files a change leaves alone are read at base through ChangeOptions.WorkFS, so a
// caller's confinement (a symbolic link out of the tree refused) holds at base too.
func TestOpenChangeWorkFS(t *testing.T) {
	repo := gittest.Init(t, "")
	repo.Write(map[string]string{"apps/same.yaml": "a: same\n", "apps/changed.yaml": "a: base\n"})
	repo.Branch("main", repo.Commit("base"))
	repo.CommitFiles("branch", map[string]string{"apps/changed.yaml": "a: head\n"})
	refused := errors.New("refused by the caller's file system")
	ch, err := OpenChange(repo.Dir, "main", ChangeOptions{WorkFS: refusingFS{refused}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fs.ReadFile(ch.BaseFS, "apps/changed.yaml"); err != nil || string(got) != "a: base\n" {
		t.Errorf("changed file at base = %q, %v; want the base blob", got, err)
	}
	if _, err := fs.ReadFile(ch.BaseFS, "apps/same.yaml"); !errors.Is(err, refused) {
		t.Errorf("unchanged file at base: %v, want it read through WorkFS (and refused there)", err)
	}
}

type refusingFS struct{ err error }

func (f refusingFS) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: f.err}
}
