package render

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/repopath"
	"github.com/google/go-cmp/cmp"
)

// writeRepo lays files out in a temporary repository; "->target" makes a symlink.
func writeRepo(t *testing.T, files map[string]string) Repo {
	t.Helper()
	return writeRepoAt(t, t.TempDir(), files)
}

var webRepo = map[string]string{
	"apps/web/base/kustomization.yaml": "resources: [deployment.yaml, service.yaml]\nlabels:\n- pairs: {app.kubernetes.io/name: web}\n",
	"apps/web/base/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
`,
	"apps/web/base/service.yaml":                "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports: [{port: 80}]\n",
	"apps/web/overlays/prod/kustomization.yaml": "namespace: prod\nnamePrefix: prod-\nresources: [../../base]\nimages:\n- name: nginx\n  newTag: \"1.28\"\nconfigMapGenerator:\n- name: web-env\n  literals: [MODE=prod]\n",
}

func TestRenderKustomizeOrigins(t *testing.T) {
	repo := writeRepo(t, webRepo)
	rs, err := renderKustomize(context.Background(), repo, Target{Name: "web/prod", Kind: Kustomize, Path: "apps/web/overlays/prod"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs {
		got = append(got, r.ID()+" @ "+r.Origin.String()+" ["+r.Origin.Target+"]")
		if _, ok := r.Object.GetAnnotations()[originAnnotation]; ok {
			t.Errorf("%s keeps kustomize's origin annotation", r.ID())
		}
	}
	want := []string{
		"ConfigMap/prod/prod-web-env-" + strings.TrimPrefix(rs[0].Object.GetName(), "prod-web-env-") + " @ apps/web/overlays/prod/kustomization.yaml:1:1 [web/prod]",
		"Service/prod/prod-web @ apps/web/base/service.yaml:1:1 [web/prod]",
		"Deployment/prod/prod-web @ apps/web/base/deployment.yaml:1:1 [web/prod]",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	// Fields point into the base only where the base's value survived.
	dep := rs[2]
	if line, _, ok := dep.Fields.Locate([]string{"spec", "replicas"}); !ok || line != 6 {
		t.Errorf("replicas located at %d (%v), want line 6 of the base", line, ok)
	}
	if _, _, ok := dep.Fields.Locate([]string{"spec", "template", "spec", "containers", "0", "image"}); ok {
		t.Error("the image the overlay changed must not be located in the base")
	}
	// Numbers are JSON-normalised for the policy engine.
	if _, ok := dep.Object.Object["spec"].(map[string]any)["replicas"].(int64); !ok {
		t.Errorf("replicas is %T, want int64", dep.Object.Object["spec"].(map[string]any)["replicas"])
	}
}

func TestRenderedKustomizeYAMLHasNoOrigins(t *testing.T) {
	repo := writeRepo(t, webRepo)
	out, err := KustomizeYAML(context.Background(), repo, Target{Name: "web/prod", Kind: Kustomize, Path: "apps/web/overlays/prod"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "config.kubernetes.io/origin") || !strings.Contains(string(out), "image: nginx:1.28") {
		t.Errorf("rendered YAML:\n%s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(repo.Dir, "apps/web/overlays/prod/kustomization.yaml")); strings.Contains(string(b), "buildMetadata") {
		t.Error("the user's kustomization was modified on disk")
	}
}

func TestRenderKustomizeRefuses(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		files map[string]string
		check func(t *testing.T, err error)
	}{
		{
			name:  "a resource escaping the repo by ../",
			files: map[string]string{"a/kustomization.yaml": "resources: [../../" + filepath.Base(outside) + "/secret.yaml]\n"},
			check: func(t *testing.T, err error) {
				var esc *repopath.EscapeError
				if !errors.As(err, &esc) || esc.Reason != repopath.Parent {
					t.Fatalf("want *EscapeError (..), got %v", err)
				}
			},
		},
		{
			name: "a symlink pointing out of the repo",
			files: map[string]string{
				"a/kustomization.yaml": "resources: [link.yaml]\n",
				"a/link.yaml":          "->" + filepath.Join(outside, "secret.yaml"),
			},
			check: func(t *testing.T, err error) {
				var esc *repopath.EscapeError
				if !errors.As(err, &esc) || esc.Path != "a/link.yaml" || esc.Reason != repopath.Symlink {
					t.Fatalf("want *EscapeError naming a/link.yaml, got %v", err)
				}
			},
		},
		{
			name:  "a remote base",
			files: map[string]string{"a/kustomization.yaml": "resources:\n- https://github.com/acme/base//deploy?ref=v1\n"},
			check: func(t *testing.T, err error) {
				var re *RemoteError
				if !errors.As(err, &re) || re.URL != "https://github.com/acme/base//deploy?ref=v1" {
					t.Fatalf("want *RemoteError naming the URL, got %v", err)
				}
			},
		},
		{
			name:  "a missing file",
			files: map[string]string{"a/kustomization.yaml": "resources: [missing.yaml]\n"},
			check: func(t *testing.T, err error) {
				want := `a/kustomization.yaml:1: resources[0]: "missing.yaml" does not exist`
				if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("want an error naming the entry (%s), got %v", want, err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The repo and the outside directory are siblings in the same temp parent only
			// for the ../ case; build the repo beside outside.
			repo := writeRepoAt(t, filepath.Join(filepath.Dir(outside), "repo-"+strings.ReplaceAll(tc.name, " ", "-")), tc.files)
			_, err := renderKustomize(context.Background(), repo, Target{Name: "a", Kind: Kustomize, Path: "a"})
			tc.check(t, err)
		})
	}
}

func writeRepoAt(t *testing.T, dir string, files map[string]string) Repo {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return Repo{FS: os.DirFS(dir), Dir: dir}
}

func TestDiscoverSeedLayout(t *testing.T) {
	files := map[string]string{}
	for k, v := range webRepo {
		files[k] = v
	}
	files["apps/web/overlays/dev/kustomization.yaml"] = "namespace: dev\nresources: [../../base]\n"
	files["apps/web/overlays/dev/patches/replicas.yaml"] = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 1}\n"
	files["charts/api/Chart.yaml"] = "apiVersion: v2\nname: api\nversion: 0.1.0\n"
	files["charts/api/templates/cm.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}}\n"
	files["charts/api/values-staging.yaml"] = "x: 1\n"
	files["environments/production/api/values.yaml"] = "x: 2\n"
	files["infrastructure/ns.yaml"] = "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n"
	files["tekton/task.yaml"] = "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: build}\nspec: {steps: [{name: s, image: x:1}]}\n"
	files["policies/p.yaml"] = "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\n"
	repo := writeRepo(t, files)
	d := Discover(context.Background(), repo, DiscoverOptions{Exclude: []string{"policies"}})
	var got []string
	for _, tg := range d.Targets {
		got = append(got, string(tg.Kind)+" "+tg.Name+" "+tg.Path+" "+strings.Join(tg.ValueFiles, ","))
	}
	want := []string{
		"helm api charts/api ",
		"helm api/production charts/api environments/production/api/values.yaml",
		"helm api/staging charts/api charts/api/values-staging.yaml",
		"directory infrastructure infrastructure ",
		"tekton tekton/task tekton/task.yaml ",
		"kustomize web/dev apps/web/overlays/dev ",
		"kustomize web/prod apps/web/overlays/prod ",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if len(d.Errors) > 0 {
		t.Errorf("errors: %v", d.Errors)
	}
}

func TestImageOverridePointsAtOverlay(t *testing.T) {
	repo := writeRepo(t, webRepo)
	rs, err := renderKustomize(context.Background(), repo, Target{Name: "web/prod", Kind: Kustomize, Path: "apps/web/overlays/prod"})
	if err != nil {
		t.Fatal(err)
	}
	dep := rs[2]
	fl, ok := dep.Fields.(interface {
		LocateFile([]string) (string, int, int, bool)
	})
	if !ok {
		t.Fatal("kustomize resources should locate overridden fields in other files")
	}
	file, line, _, ok := fl.LocateFile([]string{"spec", "template", "spec", "containers", "0", "image"})
	if !ok || file != "apps/web/overlays/prod/kustomization.yaml" || line != 5 {
		t.Errorf("image placed at %s:%d (%v), want the overlay's images: entry, apps/web/overlays/prod/kustomization.yaml:5", file, line, ok)
	}
}

// TestKustomizeRefusesAliasBombAndHugeFiles: kustomize itself expands aliases without
// bound and reads files of any size; the confined filesystem refuses both first.
func TestKustomizeRefusesAliasBombAndHugeFiles(t *testing.T) {
	var bomb strings.Builder
	bomb.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n  a0: &a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n")
	for i := 1; i < 9; i++ {
		prev := "*a" + string(rune('0'+i-1))
		bomb.WriteString("  a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [" + strings.Repeat(prev+",", 8) + prev + "]\n")
	}
	repo := writeRepo(t, map[string]string{
		"bomb/kustomization.yaml": "resources: [bomb.yaml]\n",
		"bomb/bomb.yaml":          bomb.String(),
		"big/kustomization.yaml":  "resources: [big.yaml]\n",
		"big/big.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata: {x: \"" + strings.Repeat("x", 4096) + "\"}\n",
	})
	repo.MaxFileSize = 1024
	for _, tc := range []struct{ dir, want string }{
		{"bomb", "yaml aliases expand too far"},
		{"big", "over the 1024-byte limit"},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := renderKustomize(context.Background(), repo, Target{Name: tc.dir, Kind: Kustomize, Path: tc.dir})
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: got %v, want an error containing %q", tc.dir, err, tc.want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: not refused within 20 s", tc.dir)
		}
	}
}

// TestHugeFilesRefused: a 50 MiB manifest is refused by the size limit, in a
// kustomization and in a directory target, without reading it into memory first.
func TestHugeFilesRefused(t *testing.T) {
	big := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata: {x: \"" + strings.Repeat("x", 50<<20) + "\"}\n"
	repo := writeRepo(t, map[string]string{
		"k/kustomization.yaml": "resources: [big.yaml]\n",
		"k/big.yaml":           big,
		"plain/big.yaml":       big,
		"plain/ok.yaml":        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n",
	})
	repo.MaxFileSize = 16 << 20
	if _, err := renderKustomize(context.Background(), repo, Target{Name: "k", Kind: Kustomize, Path: "k"}); err == nil || !strings.Contains(err.Error(), "over the 16777216-byte limit") {
		t.Errorf("kustomize: got %v, want the size limit", err)
	}
	rs, err := Render(context.Background(), repo, Target{Name: "plain", Kind: Directory, Path: "plain"})
	if err == nil || !strings.Contains(err.Error(), "over the 16777216-byte limit") {
		t.Errorf("directory: got %v, want the size limit", err)
	}
	if len(rs) != 1 || rs[0].Object.GetName() != "ok" {
		t.Errorf("the other file of the directory must still render, got %d resources", len(rs))
	}
}
