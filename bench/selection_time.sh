#!/bin/sh
# Selection time on a synthetic store (docs/selection.md, "Benchmark").
# Usage: bench/selection_time.sh BUILD_DIR [WORK_DIR] [REPEATS=3]
# Writes a store of 2,000 nodes x 75 probe images (37,500 images shared by the nodes: 150,000
# memberships) and 49 models (d = 512), then times `mll select` on a 100-class task with fixed
# matches (matching is a separate, text-tower cost: bench/select_end_to_end.sh), for 10/50/100
# classes and 12/25/49 models; each cell the median of REPEATS runs (wall time, with the read and
# compute times of that run). BINARIES="old=/path/to/mll new=BUILD/src/app/mll" times several
# binaries on the same store, their runs interleaved (each repeat runs every binary once), so
# that a shared machine's load falls on all of them alike.
set -eu
build=${1:?build directory}
work=${2:-/tmp/mll-selection-bench}
repeats=${3:-3}
binaries=${BINARIES:-mll=$build/src/app/mll}
[ -f "$work/full/store.h5" ] || "$build/src/select/selection_time" "$work/full" 2000 37500 75 49 512 100
models_list() { seq -f 'model-%g' 100 $((100 + $1 - 1)) | paste -sd, -; }
subset_task() {  # first N classes of the task and matches
  /usr/bin/python3 - "$work/full" "$1" <<'PY'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
t = json.load(open(d + "/task.json")); t["classes"] = t["classes"][:n]; t["name"] = "bench%d" % n
m = json.load(open(d + "/matches.json")); m["classes"] = m["classes"][:n]
json.dump(t, open(d + "/task%d.json" % n, "w")); json.dump(m, open(d + "/matches%d.json" % n, "w"))
PY
}
echo "binary classes models wall_s read_s compute_s peak_rss_MiB"
for c in 10 50 100; do
  subset_task "$c"
  for m in 12 25 49; do
    for b in $binaries; do : >"$work/cell.${b%%=*}"; done
    r=0
    while [ "$r" -lt "$repeats" ]; do
      for b in $binaries; do
        /usr/bin/time -v "${b#*=}" select --store "$work/full/store.h5" \
          --task "$work/full/task$c.json" --matches "$work/full/matches$c.json" \
          --models "$(models_list "$m")" --out "$work/sel.json" >"$work/out.txt" 2>"$work/time.txt"
        wall=$(grep "Elapsed (wall" "$work/time.txt" | awk '{print $NF}' |
          awk -F: '{print $(NF-1)*60 + $NF}')
        rss=$(grep "Maximum resident" "$work/time.txt" | awk '{print int($NF/1024)}')
        times=$(sed -n 's/.*read \([^ ]*\) s, compute \([^ ]*\) s$/\1 \2/p' "$work/out.txt")
        echo "$wall $times $rss" >>"$work/cell.${b%%=*}"
      done
      r=$((r + 1))
    done
    for b in $binaries; do
      echo "${b%%=*} $c $m $(sort -n "$work/cell.${b%%=*}" | sed -n "$(((repeats + 1) / 2))p")"
    done
  done
done
