#!/usr/bin/env bash
# Forward images/s of the ViT-B/32-shaped image tower (random weights, authored in C++) on the CPU
# with 1 and 2 threads, batch 32, median of repeated batches after a warm-up.
#
#   bench/forward_throughput.sh [BUILD_DIR] [extra mll_forward_bench args, e.g. --repeats 7]
#
# Builds the mll_forward_bench target (excluded from the default build) if needed.
set -euo pipefail
build_dir=${1:-build}
shift || true
cmake --build "$build_dir" --target mll_forward_bench -j2 >/dev/null
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
exec "$build_dir/src/zoo/mll_forward_bench" --kind vit-b32 --threads 1,2 --batch 32 --repeats 5 "$@"
