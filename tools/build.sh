#!/usr/bin/env bash
# Configures and builds mll in $MLL_BUILD_DIR (default: build/). Extra arguments go to cmake's
# configure step, e.g. -DMLL_WERROR=ON or -DTorch_DIR=/path/to/libtorch/share/cmake/Torch.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MLL_BUILD_DIR:-$root/build}"
jobs="${MLL_JOBS:-$(nproc)}"
generator=()
if command -v ninja >/dev/null && [[ ! -f "$build/CMakeCache.txt" ]]; then generator=(-G Ninja); fi
cmake -S "$root" -B "$build" "${generator[@]}" "$@" >/dev/null
cmake --build "$build" -j "$jobs"
