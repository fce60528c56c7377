#!/usr/bin/env bash
# Labeling pipeline benchmarks (docs/benchmarks.md), side by side in one run:
#  1. decode once: 4 small models sharing one preprocessing config labeled as a group vs one by
#     one (images decoded per probe image, wall time);
#  2. pipeline efficiency: pure forward time / end-to-end `mll label` time, one process, for the
#     ViT-B/32-shaped model (forward-bound) and a small model (decode-bound);
#  3. store bytes per model against the P x N float32 label matrix the paper's code keeps;
#  4. peak memory of `mll label` at three probe-set sizes (2,000 / 8,000 / 16,000 images);
#  5. `mll label` against an equivalent Python pipeline (python3-torch + a DataLoader with
#     PIL/torchvision transforms, the same TorchScript model and images);
#  6. the image cache: a small model labeled with --image-cache (cold: decodes and writes the
#     crops), then a second small model added to the same store (warm: reads them);
#  7. decode-bound labeling at the decode ceiling: 2,048 distinct 500x375 JPEGs (make_photos.py;
#     PER_SEED=N for 8 x N),
#     the small model, default threads: mll label against the machine's decode ceiling (mll's
#     exact decode path, one core, times the usable cores), the Python DataLoader pipeline, and a
#     warm image cache against a cold one; medians of REPEATS (default 5) runs, side by side;
#     with OLD_BUILD, also the old build's runs and its own decode ceiling (the ceiling before a
#     faster decode path raised it); and the floor of a run on this machine, from the work no
#     schedule can avoid: decoding (the ceiling's rate), loading the engine (dlopen of
#     libmll_torch.so and libtorch alone, in a bare Python process) and the forward passes
#     (mll_forward_bench, one thread, the batch read in place), spread over the cores without
#     a moment idle; a warm run's floor is the engine load, which comes before its first forward
#     pass, plus the forward passes on all cores;
#  8. a forward-bound model on a warm image cache: the ViT-B/32-shaped model, 128 distinct
#     photos read from the cache, default threads (the model takes the decode threads' CPUs
#     when nothing is decoded), against OLD_BUILD when given; medians of REPEATS (default 3).
# Probe images are hard links to the six test photos (tests/data/image), one folder per class.
# Usage: bench/label_pipeline.sh BUILD_DIR [SECTION...]   (default: all eight sections)
#        sections 7 and 8 also read REPEATS and OLD_BUILD (another build run side by side),
#        section 7 PER_SEED
set -euo pipefail
build="${1:?usage: bench/label_pipeline.sh BUILD_DIR [SECTION...]}"
shift
sections="${*:-1 2 3 4 5 6 7 8}"
want() { [[ " $sections " == *" $1 "* ]]; }
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mll="$build/src/app/mll"
work="$(mktemp -d /tmp/mll-bench-label.XXXXXX)"
trap 'rm -rf "$work"' EXIT
photos=(astronaut chelsea coffee hubble motorcycle rocket)
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }

"$mll" graph build --log-level warn -o "$work/graph.h5" >/dev/null   # ImageNet-1k: 1,860 nodes
make_images() {  # DIR PER_SEED: real JPEG photos, one folder per ImageNet-1k class
  local i=0
  while read -r wnid _; do
    mkdir -p "$1/$wnid"
    for ((k = 0; k < $2; k++)); do
      ln -f "$root/tests/data/image/${photos[$(( (i + k) % 6 ))]}.jpg" "$1/$wnid/$k.jpg"
    done
    i=$((i + 1))
  done < "$root/data/imagenet/imagenet1k_wnids.txt"
}
make_images "$work/img1" 1
# Eight seeds (43 nodes, 43 captions) for the ViT-B/32 runs: image forward passes dominate there,
# as in real labeling, where captions are ~1% of rows.
printf '%s\n' n02085620 n02099601 n02110958 n02086240 n02087394 n01440764 n01443537 n04037443 \
  > "$work/seeds8.txt"
"$mll" graph build --log-level warn --seeds "$work/seeds8.txt" -o "$work/graph8.h5" >/dev/null
make_seed_images() {  # DIR PER_SEED: real JPEG photos, one folder per seed
  local i=0
  while read -r wnid; do
    mkdir -p "$1/$wnid"
    for ((k = 0; k < $2; k++)); do
      ln -f "$root/tests/data/image/${photos[$(( (i + k) % 6 ))]}.jpg" "$1/$wnid/$k.jpg"
    done
    i=$((i + 1))
  done < "$work/seeds8.txt"
}
for s in 1 2 3 4; do
  "$mll" zoo synth --kind small --seed "$s" --out "$work/small" --zoo "$work/small4.json" >/dev/null
done
"$mll" zoo add "$work/small/small-s1.json" --zoo "$work/small1.json" >/dev/null
"$mll" zoo synth --kind vit-b32 --seed 1 --out "$work/vit" --zoo "$work/vit.json" >/dev/null
store() {  # NAME IMAGES PER_NODE
  "$mll" probe build --log-level warn --graph "$work/graph.h5" --images "$2" --per-node "$3" \
    --store "$work/$1.h5" --force >/dev/null
}
flags="--log-level warn --no-progress --device cpu --threads 2 --decode-threads 2"

if want 1 || want 3; then
echo "== 1. decode once: 4 small models (224 px, same preprocessing), 1,000 probe images"
store group "$work/img1" 1
t0=$(now); out=$("$mll" label --store "$work/group.h5" --zoo "$work/small4.json" $flags); t1=$(now)
echo "group:      $out; $(secs "$t0" "$t1") s"
store single "$work/img1" 1
decoded=0; t0=$(now)
for s in 1 2 3 4; do
  out=$("$mll" label --store "$work/single.h5" --zoo "$work/small4.json" --models "small-s$s" $flags)
  decoded=$((decoded + $(echo "$out" | sed -E 's/.*\(([0-9]+) images decoded.*/\1/')))
done
t1=$(now)
echo "one by one: $decoded images decoded; $(secs "$t0" "$t1") s"
fi

if want 2; then
echo "== 2. pipeline efficiency (forward time / end-to-end mll label), 1 process, 2 threads"
# The ViT-B/32 run labels 8 seeds x 256 photos (2,048 images), long enough to amortise the fixed
# costs (process start, hashing and loading a 600 MB TorchScript file). The small model labels
# 1,000 images on the ImageNet-1k graph.
make_seed_images "$work/img8" 256
for kind in vit-b32 small; do
  if [[ $kind == vit-b32 ]]; then zoo="$work/vit.json"; img="$work/img8"; graph="$work/graph8.h5"; per=256
  else zoo="$work/small1.json"; img="$work/img1"; graph="$work/graph.h5"; per=1; fi
  "$mll" probe build --log-level warn --graph "$graph" --images "$img" --per-node "$per" \
    --store "$work/eff-$kind.h5" --force >/dev/null
  # The forward time is measured inside the same run (time spent in encode_image/encode_text),
  # so machine noise affects both sides alike.
  t0=$(now); out=$("$mll" label --store "$work/eff-$kind.h5" --zoo "$zoo" --batch 32 $flags); t1=$(now)
  e2e=$(secs "$t0" "$t1")
  fwd=$(echo "$out" | sed -E 's/.* ([0-9.]+) s in model forward passes.*/\1/')
  n=$(echo "$out" | sed -E 's/.*\(([0-9]+) images decoded.*/\1/')
  printf '%s: %d images + captions; forward %.2f s; mll label end to end %.2f s; efficiency %.3f\n' \
    "$kind" "$n" "$fwd" "$e2e" "$(echo "$fwd / $e2e" | bc -l)"
done
fi

if want 3; then
echo "== 3. store bytes per model vs the P x N float32 matrix"
P=1000; N=$("$mll" graph stats -g "$work/graph.h5" | awk '/nodes/ {print $2; exit}')
for f in "$work"/group.h5.d/*.h5; do
  printf '%s: %d bytes; P x N x 4 = %d bytes; ratio %.1f\n' "$(basename "$f")" "$(stat -c %s "$f")" \
    $((P * N * 4)) "$(echo "$P * $N * 4 / $(stat -c %s "$f")" | bc -l)"
done

fi

if want 4; then
echo "== 4. peak memory of mll label (4 small models) at three probe-set sizes"
for per in 2 8 16; do
  make_images "$work/mem$per" "$per"
  store mem$per "$work/mem$per" "$per"
  t0=$(now)
  /usr/bin/time -v "$mll" label --store "$work/mem$per.h5" --zoo "$work/small4.json" $flags \
    2> "$work/time$per.txt" >/dev/null
  t1=$(now)
  echo "P = $((per * 1000)) images: max RSS $(awk -F: '/Maximum resident/ {print $2}' "$work/time$per.txt") kB; $(secs "$t0" "$t1") s"
done
fi

if want 5; then
echo "== 5. mll label vs a Python DataLoader pipeline, same TorchScript model and images"
for kind in small vit; do
  zoo="$work/small1.json"; img="$work/img1"
  if [[ $kind == vit ]]; then zoo="$work/vit.json"; img="$work/img192"; make_seed_images "$img" 24; fi
  model=$(ls "$work/$([[ $kind == vit ]] && echo vit || echo small)"/*.pt | head -1)
  graph="$work/graph.h5"; [[ $kind == vit ]] && graph="$work/graph8.h5"
  "$mll" probe build --log-level warn --graph "$graph" --images "$img" --per-node 24 \
    --store "$work/py$kind.h5" --force >/dev/null
  t0=$(now); "$mll" label --store "$work/py$kind.h5" --zoo "$zoo" $flags >/dev/null; t1=$(now)
  m=$(secs "$t0" "$t1")
  p=$(/usr/bin/python3 "$root/bench/python_pipeline.py" --model "$model" --images "$img" --threads 2 --workers 2)
  printf '%s: mll label %.2f s (captions and summary labels included), python image pass %.2f s, ratio python/mll %.2f\n' \
    "$kind" "$m" "$p" "$(echo "$p / $m" | bc -l)"
done
fi

if want 6; then
echo "== 6. image cache: 1,000 probe images, one small model cold, then an added model warm"
store cache "$work/img1" 1
for s in 1 2; do
  t0=$(now)
  out=$("$mll" label --store "$work/cache.h5" --zoo "$work/small4.json" --models "small-s$s" \
    --image-cache "$work/crops" $flags)
  t1=$(now)
  echo "$([[ $s == 1 ]] && echo cold || echo warm): $out; $(secs "$t0" "$t1") s"
done
echo "cache: $(du -sb "$work/crops" | cut -f1) bytes"
fi

if want 7; then
repeats="${REPEATS:-5}"
per_seed="${PER_SEED:-256}"  # photos per seed: 8 seeds
echo "== 7. decode-bound: $((8 * per_seed)) distinct 500x375 JPEGs, small model, default threads, medians of $repeats"
/usr/bin/python3 "$root/bench/make_photos.py" "$root/tests/data/image" "$work/distinct" "$per_seed" "$work/seeds8.txt"
"$mll" probe build --log-level warn --graph "$work/graph8.h5" --images "$work/distinct" --per-node "$per_seed" \
  --store "$work/dist-empty.h5" --force >/dev/null
n=$(find "$work/distinct" -name '*.jpg' | wc -l)
cores=$(nproc)
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
fresh() { rm -rf "$work/dist.h5" "$work/dist.h5.d" "$work/dist.h5.digests"
  cp "$work/dist-empty.h5" "$work/dist.h5"; cp -r "$work/dist-empty.h5.d" "$work/dist.h5.d"; }
timed() { local t0 t1; t0=$(now); "$@" >/dev/null; t1=$(now); secs "$t0" "$t1"; }
model=$(ls "$work"/small/small-s1.pt)
# OLD_BUILD=DIR: the same mll runs of another build (defaults, image cache cold and warm),
# interleaved with these in every round, for a side-by-side comparison.
old="${OLD_BUILD:-}"
: >"$work/t-ceiling"; : >"$work/t-mll"; : >"$work/t-py"; : >"$work/t-cold"; : >"$work/t-warm"
: >"$work/t-old"; : >"$work/t-old-cold"; : >"$work/t-old-warm"; : >"$work/t-old-ceiling"
: >"$work/t-engine"; : >"$work/t-forward"
cmake --build "$build" --target mll_forward_bench >/dev/null
engine_load() {  # seconds to dlopen the engine (libmll_torch.so, libtorch and its libraries)
  /usr/bin/python3 -c 'import ctypes, os, sys, time
t = time.perf_counter(); ctypes.CDLL(sys.argv[1], os.RTLD_NOW)
print("%.4f" % (time.perf_counter() - t)); sys.stdout.flush(); os._exit(0)' "$1/src/app/libmll_torch.so"
}
forward_rate() {  # the small model's images/s on one thread, batch 32 read in place
  "$1/src/zoo/mll_forward_bench" --kind small --threads 1 --batch 32 --repeats 9 --consuming \
    | sed -nE 's/.*images_per_s=([0-9.]+).*/\1/p'
}
ceiling_of() {  # one core's exact decode + resize + crop + normalise rate, on a tenth of the photos
  "$1/src/image/mll_preprocess_bench" --repeats 1 $(find "$work/distinct" -name '*.jpg' | sort | awk 'NR % 10 == 0') \
    | awk '/median/ {print $2}'
}
for ((r = 0; r < repeats; r++)); do
  ceiling_of "$build" >>"$work/t-ceiling"
  engine_load "$build" >>"$work/t-engine"
  forward_rate "$build" >>"$work/t-forward"
  # The old build's own decode path: the ceiling as it stood before a faster decode raised it.
  if [[ -n $old && -x $old/src/image/mll_preprocess_bench ]]; then ceiling_of "$old" >>"$work/t-old-ceiling"; fi
  fresh; timed "$mll" label --store "$work/dist.h5" --zoo "$work/small1.json" --no-progress --device cpu >>"$work/t-mll"
  timed /usr/bin/python3 "$root/bench/python_pipeline.py" --model "$model" --images "$work/distinct" \
    --threads "$cores" --workers "$cores" >>"$work/t-py"
  rm -rf "$work/dcache"; fresh
  timed "$mll" label --store "$work/dist.h5" --zoo "$work/small1.json" --no-progress --device cpu --image-cache "$work/dcache" >>"$work/t-cold"
  fresh
  timed "$mll" label --store "$work/dist.h5" --zoo "$work/small1.json" --no-progress --device cpu --image-cache "$work/dcache" >>"$work/t-warm"
  if [[ -n $old ]]; then
    fresh; timed "$old/src/app/mll" label --store "$work/dist.h5" --zoo "$work/small1.json" --no-progress --device cpu >>"$work/t-old"
    rm -rf "$work/dcache-old"; fresh
    timed "$old/src/app/mll" label --store "$work/dist.h5" --zoo "$work/small1.json" --no-progress --device cpu --image-cache "$work/dcache-old" >>"$work/t-old-cold"
    fresh
    timed "$old/src/app/mll" label --store "$work/dist.h5" --zoo "$work/small1.json" --no-progress --device cpu --image-cache "$work/dcache-old" >>"$work/t-old-warm"
  fi
done
per_core=$(median <"$work/t-ceiling"); ceiling=$(echo "$per_core * $cores" | bc -l)
m=$(median <"$work/t-mll"); p=$(median <"$work/t-py"); c=$(median <"$work/t-cold"); w=$(median <"$work/t-warm")
printf 'decode ceiling: %.0f images/s per core x %d cores = %.0f images/s\n' "$per_core" "$cores" "$ceiling"
printf 'mll label (end to end, process start included): %.2f s = %.0f images/s = %.2f of the ceiling\n' "$m" "$(echo "$n / $m" | bc -l)" "$(echo "$n / $m / $ceiling" | bc -l)"
printf 'python DataLoader pipeline (%d workers): %.2f s = %.0f images/s; mll / python = %.2fx\n' "$cores" "$p" "$(echo "$n / $p" | bc -l)" "$(echo "$p / $m" | bc -l)"
printf 'image cache: cold (decode + write) %.2f s, warm (read) %.2f s: warm is %.2fx faster\n' "$c" "$w" "$(echo "$c / $w" | bc -l)"
# The floor: no schedule of this work on these cores is shorter (process start, the store and
# the image checks are left out, so the real bound is higher still).
engine=$(median <"$work/t-engine"); fwd=$(median <"$work/t-forward")
decode_s=$(echo "$n / $per_core" | bc -l); forward_s=$(echo "$n / $fwd" | bc -l)
floor=$(echo "($decode_s + $engine + $forward_s) / $cores" | bc -l)
warm_floor=$(echo "$engine + $forward_s / $cores" | bc -l)
printf 'floor: decoding %.2f + engine load %.2f + forward passes %.2f (%.0f images/s, one thread) = %.2f core-s over %d cores = %.2f s: at best %.2f of the ceiling (mll label takes %.2fx the floor)\n' \
  "$decode_s" "$engine" "$forward_s" "$fwd" "$(echo "$floor * $cores" | bc -l)" "$cores" "$floor" \
  "$(echo "$n / $floor / $ceiling" | bc -l)" "$(echo "$m / $floor" | bc -l)"
printf 'warm floor: engine load %.2f + forward passes %.2f / %d cores = %.2f s: cold / warm at most %.2fx with this cold run (the warm run takes %.2fx its floor)\n' \
  "$engine" "$forward_s" "$cores" "$warm_floor" "$(echo "$c / $warm_floor" | bc -l)" "$(echo "$w / $warm_floor" | bc -l)"
echo "runs (s): mll $(tr '\n' ' ' <"$work/t-mll")| python $(tr '\n' ' ' <"$work/t-py")| cold $(tr '\n' ' ' <"$work/t-cold")| warm $(tr '\n' ' ' <"$work/t-warm")"
if [[ -n $old ]]; then
  om=$(median <"$work/t-old"); oc=$(median <"$work/t-old-cold"); ow=$(median <"$work/t-old-warm")
  printf 'old build %s: mll label %.2f s = %.2f of the ceiling (new/old speed %.2fx); image cache cold %.2f s, warm %.2f s (%.2fx)\n' \
    "$old" "$om" "$(echo "$n / $om / $ceiling" | bc -l)" "$(echo "$om / $m" | bc -l)" "$oc" "$ow" "$(echo "$oc / $ow" | bc -l)"
  echo "old runs (s): mll $(tr '\n' ' ' <"$work/t-old")| cold $(tr '\n' ' ' <"$work/t-old-cold")| warm $(tr '\n' ' ' <"$work/t-old-warm")"
  if [[ -s $work/t-old-ceiling ]]; then
    old_ceiling=$(echo "$(median <"$work/t-old-ceiling") * $cores" | bc -l)
    printf "old build's decode ceiling: %.0f images/s per core x %d = %.0f images/s; against it: mll label %.2f, old build's mll label %.2f\n" \
      "$(median <"$work/t-old-ceiling")" "$cores" "$old_ceiling" "$(echo "$n / $m / $old_ceiling" | bc -l)" "$(echo "$n / $om / $old_ceiling" | bc -l)"
  fi
fi
fi

if want 8; then
repeats="${REPEATS:-3}"
echo "== 8. forward-bound on a warm image cache: ViT-B/32-shaped model, 128 distinct photos, default threads, medians of $repeats"
/usr/bin/python3 "$root/bench/make_photos.py" "$root/tests/data/image" "$work/distinct16" 16 "$work/seeds8.txt"
"$mll" probe build --log-level warn --graph "$work/graph8.h5" --images "$work/distinct16" --per-node 16 \
  --store "$work/vwarm-empty.h5" --force >/dev/null
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
vfresh() { rm -rf "$work/vwarm.h5" "$work/vwarm.h5.d" "$work/vwarm.h5.digests"
  cp "$work/vwarm-empty.h5" "$work/vwarm.h5"; cp -r "$work/vwarm-empty.h5.d" "$work/vwarm.h5.d"; }
vtimed() { local t0 t1; t0=$(now); "$@" >/dev/null; t1=$(now); secs "$t0" "$t1"; }
old="${OLD_BUILD:-}"
builds=("$build"); [[ -n $old ]] && builds+=("$old")
for b in "${builds[@]}"; do  # each build's own cache, filled once (its file version)
  vfresh; "$b/src/app/mll" label --store "$work/vwarm.h5" --zoo "$work/vit.json" --no-progress \
    --device cpu --log-level warn --image-cache "$work/vcache-$(echo "$b" | md5sum | cut -c1-8)" >/dev/null
done
for b in "${builds[@]}"; do : >"$work/t-v-$(echo "$b" | md5sum | cut -c1-8)"; done
for ((r = 0; r < repeats; r++)); do
  for b in "${builds[@]}"; do
    tag=$(echo "$b" | md5sum | cut -c1-8)
    vfresh
    vtimed "$b/src/app/mll" label --store "$work/vwarm.h5" --zoo "$work/vit.json" --no-progress \
      --device cpu --log-level warn --image-cache "$work/vcache-$tag" >>"$work/t-v-$tag"
  done
done
for b in "${builds[@]}"; do
  tag=$(echo "$b" | md5sum | cut -c1-8)
  printf '%s: warm %.2f s (runs: %s)\n' "$b" "$(median <"$work/t-v-$tag")" "$(tr '\n' ' ' <"$work/t-v-$tag")"
done
fi
