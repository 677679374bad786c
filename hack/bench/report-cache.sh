#!/usr/bin/env bash
# gitgate report over the bench corpus's 100 apps (their production overlays) against a
# real kube-apiserver + etcd (envtest, hack/envtest.sh), each run its own process (wall,
# CPU, peak RSS), after a first sync fills the cluster:
#   - report --no-cache, report from a cold cache, from a warm one (same JSON report, the
#     clock left out), their ratio
#   - one app changed in Git: report --no-cache against the warm cache's
#
#   hack/bench/report-cache.sh              # corpus /tmp/corpus/mono100 (generated if absent)
#   CORPUS=/path/to/corpus hack/bench/report-cache.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
SHARED=${SHARED:-$root/../shared/bench}
CORPUS=${CORPUS:-/tmp/corpus/mono100}
if [ ! -f "$CORPUS/corpus.json" ]; then
  go run "$SHARED/gencorpus/main.go" -out "$CORPUS" -apps 100 -charts 20 >/dev/null
fi
work=${WORK:-$root/.cache/bench}
mkdir -p "$work"
go build -o "$work/gitgate" ./cmd/gitgate
assets=$(hack/envtest.sh)
KUBEBUILDER_ASSETS=$assets GITGATE_BENCH_CORPUS=$CORPUS GITGATE_BIN=$work/gitgate \
  go test -count=1 -tags 'integration bench' -run '^TestBenchReportCache$' -v -timeout 20m ./cmd/gitgate/ 2>&1 |
  grep -E '^(=== RUN|--- |\s+cache_report_bench_integration_test.go|ok|FAIL|PASS)'
