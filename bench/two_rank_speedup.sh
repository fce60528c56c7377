#!/usr/bin/env bash
# 2-rank speedup of `mll label` on a compute-bound zoo: two ViT-B/32-shaped models (random
# weights, 224 px) over 4 seeds x PER_SEED real photos (hard links to the test photos of
# tests/data/image), one preprocessing group cut into 12-image shards. Runs, side by side and
# alternating:
#   A: mpirun -np 1, 1 model thread     B: mpirun -np 2, 1 thread per rank
#   C: one process, 2 model threads (intra-op parallelism instead of ranks)
# and prints the median wall time of each and the ratios A/B and C/B.
# Usage: bench/two_rank_speedup.sh BUILD_DIR [REPEATS] [PER_SEED]   (defaults: 3, 144)
set -euo pipefail
build="${1:?usage: bench/two_rank_speedup.sh BUILD_DIR [REPEATS] [PER_SEED]}"
repeats="${2:-3}"
per_seed="${3:-144}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mll="$build/src/app/mll"
work="$(mktemp -d /tmp/mll-bench-2rank.XXXXXX)"
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

seeds=(n02085620 n02099601 n02110958 n01440764)
printf '%s\n' "${seeds[@]}" > "$work/seeds.txt"
"$mll" graph build --log-level warn --seeds "$work/seeds.txt" -o "$work/graph.h5" >/dev/null
photos=(astronaut chelsea coffee hubble motorcycle rocket)
for wnid in "${seeds[@]}"; do
  mkdir -p "$work/images/$wnid"
  for ((k = 0; k < per_seed; k++)); do
    ln -f "$root/tests/data/image/${photos[$((k % 6))]}.jpg" "$work/images/$wnid/$k.jpg"
  done
done
for s in 1 2; do
  "$mll" zoo synth --kind vit-b32 --seed "$s" --out "$work/models" --zoo "$work/zoo.json" >/dev/null
done
"$mll" probe build --log-level warn --graph "$work/graph.h5" --images "$work/images" \
  --per-node "$per_seed" --store "$work/empty.h5" >/dev/null

run() {  # name, command prefix, extra flags
  rm -rf "$work/s.h5" "$work/s.h5.d"
  cp "$work/empty.h5" "$work/s.h5"
  cp -r "$work/empty.h5.d" "$work/s.h5.d"
  local start end
  start=$(date +%s.%N)
  $2 "$mll" label --log-level warn --no-progress --store "$work/s.h5" --zoo "$work/zoo.json" \
    --batch 12 --unit 12 --device cpu $3 >/dev/null
  end=$(date +%s.%N)
  echo "$1 $(echo "$end - $start" | bc)" >> "$work/times"
}
for ((r = 0; r < repeats; r++)); do
  run A "mpirun -np 1" "--threads 1 --decode-threads 1"
  run B "mpirun -np 2" "--threads 1 --decode-threads 1"
  run C "" "--threads 2 --decode-threads 2"
done
median() { grep "^$1 " "$work/times" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "runs (s):"; sort -s -k1,1 "$work/times" | awk '{printf "  %s %.2f\n", $1, $2}'
a=$(median A); b=$(median B); c=$(median C)
images=$(( ${#seeds[@]} * per_seed ))
echo "2 ViT-B/32 models x $images images, batch 12, $(nproc) cores, $repeats repeats (median s)"
printf 'A  1 rank,  1 thread        %7.2f s\n' "$a"
printf 'B  2 ranks, 1 thread each   %7.2f s\n' "$b"
printf 'C  1 process, 2 threads     %7.2f s\n' "$c"
printf 'speedup A/B (2 ranks vs 1)  %7.2f\n' "$(echo "$a / $b" | bc -l)"
printf 'ratio   C/B (ranks vs threads) %5.2f\n' "$(echo "$c / $b" | bc -l)"
