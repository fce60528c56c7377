#!/usr/bin/env bash
# The GPU figures of docs/benchmarks.md, prepared to run in one go on a machine with a GPU:
#  1. builds mll without MPI (tools/build.sh --no-mpi) against the libtorch given by --torch
#     (a CUDA libtorch's folder or its share/cmake/Torch), plus the one-core decode benchmark;
#  2. labels a ViT-B/32-shaped authored model in fp16 at batch 256 (forward-bound on a CPU, not on
#     a GPU) and the small decode-bound model, and prints images/s end to end and inside the
#     forward passes;
#  3. prints the machine's decode ceiling: mll's exact decode + preprocess rate on one core times
#     the CPUs this process may use.
# Without a usable CUDA device it says so and runs the same steps on the CPU (fp32, batch 32,
# fewer images), which is how the script itself is tested.
# Usage: bench/gpu.sh [--torch DIR] [--build DIR] [--images N] [--cpu]
#   --torch DIR   libtorch to build against (default: the system's, found by CMake)
#   --build DIR   build folder (default: build-gpu/ in the checkout)
#   --images N    probe images per run (default: 8192 on a GPU, 512 on the CPU)
#   --cpu         skip CUDA even when it is there
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
torch="" build="$root/build-gpu" images="" force_cpu=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --torch) torch="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --images) images="$2"; shift 2 ;;
    --cpu) force_cpu=1; shift ;;
    *) echo "bench/gpu.sh: unknown argument '$1' (see the usage at the top of the script)" >&2; exit 64 ;;
  esac
done
if [[ -n "$torch" && -d "$torch/share/cmake/Torch" ]]; then torch="$torch/share/cmake/Torch"; fi
if [[ -n "$torch" && ! -f "$torch/TorchConfig.cmake" ]]; then
  echo "bench/gpu.sh: --torch $torch: no TorchConfig.cmake there (give libtorch's folder)" >&2
  exit 64
fi

log="${TMPDIR:-/tmp}/mll-bench-gpu-build.log"
echo "== 1. build (no MPI) in $build${torch:+ against $torch}"
cmake_args=(-DMLL_BUILD_BENCHMARKS=ON)
[[ -n "$torch" ]] && cmake_args+=("-DTorch_DIR=$torch")
t0=$(date +%s)
MLL_NOMPI_BUILD_DIR="$build" bash "$root/tools/build.sh" --no-mpi "${cmake_args[@]}" >"$log" 2>&1 ||
  { tail -20 "$log" >&2; echo "bench/gpu.sh: the build failed (log: $log)" >&2; exit 70; }
cmake --build "$build" --target mll_preprocess_bench -j "$(nproc)" >>"$log" 2>&1 ||
  { tail -20 "$log" >&2; echo "bench/gpu.sh: the build failed (log: $log)" >&2; exit 70; }
echo "built in $(( $(date +%s) - t0 )) s"
mll="$build/src/app/mll"
"$mll" --version

work="$(mktemp -d "${TMPDIR:-/tmp}/mll-bench-gpu.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$mll" zoo synth --kind vit-b32 --seed 1 --out "$work/vit" --zoo "$work/vit.json" >/dev/null
"$mll" zoo synth --kind small --seed 1 --out "$work/small" --zoo "$work/small.json" >/dev/null
device=cpu precision=fp32 batch=32
if [[ $force_cpu == 0 ]] && "$mll" zoo check --zoo "$work/small.json" --device cuda >"$work/check.txt" 2>&1; then
  device=cuda precision=fp16 batch=256
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
else
  echo "no usable CUDA device ($(tail -1 "$work/check.txt" 2>/dev/null || echo "--cpu")): the CPU fallback runs (fp32, batch 32)"
fi
images="${images:-$([[ $device == cuda ]] && echo 8192 || echo 512)}"

# Probe images: 8 seeds, distinct 500x375 JPEGs (make_photos.py, needs python3-PIL), or hard links
# of the six test photos where PIL is missing (decoding then reads the same six files).
printf '%s\n' n02085620 n02099601 n02110958 n02086240 n02087394 n01440764 n01443537 n04037443 \
  >"$work/seeds.txt"
per_seed=$(( (images + 7) / 8 ))
if /usr/bin/python3 -c 'import PIL' 2>/dev/null; then
  /usr/bin/python3 "$root/bench/make_photos.py" "$root/tests/data/image" "$work/img" "$per_seed" "$work/seeds.txt"
  photos="distinct"
else
  photos=(astronaut chelsea coffee hubble motorcycle rocket); i=0
  while read -r wnid; do
    mkdir -p "$work/img/$wnid"
    for ((k = 0; k < per_seed; k++)); do
      ln -f "$root/tests/data/image/${photos[$(( (i + k) % 6 ))]}.jpg" "$work/img/$wnid/$k.jpg"
    done
    i=$((i + 1))
  done <"$work/seeds.txt"
  photos="six photos repeated (python3-PIL missing)"
fi
n=$(find "$work/img" -name '*.jpg' | wc -l)
"$mll" graph build --log-level warn --seeds "$work/seeds.txt" -o "$work/graph.h5" >/dev/null
"$mll" probe build --log-level warn --graph "$work/graph.h5" --images "$work/img" \
  --per-node "$per_seed" --store "$work/empty.h5" >/dev/null

echo "== 2. labeling on $device ($precision, batch $batch), $n probe images ($photos), default threads"
label() {  # NAME ZOO
  rm -rf "$work/$1.h5" "$work/$1.h5.d"
  cp "$work/empty.h5" "$work/$1.h5"; cp -r "$work/empty.h5.d" "$work/$1.h5.d"
  local t0 t1 out
  t0=$(date +%s.%N)
  out=$("$mll" label --log-level warn --store "$work/$1.h5" --zoo "$2" --device "$device" --precision "$precision" \
    --batch "$batch" --no-progress)
  t1=$(date +%s.%N)
  local wall fwd
  wall=$(echo "$t1 - $t0" | bc -l)
  fwd=$(echo "$out" | sed -E 's/.* ([0-9.]+) s in model forward passes.*/\1/')
  printf '%s: %.2f s end to end = %.0f images/s; forward passes %.2f s (%.0f images/s incl. captions)\n' \
    "$1" "$wall" "$(echo "$n / $wall" | bc -l)" "$fwd" "$(echo "$n / ($fwd + 0.000001)" | bc -l)"
}
label vit-b32 "$work/vit.json"
label small "$work/small.json"

echo "== 3. decode ceiling (mll's exact decode + resize + crop + normalise, one core)"
per_core=$("$build/src/image/mll_preprocess_bench" --repeats 3 $(find "$work/img" -name '*.jpg' | sort | head -256) |
  awk '/median/ {print $2}')
cpus=$(nproc)  # the CPUs this process may use (affinity)
printf 'one core: %.0f images/s; x %d CPUs = %.0f images/s\n' "$per_core" "$cpus" "$(echo "$per_core * $cpus" | bc -l)"
