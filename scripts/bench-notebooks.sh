#!/usr/bin/env bash
# Notebook latency: each lesson's Rust notebook, executed with nbclient in a fresh kernel,
# cell by cell, against bench/pytorch_lesson1.ipynb (the PyTorch original of lesson 1, step
# for step) on the same machine in the same run.
#
#   bash scripts/bench-notebooks.sh [--compare REV] [--runs N] [--cold] [--lang en|zh] [--json FILE]
#
# It runs scripts/setup.sh first (the kernel, .venv, the warm-up build), then installs torch
# into .venv, only here, for the PyTorch notebook's python3 kernel (a large download the
# first time), then bench/notebook_latency.py with the given options.
# --compare REV also measures the project as of git revision REV (e.g. the commit before a
# change), in the same run: a temporary worktree of REV with its own set-up (its .venv and
# kernel), whose notebooks run first. --cold adds one run per Rust notebook with an empty
# cache folder (minutes on 2 cores).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# shellcheck source=scripts/setup.sh
source "$ROOT/scripts/setup.sh"
ub_setup

args=()
before=
while [ $# -gt 0 ]; do
  case $1 in
    --compare)
      [ $# -ge 2 ] || ub_die "--compare needs a git revision"
      before=$(mktemp -d "${TMPDIR:-/tmp}/ub-bench-before.XXXXXX")/checkout
      git -C "$ROOT" worktree add --detach "$before" "$2" >/dev/null
      trap 'git -C "$ROOT" worktree remove --force "$before" >/dev/null 2>&1 || true' EXIT
      ub_step "Setting up $2 in $before (its own .venv and kernel)"
      (unset UB_START; bash "$before/scripts/setup.sh")
      args+=(--checkout "$before")
      shift 2
      ;;
    *)
      args+=("$1")
      shift
      ;;
  esac
done

py=$ROOT/.venv/bin/python
if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "== installing torch into .venv for the PyTorch notebook (once; a large download)"
  "$py" -m pip install --quiet torch numpy
fi
"$py" -c 'import ipykernel' 2>/dev/null || "$py" -m pip install --quiet ipykernel

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"
mkdir -p bench/results
"$py" bench/notebook_latency.py --json bench/results/notebooks.json ${args[@]+"${args[@]}"}
