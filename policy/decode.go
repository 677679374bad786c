package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// InputError is a file that could not be read or decoded. It names the position when
// the decoder reported one.
type InputError struct {
	Origin Origin
	Err    error
}

func (e *InputError) Error() string { return e.Origin.String() + ": " + e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// ErrAliasExpansion is returned for documents whose YAML aliases expand far beyond the
// size of the file (the "billion laughs" attack).
var ErrAliasExpansion = errors.New("yaml aliases expand too far (alias bomb?); refusing to decode")

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// Decode reads every Kubernetes object of a YAML or JSON file: multi-document files,
// empty documents skipped, List kinds expanded. Documents that are not Kubernetes objects
// (no apiVersion or kind) are skipped. On a malformed document the objects decoded before
// it are returned together with an *InputError that names the line.
func Decode(file string, data []byte) ([]Resource, error) {
	var out []Resource
	err := DecodeEach(file, data, func(r Resource) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// DecodeEach is Decode handing each object to fn as soon as its document is decoded,
// so a file of many documents is never held decoded at once (each object's YAML tree
// can be dropped once fn is done with it). An error from fn stops the decoding and is
// returned.
func DecodeEach(file string, data []byte, fn func(Resource) error) error {
	var batch []Resource
	return eachDocument(file, data, func(root *yaml.Node, v any) error {
		obj, ok := v.(map[string]any)
		if !ok {
			if v == nil {
				return nil
			}
			return &InputError{Origin: Origin{File: file, Line: root.Line, Col: root.Column},
				Err: fmt.Errorf("document is a %s, not a Kubernetes object", kindOfNode(root))}
		}
		batch = appendObject(batch[:0], file, root, obj)
		for i := range batch {
			if err := fn(batch[i]); err != nil {
				return err
			}
			batch[i] = Resource{}
		}
		return nil
	})
}

// eachDocument calls fn with the root node and the JSON-normalised value of every
// non-empty document of a YAML stream. Alias expansion is budgeted over the whole file:
// every node costs at least a byte of input unless aliases multiply it, so generous
// reuse of anchors passes and exponential growth does not.
func eachDocument(file string, data []byte, fn func(root *yaml.Node, v any) error) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	c := converter{budget: 64*len(data) + 4096}
	var bad []error // documents that parse but do not convert: the next ones still count
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return errors.Join(bad...)
		}
		if err != nil {
			return errors.Join(append(bad, decodeErr(file, data, err))...)
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		v, err := c.value(root)
		var dup *duplicateKeyError
		switch {
		case errors.As(err, &dup):
			bad = append(bad, &InputError{Origin: Origin{File: file, Line: dup.line, Col: dup.col}, Err: err})
			continue
		case err != nil:
			return errors.Join(append(bad, &InputError{Origin: Origin{File: file, Line: root.Line, Col: root.Column}, Err: err})...)
		}
		if err := fn(root, v); err != nil {
			return err
		}
	}
}

// duplicateKeyError is a mapping that names a key twice. YAML forbids it, kubectl and the
// API server refuse it, and which value would win is up to the parser: never guessed.
type duplicateKeyError struct {
	key       string
	line, col int
	firstLine int
}

func (e *duplicateKeyError) Error() string {
	return fmt.Sprintf("key %q is defined twice in the same mapping (first at line %d); kubectl and the API server refuse the document: keep one", e.key, e.firstLine)
}

func appendObject(out []Resource, file string, node *yaml.Node, obj map[string]any) []Resource {
	kind, _ := obj["kind"].(string)
	apiVersion, _ := obj["apiVersion"].(string)
	if kind == "" || apiVersion == "" {
		return out
	}
	if items, ok := obj["items"].([]any); ok && strings.HasSuffix(kind, "List") {
		itemsNode := mapValue(node, "items")
		for i, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				continue
			}
			var n *yaml.Node
			if itemsNode != nil && i < len(itemsNode.Content) {
				n = resolveAlias(itemsNode.Content[i])
			} else {
				n = node
			}
			out = appendObject(out, file, n, m)
		}
		return out
	}
	return append(out, Resource{
		Object: &unstructured.Unstructured{Object: obj},
		Origin: Origin{File: file, Line: node.Line, Col: node.Column},
		Fields: nodeLocator{node},
	})
}

// parserProblems are the errors of libyaml's parser (parserc.go), as opposed to its
// scanner. yaml.v3 reports the parser's 0-based line as it is, one line too early
// (go-yaml/yaml#205); the scanner's lines are already 1-based.
var parserProblems = []string{
	"did not find expected node content", "did not find expected '-' indicator",
	"did not find expected key", "did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"did not find expected <document start>", "did not find expected <stream-start>",
	"found undefined tag handle", "found duplicate %YAML directive", "found duplicate %TAG directive",
	"found incompatible YAML document",
}

func decodeErr(file string, data []byte, err error) error {
	o := Origin{File: file}
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		o.Line, _ = strconv.Atoi(m[1])
		msg = strings.TrimPrefix(msg, m[0])
		for _, p := range parserProblems {
			if strings.HasPrefix(msg, p) {
				o.Line++
				break
			}
		}
		// libyaml gives no column for these errors: point at where the line's content
		// starts, which is where the construct it complains about begins.
		o.Col = firstColumn(data, o.Line)
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	return &InputError{Origin: o, Err: fmt.Errorf("malformed YAML: %s", msg)}
}

// firstColumn is the 1-based column of the first non-blank character of a 1-based line.
func firstColumn(data []byte, line int) int {
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return 1
		}
		data = data[i+1:]
	}
	for i, c := range data {
		if c != ' ' && c != '\t' {
			return i + 1
		}
		if c == '\n' {
			break
		}
	}
	return 1
}

func kindOfNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "scalar"
	}
	return "value"
}

// converter turns a yaml.Node into JSON-normalised Go values, expanding aliases and
// merge keys within a budget.
type converter struct {
	budget int
}

func (c *converter) value(n *yaml.Node) (any, error) {
	c.budget--
	if c.budget < 0 {
		return nil, ErrAliasExpansion
	}
	switch n.Kind {
	case yaml.AliasNode:
		return c.value(n.Alias)
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.value(n.Content[0])
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			v, err := c.value(e)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		if err := c.mapping(n, out, false); err != nil {
			return nil, err
		}
		return out, nil
	case yaml.ScalarNode:
		return scalar(n), nil
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

// mapping fills out with n's pairs. Merge keys ("<<") contribute pairs that explicit
// keys override, as YAML 1.1 specifies.
func (c *converter) mapping(n *yaml.Node, out map[string]any, merging bool) error {
	// Duplicate explicit keys: a scan of the previous keys for the small mappings that
	// most are (no allocation on the hot path), a map for large ones.
	var written map[string]int // explicit key -> line
	if !merging && len(n.Content) > 32 {
		written = make(map[string]int, len(n.Content)/2)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			if err := c.merge(v, out); err != nil {
				return err
			}
			continue
		}
		key := keyString(k)
		if merging {
			if _, exists := out[key]; exists {
				continue
			}
		} else if written != nil {
			if first, twice := written[key]; twice {
				return &duplicateKeyError{key: key, line: k.Line, col: k.Column, firstLine: first}
			}
			written[key] = k.Line
		} else {
			for j := 0; j < i; j += 2 {
				if p := n.Content[j]; p.Kind == k.Kind && p.Value == k.Value && keyString(p) == key && !(p.Value == "<<" && p.ShortTag() == "!!merge") {
					return &duplicateKeyError{key: key, line: k.Line, col: k.Column, firstLine: p.Line}
				}
			}
		}
		val, err := c.value(v)
		if err != nil {
			return err
		}
		out[key] = val
	}
	return nil
}

func (c *converter) merge(v *yaml.Node, out map[string]any) error {
	v = resolveAlias(v)
	switch v.Kind {
	case yaml.MappingNode:
		return c.mapping(v, out, true)
	case yaml.SequenceNode:
		for _, e := range v.Content {
			if err := c.merge(e, out); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("line %d: merge key needs a mapping or a list of mappings", v.Line)
}

func keyString(k *yaml.Node) string {
	k = resolveAlias(k)
	if k.Kind == yaml.ScalarNode {
		return k.Value
	}
	return fmt.Sprint(k.Value)
}

func scalar(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		if err != nil {
			return n.Value
		}
		return b
	case "!!int":
		if i, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
			return i
		}
		if f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64); err == nil {
			return f
		}
		return n.Value
	case "!!float":
		if strings.Contains(strings.ToLower(n.Value), "inf") || strings.Contains(strings.ToLower(n.Value), "nan") {
			return n.Value // JSON has no Inf or NaN; keep the text
		}
		if f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64); err == nil {
			return f
		}
		return n.Value
	}
	return n.Value
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 64; i++ {
		n = n.Alias
	}
	return n
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	n = resolveAlias(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return resolveAlias(n.Content[i+1])
		}
	}
	return nil
}

// nodeLocator finds field positions in a decoded YAML tree.
type nodeLocator struct{ root *yaml.Node }

func (l nodeLocator) Locate(path []string) (int, int, bool) {
	n := resolveAlias(l.root)
	var key *yaml.Node
	pending := ""
	for j, seg := range path {
		if n == nil {
			return 0, 0, false
		}
		switch n.Kind {
		case yaml.MappingNode:
			if pending != "" {
				seg = pending + "/" + seg // keys holding a slash, like app.kubernetes.io/name
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == seg {
					key, n, found = n.Content[i], resolveAlias(n.Content[i+1]), true
					break
				}
			}
			if !found {
				if pending == "" && j+1 < len(path) {
					pending = seg
					continue
				}
				return 0, 0, false
			}
			pending = ""
		case yaml.SequenceNode:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(n.Content) {
				return 0, 0, false
			}
			n, key = resolveAlias(n.Content[i]), nil
		default:
			return 0, 0, false
		}
	}
	if key != nil {
		return key.Line, key.Column, true
	}
	if n != nil {
		return n.Line, n.Column, true
	}
	return 0, 0, false
}
