package policy

import (
	"context"
	"strings"
	"testing"
)

const gpolNetpol = `apiVersion: policies.kyverno.io/v1beta1
kind: GeneratingPolicy
metadata: {name: default-deny}
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [namespaces]
  variables:
  - name: nsName
    expression: object.metadata.name
  - name: netpol
    expression: >-
      [{
        "kind": dyn("NetworkPolicy"),
        "apiVersion": dyn("networking.k8s.io/v1"),
        "metadata": dyn({"name": "default-deny", "namespace": string(variables.nsName)}),
        "spec": dyn({"podSelector": dyn({}), "policyTypes": dyn(["Ingress", "Egress"])})
      }]
  generate:
  - expression: generator.apply(variables.nsName, variables.netpol)
`

const vpolNetpolTeam = `apiVersion: policies.kyverno.io/v1beta1
kind: ValidatingPolicy
metadata: {name: netpol-team}
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
    - apiGroups: [networking.k8s.io]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [networkpolicies]
  validations:
  - expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
    message: NetworkPolicies need a team label
`

// TestGeneratingPolicy: a GeneratingPolicy's object (a NetworkPolicy per Namespace) is
// generated with the trigger's values, its result named after the policy; check lists
// it in a notice and validates it, its findings at the trigger's origin; --no-mutate
// (as written) generates nothing.
func TestGeneratingPolicy(t *testing.T) {
	eng := loadEngine(t, map[string]string{"gpol.yaml": gpolNetpol, "vpol.yaml": vpolNetpolTeam})
	rs, err := Decode("namespaces/shop.yaml", []byte("# the shop team\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"))
	if err != nil {
		t.Fatal(err)
	}
	gens, err := eng.Generate(context.Background(), rs[0], Request{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(gens) != 1 || gens[0].Result.Policy != "default-deny" || gens[0].Result.Rule != "default-deny" || gens[0].Result.Status != StatusPass || len(gens[0].Objects) != 1 {
		t.Fatalf("generated %+v", gens)
	}
	if o := gens[0].Objects[0]; o.GetKind() != "NetworkPolicy" || o.GetNamespace() != "shop" || o.GetName() != "default-deny" {
		t.Errorf("object %v", o.Object)
	}
	// A second trigger gets its own objects only (each call has its own context).
	other, err := Decode("namespaces/web.yaml", []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: web}\n"))
	if err != nil {
		t.Fatal(err)
	}
	gens, err = eng.Generate(context.Background(), other[0], Request{}, nil)
	if err != nil || len(gens) != 1 || len(gens[0].Objects) != 1 || gens[0].Objects[0].GetNamespace() != "web" {
		t.Fatalf("second trigger: %+v %v", gens, err)
	}

	rep := eng.CheckResources(context.Background(), rs, CheckOptions{Workers: 1, Schema: true})
	var found *Result
	for i, r := range rep.Results {
		if r.Kind == "NetworkPolicy" && r.Blocking() {
			found = &rep.Results[i]
		}
	}
	if found == nil || found.Namespace != "shop" || found.Name != "default-deny" || found.Origin.File != "namespaces/shop.yaml" || found.Origin.Line != 2 ||
		!strings.Contains(found.Message, "team label") {
		t.Fatalf("generated NetworkPolicy's finding: %+v\nresults %+v", found, rep.Results)
	}
	if len(rep.Notices) != 1 || !strings.Contains(rep.Notices[0], "default-deny/default-deny would generate NetworkPolicy/shop/default-deny") {
		t.Errorf("notices %q", rep.Notices)
	}
	rep = eng.CheckResources(context.Background(), rs, CheckOptions{Workers: 1, Schema: true, NoMutate: true})
	if rep.Blocking() || len(rep.Notices) != 0 {
		t.Errorf("--no-mutate generated: %+v %q", rep.Results, rep.Notices)
	}
}
