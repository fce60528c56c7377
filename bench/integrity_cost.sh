#!/bin/sh
# What the store's seals cost (docs/benchmarks.md, "Integrity"): a store of 49 models x 37,500
# probe images x d = 512 (bench/selection_time.sh's synthetic store, ~40 MB per model file),
# warm page cache, medians of 3 runs, side by side:
#   sha256      SHA-256 of every model file with OpenSSL (one core, the library mll uses): the
#               digest work a full check does
#   verify      mll store verify: every seal checked before parsing, then every invariant
#   select      mll select, 100 classes x 49 models: reads (and seal-checks) every model file once
#   writer      mll label with nothing to label: a writer open checks every seal (all cores)
# Usage: bench/integrity_cost.sh BUILD_DIR [WORK_DIR]
set -eu
build=${1:?build directory}
work=${2:-/tmp/mll-integrity-bench}
mll=$build/src/app/mll
[ -f "$work/full/store.h5" ] || "$build/src/select/selection_time" "$work/full" 2000 37500 75 49 512 100
echo '{"models": []}' >"$work/empty-zoo.json"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timed() {  # prints the wall seconds of "$@"
  start=$(date +%s.%N); "$@" >/dev/null 2>&1; end=$(date +%s.%N)
  echo "$end - $start" | bc
}
bytes=$(du -cb "$work"/full/store.h5.d/*.h5 | tail -1 | cut -f1)
echo "model files: $(ls "$work"/full/store.h5.d/*.h5 | wc -l), $((bytes / 1048576)) MiB"
cat "$work"/full/store.h5.d/*.h5 >/dev/null  # warm the page cache
for what in sha256 verify select writer; do
  for run in 1 2 3; do
    case $what in
      sha256) timed sh -c "openssl dgst -sha256 '$work'/full/store.h5.d/*.h5" ;;
      verify) timed "$mll" store verify "$work/full/store.h5" ;;
      select) timed "$mll" select --store "$work/full/store.h5" --task "$work/full/task.json" \
                --matches "$work/full/matches.json" --out "$work/sel.json" ;;
      writer) timed "$mll" label --store "$work/full/store.h5" --zoo "$work/empty-zoo.json" \
                --no-progress ;;
    esac
  done | median | xargs printf "%-7s %s s\n" "$what"
done
