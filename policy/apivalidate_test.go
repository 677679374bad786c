package policy

import (
	"strings"
	"testing"
)

// TestValidateBuiltin: the API server's cheap checks on built-in kinds, each a schema
// finding at its field's path and line: name formats by kind, label syntax, selector
// against template labels, container names, port names, requests above limits.
func TestValidateBuiltin(t *testing.T) {
	docs := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: Web_App
  namespace: shop
  labels: {"bad key!": x, tier: "-front"}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: Web
        image: registry.example.com/web:1
        ports: [{name: http_port, containerPort: 70000}]
        resources: {requests: {cpu: "2"}, limits: {cpu: 500m}}
      - name: side
        image: registry.example.com/side:1
      - name: side
        image: registry.example.com/side:1
---
apiVersion: v1
kind: Service
metadata: {name: 1web, namespace: shop}
spec: {ports: [{port: 80}]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:controller:web"}
rules: []
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: good, namespace: shop}
spec:
  selector: {matchLabels: {app: good}}
  template:
    metadata: {labels: {app: good, tier: front}}
    spec:
      containers: [{name: good, image: registry.example.com/good:1, resources: {requests: {memory: 64Mi}, limits: {memory: 128Mi}}}]
`
	rs, err := Decode("apps/web.yaml", []byte(docs))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Result{}
	for _, r := range rs {
		results, checked := CheckSchema(r)
		if !checked {
			t.Fatalf("%s not checked", r.ID())
		}
		for _, res := range results {
			got[res.Name+" "+res.Path] = res
		}
	}
	for _, w := range []struct {
		key, msg string
		line     int
	}{
		{"Web_App metadata.name", "a lowercase RFC 1123 subdomain", 4},
		{"Web_App metadata.labels", "name part must consist of alphanumeric characters", 6},
		{"Web_App spec.template.metadata.labels", "`selector` does not match template `labels`", 10},
		{"Web_App spec.template.spec.containers[0].name", "a lowercase RFC 1123 label", 13},
		{"Web_App spec.template.spec.containers[0].ports[0].name", "must contain only alpha-numeric characters", 15},
		{"Web_App spec.template.spec.containers[0].ports[0].containerPort", "must be between 1 and 65535", 15},
		{"Web_App spec.template.spec.containers[0].resources.requests[cpu]", "must be less than or equal to cpu limit of 500m", 16},
		{"Web_App spec.template.spec.containers[2].name", "Duplicate value", 19},
		{"1web metadata.name", "a DNS-1035 label must consist of", 24},
	} {
		r, ok := got[w.key]
		if !ok {
			t.Errorf("no finding %q", w.key)
			continue
		}
		delete(got, w.key)
		if !strings.Contains(r.Message, w.msg) || r.Origin.Line != w.line || r.Policy != SchemaPolicy || r.Action != Enforce {
			t.Errorf("%s: %s at line %d (%s/%s), want %q at line %d", w.key, r.Message, r.Origin.Line, r.Policy, r.Action, w.msg, w.line)
		}
	}
	for k, r := range got { // the good Deployment and the ClusterRole have none
		t.Errorf("unexpected finding %s: %s", k, r.Message)
	}
}
