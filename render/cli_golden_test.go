package render

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRenderMatchesCLIs renders the bundled example's targets and compares the bytes
// with what the real kustomize (v5.8.2, on kustomize/api v0.21.2, which gitgate links)
// and helm (v3.21.4) CLIs print for the same input, committed in testdata/golden/render
// and regenerated with hack/golden-render.sh.
func TestRenderMatchesCLIs(t *testing.T) {
	dir, err := filepath.Abs("../testdata/gitops")
	if err != nil {
		t.Fatal(err)
	}
	repo := Repo{FS: os.DirFS(dir), Dir: dir}
	goldens, err := filepath.Glob("../testdata/golden/render/*.yaml")
	if err != nil || len(goldens) == 0 {
		t.Fatalf("no golden files (%v); run hack/golden-render.sh", err)
	}
	for _, g := range goldens {
		name := strings.TrimSuffix(filepath.Base(g), ".yaml")
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(g)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			switch kind, rest, _ := strings.Cut(name, "-"); kind {
			case "kustomize":
				i := strings.LastIndex(rest, "-")
				tg := Target{Name: rest, Kind: Kustomize, Path: path.Join("apps", rest[:i], "overlays", rest[i+1:])}
				got, err = KustomizeYAML(context.Background(), repo, tg)
			case "helm":
				chart, env := rest, ""
				for _, e := range []string{"dev", "staging", "production"} {
					if c, ok := strings.CutSuffix(rest, "-"+e); ok {
						chart, env = c, e
					}
				}
				tg := Target{Name: rest, Kind: Helm, Path: path.Join("charts", chart), Namespace: "default"}
				if env != "" {
					tg.Namespace = env
					tg.ValueFiles = []string{path.Join("environments", env, chart, "values.yaml")}
				}
				got, err = HelmYAML(context.Background(), repo, tg)
			default:
				t.Fatalf("unknown golden %s", g)
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("differs from the CLI's output %s (-cli +gitgate):\n%s", g, diff)
			}
		})
	}
}
