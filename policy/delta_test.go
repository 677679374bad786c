package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestClassify: findings match across revisions on target, resource, policy/rule and
// failing field, never on lines; a second field failing the same rule is new.
func TestClassify(t *testing.T) {
	f := func(line int, rule, path string) Result {
		return Result{Origin: Origin{Target: "web/prod", File: "d.yaml", Line: line}, APIVersion: "apps/v1", Kind: "Deployment",
			Namespace: "prod", Name: "web", Policy: "restrict-image-registries", Rule: rule, Path: path, Status: StatusFail, Action: Enforce}
	}
	base := []Result{
		f(10, "autogen-allowed-registries", "spec.template.spec.initContainers[0].image"),
		f(20, "autogen-probes", ""),
	}
	head := []Result{
		f(12, "autogen-allowed-registries", "spec.template.spec.initContainers[0].image"), // moved two lines
		f(30, "autogen-allowed-registries", "spec.template.spec.containers[0].image"),     // a second bad image
		{Status: StatusPass, Policy: "p"},
	}
	fixed := Classify(base, head)
	got := []Baseline{head[0].Baseline, head[1].Baseline, head[2].Baseline}
	if diff := cmp.Diff([]Baseline{BaselineUnchanged, BaselineNew, ""}, got); diff != "" {
		t.Errorf("head baselines (-want +got)\n%s", diff)
	}
	if len(fixed) != 1 || fixed[0].Rule != "autogen-probes" || fixed[0].Baseline != BaselineFixed {
		t.Errorf("fixed = %+v, want the probes finding", fixed)
	}
	var c Changes
	c.Fixed = fixed
	c.CountBaselines(head)
	if c.New != 1 || c.NewBlocking != 1 || c.Unchanged != 1 || c.FixedCount != 1 {
		t.Errorf("counts %+v", c)
	}
}
