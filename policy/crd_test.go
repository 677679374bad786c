package policy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// crdFixtures are the CRDs of testdata/crds written for these tests.
var crdFixtures = []string{"rollout.yaml", "quota.yaml", "wrapper.yaml"}

func loadTestCRDs(t testing.TB) *CRDSet {
	t.Helper()
	set := NewCRDSet()
	for _, f := range crdFixtures {
		data, err := os.ReadFile("../testdata/crds/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if err := set.Add("testdata/crds/"+f, data); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if set.Len() != len(crdFixtures) {
		t.Fatalf("set holds %d CRDs (%v), want %d", set.Len(), set.Kinds(), len(crdFixtures))
	}
	return set
}

func decodeOne(t testing.TB, file, doc string) Resource {
	t.Helper()
	rs, err := Decode(file, []byte(doc))
	if err != nil || len(rs) != 1 {
		t.Fatalf("decode %s: %d objects, %v", file, len(rs), err)
	}
	return rs[0]
}

// posOf is the 1-based line and column where needle starts in doc: where a finding about
// that field must point.
func posOf(t *testing.T, doc, needle string) (int, int) {
	t.Helper()
	i := strings.Index(doc, needle)
	if i < 0 || strings.Count(doc, needle) != 1 {
		t.Fatalf("%q must occur once in the document", needle)
	}
	line := strings.Count(doc[:i], "\n") + 1
	col := i - strings.LastIndex(doc[:i], "\n")
	return line, col
}

const goodRollout = `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
      anything: kept
    spec:
      containers:
        - name: web
          image: registry.example.com/web:1.0
          whatever: {free: form}
  strategy:
    canary:
      maxSurge: 25%
      steps:
        - setWeight: 20
        - pause: {duration: 10m}
`

func TestCRDValidRolloutPasses(t *testing.T) {
	set := loadTestCRDs(t)
	r := decodeOne(t, "apps/rollout.yaml", goodRollout)
	before := fmt.Sprint(r.Object.Object)
	results, checked := set.Validate(context.Background(), r)
	if !checked {
		t.Fatal("a Rollout whose CRD is in the set must be checked")
	}
	if len(results) != 0 {
		t.Fatalf("a valid Rollout (free-form pod template, defaults filling canary.scaleDownDelaySeconds, a namespaced object without namespace) has findings: %v", results)
	}
	if after := fmt.Sprint(r.Object.Object); after != before {
		t.Errorf("validation changed the object (pruning, defaults must work on a copy):\nbefore %s\nafter  %s", before, after)
	}
}

// crdCase is a custom resource and the findings it must produce: each want is a
// path, a substring of its message, and the text in the document its origin points at.
type crdCase struct {
	name string
	doc  string
	want []crdWant
}

type crdWant struct {
	path, msg, pointsAt string
	warn                bool
}

func TestCRDFindings(t *testing.T) {
	set := loadTestCRDs(t)
	cases := []crdCase{
		{
			name: "unknown field typo",
			doc:  strings.Replace(goodRollout, "  replicas: 3\n", "  replicass: 3\n", 1),
			want: []crdWant{{path: "spec.replicass", msg: `strict decoding error: unknown field "spec.replicass"`, pointsAt: "replicass:"}},
		},
		{
			name: "unknown metadata field and bad name",
			doc:  strings.Replace(strings.Replace(goodRollout, "  labels:\n    app: web\n", "  lables:\n    app: web\n", 1), "name: web\n  lables", "name: Web_1\n  lables", 1),
			want: []crdWant{
				{path: "metadata.lables", msg: `unknown field "metadata.lables"`, pointsAt: "lables:"},
				{path: "metadata.name", msg: `metadata.name: Invalid value: "Web_1": a lowercase RFC 1123 subdomain`, pointsAt: "name: Web_1"},
			},
		},
		{
			name: "missing required field",
			doc:  goodRollout[:strings.Index(goodRollout, "  strategy:")],
			want: []crdWant{{path: "spec.strategy", msg: "spec.strategy: Required value", pointsAt: "spec:\n  replicas"}},
		},
		{
			name: "enum, pattern and maximum",
			doc: strings.NewReplacer("setWeight: 20", "setWeight: 150", "duration: 10m", "duration: ten minutes").Replace(goodRollout) +
				"  rollbackPolicy: Sometimes\n",
			want: []crdWant{
				{path: "spec.strategy.canary.steps[0].setWeight", msg: "should be less than or equal to 100", pointsAt: "setWeight: 150"},
				{path: "spec.strategy.canary.steps[1].pause.duration", msg: "should match '^[0-9]+(s|m|h)$'", pointsAt: "duration: ten minutes"},
				{path: "spec.rollbackPolicy", msg: `spec.rollbackPolicy: Unsupported value: "Sometimes": supported values: "Immediate", "Gradual"`, pointsAt: "rollbackPolicy: Sometimes"},
			},
		},
		{
			name: "wrong type",
			doc:  strings.Replace(goodRollout, "replicas: 3", "replicas: three", 1),
			want: []crdWant{
				{path: "spec.replicas", msg: `spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"`, pointsAt: "replicas: three"},
				// The scale subresource's own check of specReplicasPath, as the API server has it.
				{path: "spec.replicas", msg: `.spec.replicas: Invalid value: 0: .spec.replicas accessor error: three is of the type string, expected int64`, pointsAt: "replicas: three"},
			},
		},
		{
			name: "unserved version",
			doc:  strings.Replace(goodRollout, "argoproj.io/v1alpha1", "argoproj.io/v1alpha0", 1),
			want: []crdWant{{path: "apiVersion", msg: "does not serve version v1alpha0 (served: v1alpha1)", pointsAt: "apiVersion: argoproj.io/v1alpha0"}},
		},
		{
			name: "undefined version",
			doc:  strings.Replace(goodRollout, "argoproj.io/v1alpha1", "argoproj.io/v2", 1),
			want: []crdWant{{path: "apiVersion", msg: "does not define version v2 (served: v1alpha1)", pointsAt: "apiVersion: argoproj.io/v2"}},
		},
		{
			name: "CEL rule with message",
			doc:  "apiVersion: limits.gitgate.dev/v1\nkind: Quota\nmetadata:\n  name: q\nspec:\n  min: 5\n  max: 2\n  team: team-a\n",
			want: []crdWant{{path: "spec", msg: `spec: Invalid value: min must not exceed max`, pointsAt: "spec:"}},
		},
		{
			name: "CEL rule with fieldPath, and messageExpression",
			doc:  "apiVersion: limits.gitgate.dev/v1\nkind: Quota\nmetadata:\n  name: q\n  namespace: ignored\nspec:\n  min: 1\n  max: 2\n  tier: gold\n  team: dev\n",
			want: []crdWant{
				{path: "spec.owner", msg: `spec.owner: Invalid value: a gold quota needs an owner`, pointsAt: "spec:"},
				{path: "spec.team", msg: `spec.team: Invalid value: "dev": team dev must start with team-`, pointsAt: "team: dev"},
			},
		},
		{
			name: "schema error stops the CEL rules, and says so",
			doc:  "apiVersion: limits.gitgate.dev/v1\nkind: Quota\nmetadata:\n  name: q\nspec:\n  min: 5\n  max: 2\n",
			want: []crdWant{
				{path: "spec.team", msg: "spec.team: Required value", pointsAt: "spec:"},
				{path: "", msg: "some validation rules were not checked because the object was invalid", pointsAt: "apiVersion:", warn: true},
			},
		},
		{
			name: "embedded resource",
			doc: "apiVersion: pack.gitgate.dev/v1beta1\nkind: Wrapper\nmetadata:\n  name: w\n  namespace: apps\nspec:\n" +
				"  settings: {any: [thing]}\n" +
				"  resource:\n    apiVersion: v1\n    metadata:\n      name: inner\n      lables: {a: b}\n    data: {k: v}\n    extra: 1\n" +
				"  ports:\n    - name: http\n      port: 80\n    - name: http\n      port: 81\n",
			want: []crdWant{
				{path: "spec.resource.extra", msg: `unknown field "spec.resource.extra"`, pointsAt: "extra:"},
				{path: "spec.resource.metadata.lables", msg: `unknown field "spec.resource.metadata.lables"`, pointsAt: "lables:"},
				{path: "spec.resource.kind", msg: "spec.resource.kind: Required value", pointsAt: "resource:"},
				{path: "spec.ports[1]", msg: `spec.ports[1]: Duplicate value: {"name":"http"}`, pointsAt: "name: http\n      port: 81"},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := decodeOne(t, "apps/cr.yaml", tc.doc)
			results, checked := set.Validate(context.Background(), r)
			if !checked {
				t.Fatal("not checked")
			}
			if len(results) != len(tc.want) {
				t.Errorf("%d findings, want %d:\n%s", len(results), len(tc.want), resultLines(results))
			}
			for _, w := range tc.want {
				var got *Result
				for i := range results {
					if results[i].Path == w.path && strings.Contains(results[i].Message, w.msg) {
						got = &results[i]
					}
				}
				if got == nil {
					t.Errorf("no finding at %q with %q in:\n%s", w.path, w.msg, resultLines(results))
					continue
				}
				line, col := posOf(t, tc.doc, w.pointsAt)
				if got.Origin.File != "apps/cr.yaml" || got.Origin.Line != line || got.Origin.Col != col {
					t.Errorf("%s points at %s, want apps/cr.yaml:%d:%d (%q)", w.path, got.Origin, line, col, w.pointsAt)
				}
				wantStatus, wantAction := StatusFail, Enforce
				if w.warn {
					wantStatus, wantAction = StatusWarn, Audit
				}
				if got.Policy != SchemaPolicy || got.Rule != strings.ToLower(r.Object.GetKind()) || got.Status != wantStatus || got.Action != wantAction {
					t.Errorf("%s: policy %s rule %s status %s action %s", w.path, got.Policy, got.Rule, got.Status, got.Action)
				}
				if !w.warn && !strings.Contains(got.Remediation, "testdata/crds/") {
					t.Errorf("remediation does not name the CRD's file: %s", got.Remediation)
				}
			}
		})
	}
}

func resultLines(rs []Result) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "  %s [%s] %s\n", r.Origin, r.Path, r.Message)
	}
	return b.String()
}

func TestCRDTransitionRuleNotEvaluatedOnCreate(t *testing.T) {
	set := loadTestCRDs(t)
	// max >= oldSelf.max needs an old object: on create the API server skips it, so
	// a valid Quota has no finding (and no error about oldSelf).
	r := decodeOne(t, "q.yaml", "apiVersion: limits.gitgate.dev/v1\nkind: Quota\nmetadata:\n  name: q\nspec:\n  min: 1\n  max: 2\n  team: team-a\n")
	results, checked := set.Validate(context.Background(), r)
	if !checked || len(results) != 0 {
		t.Fatalf("checked=%v, findings:\n%s", checked, resultLines(results))
	}
}

func TestCRDInvalidDefinitionsNamedAtTheirLines(t *testing.T) {
	set := NewCRDSet()
	err := set.LoadCRDs(Source{FS: os.DirFS("../testdata/crds"), Root: "broken", Display: "testdata/crds/broken"})
	if err == nil {
		t.Fatal("no error for invalid CRDs")
	}
	data, _ := os.ReadFile("../testdata/crds/broken/invalid-crd.yaml")
	doc := string(data)
	for _, w := range []struct{ where, msg string }{
		{fmt.Sprintf("testdata/crds/broken/invalid-crd.yaml:%d:", lineOf(doc, "name: widgets.wrong.gitgate.dev")), `must be spec.names.plural+"."+spec.group`},
		{fmt.Sprintf("testdata/crds/broken/invalid-crd.yaml:%d:", lineOf(doc, "propertes:")), `unknown field "spec.versions[0].schema.openAPIV3Schema.properties.spec.propertes"`},
		{fmt.Sprintf("testdata/crds/broken/invalid-crd.yaml:%d:", lineOf(doc, "apiVersion: apiextensions.k8s.io/v1beta1")), "rewrite it as apiextensions.k8s.io/v1"},
	} {
		found := false
		for _, line := range strings.Split(err.Error(), "\n") {
			if strings.HasPrefix(line, w.where) && strings.Contains(line, w.msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("no error at %s with %q in:\n%v", w.where, w.msg, err)
		}
	}
	if set.Len() != 0 {
		t.Errorf("invalid CRDs were added: %v", set.Kinds())
	}
	// Checked as objects (a CRD in the checked manifests), the same CRDs are findings
	// at their fields, and a valid one is checked without any.
	rs, _ := Decode("crds/invalid-crd.yaml", data)
	for i, w := range []struct{ path, msg, pointsAt string }{
		{"metadata.name", `must be spec.names.plural+"."+spec.group`, "name: widgets.wrong.gitgate.dev"},
		{"spec.versions[0].schema.openAPIV3Schema.properties.spec.propertes", "unknown field", "propertes:"},
	} {
		results, checked := set.Validate(context.Background(), rs[i])
		if !checked || len(results) != 1 || results[0].Path != w.path || !strings.Contains(results[0].Message, w.msg) ||
			results[0].Rule != "customresourcedefinition" || !results[0].Blocking() ||
			results[0].Origin.Line != lineOf(doc, w.pointsAt) {
			t.Errorf("CRD %d: checked=%v, want one finding at %s (line %d):\n%s", i, checked, w.path, lineOf(doc, w.pointsAt), resultLines(results))
		}
	}
	good, _ := os.ReadFile("../testdata/crds/wrapper.yaml")
	if results, checked := set.Validate(context.Background(), decodeOne(t, "w.yaml", string(good))); !checked || len(results) != 0 {
		t.Errorf("a valid CRD: checked=%v\n%s", checked, resultLines(results))
	}
}

func lineOf(doc, needle string) int {
	return strings.Count(doc[:strings.Index(doc, needle)], "\n") + 1
}

func TestCRDAddResourceFromRenderedOutput(t *testing.T) {
	data, err := os.ReadFile("../testdata/crds/quota.yaml")
	if err != nil {
		t.Fatal(err)
	}
	crd := decodeOne(t, "chart@1.0:crds/quota.yaml", string(data))
	set := NewCRDSet()
	if set.AddResource(decodeOne(t, "x.yaml", goodRollout)) {
		t.Error("AddResource took a Rollout for a CRD")
	}
	if !set.AddResource(crd) || set.Len() != 1 {
		t.Fatalf("AddResource did not take the CRD (len %d, errors %v)", set.Len(), set.Errors())
	}
	results, checked := set.Validate(context.Background(), decodeOne(t, "q.yaml", "apiVersion: limits.gitgate.dev/v1\nkind: Quota\nmetadata:\n  name: q\nspec:\n  min: 3\n  max: 1\n  team: team-a\n"))
	if !checked || len(results) != 1 || !strings.Contains(results[0].Message, "min must not exceed max") {
		t.Fatalf("checked=%v findings:\n%s", checked, resultLines(results))
	}
	if !strings.Contains(results[0].Remediation, "chart@1.0:crds/quota.yaml:") {
		t.Errorf("the finding does not name the rendered CRD's origin: %s", results[0].Remediation)
	}
	// A CRD invalid for the API server, found in rendered output, turns each object of
	// its kind into an error naming the CRD's file:line, not a crash or a pass.
	bad, err := os.ReadFile("../testdata/crds/broken/invalid-crd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := Decode("render/widgets.yaml", bad)
	set.AddResource(rs[0])
	results, checked = set.Validate(context.Background(), decodeOne(t, "w.yaml", "apiVersion: shop.gitgate.dev/v1\nkind: Widget\nmetadata:\n  name: w\n"))
	if !checked || len(results) != 1 || results[0].Status != StatusError || !results[0].Blocking() ||
		!strings.Contains(results[0].Message, fmt.Sprintf("render/widgets.yaml:%d", lineOf(string(bad), "name: widgets"))) {
		t.Fatalf("checked=%v findings:\n%s", checked, resultLines(results))
	}
}

func TestCRDBundledHookConsultedOnceLazily(t *testing.T) {
	data, err := os.ReadFile("../testdata/crds/quota.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	old := BundledCRD
	defer func() { BundledCRD = old }()
	BundledCRD = func(group, kind string) ([]byte, string, bool) {
		calls.Add(1)
		if group == "limits.gitgate.dev" && kind == "Quota" {
			return data, "bundled gitgate-tests v0.0.1", true
		}
		return nil, "", false
	}
	set := NewCRDSet()
	if calls.Load() != 0 {
		t.Fatal("the hook was consulted before any object needed it")
	}
	bad := decodeOne(t, "q.yaml", "apiVersion: limits.gitgate.dev/v1\nkind: Quota\nmetadata:\n  name: q\nspec:\n  min: 3\n  max: 1\n  team: team-a\n")
	for range 3 {
		results, checked := set.Validate(context.Background(), bad)
		if !checked || len(results) != 1 || !strings.Contains(results[0].Remediation, "bundled gitgate-tests v0.0.1") {
			t.Fatalf("checked=%v findings:\n%s", checked, resultLines(results))
		}
	}
	unknown := decodeOne(t, "u.yaml", "apiVersion: other.example.com/v1\nkind: Thing\nmetadata:\n  name: t\n")
	for range 2 {
		if _, checked := set.Validate(context.Background(), unknown); checked {
			t.Fatal("a kind neither the set nor the bundle defines was checked")
		}
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("hook consulted %d times, want once per group/kind (2)", n)
	}
}

func TestCRDCheckCountsCustomResourcesAsChecked(t *testing.T) {
	eng, err := NewEngine(&Set{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{
		"m/rollout.yaml": {Data: []byte(strings.Replace(goodRollout, "  replicas: 3\n", "  replicass: 3\n", 1))},
		"m/thing.yaml":   {Data: []byte("apiVersion: other.example.com/v1\nkind: Thing\nmetadata:\n  name: t\n")},
	}
	opts := DefaultCheckOptions()
	opts.CRDs = loadTestCRDs(t)
	rep := eng.Check(context.Background(), []Source{{FS: fsys, Root: "m", Display: "m"}}, opts)
	if len(rep.Errors) > 0 {
		t.Fatal(rep.Errors)
	}
	if rep.Unchecked["argoproj.io/v1alpha1/Rollout"] != 0 || rep.Unchecked["other.example.com/v1/Thing"] != 1 {
		t.Errorf("unchecked: %v; want the Thing only", rep.Unchecked)
	}
	var typo *Result
	for i, r := range rep.Results {
		if r.Path == "spec.replicass" {
			typo = &rep.Results[i]
		}
	}
	if typo == nil || !typo.Blocking() || typo.Origin.File != "m/rollout.yaml" {
		t.Fatalf("no blocking finding for the typo: %v", rep.Results)
	}
	if !rep.Blocking() {
		t.Error("the report does not block")
	}
	// Without a set, the same Rollout is not schema-checked: counted, not failed.
	rep = eng.Check(context.Background(), []Source{{FS: fsys, Root: "m", Display: "m"}}, DefaultCheckOptions())
	if rep.Unchecked["argoproj.io/v1alpha1/Rollout"] != 1 || rep.Blocking() {
		t.Errorf("without CRDs: unchecked %v, blocking %v", rep.Unchecked, rep.Blocking())
	}
}

func TestCRDFieldToSlash(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "",
		"spec.replicas":             "/spec/replicas",
		"spec.steps[0].pause":       "/spec/steps/0/pause",
		"metadata.labels[app/name]": "/metadata/labels/app/name",
		"spec.map['a.b'].c":         "/spec/map/a.b/c",
		`spec.map["x"]`:             "/spec/map/x",
		"spec.ports[3]":             "/spec/ports/3",
	} {
		if got := fieldToSlash(in); got != want {
			t.Errorf("fieldToSlash(%q) = %q, want %q", in, got, want)
		}
	}
}

// benchCRs are 10,000 custom resources of three kinds (Rollout, Quota with CEL
// rules, Wrapper with an embedded resource and a list map), a tenth of them invalid.
func benchCRs(b *testing.B) []Resource {
	docs := []string{
		goodRollout,
		strings.Replace(goodRollout, "  replicas: 3\n", "  replicass: 3\n", 1),
		"apiVersion: limits.gitgate.dev/v1\nkind: Quota\nmetadata:\n  name: q\nspec:\n  min: 1\n  max: 2\n  team: team-a\n",
		"apiVersion: limits.gitgate.dev/v1\nkind: Quota\nmetadata:\n  name: q\nspec:\n  min: 3\n  max: 2\n  tier: gold\n  team: team-a\n",
		"apiVersion: pack.gitgate.dev/v1beta1\nkind: Wrapper\nmetadata:\n  name: w\nspec:\n  resource:\n    apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: c}\n    data: {k: v}\n  ports:\n    - {name: http, port: 80}\n",
	}
	var rs []Resource
	for i := range 10000 {
		d := docs[0]
		switch {
		case i%10 == 9:
			d = docs[1+(i/10)%2*2] // invalid Rollout or Quota
		case i%3 == 1:
			d = docs[2]
		case i%3 == 2:
			d = docs[4]
		}
		r := decodeOne(b, "bench.yaml", d)
		r.Object.SetName(fmt.Sprintf("o%d", i)) // distinct, so no duplicates are reported
		rs = append(rs, r)
	}
	return rs
}

// BenchmarkCRDValidate validates the 10,000 custom resources of benchCRs one after
// the other with CRDSet.Validate.
func BenchmarkCRDValidate(b *testing.B) {
	set := loadTestCRDs(b)
	rs := benchCRs(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		findings := 0
		for _, r := range rs {
			res, checked := set.Validate(ctx, r)
			if !checked {
				b.Fatal("not checked")
			}
			findings += len(res)
		}
		if findings != 1500 {
			b.Fatalf("%d findings, want 1500 (500 Rollout typos, 500 Quotas breaking two CEL rules each)", findings)
		}
	}
	b.ReportMetric(float64(len(rs)), "objects/op")
}

// BenchmarkCRDCheck is the check of the same 10,000 custom resources (Engine.
// CheckResources, all cores, no policies) without CRDs (before: "not schema-checked")
// and with them.
func BenchmarkCRDCheck(b *testing.B) {
	eng, err := NewEngine(&Set{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	rs := benchCRs(b)
	for _, withCRDs := range []bool{false, true} {
		name := "without-crds"
		opts := DefaultCheckOptions()
		if withCRDs {
			name, opts.CRDs = "with-crds", loadTestCRDs(b)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rep := eng.CheckResources(context.Background(), rs, opts)
				if withCRDs != (rep.Summary.Blocking == 1500) || withCRDs == (len(rep.Unchecked) > 0) {
					b.Fatalf("blocking %d, unchecked %v", rep.Summary.Blocking, rep.Unchecked)
				}
			}
		})
	}
}

// The custom resources of hack/bench/kubeconform.sh against the bundled CRDs: exactly the
// invalid ones are findings, each with the API server's message at the field's line.
func TestCRDBundledBenchFindings(t *testing.T) {
	withBundledCRDs(t)
	docs, invalid := bundledBenchDocs(300)
	rs, err := Decode("bench.yaml", []byte(docs))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(docs, "\n")
	set := NewCRDSet()
	got := map[string]bool{}
	for _, r := range rs {
		res, checked := set.Validate(context.Background(), r)
		if !checked {
			t.Fatalf("%s %s not checked", r.Object.GetKind(), r.Object.GetName())
		}
		name := r.Object.GetName()
		if len(res) == 0 {
			continue
		}
		got[name] = true
		var want []string
		switch r.Object.GetKind() {
		case "Rollout":
			want = []string{`spec.replicass|strict decoding error: unknown field "spec.replicass"`}
		case "Certificate":
			want = []string{`spec.secretName|spec.secretName: Required value`}
		case "Application":
			want = []string{`spec.destination|spec.destination: Required value`, `spec.destinaton|strict decoding error: unknown field "spec.destinaton"`}
		}
		var have []string
		for _, x := range res {
			have = append(have, x.Path+"|"+x.Message)
			if x.Status != StatusFail || x.Action != Enforce {
				t.Errorf("%s: %s/%s, want fail/Enforce", name, x.Status, x.Action)
			}
			// An unknown field is pointed at its own line and column.
			if field := strings.TrimPrefix(x.Path, "spec."); strings.Contains(x.Message, "unknown field") {
				if x.Origin.Line < 1 || x.Origin.Line > len(lines) || !strings.HasPrefix(lines[x.Origin.Line-1][x.Origin.Col-1:], field+":") {
					t.Errorf("%s: %s at %d:%d, not at the field", name, x.Path, x.Origin.Line, x.Origin.Col)
				}
			}
		}
		if strings.Join(have, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s findings:\n%s\nwant:\n%s", name, strings.Join(have, "\n"), strings.Join(want, "\n"))
		}
	}
	if len(got) != len(invalid) || len(invalid) != 30 {
		t.Errorf("%d objects with findings, want the %d (of 30) invalid ones", len(got), len(invalid))
	}
	for name := range invalid {
		if !got[name] {
			t.Errorf("%s is invalid and has no finding", name)
		}
	}
}

// extraCRDocs are richer objects of bundled kinds for TestCRDOpenAPIValidatorSame: lists
// of several objects, maps with free keys, enums, nested required fields.
var extraCRDocs = []string{`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: rich, namespace: argocd}
spec:
  project: default
  source:
    repoURL: https://git.example.com/x.git
    targetRevision: HEAD
    chart: web
    helm:
      releaseName: web
      parameters: [{name: a, value: "1"}, {name: b, value: "2", forceString: true}, {name: c, value: "3"}]
      valueFiles: [values.yaml, prod.yaml]
  destination: {server: "https://kubernetes.default.svc", namespace: web}
  syncPolicy:
    automated: {prune: true, selfHeal: true}
    syncOptions: [CreateNamespace=true, ServerSideApply=true]
    retry: {limit: 5, backoff: {duration: 5s, factor: 2, maxDuration: 3m}}
  ignoreDifferences:
    - {group: apps, kind: Deployment, jsonPointers: [/spec/replicas]}
    - {kind: ConfigMap, name: x, jqPathExpressions: [.data]}
  info: [{name: owner, value: team-a}]
`, `apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: rich, namespace: shop}
spec:
  secretName: rich-tls
  commonName: rich.example.com
  dnsNames: [a.example.com, b.example.com]
  duration: 2160h
  usages: [server auth, client auth, digital signature]
  privateKey: {algorithm: ECDSA, size: 256, rotationPolicy: Always, encoding: PKCS1}
  secretTemplate:
    labels: {a: "1", b: "2", c: "3"}
    annotations: {x: "1"}
  issuerRef: {name: letsencrypt, kind: ClusterIssuer, group: cert-manager.io}
`, `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: rich, namespace: shop}
spec:
  replicas: 3
  revisionHistoryLimit: 2
  selector: {matchLabels: {app: rich, tier: web}}
  template:
    metadata: {labels: {app: rich, tier: web}}
    spec:
      containers:
        - name: web
          image: registry.example.com/web:1
          ports: [{containerPort: 8080, protocol: TCP}, {containerPort: 9090, name: metrics}]
          env: [{name: A, value: "1"}, {name: B, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
          resources: {limits: {cpu: 500m, memory: 1Gi}, requests: {cpu: 100m}}
        - name: sidecar
          image: registry.example.com/side:1
          args: [--a, --b]
  strategy:
    canary:
      maxSurge: 25%
      maxUnavailable: 0
      steps: [{setWeight: 20}, {pause: {duration: 1m}}, {setWeight: 50}, {pause: {}}]
`}

// mutations of one object for TestCRDOpenAPIValidatorSame: at every field and list
// index, the value replaced by another type, removed, or given an unknown sibling.
func crdMutations(obj map[string]any, rnd *rand.Rand, n int) []map[string]any {
	type loc struct {
		parent any // map[string]any or []any
		key    string
		i      int
	}
	var locs []loc
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				locs = append(locs, loc{parent: v, key: k})
				walk(c)
			}
		case []any:
			for i, c := range v {
				locs = append(locs, loc{parent: v, i: i})
				walk(c)
			}
		}
	}
	replacements := []any{int64(-7), "text", true, 2.5, nil, map[string]any{"zz": int64(1)}, []any{int64(1), "x"}, "Bogus"}
	var out []map[string]any
	for range n {
		cp := runtime.DeepCopyJSON(obj)
		locs = locs[:0]
		walk(cp)
		for range 1 + rnd.IntN(3) {
			l := locs[rnd.IntN(len(locs))]
			switch p := l.parent.(type) {
			case map[string]any:
				switch op := rnd.IntN(10); {
				case op == 0:
					delete(p, l.key)
				case op == 1:
					p[l.key+"x"] = int64(1)
				default:
					p[l.key] = replacements[rnd.IntN(len(replacements))]
				}
			case []any:
				p[l.i] = replacements[rnd.IntN(len(replacements))]
			}
		}
		out = append(out, cp)
	}
	return out
}

// The CRD validator keeping kube-openapi's child validators (crdopenapi.go) reports
// exactly what the API server's validator (apiextensions' NewSchemaValidator, children
// rebuilt per object) reports, on valid objects and on thousands of mutated ones,
// validated twice and from several goroutines so that every reused validator has served
// other paths and shapes before.
func TestCRDOpenAPIValidatorSame(t *testing.T) {
	withBundledCRDs(t)
	docs, _ := bundledBenchDocs(3)
	all := []string{docs}
	all = append(all, extraCRDocs...)
	all = append(all, goodRollout)
	var objs []map[string]any
	for _, d := range all {
		rs, err := Decode("x.yaml", []byte(d))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			objs = append(objs, r.Object.Object)
		}
	}
	fixtures := loadTestCRDs(t)
	bundled := NewCRDSet()
	rnd := rand.New(rand.NewPCG(16, 1))
	compared, failing := 0, 0
	for _, obj := range objs {
		u := &unstructured.Unstructured{Object: obj}
		gvk := u.GroupVersionKind()
		set := bundled
		if u.GetName() != "rich" && !strings.HasPrefix(u.GetName(), "a") && !strings.HasPrefix(u.GetName(), "c") && !strings.HasPrefix(u.GetName(), "r") {
			set = fixtures // goodRollout is the fixture CRD's
		}
		e := set.lookup(gvk.GroupKind())
		if e == nil {
			t.Fatalf("no CRD for %s", gvk)
		}
		if err := e.compile(); err != nil {
			t.Fatal(err)
		}
		ours := e.vers[gvk.Version].schema
		val, err := apiextensions.GetSchemaForVersion(e.crd, gvk.Version)
		if err != nil {
			t.Fatal(err)
		}
		theirs, _, err := apiservervalidation.NewSchemaValidator(val.OpenAPIV3Schema)
		if err != nil {
			t.Fatal(err)
		}
		errs := func(v apiservervalidation.SchemaCreateValidator, o map[string]any) string {
			var s []string
			for _, fe := range apiservervalidation.ValidateCustomResource(nil, o, v) {
				s = append(s, fe.Error())
			}
			sort.Strings(s)
			return strings.Join(s, "\n")
		}
		variants := append([]map[string]any{obj}, crdMutations(obj, rnd, 400)...)
		want := make([]string, len(variants))
		for i, o := range variants {
			want[i] = errs(theirs, o)
			if want[i] != "" {
				failing++
			}
		}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range variants {
					i := (i + g*97) % len(variants)
					if got := errs(ours, variants[i]); got != want[i] {
						t.Errorf("%s %s variant %d:\ngot:\n%s\nwant (apiextensions):\n%s", gvk.Kind, u.GetName(), i, got, want[i])
						return
					}
				}
			})
		}
		wg.Wait()
		compared += len(variants)
	}
	if compared < 2000 || failing < compared/2 {
		t.Errorf("compared %d variants, %d with errors: too few to say anything", compared, failing)
	}
}

// A null in a field that is neither nullable nor defaulted is dropped before validation,
// as the API server drops it; a null where a value is required still fails.
func TestCRDNullsPrunedAsTheAPIServerDoes(t *testing.T) {
	set := loadTestCRDs(t)
	ok := decodeOne(t, "null.yaml", strings.Replace(goodRollout, "  replicas: 3\n", "  replicas: 3\n  rollbackWindow: null\n", 1))
	if res, checked := set.Validate(context.Background(), ok); !checked || len(res) > 0 {
		t.Errorf("null rollbackWindow: checked %v, %s", checked, resultLines(res))
	}
	bad := decodeOne(t, "null.yaml", strings.Replace(goodRollout, "  replicas: 3\n", "  replicas: 3\n  rollbackWindow: {revisions: \"two\"}\n", 1))
	if res, _ := set.Validate(context.Background(), bad); len(res) == 0 {
		t.Error("a wrong type next to the null case is not found: the test says nothing")
	}
}
