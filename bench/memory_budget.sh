#!/usr/bin/env bash
# Memory-bounded groups (docs/labeling.md "Memory"): 12 ViT-B/32-sized authored models sharing one
# preprocessing config, labeled in one process under --memory (default 4GiB) and without a limit,
# side by side: peak RSS, images decoded per probe image, wall time, and whether both stores hold
# the same embeddings and labels (h5diff of every model file's datasets).
# Usage: bench/memory_budget.sh BUILD_DIR [MODELS] [BUDGET] [IMAGES_PER_SEED]
set -euo pipefail
build="${1:?usage: bench/memory_budget.sh BUILD_DIR [MODELS] [BUDGET] [IMAGES_PER_SEED]}"
models="${2:-12}"
budget="${3:-4GiB}"
per_seed="${4:-8}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mll="$build/src/app/mll"
work="$(mktemp -d /tmp/mll-bench-memory.XXXXXX)"
trap 'rm -rf "$work"' EXIT
photos=(astronaut chelsea coffee hubble motorcycle rocket)

# Eight seeds (43 nodes and captions), real JPEG photos: image forward passes dominate.
printf '%s\n' n02085620 n02099601 n02110958 n02086240 n02087394 n01440764 n01443537 n04037443 \
  > "$work/seeds.txt"
"$mll" graph build --log-level warn --seeds "$work/seeds.txt" -o "$work/graph.h5" >/dev/null
i=0
while read -r wnid; do
  mkdir -p "$work/img/$wnid"
  for ((k = 0; k < per_seed; k++)); do
    ln -f "$root/tests/data/image/${photos[$(( (i + k) % 6 ))]}.jpg" "$work/img/$wnid/$k.jpg"
  done
  i=$((i + 1))
done < "$work/seeds.txt"
for ((s = 1; s <= models; s++)); do
  "$mll" zoo synth --kind vit-b32 --seed "$s" --out "$work/vit" --zoo "$work/zoo.json" >/dev/null
done
echo "models: $models ViT-B/32-shaped, $(du -sh "$work/vit" | cut -f1) on disk; budget $budget"
for name in bounded unbounded; do
  "$mll" probe build --log-level warn --graph "$work/graph.h5" --images "$work/img" \
    --per-node "$per_seed" --store "$work/$name.h5" >/dev/null
done
images=$(find "$work/img" -name '*.jpg' | wc -l)
flags="--no-progress --device cpu --threads 2 --decode-threads 2 --zoo $work/zoo.json"
run() {  # NAME MEMORY
  /usr/bin/time -v "$mll" label --store "$work/$1.h5" $flags --memory "$2" \
    >"$work/$1.out" 2>"$work/$1.err"
  local rss wall
  rss=$(awk -F: '/Maximum resident/ {printf "%.2f", $2 / 1048576}' "$work/$1.err")
  wall=$(awk '/Elapsed \(wall/ {print $NF}' "$work/$1.err")
  echo "$1 (--memory $2): peak RSS $rss GiB, wall $wall; $(cat "$work/$1.out")"
  grep -o 'labeled in [0-9]* sub-groups' "$work/$1.err" || true
}
echo "probe images: $images"
run bounded "$budget"
run unbounded 0
same=yes
for f in "$work"/bounded.h5.d/*.h5; do
  id=$(basename "$f")
  for d in $(h5ls -r "$f" | awk '$2 == "Dataset" {print $1}'); do
    h5diff -q "$f" "$work/unbounded.h5.d/$id" "$d" "$d" >/dev/null || { same=no; echo "differs: $id $d"; }
  done
done
echo "stores identical (every dataset of every model file): $same"
