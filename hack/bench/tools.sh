#!/usr/bin/env bash
# Builds the peer CLIs of the repository benchmark (hack/bench/repo.sh) from the Go
# module proxy into .cache/bench and prints one "name<TAB>path" line per tool; a tool
# that cannot be built prints "name<TAB>" (empty path) and the reason on stderr, with the
# full log in .cache/bench/build-<name>-<version>.log. Builds are reused. Never committed,
# never used by gitgate itself.
#
#   hack/bench/tools.sh                    # kustomize, helm, kyverno
#   hack/bench/tools.sh kustomize helm     # only these
#
# Versions (override with KUSTOMIZE_VERSION, HELM_VERSION, KYVERNO_VERSION):
#   kustomize v5.8.2: the newest CLI that builds with Go 1.26 (v5.8.3 needs go >= 1.27), on
#                     kustomize/api v0.21.2, the API gitgate links: the exact match
#                     (hack/golden-render.sh uses it too). A v5.8.2 build costs about half
#                     the CPU of a v5.8.1 build (≈0.08 s / 34 MiB against ≈0.18 s / 54 MiB
#                     per overlay, measured 2026-11-26).
#   helm v3.21.4:     the helm.sh/helm/v3 gitgate links.
#   kyverno v1.19.1:  the engine gitgate embeds; built by hack/bench/kyverno-cli.sh.
# Builds run under `nice -n 10` (the machine is shared).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
work=$root/.cache/bench
mkdir -p "$work"
tmps=()
trap 'for t in "${tmps[@]}"; do chmod -R u+w "$t" 2>/dev/null; rm -rf "$t"; done' EXIT
KUSTOMIZE_VERSION=${KUSTOMIZE_VERSION:-v5.8.2}
HELM_VERSION=${HELM_VERSION:-v3.21.4}
KYVERNO_VERSION=${KYVERNO_VERSION:-v1.19.1}

# build NAME MODULE PACKAGE VERSION: `go install PACKAGE@VERSION` into a scratch GOBIN;
# when that is refused (a replace directive in the module's go.mod), build the package
# from a writable copy of the module source, as kyverno-cli.sh does.
build() {
  local name=$1 mod=$2 pkg=$3 version=$4
  local out=$work/$name-$version log=$work/build-$name-$version.log
  if [ -x "$out" ]; then printf '%s\t%s\n' "$name" "$out"; return 0; fi
  local tmp; tmp=$(mktemp -d); tmps+=("$tmp")
  echo "building $name $version (a few minutes when the build cache is cold; log: $log)..." >&2
  {
    echo "# $(date -u +%FT%TZ) $(go version)"
    echo "\$ (cd $tmp && GOBIN=$tmp/bin nice -n 10 go install $pkg@$version)"
  } >"$log"
  if (cd "$tmp" && GOBIN=$tmp/bin nice -n 10 go install "$pkg@$version") >>"$log" 2>&1; then
    mv "$tmp"/bin/* "$out" # named after the last path element that is not a /vN suffix
  else
    echo "# go install failed; building from a copy of the module source" >>"$log"
    local dir sub=${pkg#"$mod"}
    if dir=$(cd "$tmp" && go mod download -json "$mod@$version" 2>>"$log" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p') && [ -n "$dir" ]; then
      cp -r "$dir/." "$tmp/src" && chmod -R u+w "$tmp/src"
      echo "\$ (cd <copy of $dir> && nice -n 10 go build -o $out .$sub)" >>"$log"
      (cd "$tmp/src" && nice -n 10 go build -o "$out" ".$sub") >>"$log" 2>&1 || true
    fi
  fi
  if [ -x "$out" ]; then
    { echo "\$ $out version"; "$out" version 2>&1 || true; } >>"$log"
    printf '%s\t%s\n' "$name" "$out"
  else
    echo "$name $version: build failed; last lines of $log:" >&2
    tail -n 5 "$log" | sed 's/^/  /' >&2
    printf '%s\t\n' "$name"
  fi
}

kyverno() {
  local log=$work/build-kyverno-$KYVERNO_VERSION.log out
  if out=$(KYVERNO_VERSION=$KYVERNO_VERSION nice -n 10 hack/bench/kyverno-cli.sh 2>"$log.tmp") && [ -x "$out" ]; then
    if [ -s "$log.tmp" ]; then mv "$log.tmp" "$log"; else rm -f "$log.tmp"; fi
    printf '%s\t%s\n' kyverno "$out"
  else
    mv "$log.tmp" "$log"
    echo "kyverno $KYVERNO_VERSION: build failed (hack/bench/kyverno-cli.sh); last lines of $log:" >&2
    tail -n 5 "$log" | sed 's/^/  /' >&2
    printf '%s\t\n' kyverno
  fi
}

[ $# -gt 0 ] || set -- kustomize helm kyverno
for t in "$@"; do
  case $t in
  kustomize) build kustomize sigs.k8s.io/kustomize/kustomize/v5 sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION" ;;
  helm) build helm helm.sh/helm/v3 helm.sh/helm/v3/cmd/helm "$HELM_VERSION" ;;
  kyverno) kyverno ;;
  *) echo "tools.sh: unknown tool $t (kustomize, helm, kyverno)" >&2; exit 2 ;;
  esac
done
