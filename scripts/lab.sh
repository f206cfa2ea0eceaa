#!/usr/bin/env bash
# Open the lessons: set up what is missing (see scripts/setup.sh), then start JupyterLab
# on notebooks/ with the project's Rust kernel.
#
#   scripts/lab.sh                  # CPU
#   scripts/lab.sh --gpu            # NVIDIA GPU + CUDA: candle is built with `cuda`
#   scripts/lab.sh --port 8890 ...  # any other option goes to `jupyter lab`
#
# The first run builds evcxr_jupyter (8-20 min on 2 cores) and compiles the crate's
# dependencies once (1.5-5 min); later runs start JupyterLab within seconds.
set -euo pipefail
# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

setup_args=()
lab_args=()
for arg in "$@"; do
  case $arg in
    --gpu) setup_args+=(--gpu) ;;
    *) lab_args+=("$arg") ;;
  esac
done

# (${a[@]+"${a[@]}"}: an empty array under `set -u` in any bash version)
ub_setup ${setup_args[@]+"${setup_args[@]}"}

# Jupyter refuses to run as root unless told; containers and cloud boxes often are root.
if [ "$(id -u)" -eq 0 ] && [[ " ${lab_args[*]-} " != *" --allow-root "* ]]; then
  lab_args+=(--allow-root)
fi

root_dir=$UB_ROOT/notebooks
[ -d "$root_dir" ] || root_dir=$UB_ROOT
ub_trust_lessons
ub_step "Starting JupyterLab in $root_dir (stop it with Ctrl-C)"
ub_info "Open en/ (English) or zh/ (中文) and start with 01-understanding-buffers.ipynb."
# Rust is the default for new notebooks (JupyterLab also lists the Python kernel it ships with).
exec "$UB_VENV/bin/jupyter" lab --ServerApp.root_dir="$root_dir" \
  --MultiKernelManager.default_kernel_name=rust ${lab_args[@]+"${lab_args[@]}"}
