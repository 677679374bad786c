#!/usr/bin/env bash
# Screenshots a gitgate report HTML page with headless Chromium (Debian: apt-get install
# chromium), to check that it looks right without a desktop:
#
#   gitgate report . -o html=/tmp/drift.html
#   hack/report-screenshot.sh /tmp/drift.html /tmp/drift.png [WIDTHxHEIGHT]
#
# The page is self-contained (no network), so --no-sandbox headless rendering is enough.
set -euo pipefail
html=${1:?usage: hack/report-screenshot.sh REPORT.html OUT.png [WIDTHxHEIGHT]}
png=${2:?usage: hack/report-screenshot.sh REPORT.html OUT.png [WIDTHxHEIGHT]}
size=${3:-1280x1600}
chromium=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$chromium" ]; then
  echo "report-screenshot: no chromium; apt-get install chromium" >&2
  exit 2
fi
"$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1 \
  --window-size="${size/x/,}" --screenshot="$(realpath -m "$png")" "file://$(realpath "$html")" 2>/dev/null
test -s "$png" && echo "$png"
