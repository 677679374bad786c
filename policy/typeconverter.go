package policy

import (
	"fmt"
	"sync"

	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/applyconfigurations"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// converterKind says where a type converter's schema came from: it decides how an
// applyConfiguration merges lists (by key, or replaced whole), so a result says so
// when the schema was not the kind's own.
type converterKind int

const (
	convBuiltin converterKind = iota // client-go's structured-merge-diff schema of the built-in kind
	convCRD                          // the structural schema of the kind's CRD
	convDeduced                      // no schema known: maps merge, every list is replaced whole
)

// typeConverters is Kyverno's compiler.TypeConverterManager for MutatingPolicy
// applyConfiguration patches, offline: Kyverno's CLI reads kubectl-validate's embedded
// OpenAPI documents (about 110 MB linked in) for the same schemas. Built-in kinds use
// client-go's own structured-merge-diff schema (what the API server merges with);
// custom resources the structural schema of their CRD when gitgate knows it (the CRDs
// bundled with gitgate, BundledCRD, or the engine's own), else a deduced converter,
// which treats every list as atomic. One converter per kind, built on first use.
type typeConverters struct {
	mu    sync.Mutex
	crds  func(gk schema.GroupKind) *crdEntry
	cache map[schema.GroupVersionKind]typeConverterEntry
}

type typeConverterEntry struct {
	tc   managedfields.TypeConverter
	kind converterKind
	note string // why the converter is not the kind's own schema
}

// builtinConverter is client-go's converter for every kind of its scheme, built once.
var builtinConverter = sync.OnceValue(func() managedfields.TypeConverter {
	return applyconfigurations.NewTypeConverter(clientgoscheme.Scheme)
})

var deducedConverter = sync.OnceValue(managedfields.NewDeducedTypeConverter)

// bundledTypeConverters are the converters over the CRDs gitgate bundles (BundledCRD,
// asked per kind on first use), shared by every engine's MutatingPolicies and
// MutatingAdmissionPolicies.
var bundledTypeConverters = sync.OnceValue(func() *typeConverters { return newTypeConverters(NewCRDSet().lookup) })

func newTypeConverters(crds func(schema.GroupKind) *crdEntry) *typeConverters {
	return &typeConverters{crds: crds, cache: map[schema.GroupVersionKind]typeConverterEntry{}}
}

// GetTypeConverter implements Kyverno's compiler.TypeConverterManager.
func (t *typeConverters) GetTypeConverter(gvk schema.GroupVersionKind) managedfields.TypeConverter {
	return t.entry(gvk).tc
}

func (t *typeConverters) entry(gvk schema.GroupVersionKind) typeConverterEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.cache[gvk]; ok {
		return e
	}
	e := t.build(gvk)
	t.cache[gvk] = e
	return e
}

func (t *typeConverters) build(gvk schema.GroupVersionKind) typeConverterEntry {
	if clientgoscheme.Scheme.Recognizes(gvk) {
		return typeConverterEntry{tc: builtinConverter(), kind: convBuiltin}
	}
	var crd *crdEntry
	if t.crds != nil {
		crd = t.crds(gvk.GroupKind())
	}
	if crd == nil {
		return typeConverterEntry{tc: deducedConverter(), kind: convDeduced,
			note: fmt.Sprintf("no schema known for %s (not a built-in kind, and no CRD of it gitgate knows): lists in the applyConfiguration replace the object's lists whole instead of merging by key", gvk)}
	}
	tc, err := crdConverter(crd, gvk)
	if err != nil {
		return typeConverterEntry{tc: deducedConverter(), kind: convDeduced,
			note: fmt.Sprintf("the CRD of %s has no usable schema (%v): lists in the applyConfiguration replace the object's lists whole instead of merging by key", gvk, err)}
	}
	return typeConverterEntry{tc: tc, kind: convCRD}
}

// crdConverter is a type converter from a CRD version's structural schema (as the
// API server compiles it, crd.go), with the list and map types it declares. metadata
// keeps unknown fields and merges its maps (labels, annotations) by key; its lists are
// replaced whole (the API server's ObjectMeta schema is not linked in).
func crdConverter(e *crdEntry, gvk schema.GroupVersionKind) (managedfields.TypeConverter, error) {
	if err := e.compile(); err != nil {
		return nil, err
	}
	v := e.vers[gvk.Version]
	if v == nil || v.structural == nil {
		return nil, fmt.Errorf("the CRD has no schema for version %s", gvk.Version)
	}
	st := v.structural.DeepCopy().StripValueValidations().StripNullable()
	if st.Properties == nil {
		st.Properties = map[string]structuralschema.Structural{}
	}
	st.Properties["metadata"] = structuralschema.Structural{
		Generic:    structuralschema.Generic{Type: "object"},
		Extensions: structuralschema.Extensions{XPreserveUnknownFields: true},
	}
	for _, f := range []string{"apiVersion", "kind"} {
		st.Properties[f] = structuralschema.Structural{Generic: structuralschema.Generic{Type: "string"}}
	}
	ks := st.ToKubeOpenAPI()
	ks.AddExtension("x-kubernetes-group-version-kind", []any{map[string]any{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind}})
	return managedfields.NewTypeConverter(map[string]*spec.Schema{gvk.Group + "." + gvk.Version + "." + gvk.Kind: ks}, st.XPreserveUnknownFields)
}
