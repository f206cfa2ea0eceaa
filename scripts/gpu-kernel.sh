#!/usr/bin/env bash
# Starts evcxr_jupyter for the GPU kernel (`scripts/lab.sh --gpu` registers it) with a
# build dir that survives the session.
#
# Why: by default evcxr compiles every session in a fresh temporary dir. Its `:cache`
# keeps compiled Rust crates, but build scripts run again, and candle-kernels' build
# script runs nvcc for ~20 minutes on 2 cores. A persistent EVCXR_TMPDIR keeps that
# output, but two kernels must never share one (they would overwrite each other's
# sources), so each running kernel takes the first free numbered dir, holding a lock
# on it for as long as it runs (the lock's file descriptor passes to evcxr_jupyter
# through exec and is released when the kernel exits).
#
# Usage (from kernel.json): gpu-kernel.sh EVCXR_JUPYTER --control_file FILE
set -euo pipefail

evcxr=$1
shift
slots=${UB_BUILD_SLOTS:?UB_BUILD_SLOTS must name the folder for the build dirs}
mkdir -p "$slots"

for i in 0 1 2 3 4 5 6 7; do
  dir=$slots/slot-$i
  mkdir -p "$dir"
  exec {lock}>"$dir.lock"
  if flock --nonblock "$lock"; then
    export EVCXR_TMPDIR=$dir
    exec "$evcxr" "$@"
  fi
  exec {lock}>&-
done

echo "gpu-kernel.sh: 8 GPU kernels are running; this one builds in a fresh temporary dir (slow)" >&2
exec "$evcxr" "$@"
