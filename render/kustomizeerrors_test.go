package render

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/policy"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

const configMapA = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"

// krustyErr builds dir of repo with kustomize alone (no gitgate pre-scan), as the
// kustomize CLI would: what kustomize itself says.
func krustyErr(repo Repo, dir string) error {
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	_, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), filepath.Join(repo.Dir, dir))
	return err
}

// Every field that names a file or directory, each missing: every entry is named with
// its kustomization file, line and field, repository-relative, and kustomize never runs
// (its error has absolute paths and names only the first).
func TestKustomizeMissingEntries(t *testing.T) {
	fields := []struct{ field, yaml string }{
		{"resources[1]", "resources:\n- ok.yaml\n- missing.yaml\n"},
		{"bases[0]", "bases:\n- ../nobase\n"},
		{"components[0]", "components:\n- ../nocomponent\n"},
		{"patches[0].path", "patches:\n- path: nopatch.yaml\n"},
		{"patchesStrategicMerge[0]", "patchesStrategicMerge:\n- nopsm.yaml\n"},
		{"patchesJson6902[0].path", "patchesJson6902:\n- target: {kind: ConfigMap, name: a, version: v1}\n  path: nojson.yaml\n"},
		{"configMapGenerator[0].files[0]", "configMapGenerator:\n- name: c\n  files:\n  - key=nofile.txt\n"},
		{"configMapGenerator[0].envs[0]", "configMapGenerator:\n- name: c\n  envs:\n  - noenv.env\n"},
		{"secretGenerator[0].env", "secretGenerator:\n- name: s\n  env: nosecret.env\n"},
		{"crds[0]", "crds:\n- nocrd.json\n"},
		{"configurations[0]", "configurations:\n- noconfig.yaml\n"},
		{"replacements[0].path", "replacements:\n- path: norepl.yaml\n"},
		{"generators[0]", "generators:\n- nogen.yaml\n"},
		{"transformers[0]", "transformers:\n- ../notransformers\n"},
	}
	for _, f := range fields {
		// One repository per field: kustomize itself refuses each, so the pre-scan never
		// refuses what kustomize would build.
		kust := f.yaml
		if !strings.HasPrefix(kust, "resources:") {
			kust = "resources:\n- ok.yaml\n" + kust
		}
		if err := krustyErr(writeRepo(t, map[string]string{"app/ok.yaml": configMapA, "app/kustomization.yaml": kust}), "app"); err == nil {
			t.Errorf("%s: kustomize builds a kustomization with it missing; the pre-scan must not refuse it", f.field)
		}
	}
	files := map[string]string{"app/ok.yaml": configMapA, "app/kustomization.yaml": `resources:
- ok.yaml
- missing.yaml
bases:
- ../nobase
components:
- ../nocomponent
patches:
- path: nopatch.yaml
patchesStrategicMerge:
- nopsm.yaml
patchesJson6902:
- target: {kind: ConfigMap, name: a, version: v1}
  path: nojson.yaml
configMapGenerator:
- name: c
  files:
  - key=nofile.txt
  envs:
  - noenv.env
secretGenerator:
- name: s
  env: nosecret.env
crds:
- nocrd.json
configurations:
- noconfig.yaml
replacements:
- path: norepl.yaml
generators:
- nogen.yaml
transformers:
- ../notransformers
`}
	repo := writeRepo(t, files)
	_, err := KustomizeYAML(context.Background(), repo, Target{Name: "app", Kind: Kustomize, Path: "app"})
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	lines := strings.Split(files["app/kustomization.yaml"], "\n")
	for _, f := range fields {
		i := slices.IndexFunc(policy.Unjoin(err), func(e error) bool {
			var fe *KustomizeFieldError
			return errors.As(e, &fe) && fe.Field == f.field
		})
		if i < 0 {
			t.Errorf("%s: not reported in\n%s", f.field, msg)
			continue
		}
		var fe *KustomizeFieldError
		errors.As(policy.Unjoin(err)[i], &fe)
		if fe.File != "app/kustomization.yaml" || fe.Line < 1 || !strings.Contains(lines[fe.Line-1], strings.TrimPrefix(fe.Value, "../")) {
			t.Errorf("%s: at %s:%d (%q), want the line of %q", f.field, fe.File, fe.Line, lines[max(fe.Line-1, 0)], fe.Value)
		}
		if !errors.Is(fe, fs.ErrNotExist) {
			t.Errorf("%s: %v is not fs.ErrNotExist", f.field, fe)
		}
	}
	want := `app/kustomization.yaml:3: resources[1]: "missing.yaml" does not exist: there is no app/missing.yaml in the repository`
	if !strings.Contains(msg, want) {
		t.Errorf("want %q in\n%s", want, msg)
	}
	for _, bad := range []string{repo.Dir, "evalsymlink", "lstat", "accumulat"} {
		if strings.Contains(msg, bad) {
			t.Errorf("the error has %q (kustomize's own, not the pre-scan's):\n%s", bad, msg)
		}
	}
}

func TestKustomizeDirectoryWithoutKustomization(t *testing.T) {
	repo := writeRepo(t, map[string]string{
		"app/kustomization.yaml": "resources:\n- ../base\n",
		"base/deploy.yaml":       configMapA,
	})
	if krustyErr(repo, "app") == nil {
		t.Fatal("kustomize builds it: the test is wrong")
	}
	_, err := KustomizeYAML(context.Background(), repo, Target{Name: "app", Kind: Kustomize, Path: "app"})
	want := `app/kustomization.yaml:2: resources[0]: "../base" is a directory with no kustomization.yaml`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("want %q, got %v", want, err)
	}
}

// An error only kustomize finds (a malformed resource two bases down): repository-
// relative, without kustomize's repetitions, after the target's kustomization file.
func TestKustomizeErrorRewritten(t *testing.T) {
	repo := writeRepo(t, map[string]string{
		"app/kustomization.yaml":   "resources:\n- ../base\n",
		"base/kustomization.yaml":  "resources:\n- ../base2\n",
		"base2/kustomization.yaml": "resources:\n- ok.yaml\n- bad.yaml\n",
		"base2/ok.yaml":            configMapA,
		"base2/bad.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [b\n",
	})
	raw := krustyErr(repo, "app")
	if raw == nil || !strings.Contains(raw.Error(), repo.Dir) {
		t.Fatalf("kustomize's own error should name absolute paths: %v", raw)
	}
	_, err := KustomizeYAML(context.Background(), repo, Target{Name: "app", Kind: Kustomize, Path: "app"})
	if err == nil {
		t.Fatal("want an error")
	}
	got := err.Error()
	want := `app/kustomization.yaml: kustomize build: accumulating resources from '../base' (base): accumulating resources from '../base2' (base2): accumulating resources from 'bad.yaml': MalformedYAMLError: yaml: line 3:`
	if !strings.HasPrefix(got, want) {
		t.Errorf("got  %s\nwant %s...", got, want)
	}
	for _, bad := range []string{repo.Dir, "/tmp/", "must resolve to a file", "recursed accumulation", "accumulation err="} {
		if strings.Contains(got, bad) {
			t.Errorf("%q left in %s", bad, got)
		}
	}
	if len(got) >= len(raw.Error())/2+len("app/kustomization.yaml: kustomize build: ") {
		t.Errorf("not much shorter than kustomize's (%d against %d chars): %s", len(got), len(raw.Error()), got)
	}
	if !errors.Is(err, errors.Unwrap(err)) || errors.Unwrap(err).Error() != raw.Error() {
		t.Errorf("kustomize's error is not kept underneath: %v", errors.Unwrap(err))
	}
}

// kustomizeMessage on kustomize's shapes, from the real builds (paths under /r).
func TestKustomizeMessage(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{
			"accumulating resources: accumulation err='merging resources from 'b.yaml': may not add resource with an already registered id: ConfigMap.v1.[noGrp]/a.[noNs]': must build at directory: '/r/app/b.yaml': file is not directory",
			"accumulating resources: merging resources from 'b.yaml': may not add resource with an already registered id: ConfigMap.v1.[noGrp]/a.[noNs]",
		},
		{
			"accumulating resources: accumulation err='accumulating resources from '../base': '/r/base' must resolve to a file': couldn't make target for path '/r/base': invalid Kustomization: json: unknown field \"resourcez\"",
			"accumulating resources from '../base' (base): invalid Kustomization: json: unknown field \"resourcez\"",
		},
		{
			"accumulating resources: accumulation err='accumulating resources from 'base': '/r/base' must resolve to a file': recursed accumulation of path '/r/base': accumulating resources: accumulation err='accumulating resources from 'a.yaml': missing metadata.name in object {{v1 ConfigMap} {{ } map[] map[]}}': must build at directory: '/r/base/a.yaml': file is not directory",
			"accumulating resources from 'base': accumulating resources from 'a.yaml': missing metadata.name in object {{v1 ConfigMap} {{ } map[] map[]}}",
		},
		{
			"accumulating components: accumulateDirectory: \"couldn't make target for path '/r/comp': kustomization.yaml is empty\"",
			"accumulating components: accumulateDirectory: \"couldn't make target for path 'comp': kustomization.yaml is empty\"",
		},
		{"no matches for Id ConfigMap.v1.[noGrp]/zz.[noNs]", "no matches for Id ConfigMap.v1.[noGrp]/zz.[noNs]"},
		{"couldn't make target for path '/r': kustomization.yaml is empty", "couldn't make target for path '.': kustomization.yaml is empty"},
	} {
		if got := kustomizeMessage(tc.in, "/r"); got != tc.want {
			t.Errorf("kustomizeMessage(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// Exec, Go and KRM-function plugins are never run: each is a *NotRenderedError at the
// entry naming it; a builtin plugin configuration still renders.
func TestKustomizePluginsNotRendered(t *testing.T) {
	fn := "apiVersion: example.com/v1\nkind: Stamp\nmetadata:\n  name: f\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: ./stamp.sh\n"
	tests := []struct {
		name, kust string
		files      map[string]string
		line       int
		want       string // in the detail
	}{
		{"KRM function file", "resources: [ok.yaml]\ntransformers:\n- stamp.yaml\n", map[string]string{"app/stamp.yaml": fn}, 3,
			"transformers[0]: example.com/v1 Stamp (app/stamp.yaml:1) is a KRM function (config.kubernetes.io/function); gitgate never executes plugins or functions during a check"},
		{"legacy exec plugin", "resources: [ok.yaml]\ngenerators:\n- gen.yaml\n", map[string]string{"app/gen.yaml": "apiVersion: someteam.example.com/v1\nkind: ChartInflator\nmetadata:\n  name: g\n"}, 3,
			"generators[0]: someteam.example.com/v1 ChartInflator (app/gen.yaml:1) is an exec or Go plugin (not a kustomize builtin)"},
		{"inline KRM function", "resources: [ok.yaml]\ntransformers:\n- |\n  apiVersion: example.com/v1\n  kind: Stamp\n  metadata:\n    name: f\n    annotations:\n      config.kubernetes.io/function: 'container: {image: x}'\n", nil, 3,
			"transformers[0]: example.com/v1 Stamp is a KRM function"},
		{"plugin in a directory of configurations", "resources: [ok.yaml]\ntransformers:\n- ../plugins\n", map[string]string{"plugins/kustomization.yaml": "resources:\n- stamp.yaml\n", "plugins/stamp.yaml": fn}, 2,
			"resources[0]: example.com/v1 Stamp (plugins/stamp.yaml:1) is a KRM function"},
		{"builtin helm generator", "generators:\n- helm.yaml\n", map[string]string{"app/helm.yaml": "apiVersion: builtin\nkind: HelmChartInflationGenerator\nmetadata:\n  name: h\nname: x\n"}, 2,
			"runs the helm binary (gitgate never executes plugins or functions during a check); list the chart under helmCharts:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"app/kustomization.yaml": tc.kust, "app/ok.yaml": configMapA, "app/stamp.sh": "#!/bin/sh\ntouch ran\n"}
			for k, v := range tc.files {
				files[k] = v
			}
			repo := writeRepo(t, files)
			if krustyErr(repo, "app") == nil {
				t.Fatal("kustomize builds it (without plugins): the test is wrong")
			}
			_, err := Render(context.Background(), repo, Target{Name: "app", Kind: Kustomize, Path: "app"})
			var nr *NotRenderedError
			if !errors.As(err, &nr) {
				t.Fatalf("want a *NotRenderedError, got %v", err)
			}
			file := "app/kustomization.yaml"
			if strings.HasPrefix(tc.want, "resources[0]") {
				file = "plugins/kustomization.yaml"
			}
			if nr.Target != "app" || nr.File != file || nr.Line != tc.line || nr.Reason != "kustomize plugin" || !strings.Contains(nr.Detail, tc.want) {
				t.Errorf("got %+v\nwant %s:%d, reason kustomize plugin, detail with %q", *nr, file, tc.line, tc.want)
			}
			if want := fmt.Sprintf("not rendered: kustomize plugin: %s (%s:%d)", nr.Detail, file, tc.line); nr.Error() != want {
				t.Errorf("Error() = %q, want %q", nr.Error(), want)
			}
			// As check prints it: at the entry, once, with no "does not render" wrapper.
			errs := Rendered{Target: Target{Name: "app", Kind: Kustomize, Path: "app"}, Err: err}.Errors()
			if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), fmt.Sprintf("%s:%d: not rendered: kustomize plugin: ", file, tc.line)) || strings.Count(errs[0].Error(), file) != 1 {
				t.Errorf("Errors() = %v", errs)
			}
			if _, err := os.Stat(filepath.Join(repo.Dir, "app", "ran")); err == nil {
				t.Error("the plugin ran")
			}
		})
	}
	// A builtin plugin configuration is not a plugin gitgate refuses.
	repo := writeRepo(t, map[string]string{
		"app/kustomization.yaml": "resources: [ok.yaml]\ntransformers:\n- labels.yaml\n",
		"app/ok.yaml":            configMapA,
		"app/labels.yaml":        "apiVersion: builtin\nkind: LabelTransformer\nmetadata:\n  name: l\nlabels:\n  team: x\nfieldSpecs:\n- path: metadata/labels\n  create: true\n",
	})
	out, err := KustomizeYAML(context.Background(), repo, Target{Name: "app", Kind: Kustomize, Path: "app"})
	if err != nil || !strings.Contains(string(out), "team: x") {
		t.Fatalf("builtin transformer: %v\n%s", err, out)
	}
}

// kustomize's deprecation warnings become notices with file:line, one per field of each
// kustomization file; two targets building the same base say the same notice.
func TestKustomizeNotices(t *testing.T) {
	repo := writeRepo(t, map[string]string{
		"base/kustomization.yaml":  "resources: [cm.yaml]\ncommonLabels:\n  team: a\nvars: []\nimageTags: null\n",
		"base/cm.yaml":             configMapA,
		"dev/kustomization.yaml":   "bases:\n- ../base\nnamePrefix: dev-\n",
		"prod/kustomization.yaml":  "resources:\n- ../base\nnamePrefix: prod-\npatchesStrategicMerge:\n- |\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n  data: {x: y}\n",
		"plain/kustomization.yaml": "resources: [../base/cm.yaml]\nlabels:\n- pairs: {a: b}\n",
	})
	base := []string{
		"base/kustomization.yaml:2: commonLabels is deprecated: use labels (kustomize edit fix)",
		"base/kustomization.yaml:4: vars is deprecated: use replacements (kustomize edit fix --vars, experimental)",
	}
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"dev", append([]string{"dev/kustomization.yaml:1: bases is deprecated: use resources (kustomize edit fix)"}, base...)},
		{"prod", append([]string{"prod/kustomization.yaml:4: patchesStrategicMerge is deprecated: use patches (kustomize edit fix)"}, base...)},
		{"plain", nil},
	} {
		got := KustomizeNotices(repo, Target{Name: tc.path, Kind: Kustomize, Path: tc.path})
		slices.Sort(got)
		slices.Sort(tc.want)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: notices\n got %q\nwant %q", tc.path, got, tc.want)
		}
	}
	rs := All(context.Background(), repo, []Target{{Name: "dev", Kind: Kustomize, Path: "dev"}, {Name: "prod", Kind: Kustomize, Path: "prod"}}, 2, nil, nil)
	for _, r := range rs {
		if r.Err != nil || !slices.Contains(r.Notices, base[0]) {
			t.Errorf("%s: err %v, notices %q: want %q", r.Target.Name, r.Err, r.Notices, base[0])
		}
	}
}

// The filter runs in a child process (it replaces os.Stderr for good): kustomize's
// warnings are taken out of standard error, every other line is passed on. Without it,
// kustomize prints them (so the test can fail).
func TestFilterKustomizeWarnings(t *testing.T) {
	if dir := os.Getenv("GITGATE_FILTER_CHILD"); dir != "" {
		stderr, flush := os.Stderr, func() {}
		if os.Getenv("GITGATE_FILTER") == "on" {
			stderr, flush = FilterKustomizeWarnings()
		}
		fmt.Fprintln(stderr, "direct line")
		fmt.Fprintln(os.Stderr, "before")
		if _, err := KustomizeYAML(context.Background(), Repo{Dir: dir, FS: os.DirFS(dir)}, Target{Name: "app", Kind: Kustomize, Path: "app"}); err != nil {
			fmt.Fprintln(os.Stderr, "build:", err)
		}
		fmt.Fprint(os.Stderr, "# Warning: 'bases' is deprecated but this is not kustomize's line\nno newline at the end")
		flush()
		os.Exit(0)
	}
	repo := writeRepo(t, map[string]string{
		"app/kustomization.yaml": "resources: [cm.yaml]\ncommonLabels: {team: a}\nvars: []\n",
		"app/cm.yaml":            configMapA,
	})
	child := func(filter string) string {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFilterKustomizeWarnings$")
		cmd.Env = append(os.Environ(), "GITGATE_FILTER_CHILD="+repo.Dir, "GITGATE_FILTER="+filter)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return string(out)
	}
	warnings := []string{"# Warning: 'commonLabels' is deprecated. Please use 'labels' instead.", "# Warning: 'vars' is deprecated."}
	kept := []string{"direct line\n", "before\n", "# Warning: 'bases' is deprecated but this is not kustomize's line\n", "no newline at the end"}
	off := child("off")
	for _, want := range append(warnings, kept...) {
		if !strings.Contains(off, want) {
			t.Errorf("without the filter, stderr lacks %q:\n%s", want, off)
		}
	}
	on := child("on")
	for _, want := range kept {
		if !strings.Contains(on, want) {
			t.Errorf("stderr lacks %q:\n%s", want, on)
		}
	}
	for _, bad := range append(warnings, "build:") {
		if strings.Contains(on, bad) {
			t.Errorf("stderr has %q:\n%s", bad, on)
		}
	}
}

// kustomize/api v0.21.2 knows ValidatingAdmissionPolicy and its Binding are cluster-
// scoped: a kustomization's namespace: no longer lands on them (v0.21.1 added it, unlike
// the kustomize v5.8.2 CLI), and still lands on a namespaced object beside them.
func TestKustomizeClusterScopedVAP(t *testing.T) {
	repo := writeRepo(t, map[string]string{
		"app/kustomization.yaml": "namespace: x\nresources: [vap.yaml, cm.yaml]\n",
		"app/cm.yaml":            configMapA,
		"app/vap.yaml": `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: replicas
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [apps]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [deployments]
  validations:
  - expression: object.spec.replicas <= 5
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: replicas
spec:
  policyName: replicas
  validationActions: [Deny]
`,
	})
	rs, err := Render(context.Background(), repo, Target{Name: "app", Kind: Kustomize, Path: "app"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rs {
		got[r.Object.GetKind()] = r.Object.GetNamespace()
	}
	want := map[string]string{"ValidatingAdmissionPolicy": "", "ValidatingAdmissionPolicyBinding": "", "ConfigMap": "x"}
	if !maps.Equal(got, want) {
		t.Errorf("namespaces by kind: got %v, want %v", got, want)
	}
	out, err := KustomizeYAML(context.Background(), repo, Target{Name: "app", Kind: Kustomize, Path: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(out), "namespace: x"); n != 1 {
		t.Errorf("kustomize's own output has %d namespace: x, want 1 (the ConfigMap's):\n%s", n, out)
	}
}
