#!/usr/bin/env bash
# gitgate run: the runner's own overhead and its parallelism, measured through the CLI.
#
#   hack/bench/run.sh            # 200-task chain, 20 x 200 ms sleeps; 3 rounds each
#   TASKS=500 ROUNDS=5 hack/bench/run.sh
#
# 1. Overhead: a chain of $TASKS tasks (each runAfter the previous, so nothing overlaps),
#    one trivial step each (`script: "true"`, i.e. #!/bin/sh + set -e + true). From the
#    run record: the run's wall time (PipelineRun start -> completion) minus the sum of
#    the steps' own times (each step's startedAt -> finishedAt: process start to exit),
#    divided by the number of steps. That is the runner's cost per step: scheduling,
#    substitution, writing the script, results, bookkeeping. The CLI's wall time (which
#    adds loading the policies and the gate over the pipeline) is printed beside it, and
#    so is a shell loop running the same $TASKS scripts, for the process cost alone.
# 2. Parallelism: 20 independent tasks sleeping 200 ms, --parallel 1 against
#    --parallel 2 (CLI wall time); the ratio should approach 2.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
TASKS=${TASKS:-200}
ROUNDS=${ROUNDS:-3}
work=${WORK:-$root/.cache/bench-run}
rm -rf "$work" && mkdir -p "$work"
go build -o "$work/gitgate" ./cmd/gitgate
gg=$work/gitgate
cd "$work" # run reads .gitgate.yaml and policies/ from the current directory: none here

step_security='stepTemplate: {securityContext: {runAsNonRoot: true, runAsUser: 1000, allowPrivilegeEscalation: false}}'
{
  echo "apiVersion: tekton.dev/v1"
  echo "kind: Pipeline"
  echo "metadata: {name: chain}"
  echo "spec:"
  echo "  tasks:"
  for ((i = 0; i < TASKS; i++)); do
    after=""
    if ((i > 0)); then after=", runAfter: [t$((i - 1))]"; fi
    echo "    - {name: t$i$after, taskSpec: {$step_security, steps: [{name: s, image: harbor.example.com/library/busybox:1.36, script: \"true\"}]}}"
  done
} >"$work/chain.yaml"
{
  echo "apiVersion: tekton.dev/v1"
  echo "kind: Pipeline"
  echo "metadata: {name: sleeps}"
  echo "spec:"
  echo "  tasks:"
  for ((i = 0; i < 20; i++)); do
    echo "    - {name: s$i, taskSpec: {$step_security, steps: [{name: s, image: harbor.example.com/library/busybox:1.36, script: \"sleep 0.2\"}]}}"
  done
} >"$work/sleeps.yaml"

now() { date +%s.%N; }
# RFC 3339 with nanoseconds -> seconds since the epoch, as a float.
cat >"$work/time.jq" <<'JQ'
def secs: capture("^(?<s>[^.Z]+)(\\.(?<f>[0-9]+))?Z$") | (.s + "Z" | fromdateiso8601) + ("0." + (.f // "0") | tonumber);
JQ
cat "$work/time.jq" - >"$work/overhead.jq" <<'JQ'
(.status.startTime | secs) as $start | (.status.completionTime | secs) as $finish
| [.status.taskRuns[] | .status.steps[] | (.terminated.finishedAt | secs) - (.terminated.startedAt | secs)] as $steps
| ($steps | add) as $own | ($steps | length) as $n
| "run wall \(($finish - $start) * 1000 | floor) ms, steps' own time \($own * 1000 | floor) ms over \($n) steps -> runner overhead \((($finish - $start - $own) / $n * 100000 | floor) / 100) ms/step; CLI wall \($cli) s (adds policy loading and the gate)"
JQ
cat "$work/time.jq" - >"$work/runtime.jq" <<'JQ'
(.status.completionTime | secs) - (.status.startTime | secs)
JQ
echo "== overhead: chain of $TASKS tasks, one trivial step each (--parallel 1)"
for ((r = 1; r <= ROUNDS; r++)); do
  t0=$(now)
  "$gg" run -f "$work/chain.yaml" --registry harbor.example.com --parallel 1 --record "$work/chain.json" >/dev/null 2>"$work/chain.err"
  t1=$(now)
  jq -r --arg cli "$(echo "$t1 - $t0" | bc)" -f "$work/overhead.jq" "$work/chain.json"
done
# The same scripts from a shell loop: what one process costs on this machine.
printf '#!/bin/sh\nset -e\ntrue\n' >"$work/true.sh" && chmod +x "$work/true.sh"
t0=$(now); for ((i = 0; i < TASKS; i++)); do "$work/true.sh"; done; t1=$(now)
echo "shell loop: $TASKS scripts in $(echo "($t1 - $t0) * 1000 / 1" | bc) ms ($(echo "scale=2; ($t1 - $t0) * 1000 / $TASKS" | bc) ms each)"

echo "== parallelism: 20 independent tasks sleeping 200 ms"
for ((r = 1; r <= ROUNDS; r++)); do
  for p in 1 2; do
    t0=$(now)
    "$gg" run -f "$work/sleeps.yaml" --registry harbor.example.com --parallel "$p" --record "$work/sleeps$p.json" >/dev/null 2>&1
    t1=$(now)
    eval "wall$p=$(echo "$t1 - $t0" | bc)"
    eval "run$p=$(jq -r -f "$work/runtime.jq" "$work/sleeps$p.json")"
  done
  echo "round $r: --parallel 1 ${wall1}s (run ${run1}s), --parallel 2 ${wall2}s (run ${run2}s): speed-up $(echo "scale=2; $wall1 / $wall2" | bc)x CLI, $(echo "scale=2; $run1 / $run2" | bc)x run"
done
