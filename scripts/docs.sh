#!/usr/bin/env bash
# Export the lessons as a static HTML site:
#   scripts/docs.sh [--src DIR] [--out DIR]     (defaults: notebooks/ -> site/)
# Converts the committed, already executed notebooks of both languages (DIR/en/*.ipynb,
# DIR/zh/*.ipynb) with nbconvert, without running them again, so it needs no Rust kernel
# and takes seconds. Pictures are SVG inside the pages; open site/index.html.
set -euo pipefail
# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

src=$UB_ROOT/notebooks
out=$UB_ROOT/site
while [ $# -gt 0 ]; do
  case $1 in
    --src) src=$(cd "$2" && pwd) && shift ;;
    --out) out=$2 && shift ;;
    *) ub_die "docs.sh: unknown option $1 (use --src DIR, --out DIR)" ;;
  esac
  shift
done

ub_step "Python environment (.venv)"
ub_setup_venv

for lang in en zh; do
  ub_step "Exporting $src/$lang"
  shopt -s nullglob
  notebooks=("$src/$lang"/*.ipynb)
  shopt -u nullglob
  [ ${#notebooks[@]} -gt 0 ] || ub_die "no notebooks in $src/$lang"
  rm -rf "${out:?}/$lang"
  mkdir -p "$out/$lang"
  "$UB_VENV/bin/jupyter" nbconvert --to html --output-dir "$out/$lang" "${notebooks[@]}"
done

"$UB_VENV/bin/python" "$UB_ROOT/scripts/docs_index.py" "$src" "$out"
ub_step "Site ready: $out/index.html"
