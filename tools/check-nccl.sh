#!/usr/bin/env bash
# Compiles the NCCL reduction (src/distributed/reduce_nccl.cpp and its caller) with -DMLL_WITH_NCCL=ON
# against a CUDA toolkit, with warnings as errors, so that the GPU path keeps compiling on
# machines without a GPU. Usage: tools/check-nccl.sh [CUDA_ROOT]   (default /usr/local/cuda)
# Exits 0 after printing "skipped" when the toolkit or NCCL is absent.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cuda="${1:-/usr/local/cuda}"
if [[ ! -f "$cuda/include/cuda_runtime.h" || ! -f "$cuda/include/nccl.h" ]]; then
  echo "check-nccl: skipped (no CUDA runtime + NCCL headers under $cuda)"
  exit 0
fi
build="${MLL_NCCL_BUILD_DIR:-$root/build-nccl}"
cmake -S "$root" -B "$build" -G Ninja -DMLL_WITH_NCCL=ON -DMLL_WERROR=ON -DMLL_BUILD_TESTS=OFF \
  -DCUDAToolkit_ROOT="$cuda" >/dev/null
objects=(src/distributed/CMakeFiles/mll_distributed.dir/reduce_nccl.cpp.o
         src/distributed/CMakeFiles/mll_distributed.dir/reduce.cpp.o)
ninja -C "$build" "${objects[@]}" >/dev/null
nm -C "$build/${objects[0]}" | grep -q " U ncclReduce" \
  || { echo "check-nccl: reduce_nccl.cpp.o does not call ncclReduce" >&2; exit 1; }
echo "check-nccl: NCCL reduction compiles against $cuda ($(basename "$(readlink -f "$cuda")"))"
