package render

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/policy"
	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// jsonnetTestRepo holds two Argo CD Applications with jsonnet directory sources:
// guestbook (libs, extVars and TLAs, string and code, an array output, an object output,
// a YAML file beside them, a subdirectory it does not recurse into) and tools (recurse,
// exclude, a List output, an import reaching another app's directory), and legacy/, a
// .jsonnet file no Application renders.
const jsonnetTestRepo = "testdata/jsonnet/repo"

func jsonnetRepo(t *testing.T) Repo {
	t.Helper()
	dir, err := filepath.Abs(jsonnetTestRepo)
	if err != nil {
		t.Fatal(err)
	}
	return Repo{FS: os.DirFS(dir), Dir: dir}
}

// normJSON is v through JSON: numbers as float64, so hand-written YAML and rendered
// objects compare.
func normJSON(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// expectDocs decodes hand-written YAML documents (separated by ---).
func expectDocs(t *testing.T, docs string) []any {
	t.Helper()
	var out []any
	for _, d := range strings.Split(docs, "\n---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, normJSON(t, m))
	}
	return out
}

func TestJsonnetApplications(t *testing.T) {
	repo := jsonnetRepo(t)
	d := Discover(context.Background(), repo, DiscoverOptions{})
	if len(d.Errors) > 0 {
		t.Fatalf("discovery errors: %v", d.Errors)
	}
	byName := map[string]Target{}
	for _, tg := range d.Targets {
		byName[tg.Name] = tg
	}

	// The options as Argo CD's repo-server would use them: the build environment
	// substituted in the values, code kept as code.
	wantOpts := map[string]*JsonnetOptions{
		"guestbook": {
			Libs: []string{"lib"},
			ExtVars: []JsonnetVar{
				{Name: "env", Value: "prod-guestbook"},
				{Name: "replicas", Value: "1 + 2", Code: true},
			},
			TLAs: []JsonnetVar{
				{Name: "image", Value: "registry.example.com/guestbook:1.4"},
				{Name: "labels", Value: "{ team: 'web', tier: 'front' }", Code: true},
			},
		},
		"tools": {},
	}
	for name, want := range wantOpts {
		tg, ok := byName[name]
		if !ok {
			t.Fatalf("no target %s among %v", name, d.Targets)
		}
		if tg.Kind != Directory {
			t.Errorf("%s: kind %s, want directory", name, tg.Kind)
		}
		if diff := cmp.Diff(want, tg.Jsonnet); diff != "" {
			t.Errorf("%s: jsonnet options (-want +got)\n%s", name, diff)
		}
	}

	// legacy/ and the subdirectory guestbook does not recurse into are named, not
	// silently skipped; tools' nested/ is covered by its recurse.
	var notice string
	for _, n := range d.Notices {
		if strings.Contains(n, ".jsonnet file") {
			notice = n
		}
	}
	if !strings.Contains(notice, "legacy") || !strings.Contains(notice, "apps/guestbook/sub") || strings.Contains(notice, "apps/tools") {
		t.Errorf("notice about unrendered jsonnet = %q, want legacy and apps/guestbook/sub, not apps/tools (notices %q)", notice, d.Notices)
	}
	for _, tg := range d.Targets {
		if strings.HasPrefix(tg.Path, "legacy") {
			t.Errorf("legacy/ became a target: %v", tg)
		}
	}

	tests := []struct {
		name  string
		files []string // each object's file, in order
		want  string   // hand-written objects
	}{
		{
			name:  "guestbook",
			files: []string{"apps/guestbook/main.jsonnet", "apps/guestbook/main.jsonnet", "apps/guestbook/quota.yaml", "apps/guestbook/settings.jsonnet"},
			want: `apiVersion: apps/v1
kind: Deployment
metadata:
  name: guestbook
  namespace: guestbook
  labels: {app.kubernetes.io/name: guestbook, team: web, tier: front}
spec:
  replicas: 3
  selector:
    matchLabels: {app.kubernetes.io/name: guestbook}
  template:
    metadata:
      labels: {app.kubernetes.io/name: guestbook, team: web, tier: front}
    spec:
      containers:
      - name: guestbook
        image: registry.example.com/guestbook:1.4
---
apiVersion: v1
kind: Service
metadata: {name: guestbook, namespace: guestbook}
spec:
  selector: {app.kubernetes.io/name: guestbook}
  ports: [{port: 8080, targetPort: 8080}]
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: guestbook, namespace: guestbook}
spec:
  hard: {pods: "10"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: guestbook-settings, namespace: guestbook}
data:
  environment: prod-guestbook
  banner.txt: "Welcome to the guestbook\n"`,
		},
		{
			name:  "tools",
			files: []string{"apps/tools/list.jsonnet", "apps/tools/list.jsonnet", "apps/tools/nested/role.jsonnet"},
			want: `apiVersion: v1
kind: ServiceAccount
metadata: {name: tool-a, namespace: tools}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: tool-b, namespace: tools}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: tools
  namespace: tools
  annotations: {port: "8080"}
rules: []`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := Render(context.Background(), repo, byName[tc.name])
			if err != nil {
				t.Fatal(err)
			}
			var got []any
			var files []string
			for _, r := range rs {
				got = append(got, normJSON(t, r.Object.Object))
				files = append(files, r.Origin.File)
				if r.Origin.Target != tc.name {
					t.Errorf("%s: origin target %q", r.ID(), r.Origin.Target)
				}
			}
			if diff := cmp.Diff(expectDocs(t, tc.want), got); diff != "" {
				t.Errorf("objects (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tc.files, files); diff != "" {
				t.Errorf("origin files (-want +got)\n%s", diff)
			}
		})
	}
}

// renderJsonnetDir renders dir of repo as an Argo CD directory source with opts.
func renderJsonnetDir(t *testing.T, repo Repo, dir string, opts JsonnetOptions) ([]policy.Resource, []error) {
	t.Helper()
	rs, err := Render(context.Background(), repo, Target{Name: dir, Kind: Directory, Path: dir, Jsonnet: &opts})
	var errs []error
	if err != nil {
		errs = policy.Unjoin(err)
	}
	return rs, errs
}

// errFor finds the error whose origin is file.
func errFor(errs []error, file string) *policy.InputError {
	for _, e := range errs {
		var ie *policy.InputError
		if errors.As(e, &ie) && ie.Origin.File == file {
			return ie
		}
	}
	return nil
}

func TestJsonnetErrors(t *testing.T) {
	repo := writeRepo(t, map[string]string{
		"app/good.jsonnet":    "{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'good' } }",
		"app/runtime.jsonnet": "local lib = import 'lib.libsonnet';\n{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: lib.name } }",
		"app/lib.libsonnet":   "{\n  name: error 'no name configured',\n}",
		"app/static.jsonnet":  "{\n  a: ,\n}",
		"app/number.jsonnet":  "42",
		"app/nested.jsonnet":  "[[{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }]]",
		"app/nokind.jsonnet":  "[{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'y' } }, { apiVersion: 'v1', metadata: { name: 'z' } }]",
		"app/noext.jsonnet":   "{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: std.extVar('missing') } }",
		"app/empty.jsonnet":   "[]",
		"app/plain.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n",
	})
	rs, errs := renderJsonnetDir(t, repo, "app", JsonnetOptions{})
	var names []string
	for _, r := range rs {
		names = append(names, r.Object.GetName())
	}
	// A bad file spoils only itself: the good file and the YAML beside them render.
	if diff := cmp.Diff([]string{"good", "plain"}, names); diff != "" {
		t.Errorf("rendered (-want +got)\n%s", diff)
	}
	for _, tc := range []struct {
		file string
		line int
		want []string
	}{
		// The innermost frame is in the library: its file and line, and the file evaluated.
		{"app/lib.libsonnet", 2, []string{"no name configured", "evaluating app/runtime.jsonnet"}},
		{"app/static.jsonnet", 2, []string{"STATIC ERROR", "Unexpected"}},
		{"app/number.jsonnet", 1, []string{"the output is a number", "object or an array of objects"}},
		{"app/nested.jsonnet", 1, []string{"element 0 of the output is a array"}},
		{"app/nokind.jsonnet", 1, []string{"element 1 of the output has no kind"}},
		{"app/noext.jsonnet", 1, []string{"Undefined external variable: missing"}},
	} {
		ie := errFor(errs, tc.file)
		if ie == nil {
			t.Errorf("no error for %s among %v", tc.file, errs)
			continue
		}
		if ie.Origin.Line != tc.line {
			t.Errorf("%s: line %d, want %d (%v)", tc.file, ie.Origin.Line, tc.line, ie)
		}
		for _, w := range tc.want {
			if !strings.Contains(ie.Error(), w) {
				t.Errorf("%s: %q lacks %q", tc.file, ie.Error(), w)
			}
		}
	}
	if len(errs) != 6 {
		t.Errorf("%d errors, want 6: %v", len(errs), errs)
	}
	// Paths are the repository's, never this machine's.
	for _, e := range errs {
		if strings.Contains(e.Error(), repo.Dir) {
			t.Errorf("an absolute path in %q", e)
		}
	}
}

func TestJsonnetImportsConfined(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("OUTSIDE-SECRET-jsonnet"), 0o644); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(filepath.Join(t.TempDir(), "app"), filepath.Join(outside, "secret.txt"))
	if err != nil {
		t.Fatal(err)
	}
	cm := func(expr string) string {
		return "{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { v: " + expr + " } }"
	}
	repo := writeRepo(t, map[string]string{
		"app/dotdot.jsonnet":   cm("importstr '" + filepath.ToSlash(rel) + "'"),
		"app/absolute.jsonnet": cm("importstr '" + filepath.ToSlash(filepath.Join(outside, "secret.txt")) + "'"),
		"app/link.jsonnet":     cm("importstr 'leak.txt'"),
		"app/leak.txt":         "->" + filepath.Join(outside, "secret.txt"),
		"app/bin.jsonnet":      cm("std.toString(importbin 'leak.txt')"),
		"app/viadir.jsonnet":   cm("importstr 'out/secret.txt'"),
		"app/out":              "->" + outside,
		"app/libout.jsonnet":   cm("importstr 'secret.txt'"),
		"app/ok.jsonnet":       cm("importstr 'inside.txt'"),
		"app/inside.txt":       "inside",
	})
	// A library path out of the repository is refused before anything is read.
	rs, errs := renderJsonnetDir(t, repo, "app", JsonnetOptions{Libs: []string{"app/out"}})
	for _, r := range rs {
		if r.Object.GetName() == "x" {
			if v, _, _ := unstructuredString(r.Object.Object, "data", "v"); v != "inside" {
				t.Errorf("rendered %q", v)
			}
		}
	}
	if len(rs) != 1 {
		t.Errorf("%d objects rendered, want the one of ok.jsonnet", len(rs))
	}
	for file, want := range map[string]string{
		"app/dotdot.jsonnet":   "leaves the repository",
		"app/absolute.jsonnet": "an absolute path, outside the repository",
		"app/link.jsonnet":     "app/leak.txt is a symbolic link out of the repository",
		"app/bin.jsonnet":      "app/leak.txt is a symbolic link out of the repository",
		"app/viadir.jsonnet":   "symbolic link out of the repository",
		"app/libout.jsonnet":   "symbolic link out of the repository",
	} {
		ie := errFor(errs, file)
		if ie == nil {
			t.Errorf("%s: no error among %v", file, errs)
			continue
		}
		if !strings.Contains(ie.Error(), want) || !strings.Contains(ie.Error(), file) {
			t.Errorf("%s: %q lacks %q and the importing file", file, ie, want)
		}
	}
	for _, e := range errs {
		if strings.Contains(e.Error(), "OUTSIDE-SECRET") {
			t.Errorf("the outside file was read: %v", e)
		}
	}
}

func unstructuredString(obj map[string]any, keys ...string) (string, bool, error) {
	var cur any = obj
	for _, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false, nil
		}
		cur = m[k]
	}
	s, ok := cur.(string)
	return s, ok, nil
}

// TestJsonnetImportOrder: the importing file's directory first, then the library paths
// from the last to the first, the source directory last (go-jsonnet's FileImporter with
// Argo CD's [source dir, libs...]).
func TestJsonnetImportOrder(t *testing.T) {
	repo := writeRepo(t, map[string]string{
		"app/main.jsonnet":        "local a = import 'a.libsonnet'; local b = import 'b.libsonnet'; local c = import 'sub/c.libsonnet'; { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'm' }, data: { a: a, b: b, c: c, e: std.extVar('e') } }",
		"app/sub/c.libsonnet":     "import 'd.libsonnet'", // from sub/: its own directory first
		"app/sub/d.libsonnet":     "'sub'",
		"app/d.libsonnet":         "'app'",
		"app/b.libsonnet":         "'app'",
		"lib1/a.libsonnet":        "'lib1'",
		"lib2/a.libsonnet":        "'lib2'",
		"lib1/b.libsonnet":        "'lib1'",
		"vendor/x/a.libsonnet":    "'vendor'",
		"vendor/x/unused.jsonnet": "not rendered",
	})
	// The code of an extVar imports from the library paths only.
	rs, errs := renderJsonnetDir(t, repo, "app", JsonnetOptions{Libs: []string{"lib1", "/lib2"}, ExtVars: []JsonnetVar{{Name: "e", Value: "import 'b.libsonnet'", Code: true}}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	got := rs[0].Object.Object["data"]
	want := map[string]any{"a": "lib2", "b": "app", "c": "sub", "e": "lib1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("imports resolved (-want +got)\n%s", diff)
	}
	deps := targetDeps(repo, Target{Kind: Directory, Path: "app", Jsonnet: &JsonnetOptions{Libs: []string{"lib1", "/lib2"}}})
	for _, f := range []string{"lib2/a.libsonnet", "app/sub/d.libsonnet", "app/b.libsonnet"} {
		if !deps.Match(f) {
			t.Errorf("%s is not a dependency: %v", f, deps)
		}
	}
	// app/a.libsonnet does not exist, but creating it would change the render.
	if !slices.Contains(deps, "app/a.libsonnet") {
		t.Errorf("the import candidate app/a.libsonnet is not a dependency: %v", deps)
	}
	if deps.Match("lib1/a.libsonnet") || deps.Match("vendor/x/a.libsonnet") {
		t.Errorf("a file never read is a dependency: %v", deps)
	}
}

func TestJsonnetBounds(t *testing.T) {
	ok := "{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'fine' } }"
	t.Run("stack", func(t *testing.T) {
		repo := writeRepo(t, map[string]string{"app/a.jsonnet": "local f(x) = f(x) + 1; f(1)", "app/b.jsonnet": ok})
		rs, errs := renderJsonnetDir(t, repo, "app", JsonnetOptions{})
		if ie := errFor(errs, "app/a.jsonnet"); ie == nil || !strings.Contains(ie.Error(), "max stack frames exceeded") || ie.Origin.Line != 1 {
			t.Errorf("infinite recursion: %v", errs)
		}
		if len(rs) != 1 {
			t.Errorf("the other file did not render: %d objects", len(rs))
		}
	})
	t.Run("memory", func(t *testing.T) {
		repo := writeRepo(t, map[string]string{
			"app/a.jsonnet": "std.makeArray(1e9, function(i) i)",
			"app/b.jsonnet": ok,
			"app/c.jsonnet": "local f(s, n) = if n == 0 then s else f(s + s, n - 1); { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: f('x', 40) } }",
		})
		repo.JsonnetMaxMemory = 200 << 20
		start := time.Now()
		rs, errs := renderJsonnetDir(t, repo, "app", JsonnetOptions{})
		for _, f := range []string{"app/a.jsonnet", "app/c.jsonnet"} {
			if ie := errFor(errs, f); ie == nil || !strings.Contains(ie.Error(), "more than 200 MiB of memory") {
				t.Errorf("%s: %v", f, errs)
			}
		}
		if len(rs) != 1 {
			t.Errorf("the file between them did not render: %d objects", len(rs))
		}
		t.Logf("%s", time.Since(start))
	})
	t.Run("time", func(t *testing.T) {
		repo := writeRepo(t, map[string]string{
			"app/a.jsonnet": ok,
			"app/b.jsonnet": "local f(x) = f(x + 1) tailstrict; f(0)",
			"app/c.jsonnet": ok,
		})
		repo.Helm.Timeout = 2 * time.Second
		start := time.Now()
		rs, errs := renderJsonnetDir(t, repo, "app", JsonnetOptions{})
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("took %s with a 2s budget", took)
		}
		if ie := errFor(errs, "app/b.jsonnet"); ie == nil || !strings.Contains(ie.Error(), "time budget of 2s ran out") || !strings.Contains(ie.Error(), "limits.helmTimeout") {
			t.Errorf("endless loop: %v", errs)
		}
		if ie := errFor(errs, "app/c.jsonnet"); ie == nil || !strings.Contains(ie.Error(), "not evaluated") || !strings.Contains(ie.Error(), "app/b.jsonnet") {
			t.Errorf("the file after it: %v", errs)
		}
		if len(rs) != 1 {
			t.Errorf("the file before it did not render: %d objects", len(rs))
		}
	})
	t.Run("output", func(t *testing.T) {
		repo := writeRepo(t, map[string]string{
			"app/a.jsonnet": "[{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' + i }, data: { v: std.repeat('x', 1000) } } for i in std.range(1, 300)]",
		})
		repo.Helm.MaxOutput = 100 << 10
		_, errs := renderJsonnetDir(t, repo, "app", JsonnetOptions{})
		if ie := errFor(errs, "app/a.jsonnet"); ie == nil || !strings.Contains(ie.Error(), "more than 102400 bytes of JSON") {
			t.Errorf("output bound: %v", errs)
		}
	})
	t.Run("objects", func(t *testing.T) {
		repo := writeRepo(t, map[string]string{
			"app/a.jsonnet": "[{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' + i } } for i in std.range(1, 50)]",
		})
		repo.MaxObjects = 10
		_, errs := renderJsonnetDir(t, repo, "app", JsonnetOptions{})
		if ie := errFor(errs, "app/a.jsonnet"); ie == nil || !strings.Contains(ie.Error(), "50 elements, over the limit of 10") {
			t.Errorf("object bound: %v", errs)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		repo := writeRepo(t, map[string]string{"app/a.jsonnet": "local f(x) = f(x + 1) tailstrict; f(0)", "app/b.jsonnet": ok})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		_, err := Render(ctx, repo, Target{Name: "app", Kind: Directory, Path: "app", Jsonnet: &JsonnetOptions{}})
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("took %s after a cancel", took)
		}
		errs := policy.Unjoin(err)
		for _, f := range []string{"app/a.jsonnet", "app/b.jsonnet"} {
			if ie := errFor(errs, f); ie == nil || !strings.Contains(ie.Error(), "not evaluated") {
				t.Errorf("%s: %v", f, errs)
			}
		}
	})
}

// TestJsonnetDirectoryOptions: recurse, include and exclude as Argo CD matches them (a
// gobwas glob against the path relative to the source, "*" crossing "/"), and the
// skip-file-rendering marker, for .jsonnet and YAML alike; files in walk order.
func TestJsonnetDirectoryOptions(t *testing.T) {
	cm := func(name string) string {
		return "{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: '" + name + "' } }"
	}
	repo := writeRepo(t, map[string]string{
		"app/top.jsonnet":           cm("top"),
		"app/top.yaml":              "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: top-yaml}\n",
		"app/skipped.jsonnet":       "// +argocd:skip-file-rendering\nerror 'never evaluated'",
		"app/skipped.yaml":          "# +argocd:skip-file-rendering\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: skipped-yaml}\n",
		"app/lib.libsonnet":         "error 'a library is not rendered'",
		"app/nested/a.jsonnet":      cm("nested-a"),
		"app/nested/deep/b.jsonnet": cm("nested-deep-b"),
		"app/other/c.jsonnet":       cm("other-c"),
		"app/other/notes.txt":       "not a manifest",
		"app/.hidden.jsonnet":       "error 'hidden files are not rendered'",
	})
	for _, tc := range []struct {
		name             string
		recurse          bool
		include, exclude string
		want             []string
	}{
		{name: "flat", want: []string{"top", "top-yaml"}},
		{name: "recurse", recurse: true, want: []string{"nested-a", "nested-deep-b", "other-c", "top", "top-yaml"}},
		// "nested/*" crosses into nested/deep/ too, as gobwas' "*" does.
		{name: "exclude", recurse: true, exclude: "nested/*", want: []string{"other-c", "top", "top-yaml"}},
		{name: "include alternatives", recurse: true, include: "{top.yaml,other/*}", want: []string{"other-c", "top-yaml"}},
		// "*.jsonnet" matches at any depth.
		{name: "include any depth", recurse: true, include: "*.jsonnet", want: []string{"nested-a", "nested-deep-b", "other-c", "top"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := Target{Name: "app", Kind: Directory, Path: "app", Recurse: tc.recurse, Include: tc.include, Exclude: tc.exclude, Jsonnet: &JsonnetOptions{}}
			rs, err := Render(context.Background(), repo, tg)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rs {
				got = append(got, r.Object.GetName())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("rendered (-want +got)\n%s", diff)
			}
		})
	}
}

// TestJsonnetNotForDiscoveredDirs: a plain directory found by discovery has no jsonnet
// options; its YAML renders, its .jsonnet files do not (the notice names them).
func TestJsonnetNotForDiscoveredDirs(t *testing.T) {
	repo := writeRepo(t, map[string]string{
		"manifests/cm.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n",
		"manifests/gen.jsonnet": "error 'never evaluated'",
	})
	d := Discover(context.Background(), repo, DiscoverOptions{})
	if len(d.Targets) != 1 || d.Targets[0].Jsonnet != nil {
		t.Fatalf("targets %v", d.Targets)
	}
	rs, err := Render(context.Background(), repo, d.Targets[0])
	if err != nil || len(rs) != 1 {
		t.Errorf("render: %d objects, %v", len(rs), err)
	}
	if len(d.Notices) != 1 || !strings.Contains(d.Notices[0], "1 .jsonnet file(s) in manifests: not rendered") {
		t.Errorf("notices %q", d.Notices)
	}
}

func TestJsonnetAppFields(t *testing.T) {
	repo := writeRepo(t, map[string]string{"app/main.jsonnet": "{}"})
	app := func(jsonnet string) []policy.Resource {
		y := `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: web, namespace: argocd}
spec:
  project: team
  destination: {namespace: prod}
  source:
    repoURL: https://git.example.com/r.git
    targetRevision: v1.2
    path: app
    directory:
      jsonnet:
` + jsonnet
		rs, err := policy.Decode("argocd/app.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	opts := AppOptions{RepoURLs: []string{"https://git.example.com/r.git"}}

	ts, notices, errs := AppTargets(repo, app(`        extVars:
        - {name: a, value: "$ARGOCD_APP_NAME/$ARGOCD_APP_NAMESPACE/${ARGOCD_APP_PROJECT_NAME}"}
        - {name: b, value: "$ARGOCD_APP_SOURCE_PATH $ARGOCD_APP_SOURCE_REPO_URL $ARGOCD_APP_SOURCE_TARGET_REVISION"}
        - {name: c, value: "$$HOME $UNKNOWN."}
        tlas:
        - {name: rev, value: "r-$ARGOCD_APP_REVISION_SHORT", code: false}
`), opts)
	if len(errs) > 0 || len(ts) != 1 {
		t.Fatalf("targets %v, errors %v", ts, errs)
	}
	want := &JsonnetOptions{
		ExtVars: []JsonnetVar{
			{Name: "a", Value: "web/prod/team"},
			{Name: "b", Value: "app https://git.example.com/r.git v1.2"},
			{Name: "c", Value: "$HOME ."},
		},
		TLAs: []JsonnetVar{{Name: "rev", Value: "r-"}},
	}
	if diff := cmp.Diff(want, ts[0].Jsonnet); diff != "" {
		t.Errorf("options (-want +got)\n%s", diff)
	}
	if len(notices) != 1 || !strings.Contains(notices[0], "not known offline") || !strings.Contains(notices[0], "tlas[0]") {
		t.Errorf("notices %q", notices)
	}

	ts, notices, errs = AppTargets(repo, app("        extvars: [{name: a, value: b}]\n"), opts)
	if len(errs) > 0 || len(ts) != 1 || len(notices) != 1 || !strings.Contains(notices[0], "spec.source.directory.jsonnet.extvars: unknown field") {
		t.Errorf("a misspelt field: targets %v, notices %q, errors %v", ts, notices, errs)
	}

	for _, tc := range []struct{ jsonnet, want string }{
		{"        libs: [../outside]\n", "spec.source.directory.jsonnet.libs[0] ../outside"},
		{"        libs: lib\n", "spec.source.directory.jsonnet.libs is not a list"},
		{"        extVars: [{value: x}]\n", "spec.source.directory.jsonnet.extVars[0] has no name"},
		{"        tlas: [{name: n, value: 3}]\n", "spec.source.directory.jsonnet.tlas[0].value is not a string"},
		{"        tlas: [{name: n, value: x, code: yes}]\n", "tlas[0].code is not true or false"},
	} {
		ts, _, errs := AppTargets(repo, app(tc.jsonnet), opts)
		if len(ts) != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) || !strings.Contains(errs[0].Error(), "argocd/app.yaml:") {
			t.Errorf("%q: targets %v, errors %v; want one error with %q and the file:line", tc.jsonnet, ts, errs, tc.want)
		}
	}
}

// TestJsonnetAppOfApps: Applications generated by a chart and by jsonnet (app-of-apps)
// render jsonnet directories; Discover cannot see them and names the directories in a
// notice, which Plan drops once the generated Applications are targets.
func TestJsonnetAppOfApps(t *testing.T) {
	repo := writeRepo(t, map[string]string{
		"argocd/root.yaml": `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: root, namespace: argocd}
spec:
  destination: {namespace: argocd}
  source: {repoURL: https://git.example.com/r.git, path: charts/root}
`,
		"charts/root/Chart.yaml": "apiVersion: v2\nname: root\nversion: 0.1.0\n",
		"charts/root/templates/child.yaml": `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: child, namespace: argocd}
spec:
  destination: {namespace: child}
  source:
    repoURL: https://git.example.com/r.git
    path: apps/child
    directory:
      jsonnet:
        extVars: [{name: owner, value: "{{ .Release.Name }}"}]
`,
		// The child's jsonnet renders a ConfigMap and, through a library, another Application.
		"apps/child/main.jsonnet": `local argo = import '../../lib/argo.libsonnet';
[
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'from-' + std.extVar('owner') } },
  argo.app('grandchild', 'apps/grandchild'),
]`,
		"lib/argo.libsonnet": `{
  app(name, path):: {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Application',
    metadata: { name: name, namespace: 'argocd' },
    spec: {
      destination: { namespace: name },
      source: { repoURL: 'https://git.example.com/r.git', path: path, directory: { jsonnet: {} } },
    },
  },
}`,
		"apps/grandchild/main.jsonnet": "{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'grand' } }",
		"legacy/old.jsonnet":           "{}",
	})
	opts := DiscoverOptions{RepoURLs: []string{"https://git.example.com/r.git"}}
	d := Discover(context.Background(), repo, opts)
	if len(d.Notices) != 1 || !strings.Contains(d.Notices[0], "3 .jsonnet file(s) in apps/child, apps/grandchild, legacy") {
		t.Fatalf("notices after Discover: %q", d.Notices)
	}
	d = Plan(context.Background(), repo, opts, 1)
	var names []string
	for _, r := range RenderPlan(context.Background(), repo, d, 1, nil, nil) {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Target.Name, r.Err)
		}
		for _, res := range r.Resources {
			names = append(names, res.Object.GetName())
		}
	}
	for _, want := range []string{"from-root", "grandchild", "grand"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s did not render: %v", want, names)
		}
	}
	var jsonnetNotices []string
	for _, n := range d.Notices {
		if strings.Contains(n, ".jsonnet file") {
			jsonnetNotices = append(jsonnetNotices, n)
		}
	}
	if len(jsonnetNotices) != 1 || !strings.Contains(jsonnetNotices[0], "1 .jsonnet file(s) in legacy: not rendered") {
		t.Errorf("notices after Plan: %q", d.Notices)
	}
}
