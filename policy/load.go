package policy

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	kyvernov2 "github.com/kyverno/kyverno/api/kyverno/v2"
	"github.com/kyverno/kyverno/pkg/cel/libs"
	gpolcompiler "github.com/kyverno/kyverno/pkg/cel/policies/gpol/compiler"
	mpolcompiler "github.com/kyverno/kyverno/pkg/cel/policies/mpol/compiler"
	vpolcompiler "github.com/kyverno/kyverno/pkg/cel/policies/vpol/compiler"
	"github.com/kyverno/kyverno/pkg/config"
	policyvalidation "github.com/kyverno/kyverno/pkg/validation/policy"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	admissionregistrationv1beta1 "k8s.io/api/admissionregistration/v1beta1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// LoadError is a policy, or a policy file, that could not be loaded. A policy that
// does not load is never skipped silently: callers report it and exit 2.
type LoadError struct {
	Origin Origin
	Kind   string
	Policy string
	Err    error
}

func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString(e.Origin.String())
	b.WriteString(": ")
	if e.Policy != "" {
		b.WriteString(e.Kind + "/" + e.Policy + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *LoadError) Unwrap() error { return e.Err }

// Set is a loaded and validated set of policies and exceptions.
type Set struct {
	// Policies are Kyverno ClusterPolicy and Policy objects (kyverno.io/v1).
	Policies []kyvernov1.PolicyInterface
	// ValidatingPolicies are Kyverno CEL policies (policies.kyverno.io).
	ValidatingPolicies []policiesv1beta1.ValidatingPolicyLike
	// MutatingPolicies and GeneratingPolicies are Kyverno's CEL mutate and generate
	// policies (policies.kyverno.io), with their Namespaced variants (mpol.go, gpol.go).
	MutatingPolicies   []policiesv1beta1.MutatingPolicyLike
	GeneratingPolicies []policiesv1beta1.GeneratingPolicyLike
	// DeletingPolicies are Kyverno's scheduled cleanup policies (policies.kyverno.io
	// DeletingPolicy and NamespacedDeletingPolicy, any served version read as v1beta1 as
	// Kyverno's CLI reads them): evaluated by gitgate test only, never at admission
	// (dpol.go).
	DeletingPolicies []policiesv1beta1.DeletingPolicyLike
	// ValidatingAdmissionPolicies and their bindings (admissionregistration.k8s.io,
	// v1beta1 read as v1: same fields); Params are the objects a binding's paramRef may
	// select (a kyverno test's paramResources). See vap.go.
	ValidatingAdmissionPolicies       []*admissionregistrationv1.ValidatingAdmissionPolicy
	ValidatingAdmissionPolicyBindings []*admissionregistrationv1.ValidatingAdmissionPolicyBinding
	Params                            []*unstructured.Unstructured
	// MutatingAdmissionPolicies and their bindings (read as v1beta1, as Kyverno's CLI
	// does; map.go).
	MutatingAdmissionPolicies       []*admissionregistrationv1beta1.MutatingAdmissionPolicy
	MutatingAdmissionPolicyBindings []*admissionregistrationv1beta1.MutatingAdmissionPolicyBinding
	// Exceptions are kyverno.io/v2 PolicyExceptions; CELExceptions apply to ValidatingPolicies.
	Exceptions    []*kyvernov2.PolicyException
	CELExceptions []*policiesv1beta1.PolicyException
	// PayloadPolicies are ValidatingPolicies of JSON, HTTP or Envoy payloads: check does
	// not evaluate them (a notice each), gitgate test does (payload.go).
	PayloadPolicies []*PayloadPolicy
	// Warnings are notices about the set that do not stop a check (deprecations, rules
	// gitgate does not run, an overridden built-in policy).
	Warnings []string

	origins    map[string]Origin        // kind/name -> where the policy came from
	exceptions map[string]ExceptionInfo // exceptionKey -> where, whose, until when
}

// Exception annotations: who owns a PolicyException and when it stops applying.
const (
	// AnnotationExpires is a date (2027-01-31: the exception applies through that day,
	// UTC) or an RFC 3339 time after which the exception no longer applies.
	AnnotationExpires = "gitgate.dev/expires"
	// AnnotationTicket names the ticket that tracks the exception (OPS-123).
	AnnotationTicket = "gitgate.dev/ticket"
)

// ExceptionInfo is where a PolicyException was loaded from and its ownership
// annotations.
type ExceptionInfo struct {
	Origin Origin
	// Ticket is the gitgate.dev/ticket annotation.
	Ticket string
	// Expires is the first instant the exception no longer applies (zero: never);
	// ExpiresText the annotation as written.
	Expires     time.Time
	ExpiresText string
}

// Expired reports whether the exception no longer applies at now.
func (x ExceptionInfo) Expired(now time.Time) bool {
	return !x.Expires.IsZero() && !now.Before(x.Expires)
}

// ParseExpiry reads a gitgate.dev/expires value: a date (valid through that day, UTC)
// or an RFC 3339 time. It returns the first instant the exception no longer applies.
func ParseExpiry(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.AddDate(0, 0, 1), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s %q is neither a date (2027-01-31) nor an RFC 3339 time (2027-01-31T18:00:00Z)", AnnotationExpires, s)
}

func exceptionKey(group, namespace, name string) string {
	return group + "/" + namespace + "/" + name
}

// ExceptionInfo returns the metadata of the PolicyException of the API group
// (kyverno.io or policies.kyverno.io), namespace and name.
func (s *Set) ExceptionInfo(group, namespace, name string) (ExceptionInfo, bool) {
	x, ok := s.exceptions[exceptionKey(group, namespace, name)]
	return x, ok
}

// Origin returns where the named policy ("ClusterPolicy/name") was loaded from.
func (s *Set) Origin(kind, name string) Origin { return s.origins[kind+"/"+name] }

// Len is the number of policies (not exceptions) in the set.
func (s *Set) Len() int {
	return len(s.Policies) + len(s.ValidatingPolicies) + len(s.MutatingPolicies) + len(s.GeneratingPolicies) +
		len(s.ValidatingAdmissionPolicies) + len(s.MutatingAdmissionPolicies)
}

// Merge adds other's policies to s. A policy in other with the same kind and name as one
// in s replaces it, with a warning: a repository may override a built-in policy.
func (s *Set) Merge(other *Set) {
	if s.origins == nil {
		s.origins = map[string]Origin{}
	}
	s.Policies = mergeNamed(s, other, s.Policies, other.Policies, kyvernoID[kyvernov1.PolicyInterface])
	s.ValidatingPolicies = mergeNamed(s, other, s.ValidatingPolicies, other.ValidatingPolicies, kyvernoID[policiesv1beta1.ValidatingPolicyLike])
	s.MutatingPolicies = mergeNamed(s, other, s.MutatingPolicies, other.MutatingPolicies, kyvernoID[policiesv1beta1.MutatingPolicyLike])
	s.GeneratingPolicies = mergeNamed(s, other, s.GeneratingPolicies, other.GeneratingPolicies, kyvernoID[policiesv1beta1.GeneratingPolicyLike])
	s.DeletingPolicies = mergeNamed(s, other, s.DeletingPolicies, other.DeletingPolicies, kyvernoID[policiesv1beta1.DeletingPolicyLike])
	s.PayloadPolicies = mergeNamed(s, other, s.PayloadPolicies, other.PayloadPolicies, func(p *PayloadPolicy) (string, string, string) { return kyvernoID(p.Policy) })
	s.ValidatingAdmissionPolicies = mergeNamed(s, other, s.ValidatingAdmissionPolicies, other.ValidatingAdmissionPolicies,
		func(p *admissionregistrationv1.ValidatingAdmissionPolicy) (string, string, string) {
			return "ValidatingAdmissionPolicy", "", p.Name
		})
	s.ValidatingAdmissionPolicyBindings = mergeNamed(s, other, s.ValidatingAdmissionPolicyBindings, other.ValidatingAdmissionPolicyBindings,
		func(p *admissionregistrationv1.ValidatingAdmissionPolicyBinding) (string, string, string) {
			return "ValidatingAdmissionPolicyBinding", "", p.Name
		})
	s.MutatingAdmissionPolicies = mergeNamed(s, other, s.MutatingAdmissionPolicies, other.MutatingAdmissionPolicies,
		func(p *admissionregistrationv1beta1.MutatingAdmissionPolicy) (string, string, string) {
			return "MutatingAdmissionPolicy", "", p.Name
		})
	s.MutatingAdmissionPolicyBindings = mergeNamed(s, other, s.MutatingAdmissionPolicyBindings, other.MutatingAdmissionPolicyBindings,
		func(p *admissionregistrationv1beta1.MutatingAdmissionPolicyBinding) (string, string, string) {
			return "MutatingAdmissionPolicyBinding", "", p.Name
		})
	s.Params = append(s.Params, other.Params...)
	s.Exceptions = append(s.Exceptions, other.Exceptions...)
	s.CELExceptions = append(s.CELExceptions, other.CELExceptions...)
	s.Warnings = append(s.Warnings, other.Warnings...)
	for k, v := range other.origins {
		s.origins[k] = v
	}
	for k, v := range other.exceptions {
		s.addExceptionInfo(k, v)
	}
}

// kyvernoID is a Kyverno policy's kind, namespace and name.
func kyvernoID[T interface {
	GetKind() string
	GetNamespace() string
	GetName() string
}](p T) (string, string, string) {
	return p.GetKind(), p.GetNamespace(), p.GetName()
}

// mergeNamed is ours without what theirs replaces (the same kind, namespace and name;
// a warning each, naming both files), then theirs: a repository's policy, binding or
// admission policy overrides the built-in one of its name, never runs beside it.
func mergeNamed[T any](s, other *Set, ours, theirs []T, id func(T) (kind, namespace, name string)) []T {
	if len(theirs) == 0 {
		return ours
	}
	replaced := map[string]bool{}
	for _, p := range theirs {
		k, ns, n := id(p)
		replaced[k+"/"+ns+"/"+n] = true
	}
	ours = slices.DeleteFunc(ours, func(p T) bool {
		k, ns, n := id(p)
		if !replaced[k+"/"+ns+"/"+n] {
			return false
		}
		s.Warnings = append(s.Warnings, fmt.Sprintf("%s/%s from %s replaces the one from %s", k, n, other.origins[k+"/"+n].File, s.origins[k+"/"+n].File))
		return true
	})
	return append(ours, theirs...)
}

func (s *Set) addExceptionInfo(key string, x ExceptionInfo) {
	if s.exceptions == nil {
		s.exceptions = map[string]ExceptionInfo{}
	}
	s.exceptions[key] = x
}

// exceptionMeta reads the ownership annotations of a PolicyException; a malformed
// expiry is an error at the annotation's line.
func exceptionMeta(r Resource) (ExceptionInfo, error) {
	ann := r.Object.GetAnnotations()
	x := ExceptionInfo{Origin: r.Origin, Ticket: strings.TrimSpace(ann[AnnotationTicket])}
	if v, ok := ann[AnnotationExpires]; ok {
		t, err := ParseExpiry(v)
		if err != nil {
			return x, &LoadError{Origin: r.FieldOrigin([]string{"metadata", "annotations", AnnotationExpires}),
				Kind: r.Object.GetKind(), Policy: r.Object.GetName(), Err: err}
		}
		x.Expires, x.ExpiresText = t, strings.TrimSpace(v)
	}
	return x, nil
}

// Load reads policies and exceptions from the named files and directories of fsys
// (directories recursively; *.yaml, *.yml and *.json). Documents of other kinds
// (kyverno-test.yaml, test resources) are ignored, so a Kyverno policy library checkout
// loads as it is. Every policy is validated as Kyverno's CLI validates it; the returned
// error joins one *LoadError per policy or file that failed, and the Set holds the rest.
func Load(fsys fs.FS, paths ...string) (*Set, error) {
	srcs := make([]Source, 0, len(paths))
	for _, p := range paths {
		srcs = append(srcs, Source{FS: fsys, Root: p, Display: p})
	}
	return LoadSources(srcs...)
}

// ErrFileTooLarge is a file over the size limit (--max-file-size).
var ErrFileTooLarge = errors.New("file too large")

// ReadFileLimit reads a file of at most limit bytes (DefaultMaxFileSize when limit is
// 0); a larger one is refused before it is read, with an error naming its size, the
// limit and --max-file-size. Policies, values files, kyverno-test files and their
// resources are read through it.
func ReadFileLimit(fsys fs.FS, name string, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxFileSize
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > limit {
		return nil, fmt.Errorf("%w: %d bytes, over the %d-byte limit; raise it with --max-file-size if the file is legitimate", ErrFileTooLarge, st.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit { // Stat said less: a growing file, a pipe
		return nil, fmt.Errorf("%w: over the %d-byte limit; raise it with --max-file-size if the file is legitimate", ErrFileTooLarge, limit)
	}
	return data, nil
}

// LoadSources is Load over sources whose files are shown under their Display path.
func LoadSources(srcs ...Source) (*Set, error) {
	s := &Set{origins: map[string]Origin{}}
	var errs []error
	for _, src := range srcs {
		show := displayFunc(src)
		err := fs.WalkDir(src.FS, src.Root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, &LoadError{Origin: Origin{File: show(p)}, Err: unwrapPathErr(err)})
				return nil
			}
			if d.IsDir() {
				if p != src.Root && strings.HasPrefix(d.Name(), ".") {
					return fs.SkipDir
				}
				return nil
			}
			if p != src.Root && !isManifestFile(p) {
				return nil
			}
			data, err := ReadFileLimit(src.FS, p, src.MaxFileSize)
			if err != nil {
				errs = append(errs, &LoadError{Origin: Origin{File: show(p)}, Err: unwrapPathErr(err)})
				return nil
			}
			errs = append(errs, s.addFile(show(p), data)...)
			return nil
		})
		if err != nil {
			errs = append(errs, &LoadError{Origin: Origin{File: show(src.Root)}, Err: err})
		}
	}
	return s, errors.Join(errs...)
}

func isManifestFile(p string) bool {
	switch strings.ToLower(path.Ext(p)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

func (s *Set) addFile(file string, data []byte) []error {
	docs, err := Decode(file, data)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, d := range docs {
		if err := s.add(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

var serviceAccount = config.KyvernoUserName(config.KyvernoServiceAccountName())

func (s *Set) add(r Resource) error {
	gvk := r.Object.GroupVersionKind()
	perr := func(err error) error {
		return &LoadError{Origin: r.Origin, Kind: gvk.Kind, Policy: r.Object.GetName(), Err: err}
	}
	switch {
	case gvk.Group == "kyverno.io" && (gvk.Kind == "ClusterPolicy" || gvk.Kind == "Policy"):
		var pol kyvernov1.PolicyInterface
		if gvk.Kind == "ClusterPolicy" {
			p := &kyvernov1.ClusterPolicy{}
			if err := fromUnstructured(r.Object, p); err != nil {
				return perr(err)
			}
			pol = p
		} else {
			p := &kyvernov1.Policy{}
			if err := fromUnstructured(r.Object, p); err != nil {
				return perr(err)
			}
			pol = p
		}
		if err := validateKyverno(pol); err != nil {
			return perr(err)
		}
		if spec := pol.GetSpec(); !hasValidate(pol) && !spec.HasMutate() && !spec.HasGenerate() {
			s.Warnings = append(s.Warnings, fmt.Sprintf("%s: %s/%s has no validate, mutate or generate rules: its rules (verifyImages signature checks need the registry) are not applied by gitgate",
				r.Origin, gvk.Kind, pol.GetName()))
		}
		s.Policies = append(s.Policies, pol)
	case gvk.Group == "policies.kyverno.io" && (gvk.Kind == "ValidatingPolicy" || gvk.Kind == "NamespacedValidatingPolicy"):
		var pol policiesv1beta1.ValidatingPolicyLike
		if gvk.Kind == "ValidatingPolicy" {
			p := &policiesv1beta1.ValidatingPolicy{}
			if err := fromUnstructured(r.Object, p); err != nil {
				return perr(err)
			}
			pol = p
		} else {
			p := &policiesv1beta1.NamespacedValidatingPolicy{}
			if err := fromUnstructured(r.Object, p); err != nil {
				return perr(err)
			}
			pol = p
		}
		if m := string(pol.GetValidatingPolicySpec().EvaluationMode()); m != "" && m != "Kubernetes" {
			return s.addPayloadPolicy(r, pol, m) // JSON, HTTP, Envoy: payload.go
		}
		var errs field.ErrorList
		_ = withLibraryContext(libs.NewFakeContextProvider(), func() error { // see celCompileMu
			_, errs = vpolcompiler.NewCompiler().Compile(pol, nil)
			return nil
		})
		if len(errs) > 0 {
			return perr(fmt.Errorf("CEL does not compile: %w", errs.ToAggregate()))
		}
		s.ValidatingPolicies = append(s.ValidatingPolicies, pol)
	case gvk.Group == "policies.kyverno.io" && (gvk.Kind == "MutatingPolicy" || gvk.Kind == "NamespacedMutatingPolicy"):
		var pol policiesv1beta1.MutatingPolicyLike
		if gvk.Kind == "MutatingPolicy" {
			pol = &policiesv1beta1.MutatingPolicy{}
		} else {
			pol = &policiesv1beta1.NamespacedMutatingPolicy{}
		}
		if err := fromUnstructured(r.Object, pol); err != nil {
			return perr(err)
		}
		if gvk.Kind == "MutatingPolicy" {
			pol.SetNamespace("") // cluster-scoped: the API server drops a namespace written on it
		}
		var errs field.ErrorList
		_ = withLibraryContext(libs.NewFakeContextProvider(), func() error { // see celCompileMu
			_, errs = mpolcompiler.NewCompiler().Compile(pol, nil)
			return nil
		})
		if len(errs) > 0 {
			return perr(fmt.Errorf("CEL does not compile: %w", errs.ToAggregate()))
		}
		s.MutatingPolicies = append(s.MutatingPolicies, pol)
	case gvk.Group == "policies.kyverno.io" && (gvk.Kind == "GeneratingPolicy" || gvk.Kind == "NamespacedGeneratingPolicy"):
		var pol policiesv1beta1.GeneratingPolicyLike
		if gvk.Kind == "GeneratingPolicy" {
			pol = &policiesv1beta1.GeneratingPolicy{}
		} else {
			pol = &policiesv1beta1.NamespacedGeneratingPolicy{}
		}
		if err := fromUnstructured(r.Object, pol); err != nil {
			return perr(err)
		}
		if gvk.Kind == "GeneratingPolicy" {
			pol.SetNamespace("") // cluster-scoped, as for MutatingPolicy
		}
		var errs field.ErrorList
		_ = withLibraryContext(libs.NewFakeContextProvider(), func() error { // see celCompileMu
			_, errs = gpolcompiler.NewCompiler().Compile(pol, nil)
			return nil
		})
		if len(errs) > 0 {
			return perr(fmt.Errorf("CEL does not compile: %w", errs.ToAggregate()))
		}
		s.GeneratingPolicies = append(s.GeneratingPolicies, pol)
	case gvk.Group == "policies.kyverno.io" && (gvk.Kind == "DeletingPolicy" || gvk.Kind == "NamespacedDeletingPolicy"):
		pol, warning, err := loadDeletingPolicy(r.Object)
		if err != nil {
			return perr(err)
		}
		if warning != "" {
			s.Warnings = append(s.Warnings, fmt.Sprintf("%s: %s/%s: %s", r.Origin, gvk.Kind, pol.GetName(), warning))
		}
		s.DeletingPolicies = append(s.DeletingPolicies, pol)
	case gvk.Group == "admissionregistration.k8s.io" && gvk.Kind == "ValidatingAdmissionPolicy":
		p := &admissionregistrationv1.ValidatingAdmissionPolicy{}
		if err := fromUnstructured(r.Object, p); err != nil {
			return perr(err)
		}
		if err := vapCompileErrors(p); err != nil {
			return perr(err)
		}
		s.ValidatingAdmissionPolicies = append(s.ValidatingAdmissionPolicies, p)
	case gvk.Group == "admissionregistration.k8s.io" && gvk.Kind == "ValidatingAdmissionPolicyBinding":
		b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
		if err := fromUnstructured(r.Object, b); err != nil {
			return perr(err)
		}
		if b.Spec.PolicyName == "" {
			return perr(fmt.Errorf("spec.policyName is empty: name the ValidatingAdmissionPolicy it binds"))
		}
		s.ValidatingAdmissionPolicyBindings = append(s.ValidatingAdmissionPolicyBindings, b)
	case gvk.Group == "admissionregistration.k8s.io" && gvk.Kind == "MutatingAdmissionPolicy":
		p := &admissionregistrationv1beta1.MutatingAdmissionPolicy{}
		if err := fromUnstructured(r.Object, p); err != nil {
			return perr(err)
		}
		if _, err := compileMAP(p); err != nil {
			return perr(err)
		}
		s.MutatingAdmissionPolicies = append(s.MutatingAdmissionPolicies, p)
	case gvk.Group == "admissionregistration.k8s.io" && gvk.Kind == "MutatingAdmissionPolicyBinding":
		b := &admissionregistrationv1beta1.MutatingAdmissionPolicyBinding{}
		if err := fromUnstructured(r.Object, b); err != nil {
			return perr(err)
		}
		if b.Spec.PolicyName == "" {
			return perr(fmt.Errorf("spec.policyName is empty: name the MutatingAdmissionPolicy it binds"))
		}
		s.MutatingAdmissionPolicyBindings = append(s.MutatingAdmissionPolicyBindings, b)
	case gvk.Group == "kyverno.io" && gvk.Kind == "PolicyException":
		p := &kyvernov2.PolicyException{}
		if err := fromUnstructured(r.Object, p); err != nil {
			return perr(err)
		}
		if errs := p.Validate(); len(errs) > 0 {
			return perr(errs.ToAggregate())
		}
		x, err := exceptionMeta(r)
		if err != nil {
			return err
		}
		s.addExceptionInfo(exceptionKey(gvk.Group, p.Namespace, p.Name), x)
		s.Exceptions = append(s.Exceptions, p)
	case gvk.Group == "policies.kyverno.io" && gvk.Kind == "PolicyException":
		p := &policiesv1beta1.PolicyException{}
		if err := fromUnstructured(r.Object, p); err != nil {
			return perr(err)
		}
		x, err := exceptionMeta(r)
		if err != nil {
			return err
		}
		s.addExceptionInfo(exceptionKey(gvk.Group, p.Namespace, p.Name), x)
		s.CELExceptions = append(s.CELExceptions, p)
	case gvk.Group == "kyverno.io" || gvk.Group == "policies.kyverno.io":
		s.Warnings = append(s.Warnings, fmt.Sprintf("%s: %s/%s: kind %s is not evaluated by gitgate (it evaluates ClusterPolicy, Policy, ValidatingPolicy, MutatingPolicy and GeneratingPolicy); skipped",
			r.Origin, gvk.Kind, r.Object.GetName(), gvk.Kind))
		return nil
	case gvk.Group == "cli.kyverno.io":
		return nil // kyverno-test.yaml, values files
	default:
		// Not a policy: a param a ValidatingAdmissionPolicyBinding or
		// MutatingAdmissionPolicyBinding may select (vapParams picks by paramKind), kept
		// beside the policies as the cluster keeps it beside them. (gitgate test takes
		// params from paramResources only, as kyverno test does.)
		s.Params = append(s.Params, r.Object)
		return nil
	}
	key := gvk.Kind + "/" + r.Object.GetName()
	if prev, dup := s.origins[key]; dup && gvk.Kind != "PolicyException" {
		return perr(fmt.Errorf("defined twice (also at %s); rename one", prev))
	}
	s.origins[key] = r.Origin
	return nil
}

// fromUnstructured converts strictly: unknown fields are errors, as kubectl would say.
func fromUnstructured(u *unstructured.Unstructured, into any) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, into, true)
}

func validateKyverno(pol kyvernov1.PolicyInterface) (err error) {
	defer func() {
		// Kyverno's validation reaches for a cluster client in a few corners (webhook
		// match conditions); offline there is none.
		if r := recover(); r != nil {
			err = fmt.Errorf("policy validation needs a cluster for this policy: %v", r)
		}
	}()
	_, err = policyvalidation.Validate(pol, nil, nil, true, serviceAccount, serviceAccount)
	return err
}

func hasValidate(pol kyvernov1.PolicyInterface) bool {
	for _, r := range pol.GetSpec().Rules {
		if r.HasValidate() {
			return true
		}
	}
	return false
}

// Remove drops the policies of these names from the set, of every kind (a binding
// stays: without its policy it binds nothing).
func (s *Set) Remove(names ...string) {
	drop := func(name string) bool { return slices.Contains(names, name) }
	s.Policies = slices.DeleteFunc(s.Policies, func(p kyvernov1.PolicyInterface) bool { return drop(p.GetName()) })
	s.ValidatingPolicies = slices.DeleteFunc(s.ValidatingPolicies, func(p policiesv1beta1.ValidatingPolicyLike) bool { return drop(p.GetName()) })
	s.MutatingPolicies = slices.DeleteFunc(s.MutatingPolicies, func(p policiesv1beta1.MutatingPolicyLike) bool { return drop(p.GetName()) })
	s.GeneratingPolicies = slices.DeleteFunc(s.GeneratingPolicies, func(p policiesv1beta1.GeneratingPolicyLike) bool { return drop(p.GetName()) })
	s.DeletingPolicies = slices.DeleteFunc(s.DeletingPolicies, func(p policiesv1beta1.DeletingPolicyLike) bool { return drop(p.GetName()) })
	s.PayloadPolicies = slices.DeleteFunc(s.PayloadPolicies, func(p *PayloadPolicy) bool { return drop(p.Policy.GetName()) })
	s.ValidatingAdmissionPolicies = slices.DeleteFunc(s.ValidatingAdmissionPolicies, func(p *admissionregistrationv1.ValidatingAdmissionPolicy) bool { return drop(p.Name) })
	s.MutatingAdmissionPolicies = slices.DeleteFunc(s.MutatingAdmissionPolicies, func(p *admissionregistrationv1beta1.MutatingAdmissionPolicy) bool { return drop(p.Name) })
}

// Names lists the policies of the set, sorted, as kind/name.
func (s *Set) Names() []string {
	var out []string
	for _, p := range s.Policies {
		out = append(out, p.GetKind()+"/"+p.GetName())
	}
	for _, p := range s.ValidatingPolicies {
		out = append(out, p.GetKind()+"/"+p.GetName())
	}
	for _, p := range s.MutatingPolicies {
		out = append(out, p.GetKind()+"/"+p.GetName())
	}
	for _, p := range s.GeneratingPolicies {
		out = append(out, p.GetKind()+"/"+p.GetName())
	}
	for _, p := range s.DeletingPolicies {
		out = append(out, p.GetKind()+"/"+p.GetName())
	}
	for _, p := range s.ValidatingAdmissionPolicies {
		out = append(out, "ValidatingAdmissionPolicy/"+p.GetName())
	}
	for _, p := range s.MutatingAdmissionPolicies {
		out = append(out, "MutatingAdmissionPolicy/"+p.GetName())
	}
	for _, p := range s.PayloadPolicies {
		out = append(out, p.Policy.GetKind()+"/"+p.Policy.GetName())
	}
	sort.Strings(out)
	return out
}
