#!/usr/bin/env bash
# Checkpoint loading: this crate's loader, candle's (candle_core::pickle::read_all) and
# torch.load, on a real-sized state dict (ResNet-34, ~83 MiB) and a 1 GiB synthetic one.
# Each load runs in a fresh process, ROUNDS times per loader, in turns; the table gives
# the median time and the largest peak memory above the process's baseline (VmHWM).
#
#   bench/checkpoint_load.sh [PYTHON_WITH_TORCH]    # default: python3
#
# Files go to ${BENCH_DIR:-/tmp/ub-bench}; the Rust side is built with --release.
# BEFORE_BIN=path/to/checkpoint-load-bench (built the same way from an older revision) adds
# that revision's loader as a row "this crate, before".
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
DIR=${BENCH_DIR:-/tmp/ub-bench}
ROUNDS=${ROUNDS:-5}
"$PY" bench/make_checkpoints.py "$DIR"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --quiet --release --manifest-path bench/checkpoint-load/Cargo.toml
BIN=$CARGO_TARGET_DIR/release/checkpoint-load-bench

LOADERS="torch candle ours"
if [[ -n ${BEFORE_BIN:-} ]]; then LOADERS="torch candle before ours"; fi

run() { # loader file -> "seconds peak tensors"
  case $1 in
    torch) "$PY" bench/torch_load.py "$2" ;;
    before) "$BEFORE_BIN" ours "$2" ;;
    *) "$BIN" "$1" "$2" ;;
  esac
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%F)"
echo "torch $("$PY" -c 'import torch; print(torch.__version__)'), rounds: $ROUNDS, warm page cache, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| file | size | loader | time (median) | peak memory above baseline | peak / file |"
echo "|---|---|---|---|---|---|"
for file in resnet34.pth synthetic_1gib.pth; do
  path=$DIR/$file
  size=$(stat -c %s "$path")
  cat "$path" > /dev/null # into the page cache
  declare -A times=() peaks=()
  for ((r = 0; r < ROUNDS; r++)); do
    for loader in $LOADERS; do
      read -r s p _ < <(run "$loader" "$path")
      times[$loader]+="$s "
      if (( p > ${peaks[$loader]:-0} )); then peaks[$loader]=$p; fi
    done
  done
  for loader in $LOADERS; do
    median=$(tr ' ' '\n' <<< "${times[$loader]}" | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    name=$loader
    case $loader in
      torch) name='torch.load' ;;
      candle) name='candle (pickle::read_all)' ;;
      before) name='this crate, before' ;;
      ours) name='this crate (checkpoint::load)' ;;
    esac
    awk -v f="$file" -v s="$size" -v n="$name" -v t="$median" -v p="${peaks[$loader]}" 'BEGIN {
      printf "| %s | %.0f MiB | %s | %.0f ms | %.0f MiB | %.2f× |\n", f, s / 1048576, n, t * 1000, p / 1048576, p / s }'
  done
  unset times peaks
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
