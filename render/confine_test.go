package render

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gitgate/gitgate/internal/repopath"
)

// confineSecret is the content of the file outside the repository: no error may carry it.
const confineSecret = "CONFINE-OUTSIDE-7d3a"

// TestConfinedEveryField walks every kind of field a render reads a file through
// (kustomize's file-naming fields, the paths inside plugin configurations, Helm values
// files and charts, plain manifest directories, the ApplicationSet git generators) with
// each hostile value: a URL to a server that fails the test when contacted, a path
// climbing out with "..", an absolute path, and a symbolic link out of the repository.
// Each must be refused with an error naming the field (for kustomize, the
// kustomization file and line as well), before anything is fetched or read.
func TestConfinedEveryField(t *testing.T) {
	var hits atomic.Int64
	trap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fetched}\n"))
	}))
	defer trap.Close()
	tmp := t.TempDir()
	outside := filepath.Join(tmp, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(outside, "secret.txt")
	if err := os.WriteFile(secret, []byte(confineSecret+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	type value struct {
		name, v string
		// want is in the error: the reason.
		want string
	}
	values := []value{
		{"url", trap.URL + "/x.yaml", "not fetched: "},
		{"upper-case scheme", "HTTP://" + strings.TrimPrefix(trap.URL, "http://") + "/x.yaml", "not fetched: "},
		{"parent", "../../../outside/secret.txt", "is outside the repository"},
		{"absolute", secret, "is an absolute path"},
		{"symlink", "link.txt", "is a symbolic link out of the repository"},
	}
	// Each field: a kustomization with VALUE where the field takes it, the field name
	// the error must carry, and its line.
	fields := []struct {
		field, kustomization string
		line                 int
	}{
		{"resources[1]", "resources:\n- cm.yaml\n- VALUE\n", 3},
		{"bases[0]", "resources: [cm.yaml]\nbases:\n- VALUE\n", 3},
		{"components[0]", "resources: [cm.yaml]\ncomponents:\n- VALUE\n", 3},
		{"crds[0]", "resources: [cm.yaml]\ncrds:\n- VALUE\n", 3},
		{"configurations[0]", "resources: [cm.yaml]\nconfigurations:\n- VALUE\n", 3},
		{"generators[0]", "resources: [cm.yaml]\ngenerators:\n- VALUE\n", 3},
		{"transformers[0]", "resources: [cm.yaml]\ntransformers:\n- VALUE\n", 3},
		{"validators[0]", "resources: [cm.yaml]\nvalidators:\n- VALUE\n", 3},
		{"patchesStrategicMerge[0]", "resources: [cm.yaml]\npatchesStrategicMerge:\n- VALUE\n", 3},
		{"patches[0].path", "resources: [cm.yaml]\npatches:\n- target: {kind: ConfigMap}\n  path: VALUE\n", 4},
		{"patchesJson6902[0].path", "resources: [cm.yaml]\npatchesJson6902:\n- target: {version: v1, kind: ConfigMap, name: cm}\n  path: VALUE\n", 4},
		{"replacements[0].path", "resources: [cm.yaml]\nreplacements:\n- path: VALUE\n", 3},
		{"configMapGenerator[0].files[0]", "configMapGenerator:\n- name: g\n  files:\n  - VALUE\n", 4},
		{"configMapGenerator[0].files[0]", "configMapGenerator:\n- name: g\n  files:\n  - key=VALUE\n", 4},
		{"configMapGenerator[0].envs[0]", "configMapGenerator:\n- name: g\n  envs: [VALUE]\n", 3},
		{"configMapGenerator[0].env", "configMapGenerator:\n- name: g\n  env: VALUE\n", 3},
		{"secretGenerator[0].files[0]", "secretGenerator:\n- name: g\n  files: [VALUE]\n", 3},
		{"openapi.path", "resources: [cm.yaml]\nopenapi:\n  path: VALUE\n", 3},
		{"helmCharts[0].valuesFile", "helmCharts:\n- name: web\n  valuesFile: VALUE\n", 3},
		{"helmCharts[0].additionalValuesFiles[0]", "helmCharts:\n- name: web\n  additionalValuesFiles: [VALUE]\n", 3},
		// A plugin configuration inline, and in a file the kustomization names.
		{"transformers[0]:path", "resources: [cm.yaml]\ntransformers:\n- |-\n  apiVersion: builtin\n  kind: PatchTransformer\n  metadata: {name: p}\n  path: VALUE\n  target: {kind: ConfigMap}\n", 7},
		{"replacements[0].path", "resources: [cm.yaml]\ntransformers: [repl.yaml]\n#repl.yaml:apiVersion: builtin\n#repl.yaml:kind: ReplacementTransformer\n#repl.yaml:metadata: {name: r}\n#repl.yaml:replacements:\n#repl.yaml:- path: VALUE\n", 5},
		{"files[0]", "resources: [cm.yaml]\ngenerators: [gen]\n#gen/kustomization.yaml:resources: [gen.yaml]\n#gen/gen.yaml:apiVersion: builtin\n#gen/gen.yaml:kind: ConfigMapGenerator\n#gen/gen.yaml:metadata: {name: g}\n#gen/gen.yaml:files:\n#gen/gen.yaml:- VALUE\n", 5},
	}
	for _, f := range fields {
		for _, v := range values {
			t.Run(f.field+"/"+v.name, func(t *testing.T) {
				files := map[string]string{
					"app/cm.yaml":               "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {a: b}\n",
					"app/link.txt":              "->" + secret,
					"app/charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
				}
				var kust []string
				for _, line := range strings.Split(strings.ReplaceAll(f.kustomization, "VALUE", v.v), "\n") {
					// "#file:line" lines go to another file of the kustomization's directory.
					if rest, ok := strings.CutPrefix(line, "#"); ok {
						name, content, _ := strings.Cut(rest, ":")
						files["app/"+name] += content + "\n"
						continue
					}
					kust = append(kust, line)
				}
				files["app/kustomization.yaml"] = strings.Join(kust, "\n")
				repo := writeRepoAt(t, filepath.Join(tmp, "repo"), files)
				defer os.RemoveAll(repo.Dir)
				_, err := renderKustomize(context.Background(), repo, Target{Name: "app", Kind: Kustomize, Path: "app"})
				if err == nil {
					t.Fatal("rendered")
				}
				msg := err.Error()
				var fe *KustomizeFieldError
				if !errors.As(err, &fe) {
					t.Fatalf("want a *KustomizeFieldError, got %v", err)
				}
				if !strings.Contains(msg, f.field) || !strings.Contains(msg, v.want) || !strings.Contains(msg, "kustomization.yaml") && !strings.Contains(msg, ".yaml:") {
					t.Errorf("error %q: want the field %s, the file and %q", msg, f.field, v.want)
				}
				if !strings.Contains(f.kustomization, "#") && fe.Line != f.line {
					t.Errorf("line %d, want %d: %v", fe.Line, f.line, err)
				}
				if strings.Contains(msg, confineSecret) {
					t.Errorf("the error carries the outside file's content: %v", err)
				}
				if n := hits.Swap(0); n > 0 {
					t.Errorf("the trap was contacted %d times", n)
				}
			})
		}
	}

	// Helm values files, the chart directory, plain directories and the ApplicationSet
	// git files generator: a symbolic link out is refused by name and not read.
	repo := writeRepoAt(t, filepath.Join(tmp, "other"), map[string]string{
		"charts/web/Chart.yaml":               "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"charts/web/templates/cm.yaml":        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
		"charts/web/values-prod.yaml":         "->" + secret,
		"charts/linked/Chart.yaml":            "apiVersion: v2\nname: linked\nversion: 0.1.0\n",
		"charts/linked/templates/secret.yaml": "->" + secret,
		"plain/cm.yaml":                       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n",
		"plain/leak.yaml":                     "->" + secret,
		"linkdir":                             "->" + outside,
		"clusters/a/config.json":              `{"name": "a"}`,
		"clusters/b/config.json":              "->" + secret,
		"argocd/set.yaml": `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: set, namespace: argocd}
spec:
  generators:
  - git:
      repoURL: https://git.example.test/r.git
      revision: HEAD
      files: [{path: "clusters/*/config.json"}]
  template:
    metadata: {name: 'web-{{name}}'}
    spec:
      project: default
      source: {repoURL: https://git.example.test/r.git, path: plain}
      destination: {server: https://kubernetes.default.svc, namespace: web}
`,
	})
	for _, tc := range []struct {
		name   string
		target Target
		want   string
	}{
		{"helm values file", Target{Name: "web", Kind: Helm, Path: "charts/web", ValueFiles: []string{"charts/web/values-prod.yaml"}}, "charts/web/values-prod.yaml is a symbolic link out of the repository"},
		{"helm values file by ..", Target{Name: "web", Kind: Helm, Path: "charts/web", ValueFiles: []string{"../outside/secret.txt"}}, "out"},
		{"helm chart file", Target{Name: "linked", Kind: Helm, Path: "charts/linked"}, "charts/linked/templates/secret.yaml is a symbolic link out of the repository"},
		{"plain directory file", Target{Name: "plain", Kind: Directory, Path: "plain"}, "plain/leak.yaml is a symbolic link out of the repository"},
		{"plain directory itself", Target{Name: "linkdir", Kind: Directory, Path: "linkdir"}, "linkdir is a symbolic link out of the repository"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(context.Background(), repo, tc.target)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), confineSecret) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
	t.Run("applicationset git files", func(t *testing.T) {
		d := Discover(context.Background(), repo, DiscoverOptions{})
		var msgs []string
		for _, e := range d.Errors {
			msgs = append(msgs, e.Error())
		}
		for _, tg := range d.Targets {
			if strings.Contains(tg.Name, confineSecret) {
				t.Errorf("a target is named from the outside file: %s", tg.Name)
			}
		}
		all := strings.Join(msgs, "\n")
		if !strings.Contains(all, "clusters/b/config.json is a symbolic link out of the repository") || strings.Contains(all, confineSecret) {
			t.Errorf("discovery errors %q: want the link refused by name", all)
		}
	})
	var esc *repopath.EscapeError
	if _, err := repopath.DirFS(repo.Dir).ReadFile("plain/leak.yaml"); !errors.As(err, &esc) {
		t.Errorf("the repository filesystem read a link out: %v", err)
	}
}
