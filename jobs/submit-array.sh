#!/usr/bin/env bash
# Submits the array labeling job and the select job that depends on it; prints both job ids.
#
#   jobs/submit-array.sh [--array 0-3] [--label-args "..."] [--select-args "..."] [-- sbatch options]
#
# Options after `--` go to both sbatch calls (partition, account, ...).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
array="" label_args="" select_args=""
while [ $# -gt 0 ]; do
  case "$1" in
    --array) array="$2"; shift 2 ;;
    --label-args) label_args="$2"; shift 2 ;;
    --select-args) select_args="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "submit-array: unknown option '$1'" >&2; exit 64 ;;
  esac
done
# shellcheck disable=SC2086
label_job="$(sbatch --parsable ${array:+--array=$array} "$@" "$here/label-array.sbatch" $label_args)"
label_job="${label_job%%;*}"
# shellcheck disable=SC2086
select_job="$(sbatch --parsable --dependency=afterok:"$label_job" --kill-on-invalid-dep=yes "$@" \
  "$here/select.sbatch" $select_args)"
select_job="${select_job%%;*}"
echo "label array job $label_job"
echo "select job $select_job (after $label_job)"
