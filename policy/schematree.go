package policy

import (
	"encoding"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// A shape is what the JSON form of a Go API type accepts. Shapes are built once per
// kind by reflection over the k8s.io/api types, then objects are checked by walking
// their maps: no typed objects are allocated, which made the strict schema check several
// times cheaper than converting every object into its Go type.
type shape struct {
	kind   shapeKind
	fields map[string]*shape // object
	elem   *shape            // array and map values
}

type shapeKind uint8

const (
	shapeAny shapeKind = iota // custom JSON: RawExtension, FieldsV1, interfaces
	shapeObject
	shapeArray
	shapeMap
	shapeString
	shapeInt
	shapeNumber
	shapeBool
	shapeIntOrString
	shapeQuantity
	shapeBytes
)

var (
	shapesMu sync.Mutex
	shapes   = map[reflect.Type]*shape{}
	kinds    sync.Map // schema.GroupVersionKind -> *shape
)

var (
	typeIntOrString = reflect.TypeFor[intstr.IntOrString]()
	typeQuantity    = reflect.TypeFor[resource.Quantity]()
	typeTime        = reflect.TypeFor[metav1.Time]()
	typeMicroTime   = reflect.TypeFor[metav1.MicroTime]()
	typeDuration    = reflect.TypeFor[metav1.Duration]()
	typeJSONUnmarsh = reflect.TypeFor[json.Unmarshaler]()
	typeTextUnmarsh = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// kindShape returns the shape of a built-in kind, or nil when the scheme does not know it.
func kindShape(gvk schema.GroupVersionKind) *shape {
	if s, ok := kinds.Load(gvk); ok {
		return s.(*shape)
	}
	obj, err := builtinScheme.New(gvk)
	if err != nil {
		return nil
	}
	shapesMu.Lock()
	s := shapeOf(reflect.TypeOf(obj).Elem())
	shapesMu.Unlock()
	kinds.Store(gvk, s)
	return s
}

// shapeOf must be called with shapesMu held. Recursive types (JSONSchemaProps) are
// handled by registering the object shape before filling its fields.
func shapeOf(t reflect.Type) *shape {
	if s, ok := shapes[t]; ok {
		return s
	}
	switch t {
	case typeIntOrString:
		return &shape{kind: shapeIntOrString}
	case typeQuantity:
		return &shape{kind: shapeQuantity}
	case typeTime, typeMicroTime, typeDuration:
		return &shape{kind: shapeString}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return shapeOf(t.Elem())
	case reflect.Interface:
		return &shape{kind: shapeAny}
	case reflect.String:
		return &shape{kind: shapeString}
	case reflect.Bool:
		return &shape{kind: shapeBool}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &shape{kind: shapeInt}
	case reflect.Float32, reflect.Float64:
		return &shape{kind: shapeNumber}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return &shape{kind: shapeBytes}
		}
		return &shape{kind: shapeArray, elem: shapeOf(t.Elem())}
	case reflect.Map:
		return &shape{kind: shapeMap, elem: shapeOf(t.Elem())}
	case reflect.Struct:
		if reflect.PointerTo(t).Implements(typeJSONUnmarsh) || reflect.PointerTo(t).Implements(typeTextUnmarsh) {
			return &shape{kind: shapeAny} // decodes itself; accept what it accepts
		}
		s := &shape{kind: shapeObject, fields: map[string]*shape{}}
		shapes[t] = s
		addFields(s, t)
		return s
	}
	return &shape{kind: shapeAny}
}

func addFields(s *shape, t reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && (name == "" || strings.Contains(opts, "inline")) {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(s, ft)
				continue
			}
		}
		if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			addFields(s, f.Type)
			continue
		}
		if name == "" {
			name = f.Name
		}
		s.fields[name] = shapeOf(f.Type)
	}
}

// fieldError is one place where an object does not fit its shape.
type fieldError struct {
	path    string // spec.containers[0].image
	unknown bool
	msg     string
}

// check walks v against s and appends what does not fit.
func (s *shape) check(v any, path string, errs []fieldError) []fieldError {
	if v == nil || s == nil {
		return errs // null is accepted wherever the API accepts omission
	}
	bad := func(want string) []fieldError {
		return append(errs, fieldError{path: path, msg: fmt.Sprintf("%s must be %s, not %s", displayPath(path), want, jsonType(v))})
	}
	switch s.kind {
	case shapeAny:
	case shapeObject:
		m, ok := v.(map[string]any)
		if !ok {
			return bad("an object")
		}
		for k, fv := range m {
			fs, ok := s.fields[k]
			p := joinPath(path, k)
			if !ok {
				errs = append(errs, fieldError{path: p, unknown: true})
				continue
			}
			errs = fs.check(fv, p, errs)
		}
	case shapeMap:
		m, ok := v.(map[string]any)
		if !ok {
			return bad("an object")
		}
		for k, fv := range m {
			errs = s.elem.check(fv, joinPath(path, k), errs)
		}
	case shapeArray:
		a, ok := v.([]any)
		if !ok {
			return bad("a list")
		}
		for i, e := range a {
			errs = s.elem.check(e, path+"["+strconv.Itoa(i)+"]", errs)
		}
	case shapeString:
		if _, ok := v.(string); !ok {
			return bad("a string")
		}
	case shapeBytes:
		str, ok := v.(string)
		if !ok {
			return bad("a string")
		}
		// As the API server decodes it (encoding/json: standard base64, line breaks
		// ignored). The message never holds the value: it is often a Secret's.
		if _, err := base64.StdEncoding.DecodeString(str); err != nil {
			return append(errs, fieldError{path: path, msg: fmt.Sprintf("%s is not valid base64 (%v); the API server refuses it: encode the value, or put it under stringData", displayPath(path), err)})
		}
	case shapeBool:
		if _, ok := v.(bool); !ok {
			return bad("a boolean")
		}
	case shapeInt:
		switch n := v.(type) {
		case int64:
		case float64:
			if n != float64(int64(n)) {
				return bad("an integer")
			}
		default:
			return bad("an integer")
		}
	case shapeNumber:
		switch v.(type) {
		case int64, float64:
		default:
			return bad("a number")
		}
	case shapeIntOrString:
		switch v.(type) {
		case int64, string:
		default:
			return bad("an integer or a string")
		}
	case shapeQuantity:
		switch q := v.(type) {
		case int64, float64:
		case string:
			if _, err := resource.ParseQuantity(q); err != nil {
				return append(errs, fieldError{path: path, msg: fmt.Sprintf("%s: %q is not a quantity (e.g. 500m, 128Mi)", displayPath(path), q)})
			}
		default:
			return bad("a quantity")
		}
	}
	return errs
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func displayPath(p string) string {
	if p == "" {
		return "the object"
	}
	return p
}

func jsonType(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, float64:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

var _ runtime.Object = (*metav1.Status)(nil)
