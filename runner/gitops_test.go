package runner

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gitgate/gitgate/internal/treediff"
)

// TestRestoreUndoesTreeDiff: restoring the paths the tree diff lists makes the
// workspace what the snapshot was, directories the change created included (the diff
// lists files only).
func TestRestoreUndoesTreeDiff(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	for _, d := range []string{src, dst} {
		if err := os.MkdirAll(filepath.Join(d, "apps"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "apps", "a.yaml"), []byte("a\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dst, "new", "deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"new/deep/x.yaml", "new/y.yaml"} {
		if err := os.WriteFile(filepath.Join(dst, filepath.FromSlash(f)), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dst, "apps", "a.yaml"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := treediff.Diff(os.DirFS(src), os.DirFS(dst))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("diff = %v, want the changed file and the two new ones", files)
	}
	if err := restore(src, dst, files); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dst, "new")); !os.IsNotExist(err) {
		t.Errorf("the created directory is still there: %v", err)
	}
	if after, err := treediff.Diff(os.DirFS(src), os.DirFS(dst)); err != nil || len(after) != 0 {
		t.Errorf("after restore: %v, %v", after, err)
	}
}
