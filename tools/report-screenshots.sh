#!/usr/bin/env bash
# Makes the pictures of the docs: the zoo overview of the demo store, screenshot in headless
# Chromium into docs/img/zoo-overview.png (docs/reports.md, "Pictures for the docs").
#   tools/report-screenshots.sh [DEMO_DIR]   DEMO_DIR (default: mll-demo/) is reused when it
#                                            already holds the demo's store.h5, else mll demo
#                                            writes it.
# Needs a build (tools/build.sh) and chromium.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MLL_BUILD_DIR:-$root/build}"
mll="$build/src/app/mll"
demo="${1:-$root/mll-demo}"
chromium="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
[[ -x "$mll" ]] || { echo "no $mll: run tools/build.sh first" >&2; exit 64; }
[[ -n "$chromium" ]] || { echo "chromium is not installed" >&2; exit 64; }

if [[ ! -f "$demo/store.h5" ]]; then "$mll" demo --out "$demo"; fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$mll" report --store "$demo/store.h5" --out "$work/zoo-overview.html" --columns 14
mkdir -p "$root/docs/img"
# A private profile and no background services: the page needs no network.
"$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/profile" --window-size=1200,900 \
  --screenshot="$root/docs/img/zoo-overview.png" "file://$work/zoo-overview.html" 2>/dev/null
echo "wrote $root/docs/img/zoo-overview.png"
