#!/usr/bin/env bash
# How much compute two busy cores of this machine give against one: the ceiling of any 2-rank
# (or 2-thread) speedup. Runs the ViT-B/32-shaped forward pass (mll_forward_bench, 1 thread,
# batch 12 as in bench/two_rank_speedup.sh) alone, then two copies at once, alternating, and
# prints the median images/s of each and the ratio (aggregate of two / one alone).
# Usage: bench/core_scaling.sh [BUILD_DIR] [REPEATS]   (defaults: build, 3)
set -euo pipefail
build="${1:-build}"
repeats="${2:-3}"
cmake --build "$build" --target mll_forward_bench -j2 >/dev/null
exe="$build/src/zoo/mll_forward_bench"
work="$(mktemp -d /tmp/mll-bench-cores.XXXXXX)"
trap 'rm -rf "$work"' EXIT
rate() { sed -nE 's/.*images_per_s=([0-9.]+).*/\1/p' "$1"; }
args=(--kind vit-b32 --threads 1 --batch 12 --repeats 5)
for ((r = 0; r < repeats; r++)); do
  "$exe" "${args[@]}" > "$work/alone.txt"
  echo "alone $(rate "$work/alone.txt")" >> "$work/rates"
  "$exe" "${args[@]}" > "$work/a.txt" & pa=$!
  "$exe" "${args[@]}" > "$work/b.txt" & pb=$!
  wait "$pa" "$pb"
  echo "pair $(echo "$(rate "$work/a.txt") + $(rate "$work/b.txt")" | bc -l)" >> "$work/rates"
done
median() { grep "^$1 " "$work/rates" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
one=$(median alone); two=$(median pair)
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
printf 'one process, 1 thread          %6.2f images/s\n' "$one"
printf 'two processes at once, total   %6.2f images/s\n' "$two"
printf 'ratio (2-core ceiling)         %6.2f\n' "$(echo "$two / $one" | bc -l)"
