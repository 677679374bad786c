#!/usr/bin/env bash
# The verdict cache in merge-request mode (check --base) on the generated 1,000-app
# monorepo, one app's base manifest changed in a commit on top of main; one run of each
# case, in this order:
#
#   nocache   `check --base HEAD~1 --no-cache`: the affected targets rendered at both sides
#   mainfill  (not compared) `check` of main (HEAD~1) with an empty cache, as a main-branch
#             pipeline fills it
#   aftermain `check --base HEAD~1`: the base side from main's entries, head rendered
#   warm      the same again: both sides from the cache
#
# Reported: wall, CPU (user+sys), peak RSS (GNU time), each case's ratio to nocache and
# whether its JSON report equals nocache's. Wall times spread widely on a shared machine.
#
#   hack/bench/cache-base.sh            # 1,000 apps, 100 charts
#   APPS=100 CHARTS=20 hack/bench/cache-base.sh
#
# Needs ../shared/bench (the corpus generator) beside the repository, and git.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
APPS=${APPS:-1000}
CHARTS=${CHARTS:-100}
SHARED=${SHARED:-$root/../shared/bench}
work=${WORK:-${TMPDIR:-/tmp}/gitgate-bench-cache-base}
mkdir -p "$work"
corpus=$work/mono$APPS
rm -rf "$corpus" "$work/cache"
go run "$SHARED/gencorpus/main.go" -out "$corpus" -apps "$APPS" -charts "$CHARTS" >/dev/null
go build -o "$work/gitgate" ./cmd/gitgate
g() { git -C "$corpus" -c user.name=bench -c user.email=bench@example.com "$@"; }
g init -q -b main && g add -A && g commit -qm main
: >"$work/times"
measure() { # name, extra args...
  local name=$1; shift
  (cd "$corpus" && /usr/bin/time -f "$name %e %U %S %M" -o "$work/time.$name" \
    "$work/gitgate" check --cache-dir "$work/cache" --no-builtin --policies policies -o json "$@" . \
    >"$work/out.$name" 2>"$work/err.$name") || true
  grep -v '^Command' "$work/time.$name" >>"$work/times"
}
measure mainfill
app=$(ls "$corpus/apps" | sed -n 1p)
sed -i 's/^\(\s*\)replicas: .*/\1replicas: 5/' "$corpus/apps/$app/base/deployment.yaml"
echo "# changed" >>"$corpus/apps/$app/base/deployment.yaml"
g commit -qam "change $app"
measure nocache --base HEAD~1 --no-cache
measure aftermain --base HEAD~1
measure warm --base HEAD~1

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
    same = "-" if name == "mainfill" else open(f"{work}/out.{name}", "rb").read() == open(f"{work}/out.nocache", "rb").read()
    print(f"{name:<14}{w:>9.2f}{c:>9.2f}{r:>10.0f}{w / base[0]:>12.3f}{c / base[1]:>11.3f}  {same}")
PY
