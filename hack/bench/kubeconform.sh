#!/usr/bin/env bash
# gitgate check against kubeconform 0.8 (strict) on 10,000 objects mixing built-in kinds
# (Deployment, Service, ConfigMap, networking.k8s.io/v1 Ingress) and custom resources of
# three bundled kinds (Argo Rollouts Rollout, cert-manager Certificate, Argo CD
# Application), a tenth of them invalid in turn with an unknown field, a wrong type or a
# missing required field; both tools in one run: wall time, CPU time, peak RSS, and the
# invalid objects each finds, which must be the same set (the script lists every object
# only one tool finds and fails otherwise).
#
# kubeconform is offline: the CRDs are converted to JSON schema as openapi2jsonschema
# --strict converts them (objects with properties closed with additionalProperties:
# false), and the built-in kinds' schemas are generated from the real kube-apiserver
# v1.36.3's /openapi/v2 (hack/bench/k8sschemas: the API server and etcd of hack/envtest.sh,
# converted as openapi2jsonschema --expanded --kubernetes --strict does for kubeconform's
# default catalog), cached in .cache/bench/k8sschemas. Nothing here is committed.
#
#   hack/bench/kubeconform.sh          # ROUNDS=2 by default
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
ROUNDS=${ROUNDS:-2}
work=${WORK:-$root/.cache/bench/kubeconform}
k8s=${K8S_SCHEMAS:-$root/.cache/bench/k8sschemas}
mkdir -p "$work"
if [ ! -x "$work/kubeconform" ]; then
  dir=$(go mod download -json github.com/yannh/kubeconform@v0.8.0 | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  src=$(mktemp -d)
  trap 'chmod -R u+w "$src"; rm -rf "$src"' EXIT
  cp -r "$dir/." "$src" && chmod -R u+w "$src"
  (cd "$src" && GOFLAGS=-mod=mod go build -o "$work/kubeconform" ./cmd/kubeconform)
fi
if [ ! -f "$k8s/openapi-v2.json" ]; then
  assets=$(hack/envtest.sh)
  KUBEBUILDER_ASSETS=$assets go run hack/bench/k8sschemas/main.go "$k8s"
fi
go build -o "$work/gitgate" ./cmd/gitgate
rm -rf "$work/schemas" "$work/repo" && mkdir -p "$work/schemas" "$work/repo/corpus"
python3 - "$root/policy/crdbundle/data" "$work" <<'PY'
import gzip, json, os, sys, yaml
data, work = sys.argv[1], sys.argv[2]
files = {'argo-rollouts/rollout-crd.yaml.gz', 'cert-manager/cert-manager.io_certificates.yaml.gz', 'argo-cd/application-crd.yaml.gz'}
def strict(s):
    if isinstance(s, dict):
        if s.get('type') == 'object' and 'properties' in s and 'additionalProperties' not in s and not s.get('x-kubernetes-preserve-unknown-fields'):
            s['additionalProperties'] = False
        for v in s.values(): strict(v)
    elif isinstance(s, list):
        for v in s: strict(v)
for f in files:
    for doc in yaml.safe_load_all(gzip.open(os.path.join(data, f)).read().decode()):
        if not doc or doc.get('kind') != 'CustomResourceDefinition': continue
        g, k = doc['spec']['group'], doc['spec']['names']['kind'].lower()
        for v in doc['spec']['versions']:
            s = v['schema']['openAPIV3Schema']; strict(s)
            os.makedirs(os.path.join(work, 'schemas', g), exist_ok=True)
            json.dump(s, open(os.path.join(work, 'schemas', g, '%s_%s.json' % (k, v['name'])), 'w'))

# One object of each kind; bad in 0 (unknown field), 1 (wrong type), 2 (missing required).
def rollout(n, bad):
    s = {'replicas': 2, 'selector': {'matchLabels': {'app': n}},
         'template': {'metadata': {'labels': {'app': n}}, 'spec': {'containers': [{'name': 'c', 'image': 'registry.example.com/web:1'}]}},
         'strategy': {'canary': {'steps': [{'setWeight': 20}, {'pause': {'duration': '1m'}}]}}}
    if bad == 0: s['replicass'] = s.pop('replicas')
    if bad == 1: s['strategy']['canary']['steps'][0]['setWeight'] = 'twenty'
    if bad == 2: del s['template']['spec']['containers'][0]['name']
    return {'apiVersion': 'argoproj.io/v1alpha1', 'kind': 'Rollout', 'metadata': {'name': n, 'namespace': 'shop'}, 'spec': s}
def certificate(n, bad):
    s = {'secretName': n + '-tls', 'dnsNames': [n + '.example.com'], 'issuerRef': {'name': 'letsencrypt', 'kind': 'ClusterIssuer'}}
    if bad == 0: s['dnsName'] = s.pop('dnsNames')
    if bad == 1: s['dnsNames'] = n + '.example.com'
    if bad == 2: del s['secretName']
    return {'apiVersion': 'cert-manager.io/v1', 'kind': 'Certificate', 'metadata': {'name': n, 'namespace': 'shop'}, 'spec': s}
def application(n, bad):
    s = {'project': 'default', 'source': {'repoURL': 'https://git.example.com/x.git', 'path': 'apps/' + n, 'targetRevision': 'HEAD'},
         'destination': {'server': 'https://kubernetes.default.svc', 'namespace': n}}
    if bad == 0: s['destination']['namesppace'] = s['destination'].pop('namespace')
    if bad == 1: s['source']['path'] = 5
    if bad == 2: del s['destination']
    return {'apiVersion': 'argoproj.io/v1alpha1', 'kind': 'Application', 'metadata': {'name': n, 'namespace': 'argocd'}, 'spec': s}
def deployment(n, bad):
    c = {'name': 'web', 'image': 'registry.example.com/web:1', 'ports': [{'containerPort': 8080}], 'resources': {'requests': {'cpu': '100m', 'memory': '64Mi'}}}
    s = {'replicas': 2, 'selector': {'matchLabels': {'app': n}}, 'template': {'metadata': {'labels': {'app': n}}, 'spec': {'containers': [c]}}}
    if bad == 0: s['replicass'] = s.pop('replicas')
    if bad == 1: s['replicas'] = 'two'
    if bad == 2: del c['name']
    return {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'metadata': {'name': n, 'namespace': 'shop', 'labels': {'app': n}}, 'spec': s}
def service(n, bad):
    p = {'name': 'http', 'port': 80, 'targetPort': 8080}
    s = {'selector': {'app': n}, 'ports': [p]}
    if bad == 0: s['selectr'] = s.pop('selector')
    if bad == 1: p['port'] = 'eighty'
    if bad == 2: del p['port']
    return {'apiVersion': 'v1', 'kind': 'Service', 'metadata': {'name': n, 'namespace': 'shop'}, 'spec': s}
def configmap(n, bad):
    o = {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': n, 'namespace': 'shop'}, 'data': {'key': 'value', 'other': 'x'}}
    if bad in (0, 2): o['metadata']['labelz'] = {'app': n} # a ConfigMap has no required field
    if bad == 1: o['data']['key'] = 1
    return o
def ingress(n, bad):
    b = {'service': {'name': 'web', 'port': {'number': 80}}}
    p = {'path': '/', 'pathType': 'Prefix', 'backend': b}
    if bad == 0: p['backend'] = {'serviceName': 'web', 'servicePort': 80}
    if bad == 1: b['service']['port']['number'] = '80'
    if bad == 2: del p['pathType']
    return {'apiVersion': 'networking.k8s.io/v1', 'kind': 'Ingress', 'metadata': {'name': n, 'namespace': 'shop'},
            'spec': {'rules': [{'host': n + '.example.com', 'http': {'paths': [p]}}]}}
kinds = [rollout, certificate, application, deployment, service, configmap, ingress]
n, invalid = 0, []
for i in range(100):
    docs = []
    for _ in range(100):
        n += 1
        make = kinds[n % len(kinds)]
        bad = (n // 10) % 3 if n % 10 == 0 else -1
        o = make('%s%d' % (make.__name__[:3], n), bad)
        if bad >= 0: invalid.append((o['kind'], o['metadata']['name']))
        docs.append(o)
    open(os.path.join(work, 'repo', 'corpus', 'f%03d.yaml' % i), 'w').write(yaml.safe_dump_all(docs))
json.dump(sorted(invalid), open(os.path.join(work, 'invalid.json'), 'w'))
PY
cd "$work/repo"
for ((i = 0; i < ROUNDS; i++)); do
  /usr/bin/time -f "kubeconform %e s wall, %U s user, %S s sys, %M KiB peak RSS" "$work/kubeconform" -strict -summary -output json \
    -schema-location "$k8s/{{.ResourceKind}}{{.KindSuffix}}.json" \
    -schema-location "$work/schemas/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json" corpus >"$work/kc.json" 2>"$work/kc.time" || true
  /usr/bin/time -f "gitgate     %e s wall, %U s user, %S s sys, %M KiB peak RSS" "$work/gitgate" check --plain --no-builtin -o json corpus >"$work/gg.json" 2>"$work/gg.err" || true
  tail -1 "$work/kc.time"; tail -1 "$work/gg.err"
done
python3 - "$work" <<'PY'
import json, re, sys
work = sys.argv[1]
want = {tuple(x) for x in json.load(open(work + '/invalid.json'))}
kc = json.load(open(work + '/kc.json'))
kcbad = {}
for r in kc['resources']:
    if r['status'] != 'statusValid':
        kcbad.setdefault((r['kind'], r['name']), []).append(r['status'] + ': ' + r.get('msg', '')[-160:])
gg = json.load(open(work + '/gg.json'))
ggbad = {}
for r in gg['results']:
    if r['status'] in ('fail', 'error') and r.get('action') == 'Enforce':
        ggbad.setdefault((r['kind'], r['name']), []).append('%s: %s' % (r.get('path', ''), r['message']))
print('kubeconform: %d invalid objects (summary %s)' % (len(kcbad), kc.get('summary')))
print('gitgate:     %d invalid objects, %d findings, %d resources checked' % (len(ggbad), gg['summary']['blocking'], gg['summary']['resources']))
diff = sorted(set(kcbad) ^ set(ggbad))
for k in diff:
    print('only %s: %s %s' % ('kubeconform' if k in kcbad else 'gitgate', k[0], k[1]))
    for m in kcbad.get(k, []): print('  kubeconform: ' + m)
    for m in ggbad.get(k, []): print('  gitgate:     ' + m)
missed = sorted(want - set(ggbad))
if missed: print('gitgate misses %d of the objects made invalid: %s' % (len(missed), missed[:10]))
if diff or missed or len(want) != 1000:
    sys.exit('the invalid objects differ (%d listed above)' % len(diff))
print('same %d invalid objects' % len(ggbad))
PY
