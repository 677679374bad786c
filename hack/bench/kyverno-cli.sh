#!/usr/bin/env bash
# Builds Kyverno's CLI (the peer tool of the benchmarks) from the Go module proxy and
# prints its path. Never committed, never used by gitgate itself. Cached in .cache/bench.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=${KYVERNO_VERSION:-v1.19.1}
out=$PWD/.cache/bench/kyverno-$version
if [ -x "$out" ]; then echo "$out"; exit 0; fi
mkdir -p .cache/bench
dir=$(go mod download -json "github.com/kyverno/kyverno@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
src=$(mktemp -d)
trap 'chmod -R u+w "$src"; rm -rf "$src"' EXIT
cp -r "$dir/." "$src"
chmod -R u+w "$src"
echo "building kyverno $version CLI (several minutes when the build cache is cold)..." >&2
(cd "$src" && go build -o "$out" ./cmd/cli/kubectl-kyverno) >&2
echo "$out"
