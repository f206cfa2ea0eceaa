#!/usr/bin/env bash
# Run every test: set up what is missing (see scripts/setup.sh), then
#   1. cargo fmt --check
#   2. cargo clippy --workspace --all-targets -- -D warnings
#   3. cargo test --workspace      (unit, integration and doc tests; the derive crate too),
#      and cargo clippy --no-default-features --lib (the library alone, for candle users)
#   4. pytest tests/python         (notebooks, browser, HTML docs, Binder files)
# Every step runs even when an earlier one fails; the exit code is non-zero if any failed.
# .ci/run calls this, so CI runs exactly what a developer runs.
set -euo pipefail
# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

ub_setup --with-browser
cd "$UB_ROOT"

# CI starts from a fresh clone on a machine it has used before: keep cargo's build outside
# the clone, in the user's cache dir, so that only what changed is rebuilt. A developer's
# own runs keep using target/ (and their CARGO_TARGET_DIR, if set).
if [ "${CI:-}" = true ] && [ -z "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/understanding-buffers/target
  ub_info "CI: cargo builds in $CARGO_TARGET_DIR"
fi

LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ub-test.XXXXXX")
trap 'rm -rf "$LOG_DIR"' EXIT
results=()
failed=0

# run_step NAME COMMAND...: runs the command with its output shown and kept in a log.
run_step() {
  local name=$1 start=$SECONDS status=0
  shift
  ub_step "$name: $*"
  "$@" 2>&1 | tee "$LOG_DIR/$name.log" || status=$?
  results+=("$(printf '%-8s %-7s %4ss' "$name" "$([ $status -eq 0 ] && echo ok || echo FAILED)" "$((SECONDS - start))")")
  if [ $status -ne 0 ]; then failed=$((failed + 1)); fi
}

run_step fmt cargo fmt --all -- --check
run_step clippy cargo clippy --workspace --all-targets -- -D warnings
run_step cargo cargo test --workspace
run_step library cargo clippy --no-default-features --lib -- -D warnings
run_step pytest "$UB_VENV/bin/python" -m pytest tests/python

# Totals over cargo's "test result: ok. N passed; M failed; K ignored" lines and
# pytest's closing "N passed, M failed, K skipped" line.
read -r cargo_pass cargo_fail cargo_skip < <(
  sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored.*/\1 \2 \3/p' \
    "$LOG_DIR/cargo.log" | awk '{p+=$1; f+=$2; s+=$3} END {print p+0, f+0, s+0}'
)
py_last=$(grep -E '^=+ .*(passed|failed|error|skipped|no tests ran).* in [0-9.]+s' "$LOG_DIR/pytest.log" | tail -n1 || true)
py_count() { echo "$py_last" | grep -oE "[0-9]+ $1" | grep -oE '^[0-9]+' || echo 0; }
py_pass=$(py_count passed)
py_fail=$(($(py_count failed) + $(py_count errors) + $(py_count error)))
py_skip=$(py_count skipped)

ub_step "Summary"
printf '    %s\n' "${results[@]}"
ub_info "cargo test: $cargo_pass passed, $cargo_fail failed, $cargo_skip ignored"
ub_info "pytest:     $py_pass passed, $py_fail failed, $py_skip skipped"
if [ "$failed" -eq 0 ]; then
  ub_info "All checks passed in $((SECONDS - UB_START)) s."
else
  ub_info "$failed of ${#results[@]} steps FAILED: scroll up to the step's ==> line for its output."
fi
echo "tests: $((cargo_pass + py_pass)) passed, $((cargo_fail + py_fail)) failed, $((cargo_skip + py_skip)) skipped"
[ "$failed" -eq 0 ]
