#!/usr/bin/env bash
# Installs every Debian package mll needs to build, test and run. Idempotent: packages already
# present are skipped by apt, and `apt-get update` runs only when a package is missing.
# Usage: bash tools/setup-deps.sh [--with-slurm] [--with-chromium]
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache clang-format
  libtorch-dev libopenblas0-pthread libprotobuf-dev
  libopenmpi-dev openmpi-bin
  libhdf5-openmpi-dev hdf5-tools
  libboost-program-options-dev
  libgtest-dev libgmock-dev libbenchmark-dev libopenblas-dev
  wordnet-base
  nlohmann-json3-dev libspdlog-dev libfmt-dev
  libjpeg-dev libpng-dev libwebp-dev libssl-dev libxxhash-dev libarchive-dev
  libre2-dev libutf8proc-dev libsentencepiece-dev zlib1g-dev python3-regex python3-wcwidth
  bc rsync
  python3-h5py python3-numpy python3-torch python3-torchvision python3-pil python3-skimage
)
for arg in "$@"; do
  case "$arg" in
    --with-slurm) packages+=(slurm-wlm munge) ;;
    --with-chromium) packages+=(chromium) ;;
    *) echo "setup-deps.sh: unknown option '$arg'" >&2; exit 64 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "setup-deps: all ${#packages[@]} packages present"
  exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "setup-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup-deps: done"
