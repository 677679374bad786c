package repopath

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestClean(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		reason   Reason
	}{
		{"apps/web", "apps/web", 0},
		{"apps/../web/./x.yaml", "web/x.yaml", 0},
		{".", ".", 0},
		{"", ".", 0},
		{"apps/../..", "", Parent},
		{"../x", "", Parent},
		{"..", "", Parent},
		{"/etc/passwd", "", Absolute},
		{filepath.Join(string(filepath.Separator), "etc"), "", Absolute},
	} {
		got, err := Clean(tc.in)
		var esc *EscapeError
		switch {
		case tc.reason == 0 && (err != nil || got != tc.want):
			t.Errorf("Clean(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.reason != 0 && (!errors.As(err, &esc) || esc.Reason != tc.reason || esc.Path != tc.in):
			t.Errorf("Clean(%q) = %q, %v; want an EscapeError (reason %d) naming it", tc.in, got, err, tc.reason)
		}
	}
}

// TestResolveAndCheck: the same cases through both entry points, on a repository whose
// root is itself reached through a symbolic link.
func TestResolveAndCheck(t *testing.T) {
	tmp := t.TempDir()
	outside := filepath.Join(tmp, "outside")
	real := filepath.Join(tmp, "real")
	for _, d := range []string{outside, filepath.Join(real, "apps", "web"), filepath.Join(real, "shared")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string) {
		if err := os.WriteFile(p, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(outside, "secret.yaml"))
	write(filepath.Join(real, "shared", "base.yaml"))
	write(filepath.Join(real, "apps", "web", "deploy.yaml"))
	link := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(real, filepath.FromSlash(name))); err != nil {
			t.Skip("symlinks not supported:", err)
		}
	}
	link(filepath.Join(outside, "secret.yaml"), "apps/web/out.yaml")       // to a file outside
	link(outside, "apps/web/outdir")                                       // to a directory outside
	link("../../shared/base.yaml", "apps/web/in.yaml")                     // relative, inside
	link("in.yaml", "apps/web/chain-in.yaml")                              // chained, inside
	link("out.yaml", "apps/web/chain-out.yaml")                            // chained, outside
	link("../../shared", "apps/web/shared")                                // a directory inside
	link(filepath.Join(outside, "missing.yaml"), "apps/web/dangling.yaml") // dangling, to outside
	link("dangling.yaml", "apps/web/chain-dangling.yaml")                  // chained dangling
	link("loop-b", "apps/web/loop-a")
	link("loop-a", "apps/web/loop-b")
	repoLink := filepath.Join(tmp, "repo")
	if err := os.Symlink(real, repoLink); err != nil {
		t.Skip("symlinks not supported:", err)
	}
	root, err := Open(repoLink)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		rel    string
		reason Reason // 0: allowed
	}{
		{"apps/web/deploy.yaml", 0},
		{"apps/web/missing.yaml", 0},                   // does not exist, but would be inside
		{"apps/web/deploy.yaml/kustomization.yaml", 0}, // a file used as a directory
		{"apps/web/out.yaml/kustomization.yaml", Symlink},
		{"apps/web", 0},
		{".", 0},
		{"apps/web/in.yaml", 0},
		{"apps/web/chain-in.yaml", 0},
		{"apps/web/shared/base.yaml", 0},
		{"apps/web/shared/missing.yaml", 0},
		{"apps/web/../../shared/base.yaml", 0},
		{"apps/web/../../../outside/secret.yaml", Parent},
		{"../outside/secret.yaml", Parent},
		{"/etc/passwd", Absolute},
		{"apps/web/out.yaml", Symlink},
		{"apps/web/outdir", Symlink},
		{"apps/web/outdir/secret.yaml", Symlink},
		{"apps/web/outdir/missing.yaml", Symlink},
		{"apps/web/chain-out.yaml", Symlink},
		{"apps/web/dangling.yaml", Symlink},
		{"apps/web/chain-dangling.yaml", Symlink},
		{"apps/web/loop-a", Symlink},
	}
	// Twice over the same Root: the second pass answers from the directories the first
	// proved inside, and must answer the same.
	for _, pass := range []string{"first", "remembered"} {
		for _, tc := range tests {
			t.Run(pass+"/"+tc.rel, func(t *testing.T) { checkResolve(t, root, tc.rel, tc.reason) })
		}
	}
	if _, ok := root.dirs.Load("apps/web/shared"); !ok {
		t.Error("a directory link inside was not remembered as proven")
	}
	for _, d := range []string{"apps/web/outdir", "apps/web/loop-a", "apps/web/deploy.yaml", "apps/web/out.yaml"} {
		if _, ok := root.dirs.Load(d); ok {
			t.Errorf("%s was remembered as a directory inside", d)
		}
	}
}

// checkResolve: Resolve and Check (under either spelling of the root) allow rel, or
// refuse it for reason.
func checkResolve(t *testing.T, root *Root, rel string, reason Reason) {
	t.Helper()
	p, err := root.Resolve(rel)
	var esc *EscapeError
	if reason == 0 {
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		if want := filepath.Join(root.Dir(), filepath.FromSlash(rel)); p != want {
			t.Errorf("Resolve = %s, want %s", p, want)
		}
	} else if !errors.As(err, &esc) || esc.Reason != reason || esc.Path != rel {
		t.Fatalf("Resolve = %q, %v; want an EscapeError (reason %d) naming %s", p, err, reason, rel)
	}

	// Check sees the same through absolute paths under either spelling of the root.
	for _, base := range []string{root.Dir(), root.Real()} {
		abs := filepath.Join(base, filepath.FromSlash(rel))
		if reason == Absolute {
			abs = rel
		}
		err := root.Check(abs)
		switch reason {
		case 0:
			if err != nil {
				t.Errorf("Check(%s): %v", abs, err)
			}
		case Symlink:
			if !errors.As(err, &esc) || esc.Reason != Symlink || esc.Path != filepath.ToSlash(filepath.Clean(rel)) {
				t.Errorf("Check(%s) = %v; want a Symlink EscapeError naming %s", abs, err, rel)
			}
		default:
			if !errors.As(err, &esc) || esc.Reason != Parent {
				t.Errorf("Check(%s) = %v; want a Parent EscapeError", abs, err)
			}
		}
	}
}

// TestResolveNotRemembered: what a Root remembers is only directories proven inside;
// a path's last element, a missing directory and a refusal are judged again every time,
// so a file or directory that becomes a link out after a first Resolve is refused.
func TestResolveNotRemembered(t *testing.T) {
	tmp := t.TempDir()
	outside := filepath.Join(tmp, "outside")
	repo := filepath.Join(tmp, "repo")
	for _, d := range []string{outside, filepath.Join(repo, "apps", "web")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(repo, "apps", "web", "deploy.yaml")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := Open(repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"apps/web/deploy.yaml", "apps/new/deploy.yaml", "apps/web/gone/x.yaml"} {
		checkResolve(t, root, rel, 0)
	}
	fsys := root.FS()
	if data, err := fsys.ReadFile("apps/web/deploy.yaml"); err != nil || string(data) != "x" {
		t.Fatalf("ReadFile = %q, %v", data, err)
	}
	if fi, err := fsys.Stat("apps/web/deploy.yaml"); err != nil || fi.Size() != 1 || fi.Name() != "deploy.yaml" {
		t.Fatalf("Stat = %v, %v", fi, err)
	}
	// The file becomes a link out; a missing directory appears as a link out.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"apps/web/deploy.yaml": filepath.Join(outside, "secret"), "apps/new": outside} {
		if err := os.Symlink(target, filepath.Join(repo, filepath.FromSlash(name))); err != nil {
			t.Skip("symlinks not supported:", err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("OUTSIDE"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"apps/web/deploy.yaml", "apps/new/deploy.yaml"} {
		checkResolve(t, root, rel, Symlink)
		var esc *EscapeError
		if data, err := fsys.ReadFile(rel); !errors.As(err, &esc) || len(data) > 0 {
			t.Errorf("ReadFile(%s) = %q, %v; want an EscapeError", rel, data, err)
		}
		if _, err := fsys.Stat(rel); !errors.As(err, &esc) {
			t.Errorf("Stat(%s) = %v; want an EscapeError", rel, err)
		}
	}
	if _, err := fsys.ReadFile("apps/web/missing.yaml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a missing file: %v", err)
	}
	checkResolve(t, root, "apps/web/gone/x.yaml", 0)
}

// BenchmarkResolve: every file of a deep tree (8 levels, 4 files a directory) resolved
// through one Root, as a run resolves its repository's files: "walk" is the check
// before directories were remembered (every link on the whole path followed, an lstat a
// component), "remembered" is Resolve.
func BenchmarkResolve(b *testing.B) {
	repo := b.TempDir()
	var rels []string
	dir := "."
	for depth := 0; depth < 8; depth++ {
		dir = filepath.ToSlash(filepath.Join(dir, "level"))
		if err := os.MkdirAll(filepath.Join(repo, dir), 0o755); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < 4; i++ {
			rel := dir + "/f" + string(rune('0'+i)) + ".yaml"
			if err := os.WriteFile(filepath.Join(repo, rel), []byte("x"), 0o644); err != nil {
				b.Fatal(err)
			}
			rels = append(rels, rel)
		}
	}
	root, err := Open(repo)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("walk", func(b *testing.B) {
		for b.Loop() {
			for _, rel := range rels {
				if _, ok := root.resolvesInside(filepath.Join(root.Dir(), rel)); !ok {
					b.Fatal(rel)
				}
			}
		}
	})
	b.Run("remembered", func(b *testing.B) {
		for b.Loop() {
			for _, rel := range rels {
				if _, err := root.Resolve(rel); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

func TestEscapeErrorMessages(t *testing.T) {
	for _, tc := range []struct {
		err  *EscapeError
		want string
	}{
		{&EscapeError{Path: "../x", Reason: Parent}, "../x is outside the repository"},
		{&EscapeError{Path: "/x", Reason: Absolute}, "/x is an absolute path; name it relative to the repository root"},
		{&EscapeError{Path: "a/l", Reason: Symlink, Target: "/etc"}, "a/l is a symbolic link out of the repository (to /etc)"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// TestFS: the confined fs.FS reads what stays inside (links within the repository
// included), refuses every way out with an *EscapeError naming the path and never
// returns the outside content, and fs.WalkDir over it lists a link out without reading
// it.
func TestFS(t *testing.T) {
	tmp := t.TempDir()
	outside := filepath.Join(tmp, "outside")
	repo := filepath.Join(tmp, "repo")
	for _, d := range []string{outside, filepath.Join(repo, "apps"), filepath.Join(repo, "shared")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const secret = "OUTSIDE-SECRET"
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "shared", "base.yaml"), []byte("inside"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"apps/out.yaml":    filepath.Join(outside, "secret.txt"),
		"apps/outdir":      outside,
		"apps/rel-out":     "../../outside/secret.txt",
		"apps/in.yaml":     "../shared/base.yaml",
		"apps/dangling":    filepath.Join(outside, "missing.yaml"),
		"apps/shared-link": "../shared",
	} {
		if err := os.Symlink(target, filepath.Join(repo, filepath.FromSlash(name))); err != nil {
			t.Skip("symlinks not supported:", err)
		}
	}
	fsys := DirFS(repo)
	if data, err := fsys.ReadFile("apps/in.yaml"); err != nil || string(data) != "inside" {
		t.Errorf("a link inside: %q, %v", data, err)
	}
	if data, err := fs.ReadFile(fsys, "apps/shared-link/base.yaml"); err != nil || string(data) != "inside" {
		t.Errorf("a file below a directory link inside: %q, %v", data, err)
	}
	for _, name := range []string{"apps/out.yaml", "apps/outdir/secret.txt", "apps/rel-out", "apps/dangling", "../outside/secret.txt", "/etc/passwd"} {
		for op, call := range map[string]func() (string, error){
			"ReadFile": func() (string, error) { b, err := fsys.ReadFile(name); return string(b), err },
			"Open": func() (string, error) {
				f, err := fsys.Open(name)
				if err != nil {
					return "", err
				}
				defer f.Close()
				b, err := io.ReadAll(f)
				return string(b), err
			},
			"Stat":    func() (string, error) { _, err := fsys.Stat(name); return "", err },
			"ReadDir": func() (string, error) { _, err := fsys.ReadDir(name); return "", err },
		} {
			got, err := call()
			var esc *EscapeError
			if !errors.As(err, &esc) || strings.Contains(got, secret) {
				t.Errorf("%s(%q) = %q, %v; want an EscapeError and no content", op, name, got, err)
			}
		}
	}
	var walked []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			walked = append(walked, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(walked, "apps/out.yaml") || slices.Contains(walked, "apps/outdir/secret.txt") {
		t.Errorf("WalkDir listed %v: want links listed, not followed", walked)
	}
	if _, err := DirFS(filepath.Join(tmp, "nope")).ReadFile("x"); err == nil {
		t.Error("a missing root read a file")
	}
}
