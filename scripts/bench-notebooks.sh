#!/usr/bin/env bash
# Notebook latency (issue 6, item 3): each lesson's Rust notebook, executed with nbclient in a
# fresh kernel, against bench/pytorch_lesson1.ipynb (the PyTorch original of lesson 1, step
# for step) on the same machine in the same run.
#
#   bash scripts/bench-notebooks.sh [--runs N] [--cold] [--lang en|zh] [--json FILE]
#
# It runs scripts/setup.sh first (evcxr, .venv, the `rust` kernel, the warm-up build), then
# installs torch into .venv, only here, for the PyTorch notebook's python3 kernel (a large
# download the first time), then bench/notebook_latency.py with the given options.
# --cold adds one run per Rust notebook with an empty evcxr cache (minutes on 2 cores).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# shellcheck source=scripts/setup.sh
source "$ROOT/scripts/setup.sh"
ub_setup

py=$ROOT/.venv/bin/python
if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "== installing torch into .venv for the PyTorch notebook (once; a large download)"
  "$py" -m pip install --quiet torch numpy
fi
"$py" -c 'import ipykernel' 2>/dev/null || "$py" -m pip install --quiet ipykernel

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"
mkdir -p bench/results
exec "$py" bench/notebook_latency.py --json bench/results/notebooks.json "$@"
