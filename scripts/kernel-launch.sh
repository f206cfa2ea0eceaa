#!/usr/bin/env bash
# Starts evcxr_jupyter for the project's `rust` kernel (kernel.json runs this) in a build
# dir of its own that survives the session.
#
# Why: by default evcxr compiles every session in a fresh temporary dir, so each new
# kernel re-checks and re-links all of the crate's ~160 dependencies and compiles this
# crate again (~10 s), and GPU kernels re-run candle-kernels' nvcc build (~20 min). A
# persistent EVCXR_TMPDIR keeps cargo's target dir, so a kernel on a machine that ran the
# lessons before starts where the last one stopped. Two kernels must never share one (they
# would overwrite each other's sources), so each running kernel takes the first free
# numbered dir, holding a lock on it for as long as it runs: the lock's file descriptor
# passes to evcxr_jupyter through exec and is released when the kernel exits. A dir used
# for the first time is filled from evcxr's `:cache` (see .evcxr/init.evcxr).
#
# Usage (from kernel.json): kernel-launch.sh EVCXR_JUPYTER --control_file FILE
# The numbered dirs live in the user's cache folder, beside evcxr's own cache (so a fresh
# clone on a machine that ran the lessons before reuses them, and XDG_CACHE_HOME moves
# both); UB_BUILD_SLOTS names another folder (the GPU kernel's, in the checkout).
set -euo pipefail

evcxr=$1
shift
slots=${UB_BUILD_SLOTS:-${XDG_CACHE_HOME:-$HOME/.cache}/understanding-buffers/evcxr-builds}
mkdir -p "$slots"

# Each cell is a shared library that needs Rust's libstd-*.so. rustc records where that is
# as a path relative to target/<triple>/debug/deps/ ($ORIGIN/../..), but evcxr loads the
# library from target/<triple>/debug/, one folder up. From a build dir in /tmp the extra
# `..` ends at / and does no harm; from one in the home folder, like ~/.rustup, it misses
# ("dlopen failed", and the kernel dies). The loader's search path names the folder.
if libdir=$(rustc --print target-libdir 2>/dev/null); then
  export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi

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

echo "kernel-launch.sh: 8 kernels of this project are running; this one builds in a fresh temporary dir (slower)" >&2
exec "$evcxr" "$@"
