package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// notEvaluatedPrefix starts the message of a Result gitgate did not evaluate: a rule
// of a kind it does not apply yet. Such a result has StatusError, so it is never a pass.
const notEvaluatedPrefix = "not evaluated: "

// mutateStep is what one policy's mutate rules did to a resource: Kyverno applies
// policies one after the other, each to the object the previous one produced.
type mutateStep struct {
	policy  *compiledPolicy
	mapName string // the MutatingAdmissionPolicy's, for its steps (map.go)
	results []Result
	// patched is the object after this policy's rules (the input when none applied).
	patched *unstructured.Unstructured
	// targets are the objects its mutateExisting rules patched (gitgate test only,
	// mutateexisting.go), each with its rule's result about it.
	targets []testResult
}

// Mutate applies the mutate rules of the engine's ClusterPolicies and Policies to r
// (patchStrategicMerge, patchesJson6902, foreach, preconditions, context), policy after
// policy in the set's order and rule after rule, as Kyverno's admission controller and
// CLI do, each policy seeing the object the previous one produced; MutatingPolicies
// before them and NamespacedMutatingPolicies after them, as Kyverno's webhooks are
// ordered (mpol.go; one result per policy, its rule named as the policy). It returns one Result
// per mutate rule that matched (pass: applied, skip: preconditions or nothing to do,
// fail or error with Kyverno's message), and the mutated object: r's object itself
// (not a copy) when no policy has mutate rules, else a new JSON-normalised object. r
// is not modified. mutateExisting rules (targets other than the admitted object) are
// not applied: each that matches is a StatusError result saying so. Validation of the
// mutated object is Evaluate on a Resource holding it.
func (e *Engine) Mutate(ctx context.Context, r Resource, req Request) ([]Result, *unstructured.Unstructured, error) {
	steps, patched, err := e.mutateSteps(ctx, r, req)
	if err != nil {
		return nil, nil, err
	}
	var out []Result
	for _, s := range steps {
		out = append(out, s.results...)
	}
	if req.OldObject != nil {
		return MaskResults(out, r.Object.Object, req.OldObject.Object), patched, nil
	}
	return MaskResults(out, r.Object.Object), patched, nil
}

func (e *Engine) mutateSteps(ctx context.Context, r Resource, req Request) ([]mutateStep, *unstructured.Unstructured, error) {
	current := r.Object
	if !e.mutates || operation(req.Operation) == kyvernov1.Delete {
		// A DELETE has no object to mutate.
		return nil, current, nil
	}
	// The engine panics on Go ints and patches in place: give it its own JSON copy.
	obj, err := jsonCopy(current.Object)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", r.ID(), err)
	}
	current = &unstructured.Unstructured{Object: obj}
	var steps []mutateStep
	// The API server's order (check, the webhook): the MutatingAdmissionPolicy plugin
	// runs before the webhooks, Kyverno's among them (map.go). gitgate test applies MAPs
	// after Kyverno's kinds, as kyverno test does.
	apiServerOrder := !e.opts.kyvernoTest()
	var afterMAPs *unstructured.Unstructured
	if apiServerOrder {
		var mapSteps []mutateStep
		mapSteps, current = e.mapSteps(ctx, r, current, req, false)
		steps, afterMAPs = append(steps, mapSteps...), current
	}
	// Kyverno's admission order (its webhooks run by name): MutatingPolicies, then
	// ClusterPolicy and Policy mutate rules, then NamespacedMutatingPolicies (mpol.go).
	if s, patched := e.mutatingPolicyStep(ctx, r, current, req, false); s != nil {
		steps, current = append(steps, *s), patched
	}
	for i := range e.policies {
		cp := &e.policies[i]
		if !cp.policy.GetSpec().HasMutate() {
			continue
		}
		step := mutateStep{policy: cp, patched: current}
		pc, matched, err := e.basePolicyContext(*current, req)
		if err != nil {
			step.results = append(step.results, e.result(r, cp, "", StatusError, err.Error(), ""))
			steps = append(steps, step)
			continue
		}
		ppc := pc.WithPolicy(cp.policy)
		for k, v := range resourceValues(e.opts.Values, cp.policy.GetName(), matched.GetName()) {
			if err := ppc.JSONContext().AddVariable(k, v); err != nil {
				step.results = append(step.results, e.result(r, cp, "", StatusError, fmt.Sprintf("add value %s: %v", k, err), ""))
			}
		}
		kyv := e.kyverno
		if e.mutex != nil {
			kyv = e.mutex.kyverno // a test's objects are its cluster (mutateexisting.go)
		}
		resp := kyv.Mutate(ctx, ppc)
		for _, rr := range resp.PolicyResponse.Rules {
			if rr.RuleType() != engineapi.Mutation {
				continue
			}
			status, msg := Status(rr.Status()), rr.Message()
			if rule := cp.rules[rr.Name()]; rule != nil && rule.HasMutateExisting() {
				if e.mutex == nil {
					status, msg = StatusError, notEvaluatedPrefix+"mutateExisting rules change other objects than the one admitted (targets from the cluster); gitgate does not apply them"
				} else if t, ok := e.patchedTarget(r, cp, rr); ok {
					step.targets = append(step.targets, t)
				}
			}
			step.results = append(step.results, e.result(r, cp, rr.Name(), status, msg, ""))
		}
		if p := resp.PatchedResource; p.Object != nil {
			norm, err := jsonCopy(p.Object)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: policy %s: %w", r.ID(), cp.policy.GetName(), err)
			}
			current = &unstructured.Unstructured{Object: norm}
			step.patched = current
		}
		steps = append(steps, step)
	}
	if s, patched := e.mutatingPolicyStep(ctx, r, current, req, true); s != nil {
		steps, current = append(steps, *s), patched
	}
	switch {
	case !apiServerOrder:
		var mapSteps []mutateStep
		mapSteps, current = e.mapSteps(ctx, r, current, req, false)
		steps = append(steps, mapSteps...)
	case afterMAPs != nil && !equality.Semantic.DeepEqual(afterMAPs.Object, current.Object):
		// The webhooks changed the object after the MAPs: as the API server does, the
		// MAPs whose reinvocationPolicy is IfNeeded run once more, and their second run's
		// results replace their first (one result per policy and binding).
		again, patched := e.mapSteps(ctx, r, current, req, true)
		if len(again) > 0 {
			rerun := map[string]bool{}
			for _, s := range again {
				rerun[s.mapName] = true
			}
			steps = slices.DeleteFunc(steps, func(s mutateStep) bool { return s.mapName != "" && rerun[s.mapName] })
			steps, current = append(steps, again...), patched
		}
	}
	return steps, current, nil
}

// jsonCopy is a deep copy of obj through JSON: numbers become int64 or float64 as
// Kyverno's engine expects, never Go int.
func jsonCopy(obj map[string]any) (map[string]any, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := utiljson.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}
