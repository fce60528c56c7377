#!/usr/bin/env bash
# Labeling from webdataset shards against the folder tree of the same images (docs/benchmarks.md,
# docs/probe.md "Sequential reading"): distinct 500x375 JPEGs (make_photos.py, PER_SEED per seed
# of 8 seeds), converted to shards of 256 samples by tools/folder_to_shards.py; one small
# (decode-bound) model; `mll label` end to end (process start included) on a fresh copy of each
# empty store, the two alternating, REPEATS times (default 5); medians and images/s side by side.
# Both read from a warm page cache (every image is read once before timing). The embeddings of the
# two stores are compared at the end (they must be equal, row for row by image name).
# Usage: bench/shards_vs_folder.sh BUILD_DIR [PER_SEED]   (REPEATS=N in the environment)
set -euo pipefail
build="${1:?usage: bench/shards_vs_folder.sh BUILD_DIR [PER_SEED]}"
per_seed="${2:-256}"
repeats="${REPEATS:-5}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mll="$build/src/app/mll"
work="$(mktemp -d /tmp/mll-bench-shards.XXXXXX)"
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

printf '%s\n' n02085620 n02099601 n02110958 n02086240 n02087394 n01440764 n01443537 n04037443 \
  > "$work/seeds8.txt"
"$mll" graph build --log-level warn --seeds "$work/seeds8.txt" -o "$work/graph8.h5" >/dev/null
/usr/bin/python3 "$root/bench/make_photos.py" "$root/tests/data/image" "$work/photos" "$per_seed" \
  "$work/seeds8.txt"
/usr/bin/python3 "$root/tools/folder_to_shards.py" "$work/photos" "$work/shards" --per-shard 256 \
  >/dev/null
"$mll" zoo synth --kind small --seed 1 --out "$work/small" --zoo "$work/zoo.json" >/dev/null
n=$(find "$work/photos" -name '*.jpg' | wc -l)
for source in folder shards; do
  if [[ $source == folder ]]; then from=(--images "$work/photos"); else from=(--shards "$work/shards"); fi
  "$mll" probe build --log-level warn --graph "$work/graph8.h5" "${from[@]}" --per-node "$per_seed" \
    --store "$work/$source-empty.h5" --force >/dev/null
done
cat "$work"/photos/*/*.jpg "$work"/shards/*.tar >/dev/null   # warm the page cache for both

fresh() {  # SOURCE: an empty copy of that store at $work/SOURCE.h5
  rm -rf "$work/$1.h5" "$work/$1.h5.d" "$work/$1.h5.digests" "$work/$1.h5.crops"
  cp "$work/$1-empty.h5" "$work/$1.h5"; cp -r "$work/$1-empty.h5.d" "$work/$1.h5.d"
}
timed() { local t0 t1; t0=$(now); "$@" >/dev/null; t1=$(now); secs "$t0" "$t1"; }
: >"$work/t-folder"; : >"$work/t-shards"
for ((r = 0; r < repeats; r++)); do
  for source in folder shards; do
    fresh "$source"
    timed "$mll" label --store "$work/$source.h5" --zoo "$work/zoo.json" --no-progress \
      --log-level warn --device cpu >>"$work/t-$source"
  done
done
f=$(median <"$work/t-folder"); s=$(median <"$work/t-shards")
echo "== shards vs folder tree: $n distinct 500x375 JPEGs, small model, default threads, $(nproc) cores, medians of $repeats"
printf '%-34s %8s %10s\n' source "time (s)" "images/s"
printf '%-34s %8.2f %10.0f\n' "folder tree ($n files)" "$f" "$(echo "$n / $f" | bc -l)"
printf '%-34s %8.2f %10.0f\n' "shards ($(ls "$work"/shards/*.tar | wc -l) x .tar, $(du -sh "$work/shards" | cut -f1))" \
  "$s" "$(echo "$n / $s" | bc -l)"
printf 'shards / folder (time): %.3f\n' "$(echo "$s / $f" | bc -l)"
echo "runs (s): folder $(tr '\n' ' ' <"$work/t-folder")| shards $(tr '\n' ' ' <"$work/t-shards")"

# The same embeddings, matched by image name (member name = path in the tree).
/usr/bin/python3 - "$work/folder.h5" "$work/shards.h5" <<'EOF'
import re, sys, h5py, numpy as np
def rows(path):
    f = h5py.File(path, "r")
    names = [p.decode() if isinstance(p, bytes) else p for p in f["probe/image_path"][:]]
    names = [re.sub(r"^.*?\.tar:\d+:", "", p) for p in names]
    model = next(iter(f["models"].keys()))
    return dict(zip(names, f["models/%s/image_embeddings" % model][:]))
a, b = rows(sys.argv[1]), rows(sys.argv[2])
same = a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
print("embeddings identical (%d images): %s" % (len(a), "yes" if same else "NO"))
sys.exit(0 if same else 1)
EOF
