#!/usr/bin/env bash
# Matching with the default text tower (`--match-models best`) against the average over every
# tower (`--match-models all`) on the synthetic worlds (docs/benchmarks.md, "Matching with one
# text tower"). Per world seed: `mll demo --seed S` (its selections use the default), then every
# task selected again with `all` and reused (k = 1 and 3). Prints per seed, averaged over the
# world's tasks: MLL top-1 (%) at k = 1 and k = 3 for both, and how often a class's best matched
# node is its true node (truth.json, read here only, never by select or reuse).
# Usage: bench/match_quality.sh BUILD_DIR [SEEDS=5] [WORK_DIR]
set -euo pipefail
build="${1:?usage: bench/match_quality.sh BUILD_DIR [SEEDS] [WORK_DIR]}"
seeds="${2:-5}"
work="${3:-$(mktemp -d /tmp/mll-match-quality.XXXXXX)}"
mll="$build/src/app/mll"
echo "| seed | MLL k=1 best | MLL k=1 all | MLL k=3 best | MLL k=3 all | top node = truth, best | all | same matches |"
echo "|---|---|---|---|---|---|---|---|"
for ((s = 0; s < seeds; s++)); do
  out="$work/seed$s"
  [ -f "$out/store.h5" ] || "$mll" demo --log-level warn --out "$out" --seed "$s" >"$out.log"
  for task in "$out"/world/tasks/*.json; do
    name=$(basename "$task" .json)
    dir="$out/tasks/$name"
    for k in 1 3; do
      "$mll" select --log-level warn --store "$out/store.h5" --task "$task" \
        --zoo "$out/world/zoo.json" --k "$k" --match-models all --out "$dir/all-k$k.json" >/dev/null
      "$mll" reuse --log-level warn --store "$out/store.h5" --task "$task" \
        --zoo "$out/world/zoo.json" --selection "$dir/all-k$k.json" --out "$dir/all-k$k" \
        --no-baselines >/dev/null
    done
  done
  /usr/bin/python3 - "$out" "$s" <<'PY'
import json, sys, glob, os
out, seed = sys.argv[1], sys.argv[2]
truth = {t["name"]: dict(zip(t["classes"], t["wnids"])) for t in json.load(open(out + "/world/truth.json"))["tasks"]}
def mll_top1(report):
    return next(m["top1"] for m in json.load(open(report))["methods"] if m["name"] == "MLL")
rows = {"b1": [], "a1": [], "b3": [], "a3": []}
hits = {"best": [0, 0], "all": [0, 0]}
same = [0, 0]
for task in sorted(glob.glob(out + "/world/tasks/*.json")):
    name = os.path.basename(task)[:-5]
    d = f"{out}/tasks/{name}"
    rows["b1"].append(mll_top1(d + "/k1/report.json"))
    rows["b3"].append(mll_top1(d + "/k3/report.json"))
    rows["a1"].append(mll_top1(d + "/all-k1/report.json"))
    rows["a3"].append(mll_top1(d + "/all-k3/report.json"))
    for rule, sel in (("best", d + "/selection-k1.json"), ("all", d + "/all-k1.json")):
        for c in json.load(open(sel))["classes"]:
            hits[rule][0] += c["matched_nodes"][0]["wnid"] == truth[name][c["name"]]
            hits[rule][1] += 1
    b = json.load(open(d + "/selection-k1.json"))["classes"]
    a = json.load(open(d + "/all-k1.json"))["classes"]
    for cb, ca in zip(b, a):
        same[0] += [n["wnid"] for n in cb["matched_nodes"]] == [n["wnid"] for n in ca["matched_nodes"]]
        same[1] += 1
mean = lambda v: 100.0 * sum(v) / len(v)
print(f"| {seed} | {mean(rows['b1']):.1f} | {mean(rows['a1']):.1f} | {mean(rows['b3']):.1f} | "
      f"{mean(rows['a3']):.1f} | {hits['best'][0]}/{hits['best'][1]} | {hits['all'][0]}/{hits['all'][1]} | "
      f"{same[0]}/{same[1]} |")
PY
done
