package treediff

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDiff(t *testing.T) {
	files := map[string]string{
		"same.yaml":          "a: 1\n",
		"changed.yaml":       "a: 1\n",
		"same-size.yaml":     "a: 1\n",
		"removed.yaml":       "x\n",
		".hidden/patch.yaml": "p: 1\n",
		".git/HEAD":          "ref: refs/heads/main\n",
		"dir/deep/f.yaml":    "f\n",
		"run.sh":             "#!/bin/sh\n",
		"link.yaml":          "->same.yaml",
		"link-same.yaml":     "->same.yaml",
		"type.yaml":          "t\n",
		"out.yaml":           "->/nonexistent/outside.yaml",
	}
	before, after := t.TempDir(), t.TempDir()
	write(t, before, files)
	files["changed.yaml"] = "a: 22\n"
	files["same-size.yaml"] = "a: 2\n"
	delete(files, "removed.yaml")
	files["added/new.yaml"] = "n\n"
	files[".hidden/patch.yaml"] = "p: 2\n"
	files[".git/HEAD"] = "ref: refs/heads/other\n"
	files["link.yaml"] = "->changed.yaml"
	files["type.yaml"] = "->same.yaml"
	write(t, after, files)
	if err := os.Chmod(filepath.Join(after, "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(after, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := Diff(os.DirFS(before), os.DirFS(after))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".hidden/patch.yaml", "added/new.yaml", "changed.yaml", "link.yaml", "removed.yaml", "run.sh", "same-size.yaml", "type.yaml"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if got, err := Diff(os.DirFS(after), os.DirFS(after)); err != nil || len(got) != 0 {
		t.Errorf("a tree against itself: %v, %v", got, err)
	}
}

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if len(content) > 2 && content[:2] == "->" {
			if err := os.Symlink(content[2:], p); err != nil {
				t.Skip("symlinks not supported:", err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
