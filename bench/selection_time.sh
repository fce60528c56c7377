#!/bin/sh
# Selection time on a synthetic store (docs/selection.md, "Benchmark").
# Usage: bench/selection_time.sh BUILD_DIR [WORK_DIR]
# Writes a store of 2,000 nodes x 75 probe images (37,500 images shared by the nodes: 150,000
# memberships) and 49 models (d = 512), then times `mll select` on a 100-class task with fixed
# matches (matching is a separate, text-tower cost), for 10/50/100 classes and 12/25/49 models.
set -eu
build=${1:?build directory}
work=${2:-/tmp/mll-selection-bench}
mll=$build/src/app/mll
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
echo "classes models wall_s read_s compute_s peak_rss_MiB"
for c in 10 50 100; do
  subset_task "$c"
  for m in 12 25 49; do
    /usr/bin/time -v "$mll" select --store "$work/full/store.h5" --task "$work/full/task$c.json" \
      --matches "$work/full/matches$c.json" --models "$(models_list "$m")" \
      --out "$work/sel.json" >"$work/out.txt" 2>"$work/time.txt"
    wall=$(grep "Elapsed (wall" "$work/time.txt" | awk '{print $NF}')
    rss=$(grep "Maximum resident" "$work/time.txt" | awk '{print int($NF/1024)}')
    times=$(sed -n 's/.*, read \([^ ]*\) s, compute \([^ ]*\) s$/\1 \2/p' "$work/out.txt")
    echo "$c $m $wall $times $rss"
  done
done
