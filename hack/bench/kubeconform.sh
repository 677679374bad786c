#!/usr/bin/env bash
# gitgate check against kubeconform 0.8 (strict) on 10,000 custom resources of three
# bundled kinds (Argo Rollouts Rollout, cert-manager Certificate, Argo CD Application), a
# tenth of them invalid (an unknown field, a missing required field), in one run: wall
# time, peak RSS, and the invalid objects each finds. kubeconform gets the same CRDs
# converted to JSON schema as openapi2jsonschema --strict converts them (objects with
# properties closed with additionalProperties: false). Built-in kinds are left out:
# kubeconform downloads their schemas from GitHub, which this machine cannot reach.
#
#   hack/bench/kubeconform.sh          # ROUNDS=2 by default
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
ROUNDS=${ROUNDS:-2}
work=${WORK:-$root/.cache/bench/kubeconform}
mkdir -p "$work"
if [ ! -x "$work/kubeconform" ]; then
  dir=$(go mod download -json github.com/yannh/kubeconform@v0.8.0 | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  src=$(mktemp -d)
  trap 'chmod -R u+w "$src"; rm -rf "$src"' EXIT
  cp -r "$dir/." "$src" && chmod -R u+w "$src"
  (cd "$src" && GOFLAGS=-mod=mod go build -o "$work/kubeconform" ./cmd/kubeconform)
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
n = 0
for i in range(100):
    docs = []
    for _ in range(100):
        n += 1; kind = n % 3; bad = n % 10 == 0
        if kind == 0:
            o = {'apiVersion': 'argoproj.io/v1alpha1', 'kind': 'Rollout', 'metadata': {'name': 'r%d' % n, 'namespace': 'shop'},
                 'spec': {'replicas': 2, 'selector': {'matchLabels': {'app': 'r%d' % n}},
                          'template': {'metadata': {'labels': {'app': 'r%d' % n}}, 'spec': {'containers': [{'name': 'c', 'image': 'registry.example.com/web:1'}]}},
                          'strategy': {'canary': {'steps': [{'setWeight': 20}, {'pause': {'duration': '1m'}}]}}}}
            if bad: o['spec']['replicass'] = o['spec'].pop('replicas')
        elif kind == 1:
            o = {'apiVersion': 'cert-manager.io/v1', 'kind': 'Certificate', 'metadata': {'name': 'c%d' % n, 'namespace': 'shop'},
                 'spec': {'secretName': 'c%d-tls' % n, 'dnsNames': ['c%d.example.com' % n], 'issuerRef': {'name': 'letsencrypt', 'kind': 'ClusterIssuer'}}}
            if bad: del o['spec']['secretName']
        else:
            o = {'apiVersion': 'argoproj.io/v1alpha1', 'kind': 'Application', 'metadata': {'name': 'a%d' % n, 'namespace': 'argocd'},
                 'spec': {'project': 'default', 'source': {'repoURL': 'https://git.example.com/x.git', 'path': 'apps/a%d' % n, 'targetRevision': 'HEAD'},
                          'destination': {'server': 'https://kubernetes.default.svc', 'namespace': 'a%d' % n}}}
            if bad: o['spec']['destinaton'] = o['spec'].pop('destination')
        docs.append(o)
    open(os.path.join(work, 'repo', 'corpus', 'f%03d.yaml' % i), 'w').write(yaml.safe_dump_all(docs))
PY
cd "$work/repo"
for ((i = 0; i < ROUNDS; i++)); do
  /usr/bin/time -f "kubeconform %e s %M KiB" "$work/kubeconform" -strict -summary \
    -schema-location "$work/schemas/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json" corpus >"$work/kc.out" 2>"$work/kc.time" || true
  /usr/bin/time -f "gitgate %e s %M KiB" "$work/gitgate" check --plain --no-builtin -o json corpus >"$work/gg.json" 2>"$work/gg.err" || true
  tail -1 "$work/kc.time"; tail -1 "$work/gg.err"
done
echo "kubeconform: $(tail -1 "$work/kc.out")"
python3 -c '
import json,sys
r=json.load(open(sys.argv[1]))
bad={(x["kind"],x["name"]) for x in r["results"] if x["status"] in ("fail","error") and x.get("action")=="Enforce"}
print("gitgate: %d invalid resources, %d findings" % (len(bad), r["summary"]["blocking"]))' "$work/gg.json"
