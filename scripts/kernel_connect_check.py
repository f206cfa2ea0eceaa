#!/usr/bin/env python3
"""Opens the lessons in JupyterLab in Chromium, again and again, and counts the kernels
that never connect.

Each open is what a learner does: a fresh browser tab opens a lesson notebook (cycling
through notebooks/en and notebooks/zh), waits until the page shows its kernel idle, runs the
first code cells (`:dep`, then the first `use`), checks they finished without an error, and
closes the tab (its kernel is shut down). A kernel the page never sees as idle within
--connect-timeout is counted as "never connected" and reported with its evidence (the
server's log lines about it, and per-thread CPU use of the kernel process). JupyterLab is
started once, through scripts/lab.sh, exactly as the browser test starts it.

  .venv/bin/python scripts/kernel_connect_check.py --opens 40
  .venv/bin/python scripts/kernel_connect_check.py --opens 5 --notebook notebooks/zh/02-positional-encoding-buffers.ipynb

Exit status 0 when every open connected and ran its cells; 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import jupyterlab_driver as lab_driver  # noqa: E402

LESSONS = sorted((lab_driver.NOTEBOOKS / "en").glob("*.ipynb")) + sorted((lab_driver.NOTEBOOKS / "zh").glob("*.ipynb"))
ERROR_MIMES = ("application/vnd.jupyter.stderr",)

OUTPUTS_JS = f"""(index) => Array.from(document.querySelectorAll('{lab_driver.PANEL} .jp-Notebook .jp-Cell')[index]
    .querySelectorAll('.jp-OutputArea-output')).map(o => ({{mime: o.dataset.mimeType || '', text: o.innerText}}))"""


def code_cell_indices(path: Path) -> list[int]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [i for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "code"]


def run_first_cells(page, cells: list[int], timeout: float) -> tuple[str | None, float]:
    """Runs notebook cells[0] .. cells[-1] with Shift+Enter from the first one, as a learner
    does, and waits until each has an execution count. Returns (problem or None, seconds)."""
    start = time.monotonic()
    page.locator(f"{lab_driver.PANEL} .jp-Notebook .jp-Cell").nth(cells[0]).locator(".jp-InputPrompt").click()
    for _ in range(cells[-1] - cells[0] + 1):
        page.keyboard.press("Shift+Enter")
    deadline = start + timeout
    while time.monotonic() < deadline:
        prompts = lab_driver.execution_counts(page)
        if all(lab_driver.is_done(prompts[i]) for i in cells):
            break
        time.sleep(0.5)
    else:
        prompts = lab_driver.execution_counts(page)
        return f"cells {cells} did not all finish within {timeout:.0f} s (prompts {[prompts[i] for i in cells]})", timeout
    seconds = time.monotonic() - start
    for i in cells:
        for out in page.evaluate(OUTPUTS_JS, i):
            if out["mime"] in ERROR_MIMES and "error" in out["text"].lower() or "panicked" in out["text"]:
                return f"cell {i} shows an error: {out['text'][:300]!r}", seconds
    return None, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--opens", type=int, default=40, help="how many times to open a notebook (default 40)")
    parser.add_argument("--notebook", type=Path, action="append", help="notebook(s) to cycle through (default: the four lessons)")
    parser.add_argument("--cells", type=int, default=2, help="how many of the first code cells to run (default 2)")
    parser.add_argument("--connect-timeout", type=float, default=120, help="seconds for the page to show the kernel idle")
    parser.add_argument("--cell-timeout", type=float, default=300, help="seconds for the first cells to finish")
    parser.add_argument("--keep-going", action="store_true", help="do not stop at the first kernel that never connects")
    args = parser.parse_args()
    notebooks = [p.resolve() for p in args.notebook] if args.notebook else LESSONS

    from playwright.sync_api import sync_playwright

    lab = lab_driver.start_lab(start_timeout=900)
    attempted, connected, failures, connect_times, cell_times = 0, 0, [], [], []
    try:
        with sync_playwright() as playwright:
            browser = lab_driver.launch(playwright)
            for n in range(args.opens):
                path = notebooks[n % len(notebooks)]
                attempted += 1
                name = f"{path.parent.name}/{path.stem}"
                context = browser.new_context(viewport=lab_driver.VIEWPORT)
                context.set_default_timeout(60_000)
                try:
                    page = context.new_page()
                    opened = time.monotonic()
                    lab_driver.open_notebook(page, lab, path)
                    problem = lab_driver.wait_for_kernel_idle(page, lab, path, args.connect_timeout, f"open {n + 1} ({name})")
                    if problem:
                        failures.append(problem)
                        print(f"open {n + 1:2d} {name}: NEVER CONNECTED\n{problem}", flush=True)
                        if not args.keep_going:
                            break
                        continue
                    connected += 1
                    connect_times.append(time.monotonic() - opened)
                    cells = code_cell_indices(path)[: args.cells]
                    problem, seconds = run_first_cells(page, cells, args.cell_timeout)
                    cell_times.append(seconds)
                    status = "ok" if not problem else f"FAILED: {problem}"
                    print(f"open {n + 1:2d} {name}: idle in the page after {connect_times[-1]:.1f} s, "
                          f"first {len(cells)} cells in {seconds:.1f} s: {status}", flush=True)
                    if problem:
                        failures.append(f"open {n + 1} ({name}): {problem}")
                finally:
                    context.close()
                    lab.shutdown_sessions()
            browser.close()
    finally:
        lab.stop()

    never = sum("was not idle" in f for f in failures)
    print()
    print(f"opens: {attempted}; connected: {connected}; never connected: {never}; "
          f"other failures: {len(failures) - never}")
    if connect_times:
        print(f"time until the page showed the kernel idle: median {statistics.median(connect_times):.1f} s, "
              f"max {max(connect_times):.1f} s; first cells: median {statistics.median(cell_times):.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
