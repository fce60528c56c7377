#!/usr/bin/env bash
# `mll select` with default options, end to end (docs/benchmarks.md, "Selection end to end").
# Usage: bench/select_end_to_end.sh BUILD_DIR [WORK_DIR] [MODEL_FILES=6] [REPEATS=5]
#
# The store of bench/selection_time.sh (2,000 nodes x 75 probe images over 37,500 images,
# 49 models of d = 512) and a zoo of 49 sidecars for its models over MODEL_FILES distinct
# ViT-B/32-sized authored TorchScript files (~605 MB each; sidecar i names file i mod
# MODEL_FILES; imagenet_top1 = 0.30 + 0.005 i, so the default rule picks model-148, whose stored
# caption rows are its tower's embeddings of the captions). The task: 100 classes named after node
# lemmas (text and lemma evidence), no fixed matches.
# Per repeat, with the model files in the page cache: the first task with an empty text cache,
# the same task again, and a second task (another name) with the same class texts. Then, once,
# the per-tower cost of matching without the cache over MODEL_FILES distinct towers (what the
# old default paid for each of the 49 models). Prints one line per run and the medians.
# Big files stay in WORK_DIR: delete it when done (the model files take MODEL_FILES x 605 MB).
set -euo pipefail
build="${1:?usage: bench/select_end_to_end.sh BUILD_DIR [WORK_DIR] [MODEL_FILES] [REPEATS]}"
work="${2:-/tmp/mll-select-e2e}"
files="${3:-6}"
repeats="${4:-5}"
mll="$build/src/app/mll"
full="$work/full"
mkdir -p "$work/zoo"
for ((f = 0; f < files; f++)); do
  [ -f "$work/zoo/vitb32-$f.pt" ] ||
    "$mll" zoo synth --kind vit-b32 --seed "$f" --id "vitb32-$f" --out "$work/zoo" >/dev/null
done
# Each model's record names the file its sidecar names (vitb32-(i mod MODEL_FILES).pt) by its
# SHA-256, as `mll label` would have recorded it: select checks a tower's file before using it.
for ((i = 0; i < 49; i++)); do sha256sum "$work/zoo/vitb32-$((i % files)).pt" | cut -c1-64; done \
  >"$work/digests.txt"
cmp -s "$work/digests.txt" "$full/digests.txt" || rm -rf "$full/store.h5" "$full/store.h5.d"
# The tower the default rule picks (model-148) stores its own caption embeddings.
[ -f "$full/store.h5" ] || "$build/src/select/selection_time" "$full" 2000 37500 75 49 512 100 \
  "$work/zoo/vitb32-$((48 % files)).json" model-148 "$work/digests.txt"
cp "$work/digests.txt" "$full/digests.txt"
/usr/bin/python3 - "$work" "$files" <<'PY'
import json, sys
work, files = sys.argv[1], int(sys.argv[2])
base = json.load(open(f"{work}/zoo/vitb32-0.json"))
entries = []
for i in range(49):
    s = dict(base, id=f"model-{100 + i}", model=f"vitb32-{i % files}.pt",
             imagenet_top1=round(0.30 + 0.005 * i, 3))
    json.dump(s, open(f"{work}/zoo/model-{100 + i}.json", "w"), indent=1)
    entries.append({"id": s["id"], "sidecar": f"model-{100 + i}.json"})
json.dump({"models": entries}, open(f"{work}/zoo/zoo.json", "w"), indent=1)
t = json.load(open(f"{work}/full/task.json"))
json.dump(dict(t, name="bench-second"), open(f"{work}/full/task2.json", "w"))
PY
cat "$work"/zoo/vitb32-*.pt >/dev/null  # warm page cache

# run LABEL TASK [select options]: one timed `mll select`; prints a result line.
run() {
  local label=$1 task=$2
  shift 2
  /usr/bin/time -v "$mll" select --store "$full/store.h5" --task "$task" --zoo "$work/zoo/zoo.json" \
    --out "$work/sel.json" "$@" >"$work/out.txt" 2>"$work/time.txt"
  local wall rss line
  wall=$(grep "Elapsed (wall" "$work/time.txt" | awk '{print $NF}' | awk -F: '{print $(NF-1)*60 + $NF}')
  rss=$(grep "Maximum resident" "$work/time.txt" | awk '{print int($NF/1024)}')
  line=$(grep "  time: match" "$work/out.txt" | sed 's/^  time: //')
  echo "$label wall_s=$wall peak_rss_MiB=$rss $line"
}

echo "date: $(date)"
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
for ((r = 0; r < repeats; r++)); do
  rm -rf "$full/store.h5.text-cache"
  run first "$full/task.json"
  run again "$full/task.json"
  run second "$full/task2.json"
done | tee "$work/runs.txt"
for label in first again second; do
  awk -v l="$label" '$1 == l {split($2, a, "="); split($3, b, "="); print a[2], b[2]}' \
    "$work/runs.txt" | sort -n | awk -v l="$label" '{w[NR] = $1; if ($2 > m) m = $2}
    END {printf "median %s: wall %.2f s, largest peak RSS %d MiB (%d runs)\n", l,
         w[int((NR + 1) / 2)], m, NR}'
done
towers=$(seq -f 'model-%g' 100 $((100 + files - 1)) | paste -sd, -)
run "towers-$files-uncached" "$full/task.json" --match-models "$towers" --text-cache none
