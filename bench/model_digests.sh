#!/bin/sh
# The start-up cost of `mll label` that hashing model files adds (docs/benchmarks.md, "Model
# digests"): N ViT-B/32-shaped authored models (~600 MB of float32 TorchScript each, the size of
# the real ones), a store where every model is already labeled (a tiny probe set), then
# `mll label` with nothing to do, side by side, medians of 3, warm page cache:
#   rehash   --rehash: every file hashed (what every run did before <store>.digests)
#   cached   the digests remembered by the previous run: no file hashed
# Usage: bench/model_digests.sh BUILD_DIR [MODELS] [WORK_DIR]
set -eu
build=${1:?build directory}
models=${2:-6}
work=${3:-/tmp/mll-digest-bench}
mll=$build/src/app/mll
mkdir -p "$work"
if [ ! -f "$work/store.h5" ]; then
  printf 'n02085620\nn02099601\nn01440764\nn01443537\n' >"$work/seeds.txt"
  "$mll" graph build --seeds "$work/seeds.txt" -o "$work/graph.h5" >/dev/null
  "$mll" synth --graph "$work/graph.h5" --out "$work/w" --models 1 --images-per-concept 1 \
    --size 224 >/dev/null
  echo '{"models": []}' >"$work/zoo.json"
  i=0
  while [ "$i" -lt "$models" ]; do
    "$mll" zoo synth --kind vit-b32 --out "$work/models" --seed "$i" >/dev/null
    i=$((i + 1))
  done
  "$mll" zoo add "$work"/models/*.json --zoo "$work/zoo.json" >/dev/null
  "$mll" probe build --graph "$work/graph.h5" --images "$work/w/images" --store "$work/store.h5" \
    --per-node 1 >/dev/null
  "$mll" label --store "$work/store.h5" --zoo "$work/zoo.json" --no-progress >/dev/null 2>&1
fi
bytes=$(du -cb "$work"/models/*.pt | tail -1 | cut -f1)
echo "model files: $(ls "$work"/models/*.pt | wc -l), $((bytes / 1048576)) MiB"
cat "$work"/models/*.pt >/dev/null  # warm the page cache
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timed() {
  start=$(date +%s.%N); "$@" >/dev/null 2>&1; end=$(date +%s.%N)
  echo "$end - $start" | bc
}
for what in rehash cached; do
  for run in 1 2 3; do
    case $what in
      rehash) timed "$mll" label --store "$work/store.h5" --zoo "$work/zoo.json" --rehash ;;
      cached) timed "$mll" label --store "$work/store.h5" --zoo "$work/zoo.json" ;;
    esac
  done | median | sed "s/^/$what: /;s/$/ s (median of 3)/"
done
