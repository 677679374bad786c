#!/usr/bin/env bash
# Merge-request mode on a generated monorepo: a one-app change checked with
# `gitgate check --base main` against a full `gitgate check` of the same repository, in
# one run, interleaved (A B A B ...), with the corpus's 6 policies.
#
#   hack/bench/mr.sh                          # 1,000 apps (3,000 overlays), 100 charts, 3 rounds
#   APPS=100 CHARTS=20 ROUNDS=1 hack/bench/mr.sh
#
# The repository is the corpus committed on main (with git, a test fixture only: gitgate
# reads it with go-git), then a branch that changes one app's base Deployment. The report
# must name exactly that app's three overlays; the script checks it. Reported: median
# wall, CPU (user+sys) and peak RSS from GNU time, and the ratio full / merge-request.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
APPS=${APPS:-1000}
CHARTS=${CHARTS:-100}
ROUNDS=${ROUNDS:-3}
SHARED=${SHARED:-$root/../shared/bench}
work=${WORK:-$root/.cache/bench}
run=$work/mr-$APPS-$CHARTS
corpus=$work/mono$APPS-c$CHARTS
mkdir -p "$run"
if [ ! -f "$corpus/expected-violations.tsv" ]; then
  nice -n 10 go run "$SHARED/gencorpus/main.go" -out "$corpus" -apps "$APPS" -charts "$CHARTS" -force >/dev/null
fi
gitgate=$run/gitgate
nice -n 10 go build -o "$gitgate" ./cmd/gitgate

repo=$run/repo
rm -rf "$repo"
cp -r "$corpus" "$repo"
apps=("$repo"/apps/*)
app=$(basename "${apps[0]}")
(
  cd "$repo"
  git init -q -b main
  git add -A
  git -c user.name=bench -c user.email=bench@example.com commit -qm corpus
  git checkout -qb change
  sed -i '0,/replicas: /s/replicas: \([0-9]*\)/replicas: 7/' "apps/$app/base/deployment.yaml"
  git -c user.name=bench -c user.email=bench@example.com commit -qam "one app"
  git status --porcelain >/dev/null # a fresh index, as in a CI clone after checkout
)

measure() { # name, command...
  local name=$1; shift
  (cd "$repo" && nice -n 10 /usr/bin/time -f "$name %e %U %S %M" -o "$run/time.$name" "$@" >"$run/out.$name" 2>"$run/err.$name") || true
  cat "$run/time.$name" >>"$run/times"
}
: >"$run/times"
for ((i = 0; i < ROUNDS; i++)); do
  measure mr "$gitgate" check --no-builtin --policies policies --base main -o json .
  measure full "$gitgate" check --no-builtin --policies policies -o json .
done

python3 - "$run" "$app" "$ROUNDS" <<'PY'
import json, statistics, sys
run, app, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = {}
for line in open(f"{run}/times"):
    f = line.split()
    if len(f) != 5:
        continue
    name, wall, user, sys_, rss = f
    rows.setdefault(name, []).append((float(wall), float(user) + float(sys_), int(rss) / 1024))
med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in rows.items()}
print(f"{rounds} round(s), medians; changed: apps/{app}/base/deployment.yaml")
print(f"{'case':28} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9}")
for k, label in (("mr", "check --base main (1 app)"), ("full", "check (whole repository)")):
    w, c, m = med[k]
    print(f"{label:28} {w:8.2f} {c:8.2f} {m:9.0f}")
print(f"full / merge-request: wall {med['full'][0]/med['mr'][0]:.1f}x, CPU {med['full'][1]/med['mr'][1]:.1f}x")
d = json.load(open(f"{run}/out.mr"))
names = sorted(t["name"] for t in d["changes"]["targets"])
want = sorted(f"{app}/{env}" for env in ("dev", "production", "staging"))
print(f"affected targets: {names}")
if names != want:
    print(f"MISMATCH: want exactly {want}")
    sys.exit(1)
print("the report names exactly the changed app's 3 targets")
PY
