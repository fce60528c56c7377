#!/usr/bin/env bash
# The README's test command: installs what is missing, builds mll (and the build without MPI,
# whose stores the MPI tests compare with), and runs the whole ctest suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MLL_BUILD_DIR:-$root/build}"
bash "$root/tools/setup-deps.sh" --with-slurm --with-chromium
bash "$root/tools/build.sh"
bash "$root/tools/build.sh" --no-mpi
ctest --test-dir "$build" --output-on-failure -j "${MLL_TEST_JOBS:-2}" "$@"
