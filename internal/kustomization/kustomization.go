// Package kustomization reads the part of a kustomization file that names other files
// and directories, once for every caller: discovery (the directories a kustomization
// builds on), merge-request mode's dependencies and provenance (every file of the
// graph), the remote-base check before kustomize runs, and plain-manifest mode (patch
// fragments are not manifests). Kustomize itself still builds; this only reads.
package kustomization

import (
	"bytes"
	"io/fs"
	"path"
	"strings"

	yaml3 "go.yaml.in/yaml/v3"
)

// FileNames are the names kustomize accepts, in its order of preference.
var FileNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// IsFileName reports whether a base name is one of FileNames.
func IsFileName(name string) bool {
	for _, n := range FileNames {
		if n == name {
			return true
		}
	}
	return false
}

// Kustomization is what a kustomization file names, as written (relative to its
// directory, possibly remote).
type Kustomization struct {
	Resources             []string          `yaml:"resources"`
	Bases                 []string          `yaml:"bases"`
	Components            []string          `yaml:"components"`
	CRDs                  []string          `yaml:"crds"`
	Generators            []string          `yaml:"generators"`
	Transformers          []string          `yaml:"transformers"`
	Validators            []string          `yaml:"validators"`
	Configurations        []string          `yaml:"configurations"`
	PatchesStrategicMerge []string          `yaml:"patchesStrategicMerge"` // file names or inline patches
	Patches               []PathEntry       `yaml:"patches"`
	PatchesJSON6902       []PathEntry       `yaml:"patchesJson6902"`
	Replacements          []PathEntry       `yaml:"replacements"`
	ConfigMapGenerator    []Generator       `yaml:"configMapGenerator"`
	SecretGenerator       []Generator       `yaml:"secretGenerator"`
	OpenAPI               map[string]string `yaml:"openapi"`
	HelmCharts            []HelmChart       `yaml:"helmCharts"`
	HelmGlobals           struct {
		ChartHome string `yaml:"chartHome"`
	} `yaml:"helmGlobals"`
}

// PathEntry is a list item that may name a file (patches, replacements).
type PathEntry struct {
	Path string `yaml:"path"`
}

// Generator is a configMapGenerator or secretGenerator entry.
type Generator struct {
	Name     string   `yaml:"name"`
	Behavior string   `yaml:"behavior"`
	Files    []string `yaml:"files"` // [key=]path
	Envs     []string `yaml:"envs"`
	Env      string   `yaml:"env"`
}

// HelmChart is a helmCharts entry.
type HelmChart struct {
	Name             string   `yaml:"name"`
	Repo             string   `yaml:"repo"`
	ValuesFile       string   `yaml:"valuesFile"`
	AdditionalValues []string `yaml:"additionalValuesFiles"`
}

// Parse reads a kustomization file.
func Parse(data []byte) (*Kustomization, error) {
	k := &Kustomization{}
	if err := yaml3.Unmarshal(data, k); err != nil {
		return nil, err
	}
	return k, nil
}

// Find returns the kustomization file of dir in fsys (the first of FileNames that
// exists) and its content; "" when dir has none.
func Find(fsys fs.FS, dir string) (file string, data []byte) {
	for _, n := range FileNames {
		p := path.Join(dir, n)
		if b, err := fs.ReadFile(fsys, p); err == nil {
			return p, b
		}
	}
	return "", nil
}

// Has reports whether dir in fsys has a kustomization file.
func Has(fsys fs.FS, dir string) bool {
	for _, n := range FileNames {
		if _, err := fs.Stat(fsys, path.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
}

// Refs are the resources, bases and components: what the kustomization builds on.
func (k *Kustomization) Refs() []string {
	return append(append(append([]string{}, k.Resources...), k.Bases...), k.Components...)
}

// PatchFiles are the patch files named by patches, patchesStrategicMerge (inline
// patches left out) and patchesJson6902, as written.
func (k *Kustomization) PatchFiles() []string {
	var out []string
	for _, p := range k.Patches {
		if p.Path != "" {
			out = append(out, p.Path)
		}
	}
	for _, p := range k.PatchesStrategicMerge {
		if p != "" && !strings.Contains(p, "\n") {
			out = append(out, p)
		}
	}
	for _, p := range k.PatchesJSON6902 {
		if p.Path != "" {
			out = append(out, p.Path)
		}
	}
	return out
}

// Refs reads the resources, bases and components of a kustomization file's content:
// the plain-style scanner when it answers, else the parser (nil if it does not parse).
func Refs(data []byte) []string {
	if refs, ok := scanRefs(data); ok {
		return refs
	}
	k, err := Parse(data)
	if err != nil {
		return nil
	}
	return k.Refs()
}

// scanRefs reads the resources, bases and components of a kustomization written in the
// plain style nearly every kustomization uses (block lists of unquoted or simply quoted
// names, or one-line flow lists) without a YAML parser: a repository holds thousands of
// kustomizations and discovery reads every one. Anything else (anchors, tabs, multi-line
// flow lists, several documents) answers ok=false, and the YAML parser decides.
func scanRefs(data []byte) (refs []string, ok bool) {
	if bytes.ContainsAny(data, "&*\t") || bytes.Contains(data, []byte("\n---")) {
		return nil, false
	}
	inList := false
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if line[0] != ' ' && line[0] != '-' { // a top-level key
			key, value, found := strings.Cut(line, ":")
			if !found {
				return nil, false
			}
			key = strings.Trim(strings.TrimSpace(key), `"'`)
			value = stripComment(value)
			inList = false
			if key != "resources" && key != "bases" && key != "components" {
				continue
			}
			switch {
			case value == "":
				inList = true
			case strings.HasPrefix(value, "[") && strings.HasSuffix(value, "]"):
				for _, item := range strings.Split(value[1:len(value)-1], ",") {
					if item, ok := plainScalar(item); ok {
						if item != "" {
							refs = append(refs, item)
						}
					} else {
						return nil, false
					}
				}
			default:
				return nil, false
			}
			continue
		}
		if !inList {
			continue
		}
		item, found := strings.CutPrefix(trimmed, "- ")
		if !found && trimmed != "-" {
			return nil, false
		}
		v, ok := plainScalar(stripComment(item))
		if !ok {
			return nil, false
		}
		refs = append(refs, v)
	}
	return refs, true
}

// stripComment drops a trailing " # comment" and surrounding space.
func stripComment(s string) string {
	if i := strings.Index(s, " #"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// plainScalar unquotes a simple scalar; ok=false for anything a YAML parser should read.
func plainScalar(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		s = s[1 : len(s)-1]
		return s, !strings.ContainsAny(s, `"'\`)
	}
	return s, !strings.ContainsAny(s, `"'{}[]:|>!%@`+"`")
}
