#!/usr/bin/env bash
# The admission webhook under load, on 127.0.0.1 only: `gitgate serve` with the built-in
# bundle and a self-made certificate, hammered by hack/bench/loadgen with one
# AdmissionReview (a compliant Deployment) at concurrency 1, 16 and 64, bounded in count
# and time. Prints throughput, p50/p90/p99/max latency and errors per level, the
# in-process evaluation of the same object measured in the same run (and the ratio), and
# the serving process's peak RSS.
#
#   hack/bench/webhook.sh
#   N=20000 LEVELS=1,16,64,128 hack/bench/webhook.sh
#
# Work files in .cache/bench/webhook (never committed).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
work=$root/.cache/bench/webhook
N=${N:-5000}
LEVELS=${LEVELS:-1,16,64}
MAX_TIME=${MAX_TIME:-30s}
PORT=${PORT:-19443}
HEALTH_PORT=${HEALTH_PORT:-18081}
mkdir -p "$work"

go build -o "$work/gitgate" ./cmd/gitgate
go build -o "$work/loadgen" ./hack/bench/loadgen
rm -rf "$work/certs"
"$work/loadgen" -gencert "$work/certs"

"$work/gitgate" serve --addr "127.0.0.1:$PORT" --health-addr "127.0.0.1:$HEALTH_PORT" \
  --cert-dir "$work/certs" 2>"$work/serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
"$work/loadgen" -wait "http://127.0.0.1:$HEALTH_PORT/readyz" || { echo "the webhook did not become ready; log:" >&2; tail -20 "$work/serve.log" >&2; exit 2; }
echo "gitgate serve pid $pid: RSS after start $(awk '/^VmRSS/ {print $2, $3}' /proc/$pid/status)"
echo "\$ loadgen -url https://127.0.0.1:$PORT/validate -n $N -c $LEVELS -max-time $MAX_TIME"
rc=0
"$work/loadgen" -url "https://127.0.0.1:$PORT/validate" -ca "$work/certs/ca.crt" -n "$N" -c "$LEVELS" -max-time "$MAX_TIME" || rc=$?
echo
echo "gitgate serve peak RSS (VmHWM): $(awk '/^VmHWM/ {print $2, $3}' /proc/$pid/status)"
echo "machine: $(nproc) cores, $(go version | cut -d" " -f3), load average $(cut -d" " -f1-3 /proc/loadavg)"
curl -s "http://127.0.0.1:$HEALTH_PORT/metrics" 2>/dev/null | grep -E '^gitgate_admission_requests_total' || true
exit $rc
