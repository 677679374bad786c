#!/usr/bin/env bash
# gitgate check in repository mode against the chain users run today, on the same
# generated GitOps monorepo, in one run, interleaved (A B C A B C ...):
#
#   gitgate  `gitgate check --no-builtin --policies $C/policies -o json $C`: discovers and
#            renders every kustomize overlay and Helm chart in-process, checks every object
#            against its schema and the corpus's 6 policies.
#   chain    ONE `bash -c` run of: `kustomize build` per overlay ($C/apps/*/overlays/*) and
#            `helm template <name> charts/<name> --namespace <name>` per chart, each into its
#            own file of one flat directory, then `kyverno apply $C/policies --resource F ...`
#            with every rendered file named (--resource DIR does not recurse and only the
#            first directory counts) and `-p --output-format json`. No schema check.
#   render   "render alone" proxy: gitgate has no render-only mode for a whole repository
#            (`gitgate render` prints one target per process), so this is
#            `gitgate check --no-builtin --no-schema --policies <empty dir> -o json` on a
#            hard-linked copy of the corpus without policies/ (otherwise policies/ would be
#            checked as a plain manifest directory). It runs discovery, rendering, decoding
#            and the report with no schema check and no policy: gating ≈ gitgate − render.
#
#   hack/bench/repo.sh                             # 100 apps (300 overlays), 20 charts, 1 round
#   APPS=1000 CHARTS=100 ROUNDS=3 hack/bench/repo.sh
#
# Reported per case: median wall, CPU (user+sys) and peak RSS from GNU time around the
# process. For the chain, /usr/bin/time waits for the `bash -c`, and Linux folds into
# wait4()'s rusage every descendant bash waited for: CPU is the sum over bash, every
# kustomize, helm and kyverno; peak RSS (ru_maxrss) is the largest single process of the
# tree, not a sum (they run one after another, so at any instant only that process and
# bash are alive). The chain also stamps the time at which rendering ended, which splits
# its wall time into render and kyverno. Verdicts: the (namespace, name, policy, rule)
# failing sets of gitgate and kyverno (autogen- prefixes stripped) against the corpus's
# expected-violations.tsv.
#
# Peer tools come from hack/bench/tools.sh (kustomize v5.8.2, helm v3.21.4, kyverno
# v1.19.1; KUSTOMIZE_VERSION etc. override); if one cannot be built, the chain is skipped
# and said so. Everything runs
# under `nice -n 10`. Needs ../shared/bench (the corpus generator) beside the repository.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
APPS=${APPS:-100}
CHARTS=${CHARTS:-20}
ROUNDS=${ROUNDS:-1}
SHARED=${SHARED:-$root/../shared/bench}
work=${WORK:-$root/.cache/bench}
run=$work/repo-$APPS-$CHARTS
mkdir -p "$run"

corpus=$work/mono$APPS-c$CHARTS
if [ ! -f "$corpus/expected-violations.tsv" ]; then
  nice -n 10 go run "$SHARED/gencorpus/main.go" -out "$corpus" -apps "$APPS" -charts "$CHARTS" -force >/dev/null
fi
# The render-alone copy: the same apps/ and charts/ (hard links), no policies/.
bare=$run/corpus-without-policies
rm -rf "$bare" "$run/no-policies"
mkdir -p "$bare" "$run/no-policies"
cp -al "$corpus/apps" "$corpus/charts" "$bare/"

# The developer's working tree is what gets built; say so. One retry: a concurrent
# `go build` in the same cache can fail transiently.
gitgate=$run/gitgate
nice -n 10 go build -o "$gitgate" ./cmd/gitgate 2>/dev/null || nice -n 10 go build -o "$gitgate" ./cmd/gitgate
dirty=$(git status --porcelain -- . ':!hack/bench' 2>/dev/null | wc -l)
echo "gitgate built from $(git rev-parse --short HEAD 2>/dev/null || echo '?') with $dirty locally modified file(s)" >"$run/build"

declare -A tool=()
while IFS=$'\t' read -r name path; do tool[$name]=$path; done < <(hack/bench/tools.sh kustomize helm kyverno)
chain=1
for t in kustomize helm kyverno; do
  if [ -z "${tool[$t]:-}" ]; then
    echo "repo.sh: $t could not be built (see hack/bench/tools.sh output above and .cache/bench/build-$t-*.log): the chain case is SKIPPED" >&2
    chain=0
  fi
done
echo "peers: $(for t in kustomize helm kyverno; do printf '%s ' "$(basename "${tool[$t]:-$t-MISSING}")"; done)" >>"$run/build"

rendered=$run/rendered
rm -rf "$rendered"
mkdir -p "$rendered"
# shellcheck disable=SC2016 # expanded by the inner bash
chain_script='
kustomize=$1 helm=$2 kyverno=$3 c=$4 o=$5 stamps=$6
echo "start $(date +%s.%N)" >>"$stamps"
for d in "$c"/apps/*/overlays/*/; do
  d=${d%/}; env=${d##*/}; app=${d%/overlays/*}; app=${app##*/}
  "$kustomize" build "$d" >"$o/$app-$env.yaml" || { echo "kustomize build $d failed" >&2; exit 3; }
done
for ch in "$c"/charts/*/; do
  ch=${ch%/}; n=${ch##*/}
  "$helm" template "$n" "$ch" --namespace "$n" >"$o/$n.yaml" || { echo "helm template $ch failed" >&2; exit 3; }
done
echo "rendered $(date +%s.%N)" >>"$stamps"
args=()
for f in "$o"/*.yaml; do args+=(--resource "$f"); done
"$kyverno" apply "$c/policies" "${args[@]}" -p --output-format json
rc=$?
echo "end $(date +%s.%N)" >>"$stamps"
exit $rc'

measure() { # name, command...
  local name=$1; shift
  nice -n 10 /usr/bin/time -f "$name %e %U %S %M %x" -o "$run/time.$name" "$@" >"$run/out.$name" 2>"$run/err.$name" || true
  cat "$run/time.$name" >>"$run/times"
}
: >"$run/times"
: >"$run/stamps"
for ((i = 0; i < ROUNDS; i++)); do
  measure gitgate "$gitgate" check --no-builtin --policies "$corpus/policies" -o json "$corpus"
  if [ "$chain" = 1 ]; then
    measure chain bash -c "$chain_script" chain "${tool[kustomize]}" "${tool[helm]}" "${tool[kyverno]}" "$corpus" "$rendered" "$run/stamps"
  fi
  measure render "$gitgate" check --no-builtin --no-schema --policies "$run/no-policies" -o json "$bare"
done

python3 - "$run" "$corpus" "$ROUNDS" "$chain" <<'PY'
import json, statistics, sys
run, corpus, rounds, chain = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
rows = {}
for line in open(f"{run}/times"):
    f = line.split()
    if line.startswith("Command ") or len(f) != 6:
        continue  # GNU time notes a non-zero exit on its own line
    name, wall, user, sys_, rss, rc = f
    rows.setdefault(name, []).append((float(wall), float(user) + float(sys_), int(rss) / 1024, int(rc)))
med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) + (sorted({x[3] for x in v}),) for k, v in rows.items()}

def rule(r):
    return r.removeprefix("autogen-cronjob-").removeprefix("autogen-")
want = set()
for l in list(open(f"{corpus}/expected-violations.tsv"))[1:]:
    f = l.rstrip("\n").split("\t")
    want.add((f[4], f[5], f[6], f[7]))

def gitgate(name):
    try:
        d = json.load(open(f"{run}/out.{name}"))
    except (OSError, ValueError) as e:
        return None, None, f"no JSON report ({e}); stderr: {open(f'{run}/err.{name}').read()[-500:]}"
    fails = {(r["namespace"], r["name"], r["policy"], rule(r["rule"])) for r in d["results"] if r["status"] == "fail"}
    return fails, d, None

def kyverno():
    rep = None
    for line in open(f"{run}/out.chain"):
        if line.startswith("{"):
            rep = json.loads(line)  # kyverno prints the report once per policy set
            break
    if rep is None:
        return None, None
    got = set()
    for r in rep.get("results", []):
        if r.get("result") == "fail":
            res = r["resources"][0]
            got.add((res.get("namespace", ""), res["name"], r["policy"], rule(r.get("rule") or "")))
    return got, rep

meta = json.load(open(f"{corpus}/corpus.json"))
print(f"corpus: {corpus} ({meta['apps']} apps, {meta['overlays']} overlays, {meta['charts']} charts; "
      f"{meta['rendered_resources']} rendered resources; {meta['expected_violations']} expected violations)")
print(open(f"{run}/build").read().strip() + f"\n{rounds} round(s), medians")
labels = {"gitgate": "gitgate check", "chain": "kustomize+helm+kyverno", "render": "gitgate render-only*"}
print(f"{'case':24} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9}  exit")
for k in ("gitgate", "chain", "render"):
    if k in med:
        w, c, m, rc = med[k]
        print(f"{labels[k]:24} {w:8.2f} {c:8.2f} {m:9.0f}  {','.join(map(str, rc))}")
    elif k == "chain":
        print(f"{labels[k]:24} SKIPPED: a peer tool could not be built (see above)")
print("* check --no-schema with no policy, on a copy of the corpus without policies/")

if "chain" in med:
    stamps, cur = [], {}
    for line in open(f"{run}/stamps"):
        k, t = line.split()
        cur[k] = float(t)
        if k == "end":
            stamps.append(cur)
            cur = {}
    if stamps:
        r = statistics.median(s["rendered"] - s["start"] for s in stamps)
        k = statistics.median(s["end"] - s["rendered"] for s in stamps)
        print(f"chain wall split: render (kustomize + helm) {r:.2f} s, kyverno apply {k:.2f} s")
    g, ch, rd = med["gitgate"], med["chain"], med["render"]
    print(f"chain / gitgate: wall {ch[0]/g[0]:.1f}x, CPU {ch[1]/g[1]:.1f}x, peak RSS {ch[2]/g[2]:.2f}x")
    if stamps:
        print(f"chain render / gitgate render-only wall: {r/rd[0]:.1f}x")
if "render" in med and "gitgate" in med:
    g, rd = med["gitgate"], med["render"]
    print(f"gitgate gating (schema + policies) ≈ gitgate − render-only: wall {g[0]-rd[0]:.2f} s, CPU {g[1]-rd[1]:.2f} s")

gf, gd, gerr = gitgate("gitgate")
rf, rd_, rerr = gitgate("render")
def counts(d):
    s = d["summary"]
    return f"{s['targets']} targets, {s['resources']} resources, {s['policies']} policies, {len(d['errors'])} errors"
if gerr:
    print(f"gitgate: {gerr}")
else:
    print(f"gitgate: {counts(gd)}; pass {gd['summary']['pass']}, fail {gd['summary']['fail']}")
if rerr:
    print(f"render-only: {rerr}")
else:
    print(f"render-only: {counts(rd_)}")
    if gd and (rd_["summary"]["targets"], rd_["summary"]["resources"]) != (gd["summary"]["targets"], gd["summary"]["resources"]):
        print("  WARNING: render-only did not render the same targets/resources as gitgate check")

def verdict(name, got):
    miss, extra = sorted(want - got), sorted(got - want)
    print(f"{name} fails == expected ({len(want)}): {'equal' if not miss and not extra else 'NOT equal'} "
          f"({len(got)} failing; {len(miss)} missing, {len(extra)} unexpected)")
    for tag, xs in (("missing", miss), ("unexpected", extra)):
        for x in xs[:5]:
            print(f"  {tag}: {'/'.join(x)}")
        if len(xs) > 5:
            print(f"  ... {len(xs) - 5} more {tag}")
if gf is not None:
    verdict("gitgate", gf)
if chain:
    kf, rep = kyverno()
    if kf is None:
        print(f"kyverno: no JSON report; stderr tail: {open(f'{run}/err.chain').read()[-500:]}")
    else:
        s = rep.get("summary", {})
        print(f"kyverno: pass {s.get('pass')}, fail {s.get('fail')}, warn {s.get('warn')}, error {s.get('error')}, skip {s.get('skip')}")
        verdict("kyverno", kf)
        if gf is not None:
            print(f"gitgate == kyverno: {'equal' if gf == kf else 'NOT equal'}")
PY
