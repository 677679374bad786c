#!/usr/bin/env bash
# The verdict cache on the generated 1,000-app monorepo (APPS kustomize apps with three
# overlays each, CHARTS Helm charts), one run of each case, in this order:
#
#   nocache  `gitgate check --no-cache`: every target rendered and judged (the peer)
#   cold     an empty --cache-dir: everything rendered, judged and stored
#   warm     nothing changed since: every stored target from the cache
#   one      one app's base manifest changed: its three overlays rendered again
#
# Reported: wall, CPU (user+sys), peak RSS of each process (GNU time), the ratio of each
# case to nocache, and whether every case's JSON report equals nocache's (after the
# change: a second --no-cache run's). Wall times spread widely on a shared machine: read
# CPU first.
#
#   hack/bench/cache.sh                 # 1,000 apps, 100 charts
#   APPS=100 CHARTS=20 hack/bench/cache.sh
#   OLD=../main hack/bench/cache.sh     # also another checkout's gitgate (cold, warm, one),
#                                       # on its own copy of the corpus and cache, in the same run
#
# A second warm run (warm2) shows the steady state: the first warm run after cold may
# hash files again whose stat was racily clean when cold stored it (see
# verdictcache.StatMemo).
# Needs ../shared/bench (the corpus generator) beside the repository.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
APPS=${APPS:-1000}
CHARTS=${CHARTS:-100}
SHARED=${SHARED:-$root/../shared/bench}
work=${WORK:-${TMPDIR:-/tmp}/gitgate-bench-cache} # outside the repository: a corpus inside it would be checked as part of it
mkdir -p "$work"
corpus=$work/mono$APPS
rm -rf "$corpus" "$corpus.old" "$work/cache" "$work/cache.old"
go run "$SHARED/gencorpus/main.go" -out "$corpus" -apps "$APPS" -charts "$CHARTS" >/dev/null
go build -o "$work/gitgate" ./cmd/gitgate
if [ -n "${OLD:-}" ]; then
  (cd "$OLD" && go build -o "$work/gitgate.old" ./cmd/gitgate)
  cp -a "$corpus" "$corpus.old"
fi
: >"$work/times"
measure() { # name, binary, corpus, cache, extra args...
  local name=$1 bin=$2 dir=$3 cache=$4; shift 4
  (cd "$dir" && /usr/bin/time -f "$name %e %U %S %M" -o "$work/time.$name" \
    "$bin" check --cache-dir "$cache" --no-builtin --policies policies -o json "$@" . \
    >"$work/out.$name" 2>"$work/err.$name") || true
  cat "$work/time.$name" | grep -v '^Command' >>"$work/times"
}
change() { # corpus: one app's base manifest changed
  local app
  app=$(ls "$1/apps" | sed -n 1p) # not head: its early exit fails the pipe
  sed -i 's/^\(\s*\)replicas: .*/\1replicas: 5/' "$1/apps/$app/base/deployment.yaml"
  echo "# changed" >>"$1/apps/$app/base/deployment.yaml"
}
measure nocache "$work/gitgate" "$corpus" "$work/cache" --no-cache
measure cold "$work/gitgate" "$corpus" "$work/cache"
measure warm "$work/gitgate" "$corpus" "$work/cache"
measure warm2 "$work/gitgate" "$corpus" "$work/cache"
if [ -n "${OLD:-}" ]; then
  measure old-cold "$work/gitgate.old" "$corpus.old" "$work/cache.old"
  measure old-warm "$work/gitgate.old" "$corpus.old" "$work/cache.old"
  measure old-warm2 "$work/gitgate.old" "$corpus.old" "$work/cache.old"
  change "$corpus.old"
  measure old-one "$work/gitgate.old" "$corpus.old" "$work/cache.old"
fi
change "$corpus"
measure one "$work/gitgate" "$corpus" "$work/cache"
measure nocache-after "$work/gitgate" "$corpus" "$work/cache" --no-cache

python3 - "$work" <<'PY'
import sys
work = sys.argv[1]
rows = {}
for line in open(f"{work}/times"):
    f = line.split()
    if len(f) == 5:
        rows[f[0]] = (float(f[1]), float(f[2]) + float(f[3]), int(f[4]) / 1024)
base = rows["nocache"]
print(f"{'case':<14}{'wall s':>9}{'cpu s':>9}{'peak MiB':>10}{'wall ratio':>12}{'cpu ratio':>11}  same JSON")
for name, (w, c, r) in rows.items():
    ref = "nocache-after" if name in ("one", "old-one", "nocache-after") else "nocache"
    same = open(f"{work}/out.{name}", "rb").read() == open(f"{work}/out.{ref}", "rb").read()
    print(f"{name:<14}{w:>9.2f}{c:>9.2f}{r:>10.0f}{w / base[0]:>12.3f}{c / base[1]:>11.3f}  {same}")
PY
