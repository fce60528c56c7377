#!/bin/sh
# `mll plan` figures for the paper's 49 open_clip models x 150k probe images (docs/running.md,
# "Planning"): makespan and parallel efficiency at 8, 64 and 512 GPUs, dynamic scheduling (the
# real coordinator's schedule::Scheduler) against static round-robin over whole models: the
# default work rule (--unit auto: cost-sized shards, sub-groups under the load cap and 80 GB)
# beside fixed 1,024-image shards of whole groups, prefetch, and what else limits: model load
# time (--load-gbps), memory per GPU (--memory) and decode cores per GPU (--decode-cores-per-gpu).
# Usage: bench/plan_efficiency.sh BUILD_DIR [IMAGES]
set -eu
build=${1:?build directory}
images=${2:-150000}
mll=$build/src/app/mll
row() {  # label, mll plan options
  label=$1
  shift
  "$mll" plan --images "$images" --json "$@" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
x, s, o = d["dynamic"], d["static_round_robin"], d["options"]
gpu_s = o["gpus"] * x["makespan_s"]
units = [g["unit"] for g in d["groups"]]
print("%-44s %5d %9.1f %6.3f %6.1f%% %6.1f%% %4d %5d %4d-%-4d %7.2f %10.1f %6.3f" % (
    sys.argv[1], o["gpus"], x["makespan_s"], x["efficiency"], 100 * x["load_s"] / gpu_s,
    100 * x["decode_stall_s"] / gpu_s, len(d["groups"]), sum(g["shards"] for g in d["groups"]),
    min(units), max(units), d["memory_per_gpu"] / 1e9, s["makespan_s"], s["efficiency"]))' "$label"
}
echo "49 models x $images images; defaults: 100 TFLOP/s per GPU, 2 GB/s load, unit auto, 80 GB per GPU, prefetch off, decode unlimited"
printf '%-44s %5s %9s %6s %7s %7s %4s %5s %9s %7s %10s %6s\n' "setting" "GPUs" "dyn_s" "eff" \
  "load" "decode" "subs" "shards" "units" "mem_GB" "static_s" "eff"
for n in 8 64 512; do row "defaults" --gpus "$n"; done
echo "-- the fixed rule: whole groups, 1,024-image shards"
for n in 8 64 512; do row "unit 1024" --gpus "$n" --unit 1024; done
echo "-- prefetch (load the next sub-group while the last shards run)"
for n in 8 64 512; do row "prefetch on" --gpus "$n" --prefetch on; done
echo "-- memory per GPU"
for n in 64 512; do
  row "memory 24GB" --gpus "$n" --memory 24GB
  row "memory 0 (no limit)" --gpus "$n" --memory 0
done
echo "-- what limits 512 GPUs with fixed units"
row "unit 256" --gpus 512 --unit 256
row "unit 128" --gpus 512 --unit 128
row "unit 128, load 10 GB/s" --gpus 512 --unit 128 --load-gbps 10
row "unit 128, load 25 GB/s (local NVMe)" --gpus 512 --unit 128 --load-gbps 25
row "unit 128, load 25 GB/s, 8 decode cores/GPU" --gpus 512 --unit 128 --load-gbps 25 \
  --decode-cores-per-gpu 8
row "unit 128, load 25 GB/s, 2 decode cores/GPU" --gpus 512 --unit 128 --load-gbps 25 \
  --decode-cores-per-gpu 2
row "load 10 GB/s" --gpus 512 --load-gbps 10
row "load 25 GB/s" --gpus 512 --load-gbps 25
echo "-- decode cores per GPU (default rule)"
for n in 8 64 512; do
  row "8 decode cores/GPU" --gpus "$n" --decode-cores-per-gpu 8
  row "2 decode cores/GPU" --gpus "$n" --decode-cores-per-gpu 2
done
echo "-- the issue's estimate: open_clip FLOPs (B) per pair, loading free"
for n in 8 64; do row "--cost pair, load 1e6 GB/s" --gpus "$n" --cost pair --load-gbps 1e6; done
