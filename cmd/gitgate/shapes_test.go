package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGoldenShapes checks, end to end, repositories written in the shapes public GitOps
// repositories have (testdata/shapes: an app-of-apps chart generating Applications, a
// catalog of components and overlays with no Applications, a config management plugin
// Application, two Applications on one leaf overlay; and render's jsonnet repository):
// the target list and the whole check output (exit code, stdout, stderr) against
// testdata/golden/shapes/<name>.txt. -update rewrites them; read the diff before
// committing it.
func TestGoldenShapes(t *testing.T) {
	repos := map[string]string{"jsonnet": filepath.Join("..", "..", "render", "testdata", "jsonnet", "repo")}
	entries, err := os.ReadDir(filepath.Join("..", "..", "testdata", "shapes"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		repos[e.Name()] = filepath.Join("..", "..", "testdata", "shapes", e.Name())
	}
	if len(repos) < 5 {
		t.Fatalf("only %d shapes", len(repos))
	}
	t.Setenv("CI", "1")
	for name, dir := range repos {
		t.Run(name, func(t *testing.T) {
			goldenFile, err := filepath.Abs(filepath.Join(goldenDir, "shapes", name+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			t.Chdir(dir)
			var got bytes.Buffer
			for _, args := range [][]string{{"targets", "."}, {"check", "."}} {
				var stdout, stderr bytes.Buffer
				code := run(t.Context(), args, &stdout, &stderr)
				fmt.Fprintf(&got, "$ gitgate %s\nexit %d\n--- stdout\n%s--- stderr\n%s\n", strings.Join(args, " "), code, stdout.String(), stderr.String())
			}
			if *update {
				if err := os.MkdirAll(filepath.Dir(goldenFile), 0o777); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(goldenFile, got.Bytes(), 0o666); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(goldenFile)
			if err != nil {
				t.Fatalf("%v (create it with -update)", err)
			}
			if !bytes.Equal(want, got.Bytes()) {
				t.Errorf("output differs from %s (-update rewrites it):\n%s", goldenFile, got.String())
			}
		})
	}
}
