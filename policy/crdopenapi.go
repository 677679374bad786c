package policy

import (
	"reflect"
	"sort"
	"sync"

	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
)

// openAPIValidator validates objects against one CRD version's OpenAPI schema with
// kube-openapi's validator, exactly as apiextensions-apiserver does on create
// (RatchetingSchemaValidator.Validate: validate.NewSchemaValidator(schema, nil, "",
// strfmt.Default).Validate(obj)), without what makes that slow: kube-openapi builds the
// validator of every property and item it descends into again for every object
// (SchemaValidator.NewValidatorForField/Index), and every object validator copies the
// spec.Schema of every property its schema declares, present or not.
//
// kube-openapi (the version in go.mod) has no option to keep child validators; it has
// the two hooks it builds them through (SchemaValidatorOptions.NewValidatorForField and
// NewValidatorForIndex, as the API server's ratcheting validator uses them). Through them
// this keeps a tree of validators per schema node, built once and reused:
//
//   - a node's validators are kube-openapi's, unchanged, moved to the path being
//     validated with their own SetPath (the path is in every error), so one node serves
//     every array index and map key below it;
//   - an object node's validator is built over its schema with the declared properties
//     narrowed to those the object has (cached per set of present properties, at most
//     maxShapes a node, else the whole schema): kube-openapi's object validator only looks
//     properties up by the object's keys and descends into the present ones, so the
//     narrowed schema gives the same errors, without copying the absent ones;
//   - children it cannot attribute to one schema node (patternProperties, tuple items,
//     allOf/anyOf/oneOf/not branches) are built per call, as kube-openapi builds them.
//
// A tree is used by one goroutine at a time (SetPath mutates it): trees live in a
// sync.Pool, one a concurrent validation at most, dropped by the GC when idle. Tested
// against apiextensions' own validator for the same errors (TestCRDOpenAPIValidatorSame).
type openAPIValidator struct {
	schema *spec.Schema
	trees  sync.Pool // *svNode: a root node
}

var _ apiservervalidation.SchemaCreateValidator = (*openAPIValidator)(nil)

func newOpenAPIValidator(schema *spec.Schema) *openAPIValidator {
	v := &openAPIValidator{schema: schema}
	v.trees.New = func() any { return &svNode{schema: schema, root: schema} }
	return v
}

// Validate validates obj (a JSON value: maps, slices, strings, numbers, bools, nil).
func (v *openAPIValidator) Validate(obj any, _ ...apiservervalidation.ValidationOption) *validate.Result {
	root := v.trees.Get().(*svNode)
	res := root.run(obj, "")
	v.trees.Put(root) // not after a panic: a tree left mid-walk is dropped
	return res
}

// maxShapes bounds the narrowed validators of a node (one per set of present properties).
const maxShapes = 16

// svNode is one schema node of a validator tree and, between its parent's hook and the
// Validate call right after it, the validate.ValueValidator the parent descends into.
type svNode struct {
	schema *spec.Schema // stable: the parent's property copied once, or a pointer into it
	root   *spec.Schema
	path   string // set by the parent's hook just before Validate

	full   *validate.SchemaValidator            // over the whole schema
	shapes map[string]*validate.SchemaValidator // by present-property bitmap
	bit    map[string]int                       // property name -> bitmap position
	sig    []byte

	props       map[string]*svNode
	addl, items *svNode
}

func (n *svNode) option(o *validate.SchemaValidatorOptions) {
	o.NewValidatorForField = n.field
	o.NewValidatorForIndex = n.index
}

func (n *svNode) child(s *spec.Schema) *svNode { return &svNode{schema: s, root: n.root} }

// field is kube-openapi's NewValidatorForField: the validator of a property (or an
// additionalProperties / patternProperties entry) named name at path.
func (n *svNode) field(name string, s *spec.Schema, root any, path string, formats strfmt.Registry, opts ...validate.Option) validate.ValueValidator {
	var c *svNode
	switch {
	case n.schema.AdditionalProperties != nil && n.schema.AdditionalProperties.Schema != nil && s == n.schema.AdditionalProperties.Schema:
		if n.addl == nil {
			n.addl = n.child(s)
		}
		c = n.addl
	case len(n.schema.PatternProperties) == 0:
		if c = n.props[name]; c == nil {
			if p, ok := n.schema.Properties[name]; ok {
				if n.props == nil {
					n.props = map[string]*svNode{}
				}
				c = n.child(&p)
				n.props[name] = c
			}
		}
	}
	if c == nil {
		return validate.NewSchemaValidator(s, root, path, formats, opts...) // kube-openapi's default
	}
	c.path = path
	return c
}

// index is kube-openapi's NewValidatorForIndex: the validator of an array item at path.
func (n *svNode) index(_ int, s *spec.Schema, root any, path string, formats strfmt.Registry, opts ...validate.Option) validate.ValueValidator {
	if n.schema.Items == nil || n.schema.Items.Schema == nil || s != n.schema.Items.Schema {
		return validate.NewSchemaValidator(s, root, path, formats, opts...)
	}
	if n.items == nil {
		n.items = n.child(s)
	}
	n.items.path = path
	return n.items
}

func (n *svNode) SetPath(path string) { n.path = path }

func (n *svNode) Applies(source any, _ reflect.Kind) bool {
	_, ok := source.(*spec.Schema)
	return ok
}

func (n *svNode) Validate(data any) *validate.Result { return n.run(data, n.path) }

func (n *svNode) run(data any, path string) *validate.Result {
	sv := n.validator(data)
	sv.SetPath(path)
	return sv.Validate(data)
}

// validator is the node's validator for data: narrowed to data's properties when data
// is an object, else over the whole schema.
func (n *svNode) validator(data any) *validate.SchemaValidator {
	m, ok := data.(map[string]any)
	if !ok || len(n.schema.Properties) == 0 {
		return n.whole()
	}
	if n.bit == nil {
		names := make([]string, 0, len(n.schema.Properties))
		for k := range n.schema.Properties {
			names = append(names, k)
		}
		sort.Strings(names)
		n.bit = make(map[string]int, len(names))
		for i, k := range names {
			n.bit[k] = i
		}
		n.sig = make([]byte, (len(names)+7)/8)
	}
	clear(n.sig)
	present := 0
	for k := range m {
		if i, ok := n.bit[k]; ok {
			n.sig[i/8] |= 1 << (i % 8)
			present++
		}
	}
	if sv, ok := n.shapes[string(n.sig)]; ok {
		return sv
	}
	if len(n.shapes) >= maxShapes {
		return n.whole()
	}
	narrowed := *n.schema
	narrowed.Properties = make(map[string]spec.Schema, present)
	for k := range m {
		if p, ok := n.schema.Properties[k]; ok {
			narrowed.Properties[k] = p
		}
	}
	sv := validate.NewSchemaValidator(&narrowed, n.root, "", strfmt.Default, n.option)
	if n.shapes == nil {
		n.shapes = map[string]*validate.SchemaValidator{}
	}
	n.shapes[string(n.sig)] = sv
	return sv
}

func (n *svNode) whole() *validate.SchemaValidator {
	if n.full == nil {
		n.full = validate.NewSchemaValidator(n.schema, n.root, "", strfmt.Default, n.option)
	}
	return n.full
}
