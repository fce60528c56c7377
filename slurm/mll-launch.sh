#!/usr/bin/env bash
# Runs one mll command inside a Slurm job (or anywhere): snapshots the environment, launches the
# command (with `srun --mpi=pmix` for MPI jobs), forwards the warning signal to it, requeues the
# job when mll exits 75 ("committed, requeue me") and waits for the store's writer lock when
# another job holds it. See docs/running.md.
#
#   mll-launch.sh [--srun] [--out DIR] [--no-requeue] [--lock-wait SECONDS] -- COMMAND [ARGS...]
#
#   --srun            run COMMAND as `srun --mpi=pmix $MLL_SRUN_ARGS COMMAND` (one job step
#                     over every task of the allocation); without it COMMAND runs directly in
#                     the batch shell (one process: array tasks, select, single-node runs)
#   --out DIR         where snapshots and the launcher log go (default: $MLL_JOB_DIR, else
#                     ./mll-jobs/<job id>); a requeued job appends to the same directory
#   --no-requeue      exit 75 without requeueing
#   --lock-wait S     when COMMAND exits 64 because the store is locked by another writer,
#                     retry with backoff (5 s doubling to 120 s) for up to S seconds
#                     (default 3600; 0 = fail at once)
#
# Signals. Submit with `#SBATCH --signal=B:USR1@<seconds>`: Slurm sends USR1 to the batch shell
# only (this script, when the sbatch file `exec`s it). Bash runs a trap only between commands,
# so COMMAND runs in the background and the script waits for it; the trap forwards the signal
# to COMMAND's process (srun relays it to every task of the step), and mll commits its work and
# exits 75. USR1 and TERM are forwarded; a TERM that reaches the batch shell at the time limit
# is forwarded the same way (Slurm follows it with KILL after KillWait seconds). srun gets
# every stop signal as USR1: it relays USR1 to the tasks but answers TERM with KILL.
#
# Exit status: COMMAND's, except that 75 is turned into a requeue (`scontrol requeue`) first.
set -u

# Traps first, before anything else runs: Slurm's warning signal may come at any moment.
child=0
stop_signal=""
forward() {
  stop_signal="$1"
  if [ "$child" -gt 0 ]; then
    # srun relays USR1 to every task but answers TERM by sending them KILL (nothing would be
    # committed): to srun every stop signal goes as USR1, which mll treats like TERM.
    local as="$1"
    [ "${use_srun:-0}" -eq 1 ] && as=USR1
    say "received SIG$1; forwarding to pid $child as SIG$as"
    kill -s "$as" "$child" 2>/dev/null || true
  fi
}
trap 'forward USR1' USR1
trap 'forward TERM' TERM
# One the sbatch file received before this script started (jobs/*.sbatch record it).
[ -n "${MLL_EARLY_SIGNAL:-}" ] && stop_signal="$MLL_EARLY_SIGNAL"
unset MLL_EARLY_SIGNAL

out="${MLL_JOB_DIR:-}"
use_srun=0
requeue=1
lock_wait=3600
while [ $# -gt 0 ]; do
  case "$1" in
    --srun) use_srun=1; shift ;;
    --out) out="$2"; shift 2 ;;
    --no-requeue) requeue=0; shift ;;
    --lock-wait) lock_wait="$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "mll-launch: unknown option '$1' (the command follows --)" >&2; exit 64 ;;
  esac
done
if [ $# -eq 0 ]; then
  echo "mll-launch: no command given (mll-launch.sh [options] -- mll ...)" >&2
  exit 64
fi

job="${SLURM_JOB_ID:-local-$$}"
if [ -n "${SLURM_ARRAY_JOB_ID:-}" ]; then job="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"; fi
run="${SLURM_RESTART_COUNT:-0}"
[ -n "$out" ] || out="$PWD/mll-jobs/$job"
mkdir -p "$out" || { echo "mll-launch: cannot create $out" >&2; exit 73; }
log="$out/launcher.log"

say() {
  local line
  line="$(date -u +%Y-%m-%dT%H:%M:%SZ) job $job run $run: $*"
  echo "$line" >>"$log"
  echo "mll-launch: $line" >&2
}

# The environment of this run, one directory per (job, restart): what ran, where, with what.
snapshot() {
  local dir="$out/snapshot-$job-run$run"
  mkdir -p "$dir"
  env | LC_ALL=C sort >"$dir/env.txt"
  {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: $(hostname)"
    echo "cwd: $PWD"
    printf 'command:'; printf ' %q' "$@"; echo
    echo "srun: $use_srun ${MLL_SRUN_ARGS:-}"
  } >"$dir/job.txt"
  if command -v module >/dev/null 2>&1; then
    module list >"$dir/modules.txt" 2>&1 || true
  elif [ -n "${LOADEDMODULES:-}" ]; then
    echo "$LOADEDMODULES" | tr ':' '\n' >"$dir/modules.txt"
  else
    echo "(no environment modules)" >"$dir/modules.txt"
  fi
  "${MLL:-$1}" --version >"$dir/mll-version.txt" 2>&1 || true
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi >"$dir/nvidia-smi.txt" 2>&1 || true
  fi
  if [ -n "${SLURM_JOB_ID:-}" ] && command -v scontrol >/dev/null 2>&1; then
    scontrol show job "$SLURM_JOB_ID" >"$dir/scontrol-job.txt" 2>&1 || true
  fi
}
snapshot "$@"


errfile="$out/stderr-$job-run$run.txt"
quiet_lock_refusals() {
  grep --line-buffered -v -e "is locked by" -e "Exited with exit code 64" || true
}
waited=0
delay=5
while :; do
  if [ -n "$stop_signal" ]; then  # before the command started: nothing to commit
    say "received SIG$stop_signal before the command started; nothing to commit"
    rc=75
    break
  fi
  : >"$errfile"
  # The command's stderr goes to the job's output and to $errfile; a refusal because another
  # job holds the store's lock is kept out of the job's output (the launcher says it waits).
  if [ "$use_srun" -eq 1 ]; then
    # shellcheck disable=SC2086
    srun --mpi=pmix ${MLL_SRUN_ARGS:-} "$@" 2> >(tee -a "$errfile" | quiet_lock_refusals >&2) &
  else
    "$@" 2> >(tee -a "$errfile" | quiet_lock_refusals >&2) &
  fi
  child=$!
  say "started pid $child: $*"
  # `wait` returns early (status > 128) when a trapped signal arrives: wait again until the
  # command itself has exited.
  while :; do
    wait "$child"
    rc=$?
    if kill -0 "$child" 2>/dev/null; then continue; fi
    break
  done
  child=0
  sleep 0.2  # let tee flush the last lines of stderr
  if [ "$rc" -eq 64 ] && grep -q "locked" "$errfile" && [ -z "$stop_signal" ] &&
     [ "$waited" -lt "$lock_wait" ]; then
    holder=$(grep -o "is locked by [^;]*" "$errfile" | head -1)
    say "waiting for the store lock (${holder:-held by another writer}); next try in ${delay}s (waited ${waited}s of ${lock_wait}s)"
    sleep "$delay" &
    wait $! 2>/dev/null
    [ -n "$stop_signal" ] && { say "stopped while waiting for the lock"; rc=75; break; }
    waited=$((waited + delay))
    delay=$((delay * 2 > 120 ? 120 : delay * 2))
    continue
  fi
  break
done

# A command that the forwarded signal ended before it could handle it (still loading) did not
# commit anything either: rerunning resumes, so it is a requeue like 75.
if [ -n "$stop_signal" ] && { [ "$rc" -eq 138 ] || [ "$rc" -eq 143 ]; }; then
  say "command ended by the forwarded SIG$stop_signal (exit $rc) before it could commit; as 75"
  rc=75
fi
say "command exited with $rc"
if [ "$rc" -eq 75 ]; then
  if [ "$requeue" -eq 1 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
    say "requeueing job $SLURM_JOB_ID (exit 75: work committed, rerun resumes)"
    scontrol requeue "$SLURM_JOB_ID" >>"$log" 2>&1 || say "scontrol requeue failed"
  else
    say "exit 75: rerun the same command to resume"
  fi
fi
exit "$rc"
