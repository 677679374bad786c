package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/gitgate/gitgate/render"
	"github.com/gitgate/gitgate/report"
)

// cacheRun is one check: its exit code, every -o format's bytes, stderr, and what the
// verdict cache did with each target (its last fate: hit, miss, render, stale).
type cacheRun struct {
	code   int
	outs   map[string][]byte
	stderr string
	fates  map[string]string
}

var cacheTraceMu sync.Mutex // cacheTrace is a package variable: one check at a time

func runCached(t *testing.T, dir, cache string, extra ...string) cacheRun {
	t.Helper()
	cacheTraceMu.Lock()
	defer cacheTraceMu.Unlock()
	out := t.TempDir()
	args := []string{"check", "--cache-dir", cache}
	for _, f := range report.CheckFormats().Names() {
		args = append(args, "-o", f+"="+filepath.Join(out, f))
	}
	args = append(append(args, extra...), dir)
	var mu sync.Mutex
	fates := map[string]string{}
	cacheTrace = func(target, fate string) { mu.Lock(); fates[target] = fate; mu.Unlock() }
	defer func() { cacheTrace = nil }()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	r := cacheRun{code: code, outs: map[string][]byte{}, stderr: stderr.String(), fates: fates}
	for _, f := range report.CheckFormats().Names() {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil && !os.IsNotExist(err) { // not written: a check that stops before its report
			t.Fatal(err)
		}
		r.outs[f] = b
	}
	return r
}

// sameOutput fails unless got is byte-identical to want in every format, exit code and
// stderr.
func sameOutput(t *testing.T, what string, want, got cacheRun) {
	t.Helper()
	if got.code != want.code {
		t.Errorf("%s: exit %d, uncached %d", what, got.code, want.code)
	}
	if got.stderr != want.stderr {
		t.Errorf("%s: stderr differs from the uncached run's:\n--- uncached\n%s\n--- got\n%s", what, clip(want.stderr), clip(got.stderr))
	}
	for f, w := range want.outs {
		if !bytes.Equal(got.outs[f], w) {
			t.Errorf("%s: -o %s differs from the uncached run's:\n--- uncached\n%s\n--- got\n%s", what, f, clip(string(w)), clip(string(got.outs[f])))
		}
	}
}

// byFate lists the targets with each fate.
func byFate(r cacheRun) map[string][]string {
	out := map[string][]string{}
	for t, f := range r.fates {
		out[f] = append(out[f], t)
	}
	for _, ts := range out {
		sort.Strings(ts)
	}
	return out
}

func copyRepo(t *testing.T, from string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	if err := copySubst(from, dir, strings.NewReplacer()); err != nil {
		t.Fatal(err)
	}
	return dir
}

func appendFile(t *testing.T, p, s string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestCacheSameOutput: over the repository's test repositories, a check from a cold
// cache and one from a warm cache print exactly what an uncached run prints, in every
// -o format, and the warm run takes every stored target from the cache.
func TestCacheSameOutput(t *testing.T) {
	repos := []string{"../../testdata/gitops", "../../render/testdata/jsonnet/repo"}
	shapes, _ := filepath.Glob("../../testdata/shapes/*")
	repos = append(repos, shapes...)
	hostile, _ := filepath.Glob("../../testdata/hostile/*/repo")
	for _, h := range hostile { // those that render without traps or symlinks to set up
		b, _ := os.ReadFile(filepath.Join(filepath.Dir(h), "case.yaml"))
		if _, err := os.Stat(filepath.Join(filepath.Dir(h), "symlinks.txt")); err == nil || bytes.Contains(b, []byte("{{")) || bytes.Contains(b, []byte("base:")) {
			continue
		}
		if filepath.WalkDir(h, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if b, _ := os.ReadFile(p); bytes.Contains(b, []byte("{{TRAP}}")) || bytes.Contains(b, []byte("{{OUTSIDE}}")) {
					return fmt.Errorf("placeholder")
				}
			}
			return err
		}) != nil {
			continue
		}
		if strings.Contains(h, "spin") || strings.Contains(h, "bomb") || strings.Contains(h, "doubling") || strings.Contains(h, "recursion") || strings.Contains(h, "huge") {
			continue // slow by design: their own test bounds them
		}
		repos = append(repos, h)
	}
	hits := 0
	for _, src := range repos {
		name := strings.TrimPrefix(filepath.Clean(src), filepath.Clean("../../testdata")+string(filepath.Separator))
		t.Run(name, func(t *testing.T) {
			dir := copyRepo(t, src)
			cache := t.TempDir()
			ref := runCached(t, dir, cache, "--no-cache")
			if len(ref.fates) != 0 {
				t.Fatalf("--no-cache: the cache was used: %v", ref.fates)
			}
			cold := runCached(t, dir, cache)
			sameOutput(t, "cold", ref, cold)
			if f := byFate(cold); len(f["hit"]) > 0 {
				t.Errorf("cold cache: hits %v", f["hit"])
			}
			warm := runCached(t, dir, cache)
			sameOutput(t, "warm", ref, warm)
			cf, wf := byFate(cold), byFate(warm)
			if !slices.Equal(cf["miss"], wf["hit"]) {
				t.Errorf("warm run: hits %v, want every target the cold run stored: %v", wf["hit"], cf["miss"])
			}
			hits += len(wf["hit"])
		})
	}
	if hits < 15 {
		t.Errorf("only %d targets came from the cache over all repositories: the comparison proves little", hits)
	}
}

// TestCacheChanges: after a change, the targets it affects are rendered and judged
// again, the others come from the cache, and the output is an uncached run's.
func TestCacheChanges(t *testing.T) {
	dir := copyRepo(t, "../../testdata/gitops")
	cache := t.TempDir()
	d := render.Plan(context.Background(), render.Repo{Dir: dir, FS: os.DirFS(dir)}, render.DiscoverOptions{}, 0)
	var all []string
	for _, tg := range d.Targets {
		all = append(all, tg.Name)
	}
	sort.Strings(all)
	runCached(t, dir, cache) // fill

	step := func(what string, change func(), want []string, extra ...string) {
		t.Helper()
		change()
		got := runCached(t, dir, cache, extra...)
		sameOutput(t, what, runCached(t, dir, t.TempDir(), append([]string{"--no-cache"}, extra...)...), got)
		f := byFate(got)
		again := append(append(append([]string{}, f["miss"]...), f["render"]...), f["stale"]...)
		sort.Strings(again)
		again = slices.Compact(again)
		want = append(slices.Clone(want), "argocd") // holds the ApplicationSet: rendered by the plan, never stored
		sort.Strings(want)
		want = slices.Compact(want)
		if !slices.Equal(again, want) {
			t.Errorf("%s: re-evaluated %v, want %v", what, again, want)
		}
		var hits []string
		for _, n := range all {
			if !slices.Contains(want, n) {
				hits = append(hits, n)
			}
		}
		if !slices.Equal(f["hit"], hits) {
			t.Errorf("%s: from the cache %v, want %v", what, f["hit"], hits)
		}
	}
	step("values file", func() {
		appendFile(t, filepath.Join(dir, "environments/production/svc-worker-000/values.yaml"), "\ncacheTestMarker: 7\n")
	}, []string{"svc-worker-000/production"})
	step("a base's manifest", func() {
		p := filepath.Join(dir, "apps/api-cart-000/base/deployment.yaml")
		b, _ := os.ReadFile(p)
		os.WriteFile(p, bytes.Replace(b, []byte("harbor.example.com"), []byte("docker.io"), 1), 0o644)
	}, []string{"api-cart-000-dev", "api-cart-000-production", "api-cart-000-staging"})
	step("nothing", func() {}, nil)
	step(".gitgate.yaml", func() {
		appendFile(t, filepath.Join(dir, ".gitgate.yaml"), "# a comment changes the settings' content\n")
	}, all)
	step("a policy", func() {
		writeFiles(t, dir, map[string]string{"policies/require-team.yaml": `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: require-team}
spec:
  validationFailureAction: Audit
  rules:
  - name: team
    match: {any: [{resources: {kinds: [Deployment]}}]}
    validate:
      message: "label team is required"
      pattern: {metadata: {labels: {team: "?*"}}}
`})
	}, all)
	step("the policy unchanged", func() {}, nil)
	step("kube-version", func() {}, all, "--kube-version", "1.24")
	step("kube-version again", func() {}, nil, "--kube-version", "1.24")
	crd := filepath.Join(t.TempDir(), "quota.yaml")
	b, err := os.ReadFile("../../testdata/crds/quota.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(crd, b, 0o644)
	step("--crds", func() {}, all, "--crds", crd)
	step("a CRD's content", func() { appendFile(t, crd, "\n") }, all, "--crds", crd)
	step("no-mutate", func() {}, all, "--no-mutate")
}

// TestCacheCorruptEntry: a cache entry whose bytes no longer match its digest is a
// miss, never a verdict.
func TestCacheCorruptEntry(t *testing.T) {
	dir := copyRepo(t, "../../testdata/gitops")
	cache := t.TempDir()
	ref := runCached(t, dir, cache)
	blobs, _ := filepath.Glob(filepath.Join(cache, "sha256", "*"))
	if len(blobs) == 0 {
		t.Fatal("nothing stored")
	}
	for _, b := range blobs {
		data, _ := os.ReadFile(b)
		// A verdict flipped: the entry would now say pass where it said fail.
		os.WriteFile(b, bytes.ReplaceAll(data, []byte(`"fail"`), []byte(`"pass"`)), 0o644)
	}
	got := runCached(t, dir, cache)
	sameOutput(t, "corrupted cache", ref, got)
	if f := byFate(got); len(f["hit"]) > 0 {
		t.Errorf("corrupted entries used: %v", f["hit"])
	}
}

// TestCacheNotStored: a target whose render reads a file its dependencies miss is never
// stored (so deps that can be incomplete for a kind never give a stale verdict); nor is
// one that renders CRDs; a custom resource judged against a CRD another target renders
// is judged again when that CRD changes.
func TestCacheNotStored(t *testing.T) {
	t.Run("deps miss a read", func(t *testing.T) {
		dir := copyRepo(t, "../../testdata/gitops")
		cache := t.TempDir()
		old := depsOf
		depsOf = func(repo render.Repo, d *render.Discovery, ts []render.Target) []render.Deps {
			out := old(repo, d, ts)
			for i := range out { // every base file forgotten
				out[i] = slices.DeleteFunc(slices.Clone(out[i]), func(p string) bool { return strings.Contains(p, "/base/") })
			}
			return out
		}
		defer func() { depsOf = old }()
		runCached(t, dir, cache)
		got := runCached(t, dir, cache)
		f := byFate(got)
		for _, n := range f["hit"] {
			if strings.HasPrefix(n, "api-cart") || strings.HasPrefix(n, "worker-") {
				t.Errorf("%s reads its base, which its deps miss, yet was stored", n)
			}
		}
		if !slices.Contains(f["render"], "api-cart-000-dev") || !slices.Contains(f["hit"], "svc-worker-000/dev") {
			t.Errorf("fates %v: want kustomize overlays rendered, Helm targets (deps complete) from the cache", f)
		}
	})
	t.Run("CRDs of another target", func(t *testing.T) {
		dir := t.TempDir()
		crd := func(typ string) string {
			return `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: ` + typ + `}
`
		}
		writeFiles(t, dir, map[string]string{
			"crd/kustomization.yaml":   "resources: [crd.yaml]\n",
			"crd/crd.yaml":             crd("integer"),
			"app/kustomization.yaml":   "resources: [widget.yaml]\n",
			"app/widget.yaml":          "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: default}\nspec: {size: big}\n",
			"other/kustomization.yaml": "resources: [cm.yaml]\n",
			"other/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: default}\ndata: {a: b}\n",
		})
		cache := t.TempDir()
		cold := runCached(t, dir, cache)
		if !bytes.Contains(cold.outs["text"], []byte("spec.size")) {
			t.Fatalf("the Widget is not judged against the rendered CRD:\n%s", cold.outs["text"])
		}
		warm := runCached(t, dir, cache)
		sameOutput(t, "warm", runCached(t, dir, t.TempDir(), "--no-cache"), warm)
		if f := byFate(warm); !slices.Equal(f["hit"], []string{"app", "other"}) || !slices.Equal(f["render"], []string{"crd"}) {
			t.Errorf("warm fates %v: want app and other from the cache, crd (renders CRDs) rendered", f)
		}
		writeFiles(t, dir, map[string]string{"crd/crd.yaml": crd("string")})
		changed := runCached(t, dir, cache)
		ref := runCached(t, dir, t.TempDir(), "--no-cache")
		sameOutput(t, "CRD changed", ref, changed)
		if bytes.Contains(changed.outs["text"], []byte("spec.size")) {
			t.Errorf("the Widget's finding outlived the CRD change:\n%s", changed.outs["text"])
		}
		if f := byFate(changed); !slices.Equal(f["hit"], []string{"other"}) || !slices.Equal(f["miss"], []string{"app"}) {
			t.Errorf("after the CRD changed, fates %v: want app judged again, other from the cache", f)
		}
	})
}
