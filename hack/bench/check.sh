#!/usr/bin/env bash
# gitgate check against `kyverno apply` on the same generated corpus, in one run,
# interleaved (A B A B ...), with wall time, CPU and peak RSS of each process, the
# ratio, and whether both flag exactly the generator's expected violations.
#
#   hack/bench/check.sh                  # flat 10,000 Deployments, 1 round
#   N=1000 ROUNDS=3 hack/bench/check.sh
#   POLICIES=policies-cel hack/bench/check.sh   # the CEL ValidatingPolicy variant
#
# Needs ../shared/bench (the corpus generator and parse floor) beside the repository.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
N=${N:-10000}
ROUNDS=${ROUNDS:-1}
POLICIES=${POLICIES:-policies}
SHARED=${SHARED:-$root/../shared/bench}
work=${WORK:-$root/.cache/bench}
mkdir -p "$work"

corpus=$work/flat$N
if [ ! -f "$corpus/expected-violations.tsv" ]; then
  go run "$SHARED/gencorpus/main.go" -out "$corpus" -flat "$N" -alt-policies -force >/dev/null
fi
go build -o "$work/gitgate" ./cmd/gitgate
(cd "$SHARED/floor" && go build -o "$work/floor" .)
kyverno=$(hack/bench/kyverno-cli.sh)

measure() { # name, command...
  local name=$1; shift
  /usr/bin/time -f "$name %e %U %S %M" -o "$work/time.$name" "$@" >"$work/out.$name" 2>"$work/err.$name" || true
  cat "$work/time.$name" >>"$work/times"
}
: >"$work/times"
for ((i = 0; i < ROUNDS; i++)); do
  measure gitgate "$work/gitgate" check --no-builtin --no-schema --policies "$corpus/$POLICIES" -o json "$corpus/deployments"
  measure gitgate-schema "$work/gitgate" check --no-builtin --policies "$corpus/$POLICIES" -o json "$corpus/deployments"
  measure kyverno "$kyverno" apply "$corpus/$POLICIES" --resource "$corpus/deployments" -p --output-format json
  measure floor "$work/floor" -mode sigs "$corpus/deployments"
done

python3 - "$work" "$corpus" "$POLICIES" <<'PY'
import json, statistics, sys
work, corpus, policies = sys.argv[1:]
rows = {}
for line in open(f"{work}/times"):
    if line.startswith("Command ") or len(line.split()) != 5:
        continue  # GNU time notes a non-zero exit on its own line
    name, wall, user, sys_, rss = line.split()
    rows.setdefault(name, []).append((float(wall), float(user) + float(sys_), int(rss) / 1024))
med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in rows.items()}
cel = policies != "policies"
key = (lambda ns, n, p, r: (ns, n, p)) if cel else (lambda ns, n, p, r: (ns, n, p, r))
want = set()
for l in list(open(f"{corpus}/expected-violations.tsv"))[1:]:
    f = l.rstrip("\n").split("\t")
    want.add(key(f[4], f[5], f[6], f[7]))
def gitgate_fails(name):
    d = json.load(open(f"{work}/out.{name}"))
    return {key(r["namespace"], r["name"], r["policy"], r["rule"].removeprefix("autogen-")) for r in d["results"] if r["status"] == "fail"}
def kyverno_fails():
    got, reports = set(), []
    for line in open(f"{work}/out.kyverno"):
        if line.startswith("{"):
            reports.append(json.loads(line))  # kyverno prints the report once per policy set
            break
    if not reports:
        return None
    for rep in reports:
        for r in rep.get("results", []):
            if r.get("result") != "fail":
                continue
            res = r["resources"][0]
            rule = (r.get("rule") or "").removeprefix("autogen-")
            got.add(key(res.get("namespace", ""), res["name"], r["policy"], rule))
    return got
print(f"corpus: {corpus} ({policies})")
print(f"{'tool':16} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9}")
for k, (w, c, m) in med.items():
    print(f"{k:16} {w:8.2f} {c:8.2f} {m:9.0f}")
g, gs, k, f = med["gitgate"], med["gitgate-schema"], med["kyverno"], med["floor"]
print(f"kyverno / gitgate wall: {k[0]/g[0]:.1f}x (with schema check: {k[0]/gs[0]:.1f}x)")
print(f"gitgate / kyverno peak RSS: {g[2]/k[2]:.2f} (with schema check: {gs[2]/k[2]:.2f})")
print(f"gitgate / parse floor CPU: {g[1]/f[1]:.1f}x (with schema check: {gs[1]/f[1]:.1f}x)")
gf, kf = gitgate_fails("gitgate"), kyverno_fails()
print(f"gitgate fails == expected ({len(want)}): {gf == want} ({len(gf)})")
if kf is not None:
    print(f"kyverno fails == expected: {kf == want} ({len(kf)}); gitgate == kyverno: {gf == kf}")
PY
