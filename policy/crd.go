package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsinstall "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/install"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
)

// CRDGroup is the API group of CustomResourceDefinitions.
const CRDGroup = "apiextensions.k8s.io"

// BundledCRD, when set, supplies a CRD for a group and kind no CRD of the set defines:
// the YAML of a CustomResourceDefinition and where it comes from ("bundled argo-cd
// v2.13.1"). It is consulted at most once per group and kind, lazily, when a custom
// resource of that kind is checked. Nil: no bundled CRDs.
var BundledCRD func(group, kind string) (data []byte, source string, ok bool)

// CRDSet holds CustomResourceDefinitions (apiextensions.k8s.io/v1), each with where it
// came from, and validates custom resources against them with the API server's own code
// (k8s.io/apiextensions-apiserver): unknown fields as strict field validation reports
// them, defaults, the OpenAPI schema, metadata and x-kubernetes-validations CEL rules,
// as on create. A CRD is compiled once, when the first object of one of its versions is
// checked. Safe for concurrent use.
type CRDSet struct {
	mu sync.RWMutex
	// bundled serialises consulting BundledCRD, so no object finds a kind half-loaded.
	bundled sync.Mutex
	byGK    map[schema.GroupKind]*crdEntry
	// asked are the group/kinds BundledCRD was consulted for.
	asked map[schema.GroupKind]bool
	errs  []error
}

// crdEntry is one CRD of the set.
type crdEntry struct {
	crd    *apiextensions.CustomResourceDefinition
	source Origin // the CRD's file:line, or File "bundled <project> <version>"
	// fields locates the CRD's own fields, for its validation errors (nil when bundled).
	fields Locator
	once   sync.Once
	err    error // the CRD is invalid: every object of its kind is an error naming it
	vers   map[string]*crdVersion
}

// crdVersion is one version of a CRD, compiled: what validating an object takes.
type crdVersion struct {
	name       string
	served     bool
	namespaced bool
	structural *structuralschema.Structural
	schema     *openAPIValidator
	cel        *cel.Validator
	status     bool // the status subresource is enabled: create drops status
	scale      *apiextensions.CustomResourceSubresourceScale
	// What the schema has anywhere: without it, the step of the API server that
	// handles it does nothing, and is skipped.
	defaults, embedded, listTypes bool
}

// NewCRDSet returns an empty set.
func NewCRDSet() *CRDSet {
	return &CRDSet{byGK: map[schema.GroupKind]*crdEntry{}, asked: map[schema.GroupKind]bool{}}
}

var crdScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	apiextensionsinstall.Install(s)
	return s
}()

// IsCRD reports whether a resource is a CustomResourceDefinition.
func IsCRD(r Resource) bool {
	if r.Object == nil {
		return false
	}
	gvk := r.Object.GroupVersionKind()
	return gvk.Group == CRDGroup && gvk.Kind == "CustomResourceDefinition"
}

// Clone returns a set holding what s holds now; CRDs added to either later are its
// own. The CRDs themselves are shared (each is compiled once, whichever set uses it).
// One set per cluster: each cluster's live CRDs (AddLive) apply to its objects only.
func (s *CRDSet) Clone() *CRDSet {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return &CRDSet{byGK: maps.Clone(s.byGK), asked: maps.Clone(s.asked), errs: slices.Clone(s.errs)}
}

// Len is the number of CRDs in the set.
func (s *CRDSet) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byGK)
}

// Errors are the CRDs that AddResource could not take, each naming its file:line.
func (s *CRDSet) Errors() []error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.errs)
}

// AddResource takes r into the set when it is a CustomResourceDefinition (a chart's
// crds/, a kustomization's output) and reports whether it was one. A CRD that cannot be
// taken (v1beta1, unknown fields, not decodable) is kept in Errors; one whose schema
// fails the API server's validation is reported when an object of its kind is checked.
func (s *CRDSet) AddResource(r Resource) bool {
	if !IsCRD(r) {
		return false
	}
	if err := s.add(r, false); err != nil {
		s.mu.Lock()
		s.errs = append(s.errs, err)
		s.mu.Unlock()
	}
	return true
}

// Add reads CRDs from a YAML or JSON file (file names it in errors) and validates each
// as the API server does on create: every CRD it cannot take is an error naming its
// file:line; the others are added. Documents that are not CRDs are left alone.
func (s *CRDSet) Add(file string, data []byte) error {
	var errs []error
	err := DecodeEach(file, data, func(r Resource) error {
		if !IsCRD(r) {
			return nil
		}
		if err := s.add(r, true); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// LoadCRDs adds the CRDs of src: a file, or a directory walked for .yaml, .yml and
// .json files (hidden ones skipped), read through src.FS (confined to the repository for
// a repository's own paths) and bounded by src.MaxFileSize. Every file and CRD that
// cannot be read or taken is an error naming it; the others are added.
func (s *CRDSet) LoadCRDs(src Source) error {
	show := displayFunc(src)
	var errs []error
	err := fs.WalkDir(src.FS, src.Root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: cannot read CRDs: %w", show(p), unwrapPathErr(err)))
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if p != src.Root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || p != src.Root && !isManifestFile(p) {
			return nil
		}
		data, err := ReadFileLimit(src.FS, p, src.MaxFileSize)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: cannot read CRDs: %w", show(p), unwrapPathErr(err)))
			return nil
		}
		if err := s.Add(show(p), data); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", show(src.Root), err))
	}
	return errors.Join(errs...)
}

// crdShape is what a CustomResourceDefinition's JSON accepts, for its strict decoding.
var crdShape = sync.OnceValue(func() *shape {
	shapesMu.Lock()
	defer shapesMu.Unlock()
	return shapeOf(reflect.TypeFor[apiextensionsv1.CustomResourceDefinition]())
})

// crdProblem is one reason the API server refuses a CRD: the field path and message.
type crdProblem struct{ path, msg string }

// decodeCRD decodes a CRD object strictly (unknown fields and wrong types are
// problems, as with strict field validation), defaults it as the API server's scheme
// does and converts it to the internal version, prepared as on create (status cleared,
// the storage version stored). A CRD of another version than v1 is refused.
func decodeCRD(r Resource) (*apiextensions.CustomResourceDefinition, []crdProblem) {
	if v := r.Object.GroupVersionKind().Version; v != "v1" {
		return nil, []crdProblem{{"apiVersion", fmt.Sprintf("%s/%s is no longer served (removed in Kubernetes 1.22) and gitgate does not convert it: rewrite it as %s/v1 (spec.versions[*].schema.openAPIV3Schema, structural, without preserveUnknownFields)", CRDGroup, v, CRDGroup)}}
	}
	if bad := crdShape().check(r.Object.Object, "", nil); len(bad) > 0 {
		var out []crdProblem
		for _, e := range bad {
			msg := e.msg
			if e.unknown {
				msg = fmt.Sprintf("strict decoding error: unknown field %q", e.path)
			}
			out = append(out, crdProblem{e.path, msg})
		}
		return nil, out
	}
	data, err := json.Marshal(r.Object.Object)
	if err != nil {
		return nil, []crdProblem{{"", err.Error()}}
	}
	v1 := &apiextensionsv1.CustomResourceDefinition{}
	if err := json.Unmarshal(data, v1); err != nil {
		return nil, []crdProblem{{"", err.Error()}}
	}
	crdScheme.Default(v1)
	crd := &apiextensions.CustomResourceDefinition{}
	if err := crdScheme.Convert(v1, crd, nil); err != nil {
		return nil, []crdProblem{{"", err.Error()}}
	}
	crd.Status = apiextensions.CustomResourceDefinitionStatus{}
	for _, v := range crd.Spec.Versions {
		if v.Storage {
			crd.Status.StoredVersions = []string{v.Name}
		}
	}
	return crd, nil
}

// validateCRD is the API server's validation of a CRD on create.
func validateCRD(crd *apiextensions.CustomResourceDefinition) []crdProblem {
	var out []crdProblem
	for _, fe := range crdvalidation.ValidateCustomResourceDefinition(context.Background(), crd) {
		out = append(out, crdProblem{fe.Field, fe.Error()})
	}
	return out
}

// crdError is the problems of the CRD r as one error, each problem at its file:line.
func crdError(r Resource, problems []crdProblem) error {
	errs := make([]error, 0, len(problems))
	for _, p := range problems {
		o := r.Origin
		if p.path != "" {
			o = r.position(fieldToSlash(p.path))
		}
		errs = append(errs, fmt.Errorf("%s: CustomResourceDefinition %s: %s; the API server refuses it: fix the CRD", o, r.Object.GetName(), p.msg))
	}
	return errors.Join(errs...)
}

// add keeps a CRD object under its group and kind; validate: validate it as the API
// server does on create now (else when an object of its kind is first checked).
func (s *CRDSet) add(r Resource, validate bool) error {
	crd, problems := decodeCRD(r)
	if len(problems) > 0 {
		return crdError(r, problems)
	}
	e := &crdEntry{crd: crd, source: r.Origin, fields: r.Fields}
	if validate {
		if err := e.compile(); err != nil {
			return err
		}
	}
	gk := schema.GroupKind{Group: crd.Spec.Group, Kind: crd.Spec.Names.Kind}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.byGK[gk]; ok && !yields(old.source) {
		return nil // the first definition of a kind wins; a bundled or live one yields to the repository's
	}
	s.byGK[gk] = e
	return nil
}

// liveCRDPrefix starts the source of a CRD read from a cluster.
const liveCRDPrefix = "served by "

// yields reports whether a CRD from source gives way to one from the repository: a
// bundled CRD, or one a cluster serves now (the repository's is what a sync applies
// first, in an earlier wave).
func yields(source Origin) bool {
	return strings.HasPrefix(source.File, "bundled ") || strings.HasPrefix(source.File, liveCRDPrefix)
}

// AddLive takes a CRD the cluster at server serves (a live object from the API), so
// custom resources whose CRD another app or an operator installed are validated as the
// API server will validate them. A repository's CRD of the same kind wins, added before
// or after; a live one wins over the bundled one.
func (s *CRDSet) AddLive(u *unstructured.Unstructured, server string) bool {
	return s.AddResource(Resource{Object: u, Origin: Origin{File: liveCRDPrefix + server}})
}

// ValidateCRD checks a CustomResourceDefinition object as the API server does on
// create: strict decoding, then its own validation (names, versions, a structural
// schema, pruned defaults, CEL rules that compile within their cost).
func ValidateCRD(r Resource) []Result {
	crd, problems := decodeCRD(r)
	if len(problems) == 0 {
		problems = validateCRD(crd)
	}
	var out []Result
	for _, p := range problems {
		path := p.path
		out = append(out, Result{
			Origin:      r.position(fieldToSlash(path)),
			APIVersion:  r.Object.GetAPIVersion(),
			Kind:        r.Object.GetKind(),
			Name:        r.Object.GetName(),
			Policy:      SchemaPolicy,
			Rule:        "customresourcedefinition",
			Status:      StatusFail,
			Action:      Enforce,
			Message:     p.msg,
			Path:        path,
			Remediation: "fix the CustomResourceDefinition: the API server refuses it, and objects of its kind cannot be created",
		})
	}
	SortResults(out)
	return out
}

// compile validates the CRD as the API server does on create and builds, per version,
// what validating an object takes (structural schema with pruned defaults, the OpenAPI
// validator, the CEL programs). Once per CRD; the error is kept.
func (e *crdEntry) compile() error {
	e.once.Do(func() {
		defer func() {
			if p := recover(); p != nil {
				e.err = fmt.Errorf("%s: CustomResourceDefinition %s: the API server's code failed on it: %v", e.source, e.crd.Name, p)
			}
		}()
		e.err = e.doCompile()
	})
	return e.err
}

func (e *crdEntry) doCompile() error {
	crd := e.crd
	if problems := validateCRD(crd); len(problems) > 0 {
		return crdError(Resource{Object: &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": crd.Name}}}, Origin: e.source, Fields: e.fields}, problems)
	}
	e.vers = map[string]*crdVersion{}
	for _, v := range crd.Spec.Versions {
		cv := &crdVersion{name: v.Name, served: v.Served, namespaced: crd.Spec.Scope == apiextensions.NamespaceScoped}
		e.vers[v.Name] = cv
		val, err := apiextensions.GetSchemaForVersion(crd, v.Name)
		if err != nil {
			return fmt.Errorf("%s: CustomResourceDefinition %s version %s: %w", e.source, crd.Name, v.Name, err)
		}
		if val == nil || val.OpenAPIV3Schema == nil {
			return fmt.Errorf("%s: CustomResourceDefinition %s version %s has no schema", e.source, crd.Name, v.Name)
		}
		ss, err := structuralschema.NewStructural(val.OpenAPIV3Schema)
		if err != nil {
			return fmt.Errorf("%s: CustomResourceDefinition %s version %s: %w", e.source, crd.Name, v.Name, err)
		}
		ss = ss.DeepCopy() // as the API server: defaults are pruned in a copy of its own
		if err := structuraldefaulting.PruneDefaults(ss); err != nil {
			return fmt.Errorf("%s: CustomResourceDefinition %s version %s: defaults: %w", e.source, crd.Name, v.Name, err)
		}
		cv.structural = ss
		walkStructural(ss, func(n *structuralschema.Structural) {
			cv.defaults = cv.defaults || n.Default.Object != nil
			cv.embedded = cv.embedded || n.XEmbeddedResource
			cv.listTypes = cv.listTypes || n.XListType != nil && (*n.XListType == "set" || *n.XListType == "map")
		})
		// The API server's conversion to kube-openapi's schema (unsupported formats
		// stripped); validated with kube-openapi's validator, its child validators kept.
		_, openapi, err := apiservervalidation.NewSchemaValidator(val.OpenAPIV3Schema)
		if err != nil {
			return fmt.Errorf("%s: CustomResourceDefinition %s version %s: %w", e.source, crd.Name, v.Name, err)
		}
		cv.schema = newOpenAPIValidator(openapi)
		cv.cel = cel.NewValidator(ss, true, celconfig.PerCallLimit)
		sub, err := apiextensions.GetSubresourcesForVersion(crd, v.Name)
		if err != nil {
			return fmt.Errorf("%s: CustomResourceDefinition %s version %s: %w", e.source, crd.Name, v.Name, err)
		}
		if sub != nil {
			cv.status = sub.Status != nil
			cv.scale = sub.Scale
		}
	}
	return nil
}

// lookup is the CRD for a group and kind: the set's, else BundledCRD's (asked once).
func (s *CRDSet) lookup(gk schema.GroupKind) *crdEntry {
	s.mu.RLock()
	e, ok := s.byGK[gk]
	asked := s.asked[gk]
	s.mu.RUnlock()
	if ok || asked || BundledCRD == nil {
		return e
	}
	s.bundled.Lock()
	defer s.bundled.Unlock()
	s.mu.RLock()
	asked = s.asked[gk]
	s.mu.RUnlock()
	if !asked {
		if data, source, ok := BundledCRD(gk.Group, gk.Kind); ok {
			err := DecodeEach(source, data, func(r Resource) error {
				if IsCRD(r) {
					// A bundled CRD is named by its source, not by lines of it.
					r.Origin, r.Fields = Origin{File: source}, nil
					return s.add(r, false)
				}
				return nil
			})
			if err != nil {
				s.mu.Lock()
				s.errs = append(s.errs, fmt.Errorf("%s: %w", source, err))
				s.mu.Unlock()
			}
		}
		s.mu.Lock()
		s.asked[gk] = true
		s.mu.Unlock()
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byGK[gk]
}

// Validate checks a custom resource against its CRD as the API server does on create.
// checked is false when no CRD of the set (or BundledCRD) defines its group and kind:
// the object is then not schema-checked, and nothing is said about it here.
func (s *CRDSet) Validate(ctx context.Context, r Resource) (results []Result, checked bool) {
	if s == nil || r.Object == nil {
		return nil, false
	}
	// The API server's code is not ours: a panic in it is this object's error, never
	// the check's crash.
	defer func() {
		if p := recover(); p != nil {
			results = []Result{{
				Origin: r.Origin, APIVersion: r.Object.GetAPIVersion(), Kind: r.Object.GetKind(),
				Namespace: r.Object.GetNamespace(), Name: r.Object.GetName(),
				Policy: SchemaPolicy, Rule: strings.ToLower(r.Object.GetKind()), Status: StatusError, Action: Enforce,
				Message:     fmt.Sprintf("not validated against its CRD: the API server's validation code failed: %v", p),
				Remediation: "report this to gitgate with the CRD; the object was not validated",
			}}
			checked = true
		}
	}()
	if IsCRD(r) && r.Object.GroupVersionKind().Version == "v1" {
		return ValidateCRD(r), true
	}
	gvk := r.Object.GroupVersionKind()
	e := s.lookup(gvk.GroupKind())
	if e == nil {
		return nil, false
	}
	crdName := e.crd.Name
	from := func() string { return fmt.Sprintf("CustomResourceDefinition %s (%s)", crdName, e.source) }
	result := func(o Origin, path, msg string) Result {
		return schemaFinding(r, o, path, msg, "fix the object: the API server rejects objects that do not match "+from())
	}
	if err := e.compile(); err != nil {
		res := result(r.Origin, "", fmt.Sprintf("not validated: its CRD is invalid: %v", err))
		res.Status = StatusError
		res.Remediation = "fix the CustomResourceDefinition; the API server refuses it, so objects of its kinds cannot be created either"
		return []Result{res}, true
	}
	v, ok := e.vers[gvk.Version]
	if !ok || !v.served {
		var served []string
		for _, cv := range e.crd.Spec.Versions {
			if cv.Served {
				served = append(served, cv.Name)
			}
		}
		what := "does not define"
		if ok {
			what = "does not serve"
		}
		res := result(r.position("/apiVersion"), "apiVersion", fmt.Sprintf("%s %s version %s (served: %s): the API server answers 404 (the server could not find the requested resource)", from(), what, gvk.Version, strings.Join(served, ", ")))
		if len(served) > 0 {
			res.Remediation = fmt.Sprintf("use apiVersion %s/%s (and what that version's schema asks for), a version %s serves", gvk.Group, served[0], from())
		}
		return []Result{res}, true
	}
	for _, fe := range v.validate(ctx, r.Object.Object) {
		path := strings.TrimPrefix(fe.path, ".") // the scale subresource's paths start with a dot
		res := result(r.position(fieldToSlash(path)), path, fe.msg)
		if fe.warn {
			res.Status, res.Action = StatusWarn, Audit
			res.Remediation = "fix the findings above; the rules are then evaluated"
		}
		results = append(results, res)
	}
	SortResults(results)
	return results, true
}

// crdFinding is one error the API server would return for an object.
type crdFinding struct {
	path string // field path, as the API server prints it (spec.strategy.canary)
	msg  string
	warn bool // a note about rules that were not evaluated, not a failure of its own
}

// validate is the API server's create path for a custom resource of this version, on a
// copy of obj: strict decoding (unknown fields; pruning, as with fieldValidation=Strict),
// defaulting, then the create strategy's validation (metadata, OpenAPI schema, scale,
// embedded resources, list types, and the CEL rules when nothing blocking came before:
// transition rules, which need an old object, are not evaluated on create).
func (v *crdVersion) validate(ctx context.Context, obj map[string]any) []crdFinding {
	u := runtime.DeepCopyJSON(obj)
	var out []crdFinding
	unknown := func(paths []string) {
		for _, p := range paths {
			out = append(out, crdFinding{path: p, msg: fmt.Sprintf("strict decoding error: unknown field %q", p)})
		}
	}
	// Decoding (schemaCoercingDecoder): metadata decoded strictly, the rest pruned.
	_, _, metaUnknown, err := schemaobjectmeta.GetObjectMetaWithOptions(u, schemaobjectmeta.ObjectMetaOptions{ReturnUnknownFieldPaths: true})
	if err != nil {
		return append(out, crdFinding{path: "metadata", msg: fmt.Sprintf("metadata: Invalid value: %v", err)})
	}
	unknown(metaUnknown)
	unknown(pruning.PruneWithOptions(u, v.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}))
	if hasNull(u) { // nothing to prune otherwise (the walk allocates per field)
		structuraldefaulting.PruneNonNullableNullsWithoutDefaults(u, v.structural)
	}
	if v.embedded {
		ferr, embedded := schemaobjectmeta.CoerceWithOptions(nil, u, v.structural, false, schemaobjectmeta.CoerceOptions{ReturnUnknownFieldPaths: true})
		if ferr != nil {
			out = append(out, crdFinding{path: ferr.Field, msg: ferr.Error()})
		}
		unknown(embedded)
	}
	if v.defaults {
		structuraldefaulting.Default(u, v.structural)
	}

	// Create (BeforeCreate, PrepareForCreate): status dropped when it is a subresource,
	// a namespaced object without a namespace gets the one kubectl and Argo CD would
	// give it, a cluster-scoped one's namespace is cleared, generateName makes a name.
	if v.status {
		delete(u, "status")
	}
	cr := &unstructured.Unstructured{Object: u}
	switch {
	case v.namespaced && cr.GetNamespace() == "":
		cr.SetNamespace("default")
	case !v.namespaced && cr.GetNamespace() != "":
		cr.SetNamespace("")
	}
	if cr.GetName() == "" && cr.GetGenerateName() != "" {
		cr.SetName(generatedName(cr.GetGenerateName()))
	}

	var errs field.ErrorList
	errs = append(errs, apimachineryvalidation.ValidateObjectMetaAccessor(cr, v.namespaced, apimachineryvalidation.NameIsDNSSubdomain, field.NewPath("metadata"))...)
	errs = append(errs, apiservervalidation.ValidateCustomResource(nil, u, v.schema)...)
	errs = append(errs, v.validateScale(u)...)
	if v.embedded {
		errs = append(errs, schemaobjectmeta.Validate(nil, u, v.structural, false)...)
	}
	if v.listTypes {
		errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, v.structural, u)...)
	}
	for _, fe := range errs {
		out = append(out, crdFinding{path: fe.Field, msg: fe.Error()})
	}
	if v.cel != nil {
		if blocking(errs) {
			out = append(out, crdFinding{msg: "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation", warn: true})
		} else {
			celErrs, _ := v.cel.Validate(ctx, nil, v.structural, u, nil, celconfig.RuntimeCELCostBudget)
			for _, fe := range celErrs {
				out = append(out, crdFinding{path: fe.Field, msg: fe.Error()})
			}
		}
	}
	return out
}

// hasNull reports whether a JSON value holds a null anywhere.
func hasNull(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case map[string]any:
		for _, x := range v {
			if hasNull(x) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if hasNull(x) {
				return true
			}
		}
	}
	return false
}

// walkStructural calls fn on every node of a structural schema.
func walkStructural(s *structuralschema.Structural, fn func(*structuralschema.Structural)) {
	if s == nil {
		return
	}
	fn(s)
	for k := range s.Properties {
		p := s.Properties[k]
		walkStructural(&p, fn)
	}
	walkStructural(s.Items, fn)
	if s.AdditionalProperties != nil {
		walkStructural(s.AdditionalProperties.Structural, fn)
	}
}

// blocking is the API server's hasBlockingErr: schema errors after which the CEL rules
// are not evaluated.
func blocking(errs field.ErrorList) bool {
	for _, e := range errs {
		switch e.Type {
		case field.ErrorTypeNotSupported, field.ErrorTypeRequired, field.ErrorTypeTooLong, field.ErrorTypeTooMany, field.ErrorTypeTypeInvalid:
			return true
		}
	}
	return false
}

// validateScale is the create validation of the scale subresource's replica paths.
func (v *crdVersion) validateScale(u map[string]any) field.ErrorList {
	if v.scale == nil {
		return nil
	}
	var errs field.ErrorList
	check := func(p string, allowMissing bool) {
		segs := strings.Split(strings.TrimPrefix(p, "."), ".")
		n, found, err := unstructured.NestedInt64(u, segs...)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(field.NewPath(p), n, err.Error()))
		case !found && allowMissing:
		case n < 0:
			errs = append(errs, field.Invalid(field.NewPath(p), n, "should be a non-negative integer"))
		case n > 1<<31-1:
			errs = append(errs, field.Invalid(field.NewPath(p), n, fmt.Sprintf("should be less than or equal to %v", 1<<31-1)))
		}
	}
	check(v.scale.SpecReplicasPath, true)
	if !v.status { // with the status subresource, create has dropped status
		check(v.scale.StatusReplicasPath, true)
	}
	return errs
}

// generatedName is a name the API server could generate from generateName
// (names.SimpleNameGenerator: the prefix cut to 58 characters and 5 random ones).
func generatedName(prefix string) string {
	if len(prefix) > 58 {
		prefix = prefix[:58]
	}
	return prefix + "x0x0x"
}

// fieldToSlash turns a field path as the API server prints it
// (spec.hosts[0].name, metadata.labels[app.kubernetes.io/name], spec['a.b']) into the
// slash form of Resource.position.
func fieldToSlash(p string) string {
	var segs []string
	for i := 0; i < len(p); {
		switch p[i] {
		case '.':
			i++
		case '[':
			end := strings.IndexByte(p[i:], ']')
			if end < 0 {
				segs = append(segs, p[i+1:])
				i = len(p)
				continue
			}
			seg := p[i+1 : i+end]
			if uq, err := strconv.Unquote(seg); err == nil {
				seg = uq
			} else {
				seg = strings.Trim(seg, "'")
			}
			segs = append(segs, seg)
			i += end + 1
		default:
			end := strings.IndexAny(p[i:], ".[")
			if end < 0 {
				end = len(p) - i
			}
			segs = append(segs, p[i:i+end])
			i += end
		}
	}
	if len(segs) == 0 {
		return ""
	}
	return "/" + strings.Join(segs, "/")
}

// Kinds lists the group/kinds of the set, sorted.
func (s *CRDSet) Kinds() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.byGK))
	for gk := range s.byGK {
		out = append(out, gk.Kind+"."+gk.Group)
	}
	sort.Strings(out)
	return out
}
