package kustomization

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestScanRefsMatchesParser: the parser-free reading of a kustomization's references
// agrees with the YAML parser wherever it answers, on hand-written cases and on every
// kustomization in testdata.
func TestScanRefsMatchesParser(t *testing.T) {
	cases := map[string]string{
		"block":           "resources:\n- ../../base\n- hpa.yaml # scaled\n",
		"indented block":  "resources:\n  - ../../base\n  - 'quoted dir'\nnamespace: x\n",
		"flow":            "bases: [../base, \"../other\"]\ncomponents: [../../components/probes]\n",
		"other keys":      "patches:\n- path: patch.yaml\n  target:\n    kind: Deployment\nresources:\n- ../../base\nimages:\n- name: a\n  newTag: \"1\"\n",
		"inline patch":    "resources: [../../base]\npatches:\n- patch: |-\n    - op: add\n      path: /x\n      value: y\n",
		"empty":           "",
		"comments":        "# top\nresources: # the bases\n# between\n- ../../base\n",
		"anchors":         "resources: &r\n- ../../base\nbases: *r\n",
		"multi-line flow": "resources: [\n  ../../base,\n  ../extra]\n",
		"remote":          "resources:\n- https://github.com/x/y//base?ref=v1\n- ../../base\n",
	}
	for _, root := range []string{"../../testdata/gitops", "../../testdata/seed"} {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && IsFileName(d.Name()) {
				data, _ := os.ReadFile(p)
				cases[p] = string(data)
			}
			return nil
		})
	}
	scanned := 0
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := scanRefs([]byte(data))
			if !ok {
				return // the parser decides
			}
			scanned++
			var want []string
			if k, err := Parse([]byte(data)); err == nil {
				want = k.Refs()
			}
			if len(want) == 0 {
				want = nil
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-parser +scan)\n%s", diff)
			}
		})
	}
	if scanned < len(cases)/2 {
		t.Errorf("the scan answered for %d of %d kustomizations: it is not the fast path", scanned, len(cases))
	}
}

func TestPatchFilesAndRefs(t *testing.T) {
	data := []byte(`resources: [../base]
bases: [../old]
components: [../comp]
patches:
- path: a.yaml
- patch: |-
    inline
patchesStrategicMerge:
- b.yaml
- |-
  apiVersion: v1
  kind: ConfigMap
patchesJson6902:
- path: c.yaml
helmCharts:
- name: x
  repo: https://charts.example.com
`)
	k, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a.yaml", "b.yaml", "c.yaml"}, k.PatchFiles()); diff != "" {
		t.Errorf("PatchFiles (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff([]string{"../base", "../old", "../comp"}, Refs(data)); diff != "" {
		t.Errorf("Refs (-want +got)\n%s", diff)
	}
	if len(k.HelmCharts) != 1 || k.HelmCharts[0].Repo != "https://charts.example.com" {
		t.Errorf("helmCharts: %+v", k.HelmCharts)
	}
	if _, err := Parse([]byte("resources: {a: b}\n")); err == nil {
		t.Error("a mapping for resources parsed")
	}
}
