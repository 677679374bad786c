package render

import (
	"bytes"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/internal/kustomization"
	"github.com/gitgate/gitgate/internal/repopath"
	yaml3 "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// walkGraph calls fn for every kustomization of the graph rooted at dir (bases and
// components included), each once, with the references it names that are not
// kustomization directories (its resource files); fn returns false to stop.
func walkGraph(deps *depsCache, dir string, fn func(dir string, k *kustomization.Kustomization, files []string) bool) {
	seen := map[string]bool{}
	var walk func(dir string) bool
	walk = func(dir string) bool {
		if seen[dir] {
			return true
		}
		seen[dir] = true
		k := deps.read(dir)
		if k == nil {
			return true
		}
		var files, dirs []string
		for _, group := range [][]string{k.Resources, k.Bases, k.Components} {
			for _, r := range group {
				if r == "" || isRemote(r) {
					continue
				}
				if q, err := repopath.Clean(path.Join(dir, r)); err == nil {
					if kustomization.Has(deps.fsys, q) {
						dirs = append(dirs, q)
					} else {
						files = append(files, q)
					}
				}
			}
		}
		if !fn(dir, k, files) {
			return false
		}
		for _, d := range dirs {
			if !walk(d) {
				return false
			}
		}
		return true
	}
	walk(dir)
}

// resourceFiles are the repo-relative files a kustomization graph names as resources
// (not patches, not generator sources): the files whose documents become objects.
func resourceFiles(deps *depsCache, dir string) map[string]bool {
	out := map[string]bool{}
	walkGraph(deps, dir, func(_ string, _ *kustomization.Kustomization, files []string) bool {
		for _, f := range files {
			out[f] = true
		}
		return true
	})
	return out
}

// annotateSources adds the source annotation, "<file>:<line>" of the document, to every
// document of a resource file. A file it cannot parse is returned as it is: kustomize
// reports the error, and its objects fall back to the kustomization as their origin.
func annotateSources(file string, data []byte) []byte {
	return annotateDocs(data, func(line int) string { return file + ":" + strconv.Itoa(line) })
}

func annotateDocs(data []byte, value func(line int) string) []byte {
	dec := yaml3.NewDecoder(bytes.NewReader(data))
	var docs []*yaml3.Node
	for {
		var doc yaml3.Node
		if err := dec.Decode(&doc); err != nil {
			if err.Error() == "EOF" {
				break
			}
			return data
		}
		docs = append(docs, &doc)
	}
	changed := false
	for _, doc := range docs {
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml3.MappingNode {
			continue
		}
		root := doc.Content[0]
		if kind := mappingValue(root, "kind"); kind != nil && strings.HasSuffix(kind.Value, "List") {
			continue // its items are the objects; they keep the kustomization as origin
		}
		meta := mappingValue(root, "metadata")
		if meta == nil || meta.Kind != yaml3.MappingNode {
			if meta != nil {
				continue // an alias or a scalar: leave it to kustomize
			}
			meta = &yaml3.Node{Kind: yaml3.MappingNode, Tag: "!!map"}
			root.Content = append(root.Content, &yaml3.Node{Kind: yaml3.ScalarNode, Tag: "!!str", Value: "metadata"}, meta)
		}
		ann := mappingValue(meta, "annotations")
		if ann == nil || ann.Kind != yaml3.MappingNode {
			if ann != nil && !(ann.Kind == yaml3.ScalarNode && ann.Tag == "!!null") {
				continue
			}
			if ann == nil {
				ann = &yaml3.Node{Kind: yaml3.MappingNode, Tag: "!!map"}
				meta.Content = append(meta.Content, &yaml3.Node{Kind: yaml3.ScalarNode, Tag: "!!str", Value: "annotations"}, ann)
			} else {
				*ann = yaml3.Node{Kind: yaml3.MappingNode, Tag: "!!map"}
			}
		}
		ann.Content = append(ann.Content,
			&yaml3.Node{Kind: yaml3.ScalarNode, Tag: "!!str", Value: sourceAnnotation},
			&yaml3.Node{Kind: yaml3.ScalarNode, Tag: "!!str", Value: value(root.Line), Style: yaml3.DoubleQuotedStyle})
		changed = true
	}
	if !changed {
		return data
	}
	var buf bytes.Buffer
	enc := yaml3.NewEncoder(&buf)
	enc.SetIndent(2)
	for _, doc := range docs {
		if err := enc.Encode(doc); err != nil {
			return data
		}
	}
	if enc.Close() != nil {
		return data
	}
	return buf.Bytes()
}

func mappingValue(m *yaml3.Node, key string) *yaml3.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// generatedBy is the kustomization of the graph whose configMapGenerator or
// secretGenerator created a generated object (the one without behavior merge or
// replace), or "".
func generatedBy(deps *depsCache, dir string, u *unstructured.Unstructured) string {
	kind := u.GetKind()
	if kind != "ConfigMap" && kind != "Secret" {
		return ""
	}
	var found string
	walkGraph(deps, dir, func(dir string, k *kustomization.Kustomization, _ []string) bool {
		gens := k.ConfigMapGenerator
		if kind == "Secret" {
			gens = k.SecretGenerator
		}
		for _, g := range gens {
			if g.Name == "" || g.Behavior != "" && g.Behavior != "create" || !strings.Contains(u.GetName(), g.Name) {
				continue
			}
			for _, n := range kustomization.FileNames {
				if _, err := fs.Stat(deps.fsys, path.Join(dir, n)); err == nil {
					found = path.Join(dir, n)
					return false
				}
			}
		}
		return true
	})
	return found
}
