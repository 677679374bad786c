package policy

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-logr/logr"
	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	"github.com/kyverno/kyverno/pkg/background/generate"
	"github.com/kyverno/kyverno/pkg/clients/dclient"
	"github.com/kyverno/kyverno/pkg/engine"
	"github.com/kyverno/kyverno/pkg/engine/adapters"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	"github.com/kyverno/kyverno/pkg/engine/policycontext"
	imageverifycache "github.com/kyverno/kyverno/pkg/image/verification/cache"
	kubeutils "github.com/kyverno/kyverno/pkg/utils/kube"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

// Generated is one generate rule's outcome on a trigger: its Result (pass: the rule
// applies, skip: its preconditions do not hold, error) and the objects it creates.
type Generated struct {
	Result  Result
	Objects []*unstructured.Unstructured
}

// Generate runs the generate rules of the engine's ClusterPolicies and Policies on r as
// Kyverno does (its background generate controller, as `kyverno test` runs it): every
// rule that applies creates its data object or clones its source, with variables
// substituted from the trigger. existing are the objects a cluster would already hold
// that clone and cloneList rules copy from (a test's cloneSourceResource); nothing is
// read from anywhere else: the controller runs against an in-memory fake API holding r
// and existing only. Generate rules apply to the object as admitted, so r should be
// the mutated object (Mutate) when the set mutates. GeneratingPolicies run after them,
// as Kyverno's CLI runs them (gpol.go): their clone sources come from the engine's CEL
// context (a test's context file), not from existing.
func (e *Engine) Generate(ctx context.Context, r Resource, req Request, existing []*unstructured.Unstructured) ([]Generated, error) {
	var out []Generated
	if operation(req.Operation) == kyvernov1.Delete {
		return nil, nil // Kyverno generates on CREATE and UPDATE
	}
	for i := range e.policies {
		cp := &e.policies[i]
		if !cp.policy.GetSpec().HasGenerate() {
			continue
		}
		obj, err := jsonCopy(r.Object.Object)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.ID(), err)
		}
		pc, matched, err := e.basePolicyContext(unstructured.Unstructured{Object: obj}, req)
		if err != nil {
			out = append(out, Generated{Result: e.result(r, cp, "", StatusError, err.Error(), "")})
			continue
		}
		pc = pc.WithPolicy(cp.policy)
		for k, v := range resourceValues(e.opts.Values, cp.policy.GetName(), matched.GetName()) {
			if err := pc.JSONContext().AddVariable(k, v); err != nil {
				out = append(out, Generated{Result: e.result(r, cp, "", StatusError, fmt.Sprintf("add value %s: %v", k, err), "")})
			}
		}
		resp := e.kyverno.ApplyBackgroundChecks(ctx, pc)
		for _, rr := range resp.PolicyResponse.Rules {
			if rr.RuleType() != engineapi.Generation {
				continue
			}
			g := Generated{Result: e.result(r, cp, rr.Name(), Status(rr.Status()), rr.Message(), "")}
			if rr.Status() == engineapi.RuleStatusPass {
				objs, err := e.generateObjects(pc, cp.policy, rr.Name(), existing)
				if err != nil {
					g.Result.Status, g.Result.Message = StatusError, "generate: "+err.Error()
				}
				g.Objects = objs
			}
			out = append(out, g)
		}
	}
	if len(e.gpol) > 0 {
		obj, err := jsonCopy(r.Object.Object)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.ID(), err)
		}
		out = append(out, e.generatingPolicies(r, &unstructured.Unstructured{Object: obj}, req)...) // gpol.go
	}
	for i := range out {
		out[i].Result = MaskResults([]Result{out[i].Result}, r.Object.Object)[0]
	}
	return out, nil
}

// generateObjects runs Kyverno's generate controller for one rule against a fake API
// holding the trigger and the existing objects, and returns what it created.
func (e *Engine) generateObjects(pc *policycontext.PolicyContext, pol kyvernov1.PolicyInterface, rule string, existing []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	trigger := pc.NewResource()
	objects := []runtime.Object{trigger.DeepCopy()}
	for _, o := range existing {
		objects = append(objects, o.DeepCopy())
	}
	// The fake dynamic client lists only kinds it is told the list kind of: those of
	// cloneList rules, as Kyverno's CLI declares them.
	listKinds := map[schema.GroupVersionResource]string{}
	for _, r := range pol.GetSpec().Rules {
		if !r.HasGenerate() {
			continue
		}
		for _, k := range r.Generation.CloneList.Kinds {
			apiVersion, kind := kubeutils.GetKindFromGVK(k)
			if apiVersion == "" || kind == "" {
				continue
			}
			gv, err := schema.ParseGroupVersion(apiVersion)
			if err != nil {
				return nil, fmt.Errorf("cloneList kind %s: %w", k, err)
			}
			listKinds[gv.WithResource(strings.ToLower(kind)+"s")] = kind + "List"
		}
	}
	gvrs := sets.New[schema.GroupVersionResource]()
	for _, o := range objects {
		gvk := o.GetObjectKind().GroupVersionKind()
		gvrs.Insert(gvk.GroupVersion().WithResource(strings.ToLower(gvk.Kind) + "s"))
	}
	client, err := newFakeClient(listKinds, objects, gvrs.UnsortedList())
	if err != nil {
		return nil, err
	}
	client = applyAsWrite{client}
	inner := engine.NewEngine(e.cfg, e.jp, adapters.Client(client), nil, imageverifycache.DisabledImageVerifyCache(), e.contextLoader, nil, nil)
	c := generate.NewGenerateControllerWithOnlyClient(client, inner)
	specs, err := c.ApplyGeneratePolicy(logr.Discard(), pc, []string{rule})
	if err != nil {
		return nil, err
	}
	var all []kyvernov1.ResourceSpec
	for _, s := range specs {
		all = append(all, s...)
	}
	objs, err := c.GetUnstrResources(all)
	if err != nil {
		return nil, err
	}
	for i, o := range objs {
		norm, err := jsonCopy(o.Object)
		if err != nil {
			return nil, err
		}
		objs[i] = &unstructured.Unstructured{Object: norm}
	}
	return objs, nil
}

// newFakeClient is Kyverno's in-memory API as its CLI builds it (dclient.NewFakeClient)
// without the typed clientset, which generate rules do not use: linking every typed
// fake client grew the binary by a tenth.
func newFakeClient(listKinds map[schema.GroupVersionResource]string, objects []runtime.Object, disco []schema.GroupVersionResource) (c dclient.Interface, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("in-memory API for generate rules: %v", r)
		}
	}()
	scheme := runtime.NewScheme()
	for _, o := range objects {
		gvk := o.GetObjectKind().GroupVersionKind()
		if !scheme.Recognizes(gvk) {
			scheme.AddKnownTypeWithName(gvk, &unstructured.Unstructured{})
		}
		gvk.Kind += "List"
		if !scheme.Recognizes(gvk) {
			scheme.AddKnownTypeWithName(gvk, &unstructured.UnstructuredList{})
		}
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, listKinds, objects...)
	return dclient.NewFakeClientWithDisco(dyn, nil, dclient.NewFakeDiscoveryClient(disco)), nil
}

// applyAsWrite makes the in-memory API answer a server-side apply (a policy's
// useServerSideApply) as the API server would for gitgate's single field manager:
// the object is created when absent, else replaced. Kyverno's fake client does not
// implement apply, so its CLI generates nothing there and compares nothing.
type applyAsWrite struct{ dclient.Interface }

func (c applyAsWrite) ApplyResource(ctx context.Context, apiVersion, kind, namespace, name string, obj any, dryRun bool, _ string, subresources ...string) (*unstructured.Unstructured, error) {
	if _, err := c.GetResource(ctx, apiVersion, kind, namespace, name); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
		return c.CreateResource(ctx, apiVersion, kind, namespace, obj, dryRun)
	}
	return c.UpdateResource(ctx, apiVersion, kind, namespace, obj, dryRun, subresources...)
}
