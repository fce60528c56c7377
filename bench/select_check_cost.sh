#!/usr/bin/env bash
# What checking the text tower's file against the store costs `mll select` (docs/benchmarks.md,
# "The tower's file checked against the store"): the first task with an empty text cache, run by
# OLD_BUILD (before the check) and NEW_BUILD with and without `<store>.digests`, interleaved,
# model files read into the page cache before each round; prints each round and the medians.
# Uses the store, zoo and task of bench/select_end_to_end.sh (run it first with the same WORK_DIR).
# Usage: bench/select_check_cost.sh OLD_BUILD NEW_BUILD [WORK_DIR=/tmp/mll-select-e2e] [ROUNDS=5]
set -euo pipefail
old="${1:?usage: bench/select_check_cost.sh OLD_BUILD NEW_BUILD [WORK_DIR] [ROUNDS]}"
new="${2:?usage: bench/select_check_cost.sh OLD_BUILD NEW_BUILD [WORK_DIR] [ROUNDS]}"
work="${3:-/tmp/mll-select-e2e}"
rounds="${4:-5}"
full="$work/full"
[[ -f $full/store.h5 ]] || { echo "no $full/store.h5: run bench/select_end_to_end.sh first" >&2; exit 64; }
kept="$(mktemp)"
trap 'rm -f "$kept" "$kept.t"' EXIT
# A digests file as `mll label` leaves it: made by one run of the new build.
rm -rf "$full/store.h5.text-cache" "$full/store.h5.digests"
"$new/src/app/mll" select --store "$full/store.h5" --task "$full/task.json" --zoo "$work/zoo/zoo.json" \
  --out "$work/sel.json" >/dev/null 2>&1
cp "$full/store.h5.digests" "$kept"
one() {  # MLL: seconds of one first task
  rm -rf "$full/store.h5.text-cache"
  /usr/bin/time -f "%e" -o "$kept.t" "$1" select --store "$full/store.h5" --task "$full/task.json" \
    --zoo "$work/zoo/zoo.json" --out "$work/sel.json" >/dev/null 2>&1
  cat "$kept.t"
}
for ((r = 0; r < rounds; r++)); do
  cat "$work"/zoo/*.pt >/dev/null
  o=$(one "$old/src/app/mll")
  cp "$kept" "$full/store.h5.digests"; n=$(one "$new/src/app/mll")
  rm -f "$full/store.h5.digests"; h=$(one "$new/src/app/mll")
  echo "old $o new-with-digests $n new-without-digests $h"
done | tee "$work/check-cost.txt"
cp "$kept" "$full/store.h5.digests"
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
for c in 2 4 6; do
  printf '%s median %s s\n' "$(awk -v c=$((c - 1)) 'NR == 1 {print $c}' "$work/check-cost.txt")" \
    "$(awk -v c=$c '{print $c}' "$work/check-cost.txt" | median)"
done
