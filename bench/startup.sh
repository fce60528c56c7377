#!/bin/sh
# Start-up of light commands (docs/benchmarks.md, "Start-up"): wall seconds and peak RSS of
# commands that run no model, median of 10 runs each, for one or two builds side by side (e.g.
# one from before the model engine moved into libmll_torch.so and one after). Also one command
# that loads the engine (`zoo check` of one small model), to show what the engine costs when
# it is needed.
# Usage: bench/startup.sh BUILD_DIR [BUILD_DIR...]   (prints a markdown table)
set -eu
[ $# -ge 1 ] || { echo "usage: bench/startup.sh BUILD_DIR [BUILD_DIR...]" >&2; exit 64; }
work=$(mktemp -d /tmp/mll-startup-XXXXXX)
trap 'rm -rf "$work"' EXIT
first=$1/src/app/mll
printf 'n02085620\nn02099601\nn01440764\n' >"$work/seeds.txt"
"$first" graph build --seeds "$work/seeds.txt" -o "$work/graph.h5" >/dev/null 2>&1
"$first" synth --graph "$work/graph.h5" --out "$work/w" --models 1 --images-per-concept 2 \
  >/dev/null 2>&1
"$first" probe build --graph "$work/graph.h5" --images "$work/w/images" --store "$work/s.h5" \
  >/dev/null 2>&1

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# "<seconds> <KB>" of one run of the command line $1 with mll $2
one() {
  /usr/bin/time -f "%e %M" -o "$work/t" sh -c "$2 $1 >/dev/null 2>&1" || true
  tail -1 "$work/t"
}
printf '| command |'
for b in "$@"; do printf ' %s: s (median of 10) | peak RSS MB |' "$b"; done
printf '\n|---|'
for b in "$@"; do printf -- '---|---|'; done
printf '\n'
for command in "--help" "--version" "graph show n02085620 --graph $work/graph.h5" \
  "inspect $work/s.h5" "store verify $work/s.h5" "zoo check --zoo $work/w/zoo.json"; do
  printf '| `mll %s` |' "$(echo "$command" | sed "s|$work/||g")"
  for b in "$@"; do
    : >"$work/runs"
    for i in 1 2 3 4 5 6 7 8 9 10; do one "$command" "$b/src/app/mll" >>"$work/runs"; done
    s=$(cut -d' ' -f1 "$work/runs" | median)
    kb=$(cut -d' ' -f2 "$work/runs" | median)
    printf ' %s | %s |' "$s" "$((kb / 1024))"
  done
  printf '\n'
done
