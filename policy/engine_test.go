package policy

import (
	"context"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/apis/v1alpha1"
)

// mustSet loads policies from YAML documents given inline.
func mustSet(t *testing.T, docs ...string) *Set {
	t.Helper()
	fsys := fstest.MapFS{}
	for i, d := range docs {
		fsys["p/"+string(rune('a'+i))+".yaml"] = &fstest.MapFile{Data: []byte(d)}
	}
	s, err := Load(fsys, "p")
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return s
}

func mustResource(t *testing.T, doc string) Resource {
	t.Helper()
	rs, err := Decode("r.yaml", []byte(doc))
	if err != nil || len(rs) != 1 {
		t.Fatalf("decode: %v (%d resources)", err, len(rs))
	}
	return rs[0]
}

// summarise renders results as "policy/rule=status:action" for comparison.
func summarise(rs []Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Policy+"/"+r.Rule+"="+string(r.Status)+":"+string(r.Action))
	}
	sort.Strings(out)
	return out
}

const podRunAsNonRoot = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: non-root
spec:
  rules:
  - name: check
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      failureAction: Enforce
      message: run as non-root
      anyPattern:
      - spec: {securityContext: {runAsNonRoot: true}}
      - spec: {containers: [{securityContext: {runAsNonRoot: true}}]}
`

const auditLabels = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: labels
  annotations: {gitgate.dev/remediation: add the label, gitgate.dev/help-url: "https://example.com/labels"}
spec:
  validationFailureAction: Audit
  rules:
  - name: name-label
    match: {any: [{resources: {kinds: [Pod]}}]}
    preconditions:
      all:
      - key: "{{ request.object.metadata.namespace || '' }}"
        operator: NotEquals
        value: kube-system
    validate:
      message: app.kubernetes.io/name is required
      pattern:
        metadata: {labels: {app.kubernetes.io/name: "?*"}}
`

const requestFields = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: request-fields}
spec:
  validationFailureAction: Enforce
  rules:
  - name: deny-in-prod
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: "{{ request.kind.kind }} {{ request.name }} may not run in {{ request.namespace }} (dry run: {{ request.dryRun }})"
      deny:
        conditions:
          all:
          - {key: "{{ request.namespace }}", operator: Equals, value: prod}
          - {key: "{{ request.name }}", operator: Equals, value: p}
          - {key: "{{ request.kind.kind }}", operator: Equals, value: Pod}
          - {key: "{{ request.dryRun }}", operator: Equals, value: false}
`

const denyForeach = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: no-latest
spec:
  rules:
  - name: tag
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      failureAction: Enforce
      foreach:
      - list: request.object.spec.containers
        deny:
          conditions:
            any:
            - key: "{{ element.image }}"
              operator: Equals
              value: "*:latest"
`

const podSecurity = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: pss
spec:
  rules:
  - name: baseline
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      failureAction: Enforce
      podSecurity: {level: baseline, version: latest}
`

const celPolicy = `apiVersion: policies.kyverno.io/v1beta1
kind: ValidatingPolicy
metadata:
  name: cel-replicas
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
    - apiGroups: [apps]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [deployments]
  validations:
  - expression: "object.spec.replicas <= 5"
    message: at most 5 replicas
`

func deployment(replicas int, podSpec string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: prod}
spec:
  replicas: ` + string(rune('0'+replicas)) + `
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
` + podSpec
}

const rootContainers = "      containers:\n      - name: web\n        image: nginx:latest\n"
const safeContainers = "      securityContext: {runAsNonRoot: true}\n      containers:\n      - name: web\n        image: nginx:1.27\n"

func TestEvaluate(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		policies []string
		resource string
		want     []string
	}{
		{
			name:     "autogen applies a Pod rule to a Deployment",
			policies: []string{podRunAsNonRoot},
			resource: deployment(2, rootContainers),
			want:     []string{"non-root/autogen-check=fail:Enforce"},
		},
		{
			name:     "anyPattern passes on pod-level securityContext",
			policies: []string{podRunAsNonRoot},
			resource: deployment(2, safeContainers),
			want:     []string{"non-root/autogen-check=pass:Enforce"},
		},
		{
			name:     "audit action and preconditions",
			policies: []string{auditLabels},
			resource: "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: prod}\nspec: {containers: [{name: c, image: x:1}]}\n",
			want:     []string{"labels/name-label=fail:Audit"},
		},
		{
			name:     "precondition skips kube-system",
			policies: []string{auditLabels},
			resource: "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: kube-system}\nspec: {containers: [{name: c, image: x:1}]}\n",
			want:     []string{"labels/name-label=skip:Audit"},
		},
		{
			name:     "foreach deny on an autogen CronJob",
			policies: []string{denyForeach},
			resource: "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers: [{name: c, image: 'busybox:latest'}]\n",
			want:     []string{"no-latest/autogen-cronjob-tag=fail:Enforce"},
		},
		{
			name:     "podSecurity baseline",
			policies: []string{podSecurity},
			resource: "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {hostNetwork: true, containers: [{name: c, image: x:1}]}\n",
			want:     []string{"pss/baseline=fail:Enforce"},
		},
		{
			name:     "CEL ValidatingPolicy",
			policies: []string{celPolicy},
			resource: deployment(7, safeContainers),
			want:     []string{"cel-replicas/cel-replicas=fail:Enforce"},
		},
		{
			name:     "CEL ValidatingPolicy passes",
			policies: []string{celPolicy},
			resource: deployment(3, safeContainers),
			want:     []string{"cel-replicas/cel-replicas=pass:Enforce"},
		},
		{
			name:     "request.namespace, request.name, request.kind as the API server sends them",
			policies: []string{requestFields},
			resource: "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: prod}\nspec: {containers: [{name: c, image: x:1}]}\n",
			want:     []string{"request-fields/deny-in-prod=fail:Enforce"},
		},
		{
			name:     "request fields of another namespace",
			policies: []string{requestFields},
			resource: "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: dev}\nspec: {containers: [{name: c, image: x:1}]}\n",
			want:     []string{"request-fields/deny-in-prod=pass:Enforce"},
		},
		{
			name:     "no policy matches a ConfigMap",
			policies: []string{podRunAsNonRoot, celPolicy},
			resource: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
			want:     nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eng, err := NewEngine(mustSet(t, tc.policies...), Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := summarise(eng.Evaluate(ctx, mustResource(t, tc.resource), Request{}))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestAutogenAnnotationCoversRollout(t *testing.T) {
	withRollout := strings.Replace(podRunAsNonRoot, "  name: non-root\n",
		"  name: non-root\n  annotations: {pod-policies.kyverno.io/autogen-controllers: 'Deployment,Rollout'}\n", 1)
	eng, err := NewEngine(mustSet(t, withRollout), Options{})
	if err != nil {
		t.Fatal(err)
	}
	rollout := mustResource(t, "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: 'x:latest'}]\n")
	got := summarise(eng.Evaluate(context.Background(), rollout, Request{}))
	if diff := cmp.Diff([]string{"non-root/autogen-check=fail:Enforce"}, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestFindingPointsAtField(t *testing.T) {
	eng, err := NewEngine(mustSet(t, auditLabels), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := mustResource(t, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\n    app: x\nspec: {containers: [{name: c, image: x:1}]}\n")
	res := eng.Evaluate(context.Background(), r, Request{})
	if len(res) != 1 {
		t.Fatalf("want 1 result, got %v", summarise(res))
	}
	if res[0].Origin.Line != 5 || res[0].Path != "metadata.labels.app.kubernetes.io.name" {
		t.Errorf("finding at %s path %q, want line 5 (metadata.labels)", res[0].Origin, res[0].Path)
	}
	if res[0].Remediation != "add the label" {
		t.Errorf("remediation %q not taken from the annotation", res[0].Remediation)
	}
	if res[0].HelpURL != "https://example.com/labels" {
		t.Errorf("help URL %q not taken from the annotation", res[0].HelpURL)
	}
}

const exception = `apiVersion: kyverno.io/v2
kind: PolicyException
metadata: {name: legacy-web, namespace: prod}
spec:
  exceptions:
  - policyName: non-root
    ruleNames: [check, autogen-check]
  match:
    any:
    - resources: {kinds: [Deployment, Pod], names: [web], namespaces: [prod]}
`

func TestPolicyExceptionSkips(t *testing.T) {
	eng, err := NewEngine(mustSet(t, podRunAsNonRoot, exception), Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := eng.Evaluate(context.Background(), mustResource(t, deployment(2, rootContainers)), Request{})
	if got := summarise(res); !cmp.Equal(got, []string{"non-root/autogen-check=skip:Enforce"}) {
		t.Fatalf("got %v, want the exception to skip the rule", got)
	}
	if res[0].Exception != "prod/legacy-web" {
		t.Errorf("exception named %q, want prod/legacy-web", res[0].Exception)
	}
}

const apiCallPolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: quota}
spec:
  background: false
  rules:
  - name: max-deployments
    match: {any: [{resources: {kinds: [Deployment]}}]}
    context:
    - name: count
      apiCall:
        urlPath: "/apis/apps/v1/namespaces/{{ request.namespace }}/deployments"
        jmesPath: "items | length(@)"
    validate:
      failureAction: Enforce
      deny:
        conditions:
          any:
          - key: "{{ count }}"
            operator: GreaterThanOrEquals
            value: 3
`

func TestClusterDataOfflineAndFromValues(t *testing.T) {
	set := mustSet(t, apiCallPolicy)
	r := mustResource(t, deployment(1, safeContainers))

	eng, err := NewEngine(set, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := eng.Evaluate(context.Background(), r, Request{})
	if len(res) != 1 || res[0].Status != StatusError || !strings.Contains(res[0].Message, "needs cluster data") {
		t.Fatalf("want a needs-cluster-data error, got %+v", res)
	}

	values := &Values{}
	values.Policies = append(values.Policies, valuesPolicy("quota", "max-deployments", map[string]any{"count": 5}))
	eng, err = NewEngine(set, Options{Values: values})
	if err != nil {
		t.Fatal(err)
	}
	if got := summarise(eng.Evaluate(context.Background(), r, Request{})); !cmp.Equal(got, []string{"quota/max-deployments=fail:Enforce"}) {
		t.Errorf("with values: got %v, want fail", got)
	}
}

func TestLoadErrorsNameFileAndPolicy(t *testing.T) {
	fsys := fstest.MapFS{
		"p/good.yaml": {Data: []byte(podRunAsNonRoot)},
		"p/bad.yaml": {Data: []byte(`apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: broken}
spec:
  rules:
  - name: r
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: "{{ element.name }}"
      pattern: {metadata: {name: "?*"}}
`)},
		"p/badcel.yaml":  {Data: []byte(strings.Replace(celPolicy, "object.spec.replicas <= 5", "object.spec.replicas <=", 1))},
		"p/unknown.yaml": {Data: []byte("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: typo}\nspec: {rulez: []}\n")},
	}
	set, err := Load(fsys, "p")
	if err == nil {
		t.Fatal("want load errors")
	}
	for _, want := range []string{"p/bad.yaml:1:1: ClusterPolicy/broken:", "p/badcel.yaml:1:1: ValidatingPolicy/cel-replicas: CEL does not compile", "p/unknown.yaml:1:1: ClusterPolicy/typo:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if set.Len() != 1 {
		t.Errorf("the good policy should still load, got %v", set.Names())
	}
}

func valuesPolicy(policy, rule string, vals map[string]any) v1alpha1.Policy {
	return v1alpha1.Policy{Name: policy, Rules: []v1alpha1.Rule{{Name: rule, Values: vals}}}
}
