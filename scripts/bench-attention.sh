#!/usr/bin/env bash
# Attention benchmarks (issue 6, items 1 and 2): the crate's two causal-attention modules
# against the same PyTorch modules, with the same thread count, in one run.
#
#   bash scripts/bench-attention.sh [--device cpu|cuda] [--threads N] [--runs N]
#                                   [--sizes LIST] [--sections LIST] [--no-torch]
#
# 1. PyTorch: bench/attention_torch.py times the original modules and writes
#    bench/results/torch-<device>.json. torch is installed into the project's .venv only
#    here, the first time this benchmark is asked for (a ~4 GB download from PyPI: the Linux
#    wheel brings CUDA libraries; set UB_TORCH_PYTHON to a Python that already has torch to
#    skip that).
# 2. candle: `cargo run --release --example bench_attention` (with `--features cuda` for
#    --device cuda) reads PyTorch's figures and prints candle/PyTorch ratios beside its own;
#    it writes bench/results/candle-<device>.json.
#
# Both sides get the same thread count: torch.set_num_threads(N) + OMP_NUM_THREADS=N, and
# RAYON_NUM_THREADS=N for candle (default: every core, `nproc`).
#
# Environment:
#   UB_TORCH_PYTHON  a Python with torch (default: .venv/bin/python, installing torch there)
#   UB_BENCH_BIN     a prebuilt bench_attention binary (e.g. packed for a GPU machine that has
#                    no cargo); default: built with cargo
#   UB_TASKSET       CPU list to pin both sides to (e.g. "2,3"), for a quiet comparison on a
#                    machine with more cores than threads

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

device=cpu
threads=$(nproc)
runs=20
sizes=all
sections=forward,variants,breakdown,strategies,memory
with_torch=1
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --sections) sections=$2; shift 2 ;;
    --no-torch) with_torch=0; shift ;;
    -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "bench-attention.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
case "$device" in cpu | cuda) ;; *) echo "bench-attention.sh: --device must be cpu or cuda, got $device" >&2; exit 2 ;; esac

pin=()
if [ -n "${UB_TASKSET:-}" ]; then pin=(taskset -c "$UB_TASKSET"); fi

mkdir -p bench/results
torch_json=bench/results/torch-$device.json
candle_json=bench/results/candle-$device.json

echo "== machine: $(nproc) cores, $(uname -m), load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "== threads: $threads (torch.set_num_threads, OMP_NUM_THREADS, RAYON_NUM_THREADS)"

# ---------------------------------------------------------------- PyTorch
candle_args=(--device "$device" --runs "$runs" --sizes "$sizes" --sections "$sections" --json "$candle_json")
if [ "$with_torch" = 1 ]; then
  py=${UB_TORCH_PYTHON:-}
  if [ -z "$py" ]; then
    py=$ROOT/.venv/bin/python
    if [ ! -x "$py" ]; then
      echo "== creating .venv (python3 -m venv)"
      python3 -m venv "$ROOT/.venv"
    fi
    if ! "$py" -c 'import torch' 2>/dev/null; then
      echo "== installing torch into .venv for this benchmark (once; a large download)"
      "$py" -m pip install --quiet torch numpy
    fi
  fi
  echo "== PyTorch: $("$py" -c 'import torch; print(torch.__version__)')"
  torch_sections=()
  case ",$sections," in *,strategies,*) ;; *) torch_sections=(--no-strategies) ;; esac
  OMP_NUM_THREADS=$threads "${pin[@]}" "$py" bench/attention_torch.py --device "$device" --threads "$threads" \
    --runs "$runs" --sizes "$sizes" "${torch_sections[@]}" --json "$torch_json"
  candle_args+=(--torch "$torch_json")
fi

# ---------------------------------------------------------------- candle
echo "== candle"
if [ -n "${UB_BENCH_BIN:-}" ]; then
  RAYON_NUM_THREADS=$threads "${pin[@]}" "$UB_BENCH_BIN" "${candle_args[@]}"
else
  features=()
  if [ "$device" = cuda ]; then features=(--features cuda); fi
  cargo build --release --quiet "${features[@]}" --example bench_attention
  RAYON_NUM_THREADS=$threads "${pin[@]}" cargo run --release --quiet "${features[@]}" --example bench_attention -- "${candle_args[@]}"
fi
if [ "$with_torch" = 1 ]; then
  echo "== figures: $candle_json and $torch_json"
else
  echo "== figures: $candle_json"
fi
