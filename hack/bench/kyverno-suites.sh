#!/usr/bin/env bash
# gitgate test against `kyverno test` on every kyverno-test.yaml suite under a directory
# (Kyverno's public policy library, or the test/cli tree of the kyverno module), in one
# run, suite by suite: each suite's verdict in both tools, and the total time of each.
#
#   hack/bench/kyverno-suites.sh DIR            # a checkout of github.com/kyverno/policies
#   hack/bench/kyverno-suites.sh "$(go list -m -f '{{.Dir}}' github.com/kyverno/kyverno)/test/cli"
#
# Prints one TSV line per suite (suite, kyverno exit, gitgate exit, gitgate's reason when
# it fails) to $WORK/suites.tsv and a summary: suites passing in both, in kyverno only
# (gitgate fails them: each names what it did not evaluate or what differs), in gitgate
# only, in neither; total wall time of each tool. Nothing is committed from DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
dir=$(cd "${1:?usage: hack/bench/kyverno-suites.sh DIR}" && pwd)
work=${WORK:-$root/.cache/bench/suites}
mkdir -p "$work"
go build -o "$work/gitgate" ./cmd/gitgate
kyverno=$(hack/bench/kyverno-cli.sh)

mapfile -t suites < <(find "$dir" -name kyverno-test.yaml -not -path '*/.git/*' -printf '%h\n' | sort -u)
: >"$work/suites.tsv"
kt=0 gt=0
both=0 konly=0 gonly=0 neither=0
for s in "${suites[@]}"; do
  rel=${s#"$dir"/}
  t0=$(date +%s.%N)
  # From DIR, as a user in that checkout runs them: suites name files beside them (../x.yaml).
  ke=0; (cd "$dir" && "$kyverno" test "$rel") >"$work/k.out" 2>&1 || ke=$?
  t1=$(date +%s.%N)
  ge=0; (cd "$dir" && "$work/gitgate" test "$rel") >"$work/g.out" 2>&1 || ge=$?
  t2=$(date +%s.%N)
  kt=$(echo "$kt + $t1 - $t0" | bc); gt=$(echo "$gt + $t2 - $t1" | bc)
  why=""
  if [ "$ge" != 0 ]; then why=$(grep -v -m1 -E '^TEST|results:' "$work/g.out" | tr '\t' ' ' | cut -c1-200 || true); fi
  printf '%s\t%s\t%s\t%s\n' "$rel" "$ke" "$ge" "$why" >>"$work/suites.tsv"
  case "$ke,$ge" in
    0,0) both=$((both + 1)) ;;
    0,*) konly=$((konly + 1)) ;;
    *,0) gonly=$((gonly + 1)) ;;
    *) neither=$((neither + 1)) ;;
  esac
done
printf 'suites %d: pass in both %d, kyverno only %d, gitgate only %d, neither %d\n' "${#suites[@]}" "$both" "$konly" "$gonly" "$neither"
printf 'total wall: kyverno test %.1f s, gitgate test %.1f s, ratio %.2f\n' "$kt" "$gt" "$(echo "$gt / $kt" | bc -l)"
echo "per suite: $work/suites.tsv"
