#!/usr/bin/env bash
# Regenerates testdata/golden/render/: what the real kustomize and helm CLIs print for
# the targets of the bundled example (testdata/gitops). render/cli_golden_test.go checks
# that gitgate renders the same bytes. The CLIs are built from the module proxy by
# hack/bench/tools.sh (kustomize v5.8.2: the CLI on kustomize/api v0.21.2, the API gitgate
# links; helm v3.21.4).
set -euo pipefail
cd "$(dirname "$0")/.."
export KUSTOMIZE_VERSION=${KUSTOMIZE_VERSION:-v5.8.2}
kustomize=$(hack/bench/tools.sh kustomize | cut -f2)
helm=$(hack/bench/tools.sh helm | cut -f2)
[ -n "$kustomize" ] && [ -n "$helm" ] || { echo "could not build the CLIs" >&2; exit 2; }
repo=testdata/gitops
out=testdata/golden/render
rm -rf "$out"; mkdir -p "$out"
for d in "$repo"/apps/*/overlays/*; do
  svc=$(basename "$(dirname "$(dirname "$d")")"); env=$(basename "$d")
  "$kustomize" build "$d" > "$out/kustomize-$svc-$env.yaml"
done
for c in "$repo"/charts/*; do
  n=$(basename "$c")
  "$helm" template "$n" "$c" --namespace default > "$out/helm-$n.yaml"
  for v in "$repo"/environments/*/"$n"/values.yaml; do
    env=$(basename "$(dirname "$(dirname "$v")")")
    "$helm" template "$n" "$c" --namespace "$env" -f "$v" > "$out/helm-$n-$env.yaml"
  done
done
echo "wrote $(ls "$out" | wc -l) files to $out ($("$kustomize" version), helm $("$helm" version --short))"
