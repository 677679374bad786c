package render

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gitgate/gitgate/policy"
)

// The charts under testdata/helm form one repository; testdata/helm/golden holds what
// HelmYAML prints for some of them. Refresh those with:
//
//	go test ./render/ -run TestRenderedHelmYAML -update-helm
var updateHelmGolden = flag.Bool("update-helm", false, "rewrite testdata/helm/golden")

const helmTestdata = "testdata/helm"

func helmTestRepo() Repo {
	return Repo{FS: os.DirFS(helmTestdata), Dir: helmTestdata}
}

// helmGot is what the tests compare of a rendered resource.
type helmGot struct {
	ID     string
	Origin policy.Origin
	// Exact is whether the resource has a Fields locator (exact positions).
	Exact bool
	// Field is the value at the case's field path, if any.
	Field any
}

func helmSummarize(rs []policy.Resource, field []string) []helmGot {
	var out []helmGot
	for _, r := range rs {
		g := helmGot{ID: r.ID(), Origin: r.Origin, Exact: r.Fields != nil}
		if len(field) > 0 {
			g.Field, _, _ = unstructured.NestedFieldNoCopy(r.Object.Object, field...)
		}
		out = append(out, g)
	}
	return out
}

func TestRenderHelm(t *testing.T) {
	prod := Target{
		Name:        "web (production)",
		Kind:        Helm,
		Path:        "web",
		ReleaseName: "storefront",
		Namespace:   "shop",
		ValueFiles:  []string{"shared-values.yaml", "web/values-prod.yaml"},
		Parameters:  map[string]string{"image.repository": "registry.example.com/nginx"},
	}
	origin := func(file string, line, col int, target string) policy.Origin {
		return policy.Origin{File: file, Line: line, Col: col, Target: target}
	}
	tests := []struct {
		name   string
		repo   func(*Repo)
		target Target
		field  []string // compared for every resource (nil where absent)
		want   []helmGot
	}{
		{
			name:   "defaults: release name from the directory, namespace default",
			target: Target{Name: "web", Kind: Helm, Path: "web"},
			field:  []string{"metadata", "namespace"},
			want: []helmGot{
				{ID: "ConfigMap/web-web-cluster", Origin: origin("web/templates/config.yaml", 1, 0, "web")},
				{ID: "ConfigMap/static-settings", Origin: origin("web/templates/config.yaml", 12, 1, "web"), Exact: true},
				{ID: "Service/default/web-web", Origin: origin("web/templates/service.yaml", 1, 0, "web"), Field: "default"},
				{ID: "Deployment/default/web-web", Origin: origin("web/templates/deployment.yaml", 1, 0, "web"), Field: "default"},
				{ID: "Pod/web-web-test", Origin: origin("web/templates/tests/test-connection.yaml", 1, 0, "web")},
			},
		},
		{
			name:   "default values: image tag from appVersion, one replica",
			target: Target{Name: "web", Kind: Helm, Path: "web"},
			field:  []string{"spec", "template", "spec", "containers"},
			want: []helmGot{
				{ID: "ConfigMap/web-web-cluster", Origin: origin("web/templates/config.yaml", 1, 0, "web")},
				{ID: "ConfigMap/static-settings", Origin: origin("web/templates/config.yaml", 12, 1, "web"), Exact: true},
				{ID: "Service/default/web-web", Origin: origin("web/templates/service.yaml", 1, 0, "web")},
				{ID: "Deployment/default/web-web", Origin: origin("web/templates/deployment.yaml", 1, 0, "web"),
					Field: []any{map[string]any{"name": "web", "image": "nginx:1.27.0",
						"ports": []any{map[string]any{"containerPort": int64(80)}}}}},
				{ID: "Pod/web-web-test", Origin: origin("web/templates/tests/test-connection.yaml", 1, 0, "web")},
			},
		},
		{
			name:   "values files in order, a values file outside the chart, --set, release name and namespace",
			target: prod,
			field:  []string{"spec", "template", "spec", "containers"},
			want: []helmGot{
				{ID: "ConfigMap/storefront-web-cluster", Origin: origin("web/templates/config.yaml", 1, 0, prod.Name)},
				{ID: "ConfigMap/static-settings", Origin: origin("web/templates/config.yaml", 12, 1, prod.Name), Exact: true},
				{ID: "Service/shop/storefront-web", Origin: origin("web/templates/service.yaml", 1, 0, prod.Name)},
				{ID: "Deployment/shop/storefront-web", Origin: origin("web/templates/deployment.yaml", 1, 0, prod.Name),
					Field: []any{map[string]any{"name": "web", "image": "registry.example.com/nginx:1.27.3",
						"ports": []any{map[string]any{"containerPort": int64(80)}}}}},
				{ID: "Pod/storefront-web-test", Origin: origin("web/templates/tests/test-connection.yaml", 1, 0, prod.Name)},
			},
		},
		{
			name:   "values from files, then inline values, then parameters",
			target: Target{Name: "web", Path: "web", ValueFiles: []string{"web/values-prod.yaml"}, Values: map[string]any{"replicaCount": 5, "service": map[string]any{"type": "NodePort"}}, Parameters: map[string]string{"replicaCount": "7"}},
			field:  []string{"spec", "replicas"},
			want: []helmGot{
				{ID: "ConfigMap/web-web-cluster", Origin: origin("web/templates/config.yaml", 1, 0, "web")},
				{ID: "ConfigMap/static-settings", Origin: origin("web/templates/config.yaml", 12, 1, "web"), Exact: true},
				{ID: "Service/default/web-web", Origin: origin("web/templates/service.yaml", 1, 0, "web")},
				{ID: "Deployment/default/web-web", Origin: origin("web/templates/deployment.yaml", 1, 0, "web"), Field: int64(7)},
				{ID: "Pod/web-web-test", Origin: origin("web/templates/tests/test-connection.yaml", 1, 0, "web")},
			},
		},
		{
			name: "Capabilities: an API the repository declares, and its Kubernetes version",
			repo: func(r *Repo) {
				r.APIVersions = []string{"monitoring.coreos.com/v1/ServiceMonitor"}
				r.KubeVersion = "1.31.2"
			},
			target: Target{Name: "web", Path: "web"},
			field:  []string{"data"},
			want: []helmGot{
				{ID: "ConfigMap/web-web-cluster", Origin: origin("web/templates/config.yaml", 1, 0, "web"),
					Field: map[string]any{"kubeVersion": "v1.31.2"}},
				{ID: "ConfigMap/static-settings", Origin: origin("web/templates/config.yaml", 12, 1, "web"), Exact: true,
					Field: map[string]any{"mode": "fixed"}},
				{ID: "Service/default/web-web", Origin: origin("web/templates/service.yaml", 1, 0, "web")},
				{ID: "Deployment/default/web-web", Origin: origin("web/templates/deployment.yaml", 1, 0, "web")},
				{ID: "ServiceMonitor/web-web", Origin: origin("web/templates/servicemonitor.yaml", 1, 0, "web")},
				{ID: "Pod/web-web-test", Origin: origin("web/templates/tests/test-connection.yaml", 1, 0, "web")},
			},
		},
		{
			name:   "Capabilities default to Kubernetes " + DefaultKubeVersion,
			target: Target{Name: "web", Path: "web"},
			field:  []string{"data", "kubeVersion"},
			want: []helmGot{
				{ID: "ConfigMap/web-web-cluster", Origin: origin("web/templates/config.yaml", 1, 0, "web"), Field: DefaultKubeVersion},
				{ID: "ConfigMap/static-settings", Origin: origin("web/templates/config.yaml", 12, 1, "web"), Exact: true},
				{ID: "Service/default/web-web", Origin: origin("web/templates/service.yaml", 1, 0, "web")},
				{ID: "Deployment/default/web-web", Origin: origin("web/templates/deployment.yaml", 1, 0, "web")},
				{ID: "Pod/web-web-test", Origin: origin("web/templates/tests/test-connection.yaml", 1, 0, "web")},
			},
		},
		{
			name:   "subchart in charts/, aliased, and a file:// dependency; CRDs first; disabled remote dependency ignored",
			target: Target{Name: "umbrella", Path: "umbrella"},
			field:  []string{"spec", "replicas"},
			want: []helmGot{
				{ID: "CustomResourceDefinition/widgets.example.com", Origin: origin("umbrella/crds/widgets.yaml", 2, 1, "umbrella"), Exact: true},
				{ID: "ConfigMap/umbrella-settings", Origin: origin("umbrella/templates/configmap.yaml", 1, 0, "umbrella")},
				{ID: "Service/metrics", Origin: origin("shared/metrics/templates/service.yaml", 1, 1, "umbrella"), Exact: true},
				{ID: "StatefulSet/umbrella-cache", Origin: origin("umbrella/charts/cache/templates/statefulset.yaml", 1, 0, "umbrella"), Field: int64(1)},
				{ID: "StatefulSet/umbrella-sessions", Origin: origin("umbrella/charts/cache/templates/statefulset.yaml", 1, 0, "umbrella"), Field: int64(2)},
			},
		},
		{
			name:   "a false condition drops a subchart, a false tag another",
			target: Target{Name: "umbrella", Path: "umbrella", Parameters: map[string]string{"sessions.enabled": "false", "tags.monitoring": "false"}},
			want: []helmGot{
				{ID: "CustomResourceDefinition/widgets.example.com", Origin: origin("umbrella/crds/widgets.yaml", 2, 1, "umbrella"), Exact: true},
				{ID: "ConfigMap/umbrella-settings", Origin: origin("umbrella/templates/configmap.yaml", 1, 0, "umbrella")},
				{ID: "StatefulSet/umbrella-cache", Origin: origin("umbrella/charts/cache/templates/statefulset.yaml", 1, 0, "umbrella")},
			},
		},
		{
			name:   "subchart values from the parent's values and parameters",
			target: Target{Name: "umbrella", Path: "umbrella", Parameters: map[string]string{"sessions.replicas": "3", "tags.monitoring": "true"}},
			field:  []string{"spec", "replicas"},
			want: []helmGot{
				{ID: "CustomResourceDefinition/widgets.example.com", Origin: origin("umbrella/crds/widgets.yaml", 2, 1, "umbrella"), Exact: true},
				{ID: "ConfigMap/umbrella-settings", Origin: origin("umbrella/templates/configmap.yaml", 1, 0, "umbrella")},
				{ID: "Service/metrics", Origin: origin("shared/metrics/templates/service.yaml", 1, 1, "umbrella"), Exact: true},
				{ID: "StatefulSet/umbrella-cache", Origin: origin("umbrella/charts/cache/templates/statefulset.yaml", 1, 0, "umbrella"), Field: int64(1)},
				{ID: "StatefulSet/umbrella-sessions", Origin: origin("umbrella/charts/cache/templates/statefulset.yaml", 1, 0, "umbrella"), Field: int64(3)},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo := helmTestRepo()
			if tc.repo != nil {
				tc.repo(&repo)
			}
			rs, err := renderHelm(t.Context(), repo, tc.target)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, helmSummarize(rs, tc.field)); diff != "" {
				t.Errorf("renderHelm (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRenderHelmPositions checks that exact positions are positions in the source file.
func TestRenderHelmPositions(t *testing.T) {
	rs, err := renderHelm(t.Context(), helmTestRepo(), Target{Name: "umbrella", Path: "umbrella"})
	if err != nil {
		t.Fatal(err)
	}
	web, err := renderHelm(t.Context(), helmTestRepo(), Target{Name: "web", Path: "web"})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]policy.Resource{}
	for _, r := range append(rs, web...) {
		byID[r.ID()] = r
	}
	tests := []struct {
		id        string
		path      []string
		line, col int
		ok        bool
	}{
		{id: "CustomResourceDefinition/widgets.example.com", path: []string{"spec", "names", "kind"}, line: 9, col: 5, ok: true},
		{id: "ConfigMap/static-settings", path: []string{"data", "mode"}, line: 17, col: 3, ok: true},
		{id: "Service/metrics", path: []string{"spec", "ports", "0", "port"}, line: 7, col: 7, ok: true},
		{id: "ConfigMap/static-settings", path: []string{"data", "missing"}},
	}
	for _, tc := range tests {
		t.Run(tc.id+"/"+strings.Join(tc.path, "."), func(t *testing.T) {
			r, found := byID[tc.id]
			if !found || r.Fields == nil {
				t.Fatalf("%s: no resource with a Fields locator", tc.id)
			}
			line, col, ok := r.Fields.Locate(tc.path)
			type pos struct {
				Line, Col int
				OK        bool
			}
			if diff := cmp.Diff(pos{tc.line, tc.col, tc.ok}, pos{line, col, ok}); diff != "" {
				t.Errorf("Locate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenderHelmErrors(t *testing.T) {
	tests := []struct {
		name   string
		repo   func(*Repo)
		target Target
		want   string // as helmDescribeError gives it
	}{
		{
			name:   "dependency on a chart repository, not vendored",
			target: Target{Name: "remote", Path: "remote"},
			want:   "RemoteError https://charts.example.com/bitnami",
		},
		{
			name:   "a disabled dependency on a chart repository, enabled by values",
			target: Target{Name: "umbrella", Path: "umbrella", Parameters: map[string]string{"queue.enabled": "true"}},
			want:   "RemoteError https://charts.example.com/stable",
		},
		{
			name:   "remote $ref in values.schema.json",
			target: Target{Name: "schema", Path: "schemaremote"},
			want:   "RemoteError https://schemas.example.com/resources.json",
		},
		{
			name:   "remote values file",
			target: Target{Name: "web", Path: "web", ValueFiles: []string{"https://example.com/values.yaml"}},
			want:   "RemoteError https://example.com/values.yaml",
		},
		{
			name:   "template syntax error",
			target: Target{Name: "bad", Path: "badsyntax"},
			want:   `TemplateError badsyntax/templates/deployment.yaml:6: function "nosuchfunc" not defined`,
		},
		{
			name:   "template execution error",
			target: Target{Name: "failing", Path: "failing"},
			want:   "TemplateError failing/templates/configmap.yaml:6:15: greeting is required",
		},
		{
			name:   "values file escaping the repository",
			target: Target{Name: "web", Path: "web", ValueFiles: []string{"../outside.yaml"}},
			want:   "helm chart web: values file ../outside.yaml is outside the repository",
		},
		{
			name:   "missing values file",
			target: Target{Name: "web", Path: "web", ValueFiles: []string{"web/values-staging.yaml"}},
			want:   "helm chart web: values file web/values-staging.yaml: file does not exist",
		},
		{
			name:   "file:// dependency escaping the repository",
			target: Target{Name: "escape", Path: "escape"},
			want:   `escape/Chart.yaml: dependency "secrets": file://../../../../../etc is outside the repository`,
		},
		{
			name:   "chart outside the repository",
			target: Target{Name: "up", Path: "../helm"},
			want:   "helm chart ../helm is outside the repository",
		},
		{
			name:   "values against the chart's schema",
			target: Target{Name: "web", Path: "web", Parameters: map[string]string{"replicaCount": "0"}},
			want:   "helm chart web: values don't meet the specifications of the schema(s) in the following chart(s):\nweb:\n- at '/replicaCount': minimum: got 0, want 1\n",
		},
		{
			name:   "values file over the size limit",
			repo:   func(r *Repo) { r.MaxFileSize = 16 },
			target: Target{Name: "web", Path: "web", ValueFiles: []string{"web/values-prod.yaml"}},
			want:   "helm chart web: values file web/values-prod.yaml is 69 bytes, over the 16-byte limit",
		},
		{
			name:   "invalid --set parameter",
			target: Target{Name: "web", Path: "web", Parameters: map[string]string{"a[": "1"}},
			want:   "helm chart web: parameter a[: error parsing index: EOF",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo := helmTestRepo()
			if tc.repo != nil {
				tc.repo(&repo)
			}
			_, err := renderHelm(t.Context(), repo, tc.target)
			if diff := cmp.Diff(tc.want, helmDescribeError(err)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

// helmDescribeError names the typed errors callers branch on, or gives the message.
func helmDescribeError(err error) string {
	var re *RemoteError
	var te *TemplateError
	switch {
	case err == nil:
		return "<nil>"
	case errors.As(err, &re):
		return "RemoteError " + re.URL
	case errors.As(err, &te):
		return "TemplateError " + policy.Origin{File: te.File, Line: te.Line, Col: te.Col}.String() + ": " + te.Err.Error()
	}
	return err.Error()
}

// TestRenderHelmThroughRender checks the wiring: Render renders Helm targets with
// renderHelm (and places namespaced objects in the target's namespace).
func TestRenderHelmThroughRender(t *testing.T) {
	rs, err := Render(t.Context(), helmTestRepo(), Target{Name: "umbrella", Kind: Helm, Path: "umbrella", Namespace: "data"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs {
		got = append(got, r.ID())
	}
	want := []string{
		"CustomResourceDefinition/widgets.example.com",
		"ConfigMap/data/umbrella-settings",
		"Service/data/metrics",
		"StatefulSet/data/umbrella-cache",
		"StatefulSet/data/umbrella-sessions",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Render (-want +got):\n%s", diff)
	}
}

func TestRenderHelmKubeVersionConstraint(t *testing.T) {
	repo := helmTestRepo()
	repo.KubeVersion = "v1.29.4"
	_, err := renderHelm(t.Context(), repo, Target{Name: "web", Path: "web"})
	want := "helm chart web requires kubeVersion: >=1.30.0-0 which is incompatible with Kubernetes v1.29.4"
	if diff := cmp.Diff(want, helmDescribeError(err)); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
}

// TestRenderHelmArchive renders a subchart vendored as an archive, as `helm dependency
// build` leaves it, declared with a repository that is never contacted.
func TestRenderHelmArchive(t *testing.T) {
	dir := t.TempDir()
	helmWriteFiles(t, dir, map[string]string{
		"app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n" +
			"  - name: cache\n    version: 1.x\n    repository: https://charts.example.com/stable\n",
		"app/templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n",
	})
	sub, err := loader.Load(filepath.Join(helmTestdata, "umbrella", "charts", "cache"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chartutil.Save(sub, filepath.Join(dir, "app", "charts")); err != nil {
		t.Fatal(err)
	}
	rs, err := renderHelm(t.Context(), Repo{FS: os.DirFS(dir), Dir: dir}, Target{Name: "app", Path: "app"})
	if err != nil {
		t.Fatal(err)
	}
	want := []helmGot{
		{ID: "ConfigMap/app", Origin: policy.Origin{File: "app/templates/configmap.yaml", Line: 1, Col: 1, Target: "app"}, Exact: true},
		{ID: "StatefulSet/app-cache", Origin: policy.Origin{File: "app/charts/cache-1.2.0.tgz", Target: "app"}},
	}
	if diff := cmp.Diff(want, helmSummarize(rs, nil)); diff != "" {
		t.Errorf("renderHelm (-want +got):\n%s", diff)
	}
}

func TestRenderHelmSymlinkOutOfRepo(t *testing.T) {
	outside := t.TempDir()
	helmWriteFiles(t, outside, map[string]string{"secret.txt": "s3cr3t\n"})
	dir := t.TempDir()
	helmWriteFiles(t, dir, map[string]string{
		"app/Chart.yaml":               "apiVersion: v2\nname: app\nversion: 0.1.0\n",
		"app/templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  s: {{ .Files.Get \"files/secret.txt\" | quote }}\n",
	})
	if err := os.MkdirAll(filepath.Join(dir, "app", "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "app", "files", "secret.txt")); err != nil {
		t.Skip("symlinks not supported:", err)
	}
	_, err := renderHelm(t.Context(), Repo{FS: os.DirFS(dir), Dir: dir}, Target{Name: "app", Path: "app"})
	real, _ := filepath.EvalSymlinks(filepath.Join(outside, "secret.txt"))
	want := "helm chart app: app/files/secret.txt is a symbolic link out of the repository (to " + real + ")"
	if diff := cmp.Diff(want, helmDescribeError(err)); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
}

func TestRenderHelmCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := renderHelm(ctx, helmTestRepo(), Target{Name: "web", Path: "web"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestRenderedHelmYAML(t *testing.T) {
	tests := []struct {
		golden string
		repo   func(*Repo)
		target Target
	}{
		{
			golden: "web-production.yaml",
			repo:   func(r *Repo) { r.APIVersions = []string{"monitoring.coreos.com/v1/ServiceMonitor"} },
			target: Target{Name: "web (production)", Path: "web", ReleaseName: "storefront", Namespace: "shop",
				ValueFiles: []string{"shared-values.yaml", "web/values-prod.yaml"},
				Parameters: map[string]string{"image.repository": "registry.example.com/nginx"}},
		},
		{golden: "umbrella.yaml", target: Target{Name: "umbrella", Path: "umbrella"}},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			repo := helmTestRepo()
			if tc.repo != nil {
				tc.repo(&repo)
			}
			got, err := HelmYAML(t.Context(), repo, tc.target)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(helmTestdata, "golden", tc.golden)
			if *updateHelmGolden {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("HelmYAML (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHelmDocPositions(t *testing.T) {
	tests := []struct {
		name string
		text string
		docs []string
		want []helmDocPos
	}{
		{
			name: "verbatim documents are exact",
			text: "a: 1\n---\n# c\nb: 2\n",
			docs: []string{"a: 1", "# c\nb: 2"},
			want: []helmDocPos{{exact: true, offset: 0, line: 1}, {exact: true, offset: 2, line: 3}},
		},
		{
			name: "templated documents take their section's first line",
			text: "\n\nname: {{ .x }}\n---\n{{- if .y }}\nb: {{ .y }}\n{{- end }}\n",
			docs: []string{"name: x", "b: y"},
			want: []helmDocPos{{line: 3}, {line: 5}},
		},
		{
			name: "sections that do not match the documents: line 1",
			text: "{{- range .items }}\n---\nname: {{ . }}\n{{- end }}\n",
			docs: []string{"name: a", "name: b", "name: c"},
			want: []helmDocPos{{line: 1}, {line: 1}, {line: 1}},
		},
		{
			name: "text found mid-line is not a document start",
			text: "x: a: 1\n",
			docs: []string{"a: 1"},
			want: []helmDocPos{{line: 1}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := helmDocPositions(tc.text, tc.docs)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(helmDocPos{})); diff != "" {
				t.Errorf("helmDocPositions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHelmEscapeSet(t *testing.T) {
	tests := map[string]string{
		"a,b":    `a\,b`,
		`a\,b`:   `a\,b`,
		"{a,b}":  "{a,b}",
		"plain":  "plain",
		",lead,": `\,lead\,`,
	}
	for in, want := range tests {
		if diff := cmp.Diff(want, helmEscapeSet(in)); diff != "" {
			t.Errorf("helmEscapeSet(%q) (-want +got):\n%s", in, diff)
		}
	}
}

func helmWriteFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRenderHelmConcurrent renders the same targets in parallel, as All does; run
// it with -race.
func TestRenderHelmConcurrent(t *testing.T) {
	targets := []Target{
		{Name: "umbrella", Path: "umbrella"},
		{Name: "web", Path: "web", Values: map[string]any{"podLabels": map[string]any{"tier": "front"}}},
	}
	want := make([][]byte, len(targets))
	for i, tg := range targets {
		b, err := HelmYAML(t.Context(), helmTestRepo(), tg)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = b
	}
	for i := range 8 {
		tg := targets[i%len(targets)]
		w := want[i%len(targets)]
		t.Run(tg.Name, func(t *testing.T) {
			t.Parallel()
			got, err := HelmYAML(t.Context(), helmTestRepo(), tg)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(w), string(got)); diff != "" {
				t.Errorf("HelmYAML (-want +got):\n%s", diff)
			}
		})
	}
}
