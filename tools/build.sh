#!/usr/bin/env bash
# Configures and builds mll in $MLL_BUILD_DIR (default: build/). Extra arguments go to cmake's
# configure step, e.g. -DMLL_WERROR=ON or -DTorch_DIR=/path/to/libtorch/share/cmake/Torch.
#   tools/build.sh --no-mpi [cmake args]   the build without MPI (-DMLL_WITH_MPI=OFF: `mll label`
#                                          runs in one process) in $MLL_NOMPI_BUILD_DIR
#                                          (default: build-nompi/), the mll binary only.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MLL_BUILD_DIR:-$root/build}"
jobs="${MLL_JOBS:-$(nproc)}"
targets=()
if [[ "${1:-}" == "--no-mpi" ]]; then
  shift
  build="${MLL_NOMPI_BUILD_DIR:-$root/build-nompi}"
  set -- -DMLL_WITH_MPI=OFF -DMLL_BUILD_TESTS=OFF "$@"
  targets=(--target mll)
fi
# ccache (when installed) shares objects between the build folders of one checkout: paths are
# taken relative to the checkout and the folder is left out of the hash.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$root}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-true}"
generator=()
if command -v ninja >/dev/null && [[ ! -f "$build/CMakeCache.txt" ]]; then generator=(-G Ninja); fi
cmake -S "$root" -B "$build" "${generator[@]}" "$@" >/dev/null
cmake --build "$build" -j "$jobs" "${targets[@]}"
