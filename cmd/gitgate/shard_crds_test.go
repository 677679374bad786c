package main

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gitgate/gitgate/render"
)

// rendersNoCRD spares a target only when none of its files can make a CRD: each case
// changes one thing of a target it spares.
func TestRendersNoCRD(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	base := func() fstest.MapFS {
		return fstest.MapFS{
			"app/kustomization.yaml": file("resources: [cm.yaml, more]\nconfigMapGenerator: [{name: g, files: [conf.txt]}]\n"),
			"app/cm.yaml":            file("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"),
			"app/conf.txt":           file("x=1\n"),
			"app/more/a.yaml":        file("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"),
		}
	}
	kust := render.Target{Name: "app", Path: "app", Kind: render.Kustomize}
	deps := render.Deps{"app/kustomization.yaml", "app/kustomization.yml", "app/Kustomization", "app/cm.yaml", "app/conf.txt", "app/more/"}
	if !rendersNoCRD(base(), kust, deps, 0) {
		t.Fatal("a kustomization of ConfigMaps: not spared")
	}
	for name, c := range map[string]struct {
		t     func(render.Target) render.Target
		files map[string]string
		max   int64
	}{
		"the word in a resource":      {files: map[string]string{"app/cm.yaml": "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"}},
		"the word in a directory":     {files: map[string]string{"app/more/b.yaml": "kind: CustomResourceDefinition\n"}},
		"the word in a generator":     {files: map[string]string{"app/conf.txt": "CustomResourceDefinition"}},
		"an escape could spell it":    {files: map[string]string{"app/cm.yaml": "kind: \"CustomResource\\x44efinition\"\n"}},
		"UTF-16":                      {files: map[string]string{"app/cm.yaml": "k\x00i\x00n\x00d\x00"}},
		"helmCharts":                  {files: map[string]string{"app/kustomization.yaml": "helmCharts: [{name: x}]\n"}},
		"a remote base":               {files: map[string]string{"app/kustomization.yaml": "resources: [github.com/org/repo//deploy?ref=v1]\n"}},
		"a remote file":               {files: map[string]string{"app/kustomization.yaml": "resources: [https://example.com/crds.yaml]\n"}},
		"a remote patch":              {files: map[string]string{"app/kustomization.yaml": "patches: [{path: 'https://example.com/p.yaml'}]\n"}},
		"replacements":                {files: map[string]string{"app/kustomization.yaml": "replacements: [{path: r.yaml}]\n"}},
		"a generator plugin":          {files: map[string]string{"app/kustomization.yaml": "generators: [gen.yaml]\n"}},
		"a transformer plugin":        {files: map[string]string{"app/kustomization.yaml": "transformers: [t.yaml]\n"}},
		"a kustomization that breaks": {files: map[string]string{"app/kustomization.yaml": "resources: {\n"}},
		"a file over the limit":       {max: 10},
		"a Helm chart":                {t: func(t render.Target) render.Target { t.Kind = render.Helm; return t }},
		"jsonnet": {t: func(t render.Target) render.Target {
			t.Kind, t.Jsonnet = render.Directory, &render.JsonnetOptions{}
			return t
		}},
		"another repository": {t: func(t render.Target) render.Target { t.Repo = &render.RemoteRepo{}; return t }},
		"a plugin":           {t: func(t render.Target) render.Target { t.Kind = render.Plugin; return t }},
	} {
		fsys := base()
		for f, s := range c.files {
			fsys[f] = file(s)
		}
		tg := kust
		if c.t != nil {
			tg = c.t(kust)
		}
		if rendersNoCRD(fsys, tg, deps, c.max) {
			t.Errorf("%s: spared", name)
		}
	}
	// Spared too: a plain directory, and files a kustomization names that do not exist.
	fsys := base()
	delete(fsys, "app/conf.txt")
	if !rendersNoCRD(fsys, kust, deps, 0) {
		t.Error("an absent dependency: not spared")
	}
	if !rendersNoCRD(base(), render.Target{Name: "more", Path: "app/more", Kind: render.Directory}, render.Deps{"app/more/"}, 0) {
		t.Error("a plain directory: not spared")
	}
}

// The shard's notice names the kinds left unchecked and the other targets it could not
// render, and is said only then: with every other target known, a kind with no CRD has
// one nowhere, and the unsharded check says nothing more of it either.
func TestShardCRDNotice(t *testing.T) {
	unchecked := map[string]int{"toys.gitgate.dev/v1/Gadget": 2}
	s := &shardCRDs{spec: shardSpec{Index: 2, Total: 3}}
	if n := s.notice(unchecked); n != "" {
		t.Errorf("every other target known: %q", n)
	}
	var nilShard *shardCRDs
	if n := nilShard.notice(unchecked); n != "" {
		t.Errorf("no shard: %q", n)
	}
	s.unknown = []string{"charts/crds"}
	n := s.notice(unchecked)
	for _, want := range []string{"shard 2/3", "toys.gitgate.dev/v1/Gadget (2)", "charts/crds", "interrupted"} {
		if !strings.Contains(n, want) {
			t.Errorf("notice %q lacks %q", n, want)
		}
	}
	if n := s.notice(nil); n != "" {
		t.Errorf("nothing unchecked: %q", n)
	}
}
