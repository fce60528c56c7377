#!/usr/bin/env bash
# Prints the model ids of slice INDEX of COUNT of a zoo manifest, comma-separated, for
# `mll label --models`: the array mode's split of a zoo (docs/running.md).
#
#   zoo-slice.sh ZOO INDEX COUNT        e.g. zoo-slice.sh zoo.json $SLURM_ARRAY_TASK_ID $SLURM_ARRAY_TASK_COUNT
#
# Models are dealt in manifest order (model i goes to slice i mod COUNT), so every slice gets a
# mix of large and small models. The ids come from `mll zoo list` ($MLL, default `mll`).
# Exits 64 on bad arguments; prints an empty line for a slice with no model (COUNT > models).
set -euo pipefail
if [ $# -ne 3 ]; then
  echo "usage: zoo-slice.sh ZOO INDEX COUNT" >&2
  exit 64
fi
zoo="$1" index="$2" count="$3"
case "$index$count" in *[!0-9]*) echo "zoo-slice: INDEX and COUNT must be integers" >&2; exit 64 ;; esac
if [ "$count" -lt 1 ] || [ "$index" -ge "$count" ]; then
  echo "zoo-slice: need 0 <= INDEX < COUNT (got $index of $count)" >&2
  exit 64
fi
"${MLL:-mll}" zoo list --zoo "$zoo" |
  awk -v index_="$index" -v count="$count" '
    NR > 1 && NF > 0 { if ((NR - 2) % count == index_) ids = ids (ids == "" ? "" : ",") $1 }
    END { print ids }'
