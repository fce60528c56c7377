#!/bin/sh
# `mll plan` figures for the paper's 49 open_clip models x 150k probe images (docs/running.md,
# "Planning"): makespan and parallel efficiency at 8, 64 and 512 GPUs, dynamic scheduling (the
# real coordinator's schedule::Scheduler) against static round-robin over whole models, and what
# limits 512 GPUs: shard granularity (--unit), model load time (--load-gbps) and decode cores
# per GPU (--decode-cores-per-gpu).
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
print("%-44s %5d %9.1f %6.3f %6.1f%% %6.1f%% %10.1f %6.3f" % (
    sys.argv[1], o["gpus"], x["makespan_s"], x["efficiency"], 100 * x["load_s"] / gpu_s,
    100 * x["decode_stall_s"] / gpu_s, s["makespan_s"], s["efficiency"]))' "$label"
}
echo "49 models x $images images; defaults: 100 TFLOP/s per GPU, 2 GB/s load, unit 1024, decode unlimited"
printf '%-44s %5s %9s %6s %7s %7s %10s %6s\n' "setting" "GPUs" "dyn_s" "eff" "load" \
  "decode" "static_s" "eff"
for n in 8 64 512; do row "defaults" --gpus "$n"; done
echo "-- what limits 512 GPUs"
row "unit 256" --gpus 512 --unit 256
row "unit 128" --gpus 512 --unit 128
row "unit 128, load 10 GB/s" --gpus 512 --unit 128 --load-gbps 10
row "unit 128, load 25 GB/s (local NVMe)" --gpus 512 --unit 128 --load-gbps 25
row "unit 128, load 25 GB/s, 8 decode cores/GPU" --gpus 512 --unit 128 --load-gbps 25 \
  --decode-cores-per-gpu 8
row "unit 128, load 25 GB/s, 2 decode cores/GPU" --gpus 512 --unit 128 --load-gbps 25 \
  --decode-cores-per-gpu 2
echo "-- decode cores per GPU at 8 and 64 GPUs"
for n in 8 64; do
  row "8 decode cores/GPU" --gpus "$n" --decode-cores-per-gpu 8
  row "2 decode cores/GPU" --gpus "$n" --decode-cores-per-gpu 2
done
echo "-- the issue's estimate: open_clip FLOPs (B) per pair, loading free"
for n in 8 64; do row "--cost pair, load 1e6 GB/s" --gpus "$n" --cost pair --load-gbps 1e6; done
