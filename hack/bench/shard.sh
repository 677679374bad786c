#!/usr/bin/env bash
# check --shard on the generated 1,000-app monorepo (APPS kustomize apps with three
# overlays each, CHARTS Helm charts): the unsharded check against N shards run one after
# the other on the same machine (as N CI jobs would run side by side), all --no-cache
# (so shards are assigned by hash), one run each:
#
#   full       `gitgate check --no-cache`
#   shard-I-of-N `gitgate check --no-cache --shard I/N`, I = 1..N
#   merge      `gitgate merge-reports` of the N shards' JSON reports
#
# Reported: wall, CPU (user+sys), peak RSS of each process (GNU time); the slowest
# shard's wall against the unsharded wall (the CI wall time with N parallel jobs, each
# on its own machine like this one); whether the merged JSON equals the unsharded one
# (notices compared as a sorted set, merge-reports sorts them).
#
# CRDS=1 (the default) adds a CustomResourceDefinition target (platform/widgets-crd) and
# four targets of custom resources of its kind (tenants/team-K/widgets, one of them
# invalid), so a shard whose custom resources' CRD another shard renders shows what
# finding that CRD costs; the summary says which shards had to. CRDS=0: the corpus alone.
#
#   hack/bench/shard.sh                 # 1,000 apps, 100 charts, 2 shards
#   APPS=100 CHARTS=20 N=3 hack/bench/shard.sh
#   CRDS=0 hack/bench/shard.sh          # no custom resources: no shard looks for CRDs
#
# Needs ../shared/bench (the corpus generator) beside the repository.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
APPS=${APPS:-1000}
CHARTS=${CHARTS:-100}
N=${N:-2}
CRDS=${CRDS:-1}
SHARED=${SHARED:-$root/../shared/bench}
work=${WORK:-${TMPDIR:-/tmp}/gitgate-bench-shard} # outside the repository: a corpus inside it would be checked as part of it
mkdir -p "$work"
corpus=$work/mono$APPS
rm -rf "$corpus"
go run "$SHARED/gencorpus/main.go" -out "$corpus" -apps "$APPS" -charts "$CHARTS" >/dev/null
if [ "$CRDS" = 1 ]; then
  mkdir -p "$corpus/platform/widgets-crd"
  printf 'resources: [crd.yaml]\n' >"$corpus/platform/widgets-crd/kustomization.yaml"
  cat >"$corpus/platform/widgets-crd/crd.yaml" <<'YAML'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.bench.gitgate.dev
spec:
  group: bench.gitgate.dev
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer, minimum: 1, maximum: 10}
                color: {type: string, enum: [red, green, blue]}
YAML
  for k in 1 2 3 4; do
    mkdir -p "$corpus/tenants/team-$k/widgets"
    printf 'namespace: team-%s\nresources: [widget.yaml]\n' "$k" >"$corpus/tenants/team-$k/widgets/kustomization.yaml"
    size=$k; [ "$k" = 4 ] && size=40 # over the schema's maximum: a finding only the CRD finds
    printf 'apiVersion: bench.gitgate.dev/v1\nkind: Widget\nmetadata: {name: widget-%s}\nspec: {size: %s, color: green}\n' "$k" "$size" \
      >"$corpus/tenants/team-$k/widgets/widget.yaml"
  done
fi
go build -o "$work/gitgate" ./cmd/gitgate
: >"$work/times"
measure() { # name, gitgate args...
  local name=$1; shift
  (cd "$corpus" && /usr/bin/time -f "$name %e %U %S %M" -o "$work/time.$name" \
    "$work/gitgate" "$@" >/dev/null 2>"$work/err.$name") || true
  grep -v '^Command' "$work/time.$name" >>"$work/times"
}
measure full check --no-cache --no-builtin --policies policies -o json="$work/full.json" .
shards=()
for i in $(seq 1 "$N"); do
  measure "shard-$i-of-$N" check --no-cache --no-builtin --policies policies --shard "$i/$N" -o json="$work/shard-$i.json" .
  grep '^notice: shard ' "$work/err.shard-$i-of-$N" || true
  shards+=("$work/shard-$i.json")
done
measure merge merge-reports -o json="$work/merged.json" "${shards[@]}"

python3 - "$work" "$N" <<'PY'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
for i in range(1, n + 1):
    d = json.load(open(f"{work}/shard-{i}.json"))
    paths = [t["path"] for t in d["targets"]]
    crd = "platform/widgets-crd" in paths
    crs = sum(1 for p in paths if p.startswith("tenants/"))
    if crd or crs:
        print(f"shard {i}/{n}: {'renders the Widget CRD, ' if crd else ''}{crs} targets of Widgets, not schema-checked: {d.get('notSchemaChecked') or {}}")
rows = {}
for line in open(f"{work}/times"):
    f = line.split()
    if len(f) == 5:
        rows[f[0]] = (float(f[1]), float(f[2]) + float(f[3]), int(f[4]) / 1024)
print(f"{'case':<12}{'wall s':>9}{'cpu s':>9}{'peak MiB':>10}")
for name, (w, c, r) in rows.items():
    print(f"{name:<12}{w:>9.2f}{c:>9.2f}{r:>10.0f}")
slowest = max(rows[f"shard-{i}-of-{n}"][0] for i in range(1, n + 1))
print(f"slowest shard / unsharded wall: {slowest:.2f} / {rows['full'][0]:.2f} = {slowest / rows['full'][0]:.3f}")
def norm(f):
    d = json.load(open(f))
    d["notices"] = sorted(set(d["notices"]))
    return d
print("merged JSON equals unsharded:", norm(f"{work}/merged.json") == norm(f"{work}/full.json"))
PY
