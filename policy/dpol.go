package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	"github.com/kyverno/kyverno/pkg/cel/libs"
	"github.com/kyverno/kyverno/pkg/cel/matching"
	dpolvalidate "github.com/kyverno/kyverno/pkg/cel/policies/dpol"
	dpolcompiler "github.com/kyverno/kyverno/pkg/cel/policies/dpol/compiler"
	dpolengine "github.com/kyverno/kyverno/pkg/cel/policies/dpol/engine"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// DeletingPolicy and NamespacedDeletingPolicy (policies.kyverno.io v1alpha1, v1beta1
// and v1, all read as v1beta1 as Kyverno's CLI reads them) are Kyverno's scheduled
// cleanup: on their cron schedule Kyverno's cleanup controller lists the objects their
// matchConstraints select and deletes those whose conditions all hold. They admit
// nothing, so check, sync and serve do not evaluate them and say so once per policy
// (Engine.Notices); gitgate test evaluates them as `kyverno test` does
// (cmd/cli/kubectl-kyverno/commands/test applyDeletingPolicies): each test resource and
// JSON payload through Kyverno's dpol engine (matchConstraints with every operation,
// conditions, variables, CEL libraries reading the test's context, CEL
// PolicyExceptions), pass when the object would be deleted, fail when the conditions do
// not all hold (or an exception applies), error when they do not evaluate, and no result
// for an object the matchConstraints do not select.
//
// One difference, deliberate: kyverno test v1.19.1 gives DeletingPolicies no canned
// http responses (its applyDeletingPolicies passes none), so their http.Get/Post go to
// the network; gitgate answers them from the test's apiCallResponses, as for the other
// CEL policies, and refuses any other URL without contacting it.

// loadDeletingPolicy decodes a (Namespaced)DeletingPolicy strictly and compiles its CEL
// once, so a policy that does not compile is a load error at its file:line. As Kyverno's
// CLI, nothing else is required of it here (no schedule, no matchConstraints: a
// policy of JSON payloads has none).
//
// The versions are those Kyverno v1.19.1 serves (its CRDs, and its CLI's loader):
// DeletingPolicy v1, v1beta1 and v1alpha1 (deprecated: a warning), NamespacedDeletingPolicy
// v1 and v1beta1; another is an error naming them.
func loadDeletingPolicy(u *unstructured.Unstructured) (policiesv1beta1.DeletingPolicyLike, string, error) {
	gvk := u.GroupVersionKind()
	served := map[string][]string{"DeletingPolicy": {"v1", "v1beta1", "v1alpha1"}, "NamespacedDeletingPolicy": {"v1", "v1beta1"}}[gvk.Kind]
	if !slices.Contains(served, gvk.Version) {
		return nil, "", fmt.Errorf("%s %s is not a version Kyverno serves; use %s/%s", gvk.Kind, gvk.GroupVersion(), gvk.Group, strings.Join(served, " or "+gvk.Group+"/"))
	}
	warning := ""
	if gvk.Version == "v1alpha1" {
		warning = fmt.Sprintf("%s %s is deprecated; use %s/v1", gvk.Kind, gvk.GroupVersion(), gvk.Group)
	}
	var pol policiesv1beta1.DeletingPolicyLike
	if u.GetKind() == "DeletingPolicy" {
		pol = &policiesv1beta1.DeletingPolicy{}
	} else {
		pol = &policiesv1beta1.NamespacedDeletingPolicy{}
	}
	if err := fromUnstructured(u, pol); err != nil {
		return nil, "", err
	}
	if u.GetKind() == "DeletingPolicy" {
		pol.SetNamespace("") // cluster-scoped, as for MutatingPolicy
	}
	var errs field.ErrorList
	_ = withLibraryContext(libs.NewFakeContextProvider(), func() error { // see celCompileMu
		_, errs = dpolcompiler.NewCompiler().Compile(pol, nil)
		return nil
	})
	if len(errs) > 0 {
		return nil, "", fmt.Errorf("CEL does not compile: %w", errs.ToAggregate())
	}
	return pol, warning, nil
}

// compileDeletingPolicies compiles the set's DeletingPolicies once, each with the CEL
// PolicyExceptions that name it (Kyverno's dpol provider), with the engine's CEL
// context as the library context (see withLibraryContext).
func (e *Engine) compileDeletingPolicies(policies []policiesv1beta1.DeletingPolicyLike, exceptions []*policiesv1beta1.PolicyException) error {
	return withLibraryContext(e.celCtx, func() error {
		provider, err := dpolengine.NewProvider(dpolcompiler.NewCompiler(), policies, exceptions)
		if err != nil {
			return fmt.Errorf("compile deleting policies: %w", err)
		}
		e.dpol, err = provider.Fetch(context.Background())
		return err
	})
}

// deletingPolicyNotices tell, once per policy, that check, sync and serve do not
// evaluate a DeletingPolicy: it is a cleanup job on a schedule, not admission. One that
// Kyverno's webhook would refuse (no matchConstraints, a schedule that is not cron) says
// why.
func deletingPolicyNotices(set *Set) []string {
	var out []string
	for _, p := range set.DeletingPolicies {
		at := ""
		if o := set.Origin(p.GetKind(), p.GetName()); o.File != "" {
			at = o.String() + ": "
		}
		msg := fmt.Sprintf("%s%s/%s not evaluated: it is a scheduled cleanup (schedule %q) that deletes existing objects, not an admission policy; gitgate test evaluates it",
			at, p.GetKind(), p.GetName(), p.GetDeletingPolicySpec().Schedule)
		// What Kyverno's webhook checks when the policy is applied (kyverno test does not:
		// a policy of JSON payloads has no matchConstraints).
		var err error
		_ = withLibraryContext(libs.NewFakeContextProvider(), func() error { // see celCompileMu
			_, err = dpolvalidate.Validate(p)
			return nil
		})
		if err != nil {
			msg += "; Kyverno would refuse to create it: " + err.Error()
		}
		out = append(out, msg)
	}
	return out
}

// deletingPolicy returns the compiled DeletingPolicy of that name, if the set has one.
func (e *Engine) deletingPolicy(name string) (dpolengine.Policy, bool) {
	for _, p := range e.dpol {
		if p.Policy.GetName() == name {
			return p, true
		}
	}
	return dpolengine.Policy{}, false
}

// dpolVerdict is what a DeletingPolicy decided about one object.
type dpolVerdict struct {
	// selected: the matchConstraints select the object (always for a JSON payload).
	selected bool
	status   Status // pass: would be deleted; fail: would not; error
	message  string
}

// evaluateDeleting runs one DeletingPolicy on obj as Kyverno's CLI does in a test:
// Kyverno's dpol engine with the namespaces of the values file (ns) and the engine's
// CEL context. Secret values of obj are masked in the message.
func (e *Engine) evaluateDeleting(ctx context.Context, p dpolengine.Policy, obj *unstructured.Unstructured, ns func(string) *corev1.Namespace) dpolVerdict {
	eng := dpolengine.NewEngine(ns, guessMapper{}, e.celCtx, matching.NewMatcher())
	resp, err := eng.Handle(ctx, p, *obj)
	if err != nil {
		return dpolVerdict{selected: true, status: StatusError, message: MaskText(err.Error(), SecretValues(obj.Object))}
	}
	if !resp.PolicyMatched {
		return dpolVerdict{}
	}
	if resp.Match {
		return dpolVerdict{selected: true, status: StatusPass, message: "resource matched: its conditions hold, so it would be deleted"}
	}
	return dpolVerdict{selected: true, status: StatusFail, message: "resource did not match: its conditions do not all hold (or a CEL PolicyException applies), so it would not be deleted"}
}

// guessMapper maps a kind to its resource as meta.UnsafeGuessKindToResource does (what
// celRequest uses); Kyverno's dpol engine only asks it for RESTMapping.
type guessMapper struct{ meta.RESTMapper }

func (guessMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	v := ""
	if len(versions) > 0 {
		v = versions[0]
	}
	gvk := gk.WithVersion(v)
	gvr, _ := meta.UnsafeGuessKindToResource(gvk)
	scope := meta.RESTScopeNamespace
	if ClusterScoped(gk.Kind) {
		scope = meta.RESTScopeRoot
	}
	return &meta.RESTMapping{Resource: gvr, GroupVersionKind: gvk, Scope: scope}, nil
}

// valuesNamespace is a namespace as Kyverno's CLI gives it to DeletingPolicies in a
// test (variables.Variables.Namespace): the values file's namespaces entry, else one
// named by its namespaceSelector with those labels, else none (namespaceObject is null).
func valuesNamespace(v *Values) func(string) *corev1.Namespace {
	return func(name string) *corev1.Namespace {
		if v == nil {
			return nil
		}
		for i := range v.Namespaces {
			if v.Namespaces[i].Name == name {
				return v.Namespaces[i].DeepCopy()
			}
		}
		for _, s := range v.NamespaceSelectors {
			if s.Name == name {
				return &corev1.Namespace{
					TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
					ObjectMeta: metav1.ObjectMeta{Name: name, Labels: s.Labels},
				}
			}
		}
		return nil
	}
}

// dpolTarget is an object a test's DeletingPolicy expectation is evaluated on: a test
// resource, or a JSON payload (id: its path as the test names it).
type dpolTarget struct {
	id      string
	r       *Resource
	payload *unstructured.Unstructured
}

func (t dpolTarget) object() *unstructured.Unstructured {
	if t.r != nil {
		return t.r.Object
	}
	return t.payload
}

// named reports whether the expectation's resource name selects the target: a
// resource by [namespace/]name, a payload by its path.
func (t dpolTarget) named(name string) bool {
	if t.r != nil {
		return resourceNamed(*t.r, name)
	}
	return t.id == name
}

// deletingRows are the rows of one expectation of a DeletingPolicy, compared as
// `kyverno test` compares them: the rule is the policy's name; a target the policy's
// matchConstraints do not select has no result, which kyverno test reports as "not
// found", a failure whatever was expected.
func (e *Engine) deletingRows(ctx context.Context, p dpolengine.Policy, base TestRow, want Status, names []string, targets []dpolTarget, ns func(string) *corev1.Namespace) []TestRow {
	if len(names) == 0 { // no resources named: every resource and payload, as Kyverno's CLI does
		for _, t := range targets {
			names = append(names, t.id)
		}
	}
	if len(names) == 0 {
		row := base
		row.Message = "the test has no resources or JSON payloads to evaluate this DeletingPolicy on"
		return []TestRow{row}
	}
	var rows []TestRow
	for _, name := range names {
		found := false
		for _, t := range targets {
			if !t.named(name) {
				continue
			}
			found = true
			row := base
			row.Resource = t.id
			if t.r != nil {
				row.Resource = t.r.ID()
			}
			v := e.evaluateDeleting(ctx, p, t.object(), ns)
			if !v.selected {
				row.Message = "not selected by the DeletingPolicy's matchConstraints (resourceRules, objectSelector, namespaceSelector): no result, which kyverno test reports as not found"
				rows = append(rows, row)
				continue
			}
			row.Rule = p.Policy.GetName()
			row.Actual, row.Message = v.status, v.message
			if ns := p.Policy.GetNamespace(); ns != "" && v.status == StatusPass && t.object().GetNamespace() != ns {
				// kyverno test does not scope a NamespacedDeletingPolicy; Kyverno's cleanup
				// controller lists objects in the policy's namespace only.
				row.Message += fmt.Sprintf("; but the cleanup controller only lists objects in the policy's namespace %s, so in a cluster this one is left alone", ns)
			}
			row.Pass = row.Actual == want
			rows = append(rows, row)
		}
		if !found {
			row := base
			row.Resource = name
			row.Message = fmt.Sprintf("resource %q not found in the test's resources or JSON payloads", name)
			rows = append(rows, row)
		}
	}
	return rows
}

// testDeletingTargets are what a test's DeletingPolicies are evaluated on: its
// resources (as loaded, not mutated, as Kyverno's CLI gives them) and its jsonPayloads,
// read once for the test by the payload run (readPayload: as Kyverno's CLI reads them,
// names cleaned, duplicates once).
func testDeletingTargets(resources []Resource, jsonPayloads []payloadFile) ([]dpolTarget, error) {
	out := make([]dpolTarget, 0, len(resources)+len(jsonPayloads))
	for i := range resources {
		out = append(out, dpolTarget{id: resources[i].Object.GetNamespace() + "/" + resources[i].Object.GetName(), r: &resources[i]})
	}
	for _, f := range jsonPayloads {
		norm, err := jsonCopy(f.json)
		if err != nil {
			return nil, fmt.Errorf("jsonPayloads %s: %w", f.shown, err)
		}
		// Numbers as encoding/json gives them to Kyverno's CLI: float64.
		out = append(out, dpolTarget{id: f.name, payload: &unstructured.Unstructured{Object: toFloat(norm).(map[string]any)}})
	}
	return out, nil
}
