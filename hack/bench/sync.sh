#!/usr/bin/env bash
# gitgate sync and gitgate report over the bench corpus's 100 apps (their production
# overlays), against a real kube-apiserver + etcd (envtest, hack/envtest.sh), on 127.0.0.1:
#   - first sync: wall time, API writes (counted at the HTTP transport, dry runs excluded)
#   - no-change resync: wall time, API writes (must be 0)
#   - gitgate report as its own process: wall time, CPU, peak RSS
#
#   hack/bench/sync.sh                      # corpus /tmp/corpus/mono100 (generated if absent)
#   CORPUS=/path/to/corpus HTML=/tmp/drift.html hack/bench/sync.sh
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
KUBEBUILDER_ASSETS=$assets GITGATE_BENCH_CORPUS=$CORPUS GITGATE_BIN=$work/gitgate GITGATE_BENCH_HTML=${HTML:-} \
  go test -count=1 -tags 'integration bench' -run '^TestBenchCorpus$' -v -timeout 20m ./reconcile/ 2>&1 |
  grep -E '^(=== RUN|--- |\s+bench_integration_test.go|ok|FAIL|PASS)' 
