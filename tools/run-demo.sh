#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, and runs `mll demo`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tools/setup-deps.sh"
bash "$root/tools/build.sh"
exec "${MLL_BUILD_DIR:-$root/build}/src/app/mll" demo "$@"
