#!/usr/bin/env bash
# Renders a BraggKit report in headless Chromium and fails on broken images.
# Usage: bench/check_report.sh DIR/report.html [SCREENSHOT.png]
set -euo pipefail
page=$(readlink -f "${1:-demo-out/report.html}")
shot=${2:-docs/report-screenshot.png}
[ -f "$page" ] || { echo "check-report: $page not found (run make demo first)" >&2; exit 2; }
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "check-report: chromium is not installed" >&2; exit 2; }
flags=(--headless --no-sandbox --disable-gpu --allow-file-access-from-files --virtual-time-budget=5000)
dom=$("$browser" "${flags[@]}" --dump-dom "file://$page" 2>/dev/null)
images=$(grep -o 'data-images="[0-9]*"' <<<"$dom" | grep -o '[0-9]*' || true)
broken=$(grep -o 'data-broken-images="[^"]*"' <<<"$dom" | sed 's/.*="\(.*\)"/\1/' || true)
if [ -z "$images" ]; then echo "check-report: the page did not finish loading" >&2; exit 1; fi
if [ "$broken" != "none" ]; then echo "check-report: broken images: $broken" >&2; exit 1; fi
mkdir -p "$(dirname "$shot")"
"$browser" "${flags[@]}" --hide-scrollbars --window-size=1280,4000 --screenshot="$shot" "file://$page" >/dev/null 2>&1
echo "check-report: $images images, none broken; screenshot $shot"
