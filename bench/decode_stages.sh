#!/usr/bin/env bash
# One core's decode path split by stage (docs/benchmarks.md, "Resampling with AVX2"): images/s of
# decoding alone, decoding + resize + center crop, and the whole exact path (+ normalisation),
# for one or more builds side by side, interleaved in every round; medians over the rounds.
# Photos: PER_SEED x 8 distinct 500x375 JPEGs made by make_photos.py (default 64: 512 photos).
# Usage: bench/decode_stages.sh BUILD_DIR [BUILD_DIR...]   (ROUNDS, default 5; prints a table)
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: bench/decode_stages.sh BUILD_DIR [BUILD_DIR...]" >&2; exit 64; }
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds="${ROUNDS:-5}"
per_seed="${PER_SEED:-64}"
work="$(mktemp -d /tmp/mll-bench-stages.XXXXXX)"
trap 'rm -rf "$work"' EXIT
seq -f 'folder%g' 8 >"$work/seeds.txt"  # make_photos.py's folders
/usr/bin/python3 "$root/bench/make_photos.py" "$root/tests/data/image" "$work/photos" "$per_seed" \
  "$work/seeds.txt"
mapfile -t photos < <(find "$work/photos" -name '*.jpg' | sort)
stages=(--decode-only --crop-only full)
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
for ((r = 0; r < rounds; r++)); do
  for ((i = 1; i <= $#; i++)); do
    for s in "${stages[@]}"; do
      flag=()
      [[ $s != full ]] && flag=("$s")
      "${!i}/src/image/mll_preprocess_bench" --repeats 1 "${flag[@]}" "${photos[@]}" |
        awk '/median/ {print $2}' >>"$work/$i-${s#--}.rate"
    done
  done
done
echo "${#photos[@]} distinct 500x375 photos, one core, medians of $rounds interleaved rounds (images/s)"
echo "| build | decode | decode + resize + crop | whole exact path |"
echo "|---|---:|---:|---:|"
for ((i = 1; i <= $#; i++)); do
  row="| ${!i}"
  for s in "${stages[@]}"; do
    row+=" | $(median <"$work/$i-${s#--}.rate")"
  done
  echo "$row |"
done
