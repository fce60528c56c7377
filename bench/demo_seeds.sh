#!/usr/bin/env bash
# MLL against its baselines over several synthetic worlds: runs `mll demo` for world seeds
# 0..N-1 and prints each seed's average row and the mean over seeds (every seed is reported).
# Usage: bench/demo_seeds.sh BUILD_DIR [SEEDS=5]
set -euo pipefail
build="${1:?usage: bench/demo_seeds.sh BUILD_DIR [SEEDS]}"
seeds="${2:-5}"
work="$(mktemp -d /tmp/mll-bench-seeds.XXXXXX)"
trap 'rm -rf "$work"' EXIT
echo "| seed | MLL k=1 | MLL k=3 | INB | INB-3 | Random | All models | Oracle |"
echo "|---|---|---|---|---|---|---|---|"
for ((s = 0; s < seeds; s++)); do
  "$build/src/app/mll" demo --log-level warn --out "$work/seed$s" --seed "$s" |
    awk -v s="$s" '/\*\*average\*\*/ {gsub(/\*\*/, ""); sub(/\| average/, "| " s); print}'
done | tee "$work/rows"
awk -F'|' '{for (i = 3; i <= 9; i++) sum[i] += $i; n++}
  END {printf "| mean |"; for (i = 3; i <= 9; i++) printf " %.1f |", sum[i] / n; print ""}' "$work/rows"
