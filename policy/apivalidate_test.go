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

// TestValidateServiceAndIngress: the API server's checks of Service ports and
// networking.k8s.io/v1 Ingress paths, which strict decoding cannot see (a missing port
// number or pathType decodes fine), each at its field's line; valid ones pass.
func TestValidateServiceAndIngress(t *testing.T) {
	docs := `apiVersion: v1
kind: Service
metadata: {name: noport, namespace: shop}
spec:
  ports:
  - {name: http, targetPort: 8080}
  - {port: 9090, protocol: HTTP, targetPort: metrics_port}
---
apiVersion: v1
kind: Service
metadata: {name: noports, namespace: shop}
spec: {selector: {app: x}}
---
apiVersion: v1
kind: Service
metadata: {name: fine, namespace: shop}
spec: {ports: [{port: 80, targetPort: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: headless, namespace: shop}
spec: {clusterIP: None}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: paths, namespace: shop}
spec:
  rules:
  - http:
      paths:
      - path: /
        backend: {service: {name: web, port: {number: 80}}}
      - path: api//v1
        pathType: Prefix
        backend: {service: {name: web, port: {}}}
      - path: /x
        pathType: Regex
        backend: {}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: good, namespace: shop}
spec:
  defaultBackend: {service: {name: web, port: {name: http}}}
  rules:
  - host: good.example.com
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]
`
	rs, err := Decode("apps/net.yaml", []byte(docs))
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
			got[res.Name+" "+res.Path+" "+res.Message] = res
		}
	}
	for _, w := range []struct {
		name, path, msg string
		line            int
	}{
		{"noport", "spec.ports[0].port", "must be between 1 and 65535", 6},
		{"noport", "spec.ports[1].name", "Required value", 7},
		{"noport", "spec.ports[1].protocol", `Unsupported value: "HTTP"`, 7},
		{"noport", "spec.ports[1].targetPort", "must contain only alpha-numeric characters", 7},
		{"noports", "spec.ports", "Required value", 12},
		{"paths", "spec.rules[0].http.paths[0].pathType", "pathType must be specified", 31},
		{"paths", "spec.rules[0].http.paths[1].path", "must be an absolute path", 33},
		{"paths", "spec.rules[0].http.paths[1].path", "must not contain '//'", 33},
		{"paths", "spec.rules[0].http.paths[1].backend", "port name or number is required", 35},
		{"paths", "spec.rules[0].http.paths[2].pathType", `Unsupported value: "Regex"`, 37},
		{"paths", "spec.rules[0].http.paths[2].backend", "resource or service backend is required", 38},
	} {
		var found bool
		for k, r := range got {
			if r.Name == w.name && r.Path == w.path && strings.Contains(r.Message, w.msg) {
				found = true
				delete(got, k)
				if r.Origin.Line != w.line || r.Action != Enforce {
					t.Errorf("%s %s: line %d (%s), want line %d", w.name, w.path, r.Origin.Line, r.Action, w.line)
				}
				break
			}
		}
		if !found {
			t.Errorf("no finding %s %s %q", w.name, w.path, w.msg)
		}
	}
	for k := range got { // fine, headless and good have none
		t.Errorf("unexpected finding %s", k)
	}
}
