#!/usr/bin/env bash
# The set-up behind scripts/lab.sh and scripts/test.sh; also runs alone:
#   bash scripts/setup.sh [--gpu] [--with-browser] [--no-warmup]
#
# Every step checks first and does nothing when its work is already done, so only the
# first run is long (mostly the evcxr_jupyter build) and later runs take seconds.
#   1. Rust >= 1.95                          (checked; rustup installs it, see README)
#   2. evcxr_jupyter 0.22.0, patched         (scripts/evcxr/, once per machine: 5-20 min)
#   3. .venv/ with requirements.txt          (re-installed when that file changes)
#   4. the `rust` kernel inside .venv/       (reads evcxr settings from .evcxr/;
#                                             --gpu: candle with CUDA, see kernel.py)
#   5. a warm-up build of the crate's deps   (once per dependency set: 1.5-5 min)
#   6. with --with-browser: Debian's chromium + fonts-noto-cjk (browser test)
#
# lab.sh and test.sh `source` this file and call ub_setup; it also exports
# UB_ROOT, UB_VENV, PATH and JUPYTER_PATH for the commands they run next.

set -euo pipefail

# Physical path (-P): evcxr resolves the notebooks' `path = "../.."` from it, and the GPU
# kernel's feature crate (scripts/kernel.py) must name the very same folder.
UB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
UB_VENV=$UB_ROOT/.venv
UB_EVCXR_VERSION=0.22.0
# The notebooks' minimum Rust: evcxr 0.22's (its rust-version). The crate's own minimum,
# `rust-version` in Cargo.toml, is lower; the kernel compiles the crate, so this must be at
# least that (tests/python/test_binder.py checks), and environment.yml asks for this one.
UB_MIN_RUST=1.95
UB_CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
# What this project keeps per machine, beside evcxr's own cache (~/.cache/evcxr): the kernel
# binary, the kernels' build dirs (scripts/kernel-launch.sh) and our small stamps (warm-up
# done for a given dependency set), so a fresh clone on the same machine (CI) finds them.
UB_STAMPS=${XDG_CACHE_HOME:-$HOME/.cache}/understanding-buffers
# The kernel is evcxr_jupyter built with the patches of scripts/evcxr/ (its README says why),
# in a folder named after them: a changed patch builds a new kernel, never a stale one.
UB_EVCXR_ROOT=$UB_STAMPS/evcxr-$UB_EVCXR_VERSION-$(cat "$UB_ROOT"/scripts/evcxr/build.sh \
  "$UB_ROOT"/scripts/evcxr/Cargo.lock "$UB_ROOT"/scripts/evcxr/patches/*.patch | sha256sum | cut -c1-12)
UB_EVCXR=$UB_EVCXR_ROOT/bin/evcxr_jupyter
UB_START=${UB_START:-$SECONDS}

# ---------------------------------------------------------------- output helpers
ub_step() { printf '\n==> [%4ss] %s\n' "$((SECONDS - UB_START))" "$*"; }
ub_info() { printf '    %s\n' "$*"; }
ub_die() {
  printf '\nERROR: %s\n' "$*" >&2
  exit 1
}

# Runs a command as root: directly when we are root, else through sudo when it works
# without a password prompt; returns 1 when neither is possible.
ub_as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    return 1
  fi
}

# ---------------------------------------------------------------- 1. Rust
ub_check_rust() {
  export PATH=$UB_CARGO_HOME/bin:$PATH
  if ! command -v cargo >/dev/null || ! command -v rustc >/dev/null; then
    ub_die "Rust is not installed. Install it with rustup (https://rustup.rs), open a new shell, and run this again."
  fi
  local have
  have=$(rustc --version | awk '{print $2}')
  if [ "$(printf '%s\n%s\n' "$UB_MIN_RUST" "$have" | sort -V | head -n1)" != "$UB_MIN_RUST" ]; then
    ub_die "Rust $have is too old: this project needs Rust >= $UB_MIN_RUST (evcxr_jupyter 0.22 does too). Run: rustup update stable"
  fi
  ub_info "rustc $have (>= $UB_MIN_RUST)"
  # evcxr's completions and hover need the standard library's sources; cells run without.
  if [ ! -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library" ]; then
    ub_info "note: rust-src is missing, so JupyterLab cannot complete std names (rustup component add rust-src)"
  fi
}

# ---------------------------------------------------------------- 2. evcxr_jupyter
ub_install_evcxr() {
  if [ -x "$UB_EVCXR" ]; then
    ub_info "evcxr_jupyter $UB_EVCXR_VERSION with this project's patches is built ($UB_EVCXR)"
    return
  fi
  ub_info "building evcxr_jupyter $UB_EVCXR_VERSION with this project's patches (scripts/evcxr/README.md)."
  ub_info "This happens once per machine and takes 5-20 minutes on 2 cores (~340 crates, ~1.3 GB of memory)."
  local partial=$UB_EVCXR_ROOT.partial.$$
  rm -rf "$partial"
  bash "$UB_ROOT/scripts/evcxr/build.sh" "$partial" || ub_die "building evcxr_jupyter failed (see above)"
  rm -rf "$UB_EVCXR_ROOT"
  mv "$partial" "$UB_EVCXR_ROOT"
  [ -x "$UB_EVCXR" ] || ub_die "the build finished but $UB_EVCXR is missing"
}

# ---------------------------------------------------------------- 3. Python venv
ub_pick_python() {
  local py
  for py in python3 python; do
    if command -v "$py" >/dev/null &&
      "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "$py"
      return
    fi
  done
  ub_die "Python >= 3.10 is needed for JupyterLab (Debian/Ubuntu: apt-get install python3 python3-venv)."
}

ub_setup_venv() {
  local want stamp=$UB_VENV/.requirements.sha256
  want=$(sha256sum "$UB_ROOT/requirements.txt" | cut -d' ' -f1)
  if [ -x "$UB_VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    ub_info "$UB_VENV is up to date with requirements.txt"
  else
    if [ ! -x "$UB_VENV/bin/python" ]; then
      local py
      py=$(ub_pick_python)
      ub_info "creating $UB_VENV with $("$py" --version)"
      "$py" -m venv "$UB_VENV" ||
        ub_die "could not create a virtualenv (Debian/Ubuntu: apt-get install python3-venv)"
    fi
    ub_info "installing requirements.txt into .venv (about 1-2 minutes the first time)"
    "$UB_VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
      -r "$UB_ROOT/requirements.txt"
    echo "$want" >"$stamp"
  fi
  export PATH=$UB_VENV/bin:$PATH
  # Jupyter finds kernels in JUPYTER_PATH first: ours shadows any `rust` kernel the user
  # registered globally (~/.local/share/jupyter) for other projects.
  export JUPYTER_PATH=$UB_VENV/share/jupyter
  # Quiets jupyter_core's notice about its future default paths.
  export JUPYTER_PLATFORM_DIRS=1
}

# ---------------------------------------------------------------- 4. kernel
# CUDA compute capability of GPU 0 as cudaforge wants it ("9.0" -> "90"); an explicit
# CUDA_COMPUTE_CAP wins.
ub_compute_cap() {
  if [ -n "${CUDA_COMPUTE_CAP:-}" ]; then
    echo "$CUDA_COMPUTE_CAP"
    return
  fi
  command -v nvidia-smi >/dev/null ||
    ub_die "--gpu: nvidia-smi not found. This needs a Linux machine with an NVIDIA GPU and its driver."
  local cap
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d ' .')
  [[ $cap =~ ^[0-9]+$ ]] ||
    ub_die "--gpu: could not read the GPU's compute capability from nvidia-smi; set it yourself, e.g. CUDA_COMPUTE_CAP=80"
  echo "$cap"
}

ub_check_cuda_toolkit() {
  # candle-kernels' build script runs nvcc; Colab and most CUDA images have it here.
  if ! command -v nvcc >/dev/null; then
    local home=${CUDA_HOME:-/usr/local/cuda}
    [ -x "$home/bin/nvcc" ] ||
      ub_die "--gpu: nvcc (the CUDA toolkit) not found on PATH or in $home/bin. Install the CUDA toolkit or set CUDA_HOME."
    export CUDA_HOME=$home PATH=$home/bin:$PATH
  fi
  ub_info "nvcc: $(nvcc --version | tail -n1)"
}

ub_register_kernel() {
  local mode=$1
  local args=(install --jupyter-dir "$UB_VENV/share/jupyter" --evcxr "$UB_EVCXR")
  if [ "$mode" = gpu ]; then
    ub_check_cuda_toolkit
    local cap
    cap=$(ub_compute_cap)
    export CUDA_COMPUTE_CAP=$cap
    ub_info "GPU: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -n1), compute capability $cap"
    args+=(--gpu --compute-cap "$cap")
  fi
  "$UB_VENV/bin/python" "$UB_ROOT/scripts/kernel.py" "${args[@]}"
}

# JupyterLab defaults for this project, in .venv only:
# - closing a lesson's tab shuts its kernel down. Each evcxr kernel holds memory, and a
#   GPU kernel holds one of the build dirs of scripts/gpu-kernel.sh; left running, the
#   next lesson would compile CUDA again;
# - no pop-up asking to fetch Jupyter news, no update check (often offline, off-topic).
ub_lab_settings() {
  local dir=$UB_VENV/share/jupyter/lab/settings
  mkdir -p "$dir"
  cat >"$dir/overrides.json" <<'JSON'
{
  "@jupyterlab/notebook-extension:tracker": { "kernelShutdown": true },
  "@jupyterlab/apputils-extension:notification": { "fetchNews": "false", "checkForUpdates": false }
}
JSON
}

# JupyterLab shows no inline SVG or HTML output of a notebook it does not trust: opened
# before running, the committed lessons' figures would be lines of text. So the lessons are
# trusted (signed, `jupyter trust`) as committed: those whose file is git's, unchanged (one
# a learner changed was saved, and so signed, by their own JupyterLab). Signatures live in
# Jupyter's data dir, JUPYTER_DATA_DIR when set: call this with the server's environment.
# $1: the jupyter command (default: .venv's).
ub_trust_lessons() {
  local jupyter=${1:-$UB_VENV/bin/jupyter} nb files=()
  local git_ok=0
  if command -v git >/dev/null && git -C "$UB_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    git_ok=1
  fi
  for nb in "$UB_ROOT"/notebooks/en/*.ipynb "$UB_ROOT"/notebooks/zh/*.ipynb; do
    [ -f "$nb" ] || continue
    if [ "$git_ok" = 1 ]; then
      git -C "$UB_ROOT" ls-files --error-unmatch -- "$nb" >/dev/null 2>&1 || continue
      git -C "$UB_ROOT" diff --quiet -- "$nb" || continue
    fi
    files+=("$nb")
  done
  if [ ${#files[@]} -gt 0 ]; then
    "$jupyter" trust "${files[@]}" >/dev/null || ub_info "note: could not trust the lessons; their figures show once run"
    ub_info "trusted ${#files[@]} committed lesson notebooks (their figures show before running)"
  fi
}

# ---------------------------------------------------------------- 5. warm-up
# The warm-up is keyed on what decides evcxr's compiled dependencies: the crate's
# manifest, the evcxr settings, the compiler and the kernel mode.
ub_warmup_key() {
  local mode=$1
  {
    cat "$UB_ROOT/Cargo.toml" "$UB_ROOT/.evcxr/init.evcxr"
    rustc --version
    echo "$UB_EVCXR $mode ${CUDA_COMPUTE_CAP:-}"
    # The crate itself is compiled per checkout (its path is part of the notebooks' `:dep`),
    # and GPU build dirs live in the checkout (.cache/): a fresh clone warms up again, which
    # costs only this crate when evcxr's cache holds its dependencies.
    echo "$UB_ROOT"
  } | sha256sum | cut -c1-16
}

ub_warmup() {
  local mode=$1 stamp
  stamp=$UB_STAMPS/warmup-$(ub_warmup_key "$mode")
  if [ -e "$stamp" ]; then
    ub_info "the crate's dependencies are already compiled in evcxr's cache"
    return
  fi
  if [ "$mode" = gpu ]; then
    ub_info "compiling candle with CUDA through the kernel: the first time takes 20-30 minutes on 2 cores"
  else
    ub_info "compiling the crate's dependencies (candle, plotters, ...) through the kernel, once: 1.5-5 minutes"
  fi
  # A failed warm-up (say, the crate does not compile right now) is no reason to stop:
  # JupyterLab still opens, and test.sh's cargo steps then show what is wrong.
  if "$UB_VENV/bin/python" "$UB_ROOT/scripts/kernel.py" warmup; then
    mkdir -p "$UB_STAMPS"
    date -u +%FT%TZ >"$stamp"
  else
    ub_info "WARNING: the warm-up failed (see above); the first :dep cell of a lesson will be slow or show the error"
  fi
}

# ---------------------------------------------------------------- 6. Debian packages
ub_install_debs() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    ub_info "Debian packages present: $*"
    return
  fi
  command -v apt-get >/dev/null ||
    ub_die "missing packages ${missing[*]}, and this is no Debian/Ubuntu system: install Chromium and a CJK font yourself"
  ub_info "installing ${missing[*]} with apt-get"
  if ! { ub_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    ub_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; }; then
    ub_die "could not install ${missing[*]}: run as root, or: sudo apt-get install ${missing[*]}"
  fi
}

# ---------------------------------------------------------------- all of it
# ub_setup [--gpu] [--with-browser] [--no-warmup]
ub_setup() {
  local mode=cpu browser=0 warm=1
  while [ $# -gt 0 ]; do
    case $1 in
      --gpu) mode=gpu ;;
      --with-browser) browser=1 ;;
      --no-warmup) warm=0 ;;
      *) ub_die "setup: unknown option $1" ;;
    esac
    shift
  done
  ub_step "Rust toolchain"
  ub_check_rust
  ub_step "evcxr_jupyter $UB_EVCXR_VERSION (the Rust kernel)"
  ub_install_evcxr
  ub_step "Python environment (.venv)"
  ub_setup_venv
  ub_step "Jupyter kernel 'rust' ($mode)"
  ub_register_kernel "$mode"
  ub_lab_settings
  if [ "$browser" = 1 ]; then
    ub_step "Debian packages for the browser test"
    ub_install_debs chromium fonts-noto-cjk
  fi
  if [ "$warm" = 1 ]; then
    ub_step "Warm-up: evcxr compiles the crate's dependencies"
    ub_warmup "$mode"
  fi
  ub_step "Set-up done"
}

# Run alone (not sourced): do the set-up.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  ub_setup "$@"
fi
