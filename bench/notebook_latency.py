#!/usr/bin/env python3
"""Notebook latency: the lessons' Rust notebooks, cell by cell, vs the PyTorch original.

Executes each notebook with nbclient in a fresh kernel, `--runs` times, and reads nbclient's
own per-cell timings (`record_timing`: from `iopub.execute_input` to `shell.execute_reply`).
For each notebook it prints the per-cell medians over the runs, the median per-cell time, the
first code cell, the sum of all cells, and the whole notebook including kernel start.

Usually run through scripts/bench-notebooks.sh (which installs torch into .venv for the
PyTorch notebook, only when this benchmark is asked for). By hand, from the repository root,
after `bash scripts/setup.sh`:

    .venv/bin/python bench/notebook_latency.py --runs 3 [--cold] [--json bench/results/notebooks.json]

Runs:
  * warm: the kernel's build dirs and evcxr's cache (both under $XDG_CACHE_HOME) already hold
    the compiled crate and dependencies, as after scripts/setup.sh; each run still starts a
    new kernel, which is what a learner who opens a lesson gets. The first run is reported
    apart: it is a new kernel on a machine that has run the lessons before.
  * cold (--cold): one extra first run per Rust notebook with an empty cache folder (a fresh
    XDG_CACHE_HOME), so every dependency is compiled again: a first lesson on a fresh machine
    right after the kernel is built, without setup.sh's warm-up.
  * --checkout DIR runs DIR's notebooks on DIR's own kernel (DIR/.venv), so an older
    checkout can be measured in the same run (scripts/bench-notebooks.sh --compare REV).
Rust notebooks run in notebooks/<lang>/ (their `:dep` path is relative to it); the PyTorch
notebook runs in a scratch directory with UB_ROOT pointing at the repository.
"""

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def parse_time(s):
    # nbclient stores ISO-8601 strings such as 2026-11-22T23:50:01.123456Z
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def cell_seconds(cell):
    ex = cell.get("metadata", {}).get("execution", {})
    start = ex.get("iopub.execute_input") or ex.get("iopub.status.busy")
    end = ex.get("shell.execute_reply") or ex.get("iopub.status.idle")
    if not (start and end):
        return None
    return (parse_time(end) - parse_time(start)).total_seconds()


def run_once(path, kernel, timeout, extra_env=None, checkout=ROOT):
    nb = nbformat.read(path, as_version=4)
    is_rust = kernel == "rust"
    workdir = str(path.parent) if is_rust else tempfile.mkdtemp(prefix="ub-nb-")
    saved = dict(os.environ)
    os.environ["UB_ROOT"] = str(ROOT)
    if is_rust:  # that checkout's own `rust` kernel
        os.environ["JUPYTER_PATH"] = str(checkout / ".venv" / "share" / "jupyter")
    os.environ.update(extra_env or {})
    try:
        client = NotebookClient(
            nb,
            kernel_name=kernel,
            timeout=timeout,
            allow_errors=True,
            record_timing=True,
            resources={"metadata": {"path": workdir}},
        )
        start = time.perf_counter()
        client.execute()
        total = time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(saved)
    cells = []
    errors = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                errors.append(f"code cell {len(cells) + 1}: {o.get('ename', '')}: {str(o.get('evalue', ''))[:200]}")
        cells.append({"index": i, "seconds": cell_seconds(cell), "first_line": (cell.source.splitlines() or [""])[0][:60]})
    if errors:
        # A cell that fails (e.g. the crate did not compile) finishes early: its timings are not
        # the lesson's. Say so loudly; the figures of such a run should not be used.
        print(f"   WARNING: {len(errors)} error output(s) in this run; first: {errors[0]}", flush=True)
    return {"total_s": total, "cells": cells, "errors": len(errors), "error_texts": errors[:5]}


# The set-up cells a learner expects to wait for: `:dep`, then the `use` + lesson_setup cell.
SETUP_CELLS = 2


def summarize(name, runs):
    n_cells = len(runs[0]["cells"])
    per_cell = []
    for k in range(n_cells):
        vals = [r["cells"][k]["seconds"] for r in runs if r["cells"][k]["seconds"] is not None]
        per_cell.append(statistics.median(vals) if vals else None)
    known = [v for v in per_cell if v is not None]
    return {
        "notebook": name,
        "runs": len(runs),
        "code_cells": n_cells,
        "per_cell_median_s": per_cell,
        "median_cell_s": statistics.median(known) if known else None,
        "first_code_cell_s": per_cell[0] if per_cell else None,
        "max_cell_s": max(known) if known else None,
        "dep_cell_s": per_cell[0] if per_cell else None,
        "max_after_setup_s": max((v for v in per_cell[SETUP_CELLS:] if v is not None), default=None),
        "cells_sum_s": statistics.median([sum(c["seconds"] or 0 for c in r["cells"]) for r in runs]),
        "whole_notebook_s": statistics.median([r["total_s"] for r in runs]),
        "errors": max(r["errors"] for r in runs),
        "errors_per_run": [r["errors"] for r in runs],
        "first_errors": next((r["error_texts"] for r in runs if r["errors"]), []),
        "first_lines": [c["first_line"] for c in runs[0]["cells"]],
    }


def print_summary(label, s):
    print(f"\n### {s['notebook']} ({label}, {s['runs']} run(s), {s['code_cells']} code cells, error outputs per run: {s['errors_per_run']})")
    for i, (v, line) in enumerate(zip(s["per_cell_median_s"], s["first_lines"])):
        print(f"  cell {i + 1:2d} {v if v is None else f'{v:8.3f}'} s  {line}")
    after = s.get("max_after_setup_s")
    print(
        f"  median cell {s['median_cell_s']:.3f} s | first code cell {s['first_code_cell_s']:.3f} s | "
        f"max cell after the set-up cells {after if after is None else f'{after:.3f}'} s | "
        f"sum of cells {s['cells_sum_s']:.2f} s | whole notebook (with kernel start) {s['whole_notebook_s']:.2f} s"
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3, help="warm runs per notebook (default 3)")
    p.add_argument("--cold", action="store_true", help="first run each Rust notebook with an empty evcxr cache")
    p.add_argument("--lang", default="en", help="which notebooks/<lang>/ to run (default en)")
    p.add_argument("--rust-notebooks", nargs="*", help="Rust notebooks to run (default: notebooks/<lang>/*.ipynb)")
    p.add_argument("--pytorch-notebook", default=str(ROOT / "bench" / "pytorch_lesson1.ipynb"))
    p.add_argument("--no-pytorch", action="store_true", help="skip the PyTorch notebook")
    p.add_argument("--timeout", type=int, default=1800, help="per-cell timeout in seconds")
    p.add_argument("--checkout", type=Path, action="append", default=[],
                   help="also run this checkout's notebooks on its own kernel (its .venv), before this one's")
    p.add_argument("--json", help="write every figure to this file")
    args = p.parse_args()

    jobs = []
    for checkout in [*[c.resolve() for c in args.checkout], ROOT]:
        rust = [Path(x) for x in args.rust_notebooks] if args.rust_notebooks and checkout == ROOT else sorted(
            (checkout / "notebooks" / args.lang).glob("*.ipynb"))
        if not rust:
            sys.exit(f"error: no notebooks in {checkout}/notebooks/{args.lang}/")
        jobs += [(path, "rust", checkout) for path in rust]
    if not args.no_pytorch:
        try:
            import torch  # noqa: F401  - the python3 kernel runs in this environment
        except ImportError:
            sys.exit("error: torch is not installed in this Python; scripts/bench-notebooks.sh installs it (or pass --no-pytorch)")
        jobs.append((Path(args.pytorch_notebook), "python3", ROOT))

    report = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average_at_start": os.getloadavg(),
        "notebooks": [],
    }
    for path, kernel, checkout in jobs:
        name = str(path.resolve().relative_to(checkout))
        if checkout != ROOT:
            name = f"{checkout.name}: {name}"
        print(f"\n== {name} (kernel {kernel})", flush=True)
        cold = None
        if args.cold and kernel == "rust":
            with tempfile.TemporaryDirectory(prefix="ub-cold-cache-") as cache:
                print("   cold run (empty evcxr cache) ...", flush=True)
                cold = run_once(path, kernel, args.timeout, {"XDG_CACHE_HOME": cache}, checkout)
        warm = []
        for i in range(args.runs):
            print(f"   run {i + 1}/{args.runs} ...", flush=True)
            warm.append(run_once(path, kernel, args.timeout, checkout=checkout))
        entry = {"notebook": name, "kernel": kernel}
        if cold is not None:
            entry["cold"] = summarize(name, [cold])
            print_summary("cold, empty evcxr cache", entry["cold"])
        entry["first_run"] = summarize(name, warm[:1])
        print_summary("first run" + (" after the cold one" if cold else ""), entry["first_run"])
        entry["warm"] = summarize(name, warm[1:] if len(warm) > 1 else warm)
        print_summary("warm: runs after the first", entry["warm"])
        report["notebooks"].append(entry)

    report["load_average_at_end"] = os.getloadavg()
    torch_entry = next((e for e in report["notebooks"] if e["kernel"] == "python3"), None)
    print(f"\n## summary ({report['date']}, {report['machine']}, load average at start "
          f"{report['load_average_at_start'][0]:.2f}, at end {report['load_average_at_end'][0]:.2f})")
    print("warm medians; targets (issue 22): median cell <= 0.3 s, no cell after the set-up cells over 1 s,")
    print("a lesson <= 5x the PyTorch notebook; the first run is a new kernel on a used machine")
    for e in report["notebooks"]:
        w, first = e["warm"], e["first_run"]
        ratio = ""
        if torch_entry and e is not torch_entry:
            ratio = f" | {w['whole_notebook_s'] / torch_entry['warm']['whole_notebook_s']:.2f}x PyTorch"
        after = w["max_after_setup_s"]
        print(
            f"{e['notebook']:60} median cell {w['median_cell_s']:.3f} s | `:dep` {w['dep_cell_s']:.2f} s | "
            f"max after set-up {after if after is None else f'{after:.2f}'} s | whole {w['whole_notebook_s']:.2f} s "
            f"(first run {first['whole_notebook_s']:.2f} s){ratio}"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
