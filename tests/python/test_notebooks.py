"""Every lesson notebook runs headlessly through the evcxr (`rust`) kernel and shows what is committed.

For each of notebooks/{en,zh}/*.ipynb, a copy is executed in memory with nbclient (the file
itself is never written) from the notebook's own folder, so that `:dep ... path = "../.."`
and the data paths resolve as in JupyterLab. The test fails when

* a cell errors or panics, unless it is tagged "intended-error" (see nbcompare.py for what
  counts: error outputs, errors or panics on stderr, panics on stdout, error blocks);
* an intended error does not show its `expect` text;
* a deterministic output differs from the committed one (temp paths and the checkout's path
  sanitised; "nondeterministic" cells: only the kinds of outputs; "device-dependent" cells:
  exactly on a CPU kernel, only errors on a GPU one);
* a committed figure is missing or is not an inline <svg>;
* a cell whose committed outputs are not empty shows nothing (evcxr may lose stderr);
* lesson 1 does not show PyTorch's own prints (tests/fixtures/pytorch/expected.json);
* the committed notebook was not committed executed;
* the kernel sends a cell's output after the cell has ended (Jupyter clients drop it).

It prints per-notebook timings from nbclient's record_timing metadata. The notebooks run one
after another, then lesson 1 in English and Chinese at the same time (two kernels, as a
learner comparing the languages has).
Environment: UB_CELL_TIMEOUT (seconds per cell, default 300: scripts/test.sh has warmed the
kernel's build dir, so even `:dep` takes seconds), UB_KERNEL_STARTUP_TIMEOUT (default 300),
UB_NOTEBOOKS (space-separated notebook paths to run instead of the four lessons).
"""

from __future__ import annotations

import copy
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from queue import Empty
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async

import nbcompare
from conftest import LANGUAGES, NOTEBOOKS, ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from notebooks import LateOutputClient  # noqa: E402  (one definition, shared with scripts/notebooks.py)

CELL_TIMEOUT = int(os.environ.get("UB_CELL_TIMEOUT", "300"))
STARTUP_TIMEOUT = int(os.environ.get("UB_KERNEL_STARTUP_TIMEOUT", "300"))
LESSON_NOTEBOOKS = [Path(p).resolve() for p in os.environ.get("UB_NOTEBOOKS", "").split()] or [
    p for lang in LANGUAGES for p in sorted((NOTEBOOKS / lang).glob("*.ipynb"))
]


def notebook_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def kernel_mode(kernelspec: dict) -> nbcompare.Mode:
    mode = kernelspec.get("metadata", {}).get("understanding_buffers", {}).get("mode", "cpu")
    return nbcompare.Mode(gpu=mode != "cpu")


def fresh_copy(committed: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = copy.deepcopy(committed)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
    return nb


def running_cell(nb: nbformat.NotebookNode) -> str:
    """The cell nbclient was executing when it gave up: the first one without a reply."""
    for i, cell in nbcompare.code_cells(nb):
        if "shell.execute_reply" not in cell.get("metadata", {}).get("execution", {}):
            return nbcompare.describe(i, cell)
    return "the last cell"


def execute(path: Path) -> tuple[nbformat.NotebookNode, float, list[tuple[int, str]]]:
    """Runs a copy of the notebook in memory, in the notebook's folder.

    Returns the executed copy, the wall time and the late output lines (LateOutputClient)."""
    nb = fresh_copy(nbformat.read(path, as_version=4))
    client = LateOutputClient(
        nb,
        kernel_name="rust",
        timeout=CELL_TIMEOUT,
        startup_timeout=STARTUP_TIMEOUT,
        # Run every cell even after a failure, so one report lists every problem.
        allow_errors=True,
        record_timing=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.monotonic()
    try:
        client.execute()
    except CellTimeoutError:
        pytest.fail(f"{notebook_id(path)}: {running_cell(nb)} never finished after {CELL_TIMEOUT} s (UB_CELL_TIMEOUT)")
    except DeadKernelError as error:
        pytest.fail(f"{notebook_id(path)}: the kernel died during {running_cell(nb)}: {error}")
    return nb, time.monotonic() - start, client.late


def problems_of_run(path: Path, committed: dict, actual: dict, mode: nbcompare.Mode) -> list[str]:
    problems = nbcompare.committed_problems(committed)
    if len(committed["cells"]) != len(actual["cells"]):
        return problems + ["the executed copy has a different number of cells"]
    for (i, want), (_, have) in zip(nbcompare.code_cells(committed), nbcompare.code_cells(actual)):
        if have.get("execution_count") is None:
            problems.append(f"{nbcompare.describe(i, want)}: was not executed")
            continue
        problems += nbcompare.compare_cell(i, want, have, mode)
    shown = "\n".join(nbcompare.cell_text(c) for _, c in nbcompare.code_cells(actual))
    problems += nbcompare.missing_pytorch_prints(path, shown, mode.gpu)
    return problems


@pytest.mark.parametrize("path", LESSON_NOTEBOOKS, ids=notebook_id)
def test_notebook_runs_and_matches_committed_outputs(path: Path, rust_kernelspec: dict, capsys) -> None:
    committed = nbformat.read(path, as_version=4)
    if not any(c.get("outputs") for _, c in nbcompare.code_cells(committed)):
        pytest.fail(f"{notebook_id(path)}: {nbcompare.committed_problems(committed)[0]}", pytrace=False)
    before = path.read_bytes()
    actual, seconds, late = execute(path)
    assert path.read_bytes() == before, f"{path} was modified by the test run"

    summary = nbcompare.timings(actual, seconds).summary(notebook_id(path))
    with capsys.disabled():
        print(f"\n[timing] {summary}", flush=True)
    problems = problems_of_run(path, committed, actual, kernel_mode(rust_kernelspec)) + late_problems(actual, late)
    if problems:
        pytest.fail(report(path, problems), pytrace=False)


def late_problems(actual: nbformat.NotebookNode, late: list[tuple[int, str]]) -> list[str]:
    """What a kernel sends for a cell after the cell's `idle` is dropped by JupyterLab and
    nbclient: the learner would not see it."""
    return [
        f"{nbcompare.describe(index, actual.cells[index])}: the kernel sent {text!r} after the cell had ended"
        for index, text in late
    ]


def report(path: Path, problems: list[str]) -> str:
    return (
        f"{notebook_id(path)}: {len(problems)} problem(s) in a fresh run through the `rust` kernel:\n\n"
        + nbcompare.first_problems(problems)
        + "\n\nIf the change is intended, run `scripts/notebooks.py update` and commit the notebooks."
    )


# The same lesson in English and Chinese side by side is what a learner comparing them does:
# two kernels compiling at the same moment, each in its own build dir (scripts/kernel-launch.sh)
# and sharing evcxr's `:cache`.
SIDE_BY_SIDE = [NOTEBOOKS / lang / "01-understanding-buffers.ipynb" for lang in LANGUAGES]


def test_two_notebooks_run_at_once(rust_kernelspec: dict, capsys) -> None:
    committed = {path: nbformat.read(path, as_version=4) for path in SIDE_BY_SIDE}
    with ThreadPoolExecutor(max_workers=len(SIDE_BY_SIDE)) as pool:
        runs = dict(zip(SIDE_BY_SIDE, pool.map(execute, SIDE_BY_SIDE)))
    failures = []
    for path, (actual, seconds, late) in runs.items():
        with capsys.disabled():
            print(f"\n[timing] at once: {nbcompare.timings(actual, seconds).summary(notebook_id(path))}", flush=True)
        problems = problems_of_run(path, committed[path], actual, kernel_mode(rust_kernelspec))
        problems += late_problems(actual, late)
        if problems:
            failures.append(report(path, problems))
    assert not failures, "\n\n".join(failures)


# ---------------------------------------------------------------- the checker itself
# Without a kernel: the comparison must catch each way a notebook can go wrong.
def code_cell(src: str, outputs: list[dict], tags=(), expect=()) -> dict:
    metadata = {}
    if tags:
        metadata["tags"] = list(tags)
    if expect:
        metadata["expect"] = list(expect)
    return {"cell_type": "code", "source": src, "metadata": metadata, "outputs": outputs, "execution_count": 1}


def stdout(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text}


def stderr(text: str) -> dict:
    return {"output_type": "stream", "name": "stderr", "text": text}


def html(markup: str) -> dict:
    return {"output_type": "execute_result", "data": {"text/html": markup}, "metadata": {}, "execution_count": 1}


FIGURE = '<div class="ub-figure">\n<svg width="10" height="10"><text x="1" y="1">mask</text></svg></div>'
ERROR_BLOCK = '<pre class="ub-error" style="color:#a00">Error: dtype mismatch in add, lhs: BF16, rhs: F32</pre>'


def check(committed: dict, actual: dict, gpu: bool = False) -> list[str]:
    return nbcompare.compare_cell(3, committed, actual, nbcompare.Mode(gpu=gpu))


def test_checker_accepts_identical_outputs_split_differently() -> None:
    want = code_cell("println!(1);", [stdout("a\nb\n"), html(FIGURE)])
    have = code_cell("println!(1);", [stdout("a\n"), stdout("b\n"), html(FIGURE)])
    assert check(want, have) == []


def test_checker_reports_changed_numbers_with_a_diff() -> None:
    want = code_cell("let x = 1;\nprintln!(x);", [stdout("tensor([[-0.4519,  0.2216]])\n")])
    have = code_cell("let x = 1;\nprintln!(x);", [stdout("tensor([[-0.4520,  0.2216]])\n")])
    [problem] = check(want, have)
    assert "cell 3 (`let x = 1;`)" in problem
    assert "-tensor([[-0.4519,  0.2216]])" in problem and "+tensor([[-0.4520,  0.2216]])" in problem


def test_checker_reports_panics_errors_and_lost_output() -> None:
    want = code_cell("f()?;", [stdout("ok\n")])
    assert any("panic" in p for p in check(want, code_cell("f()?;", [stdout("panicked at src/x.rs:1:1: boom\n")])))
    assert any("stderr" in p for p in check(want, code_cell("f()?;", [stdout("ok\n"), stderr("Error: no file\n")])))
    error = {"output_type": "error", "ename": "Error", "evalue": "compile", "traceback": ["error[E0308]"]}
    assert any("error output" in p for p in check(want, code_cell("f()?;", [error])))
    assert any("no output at all" in p for p in check(want, code_cell("f()?;", [])))
    shown = check(want, code_cell("f()?;", [html(ERROR_BLOCK)]))
    assert any("error shown by the cell" in p for p in shown)


def test_checker_requires_intended_error_text() -> None:
    expect = ["dtype mismatch in add, lhs: BF16, rhs: F32"]
    want = code_cell("f()", [html(ERROR_BLOCK)], tags=["intended-error"], expect=expect)
    assert check(want, code_cell("f()", [html(ERROR_BLOCK)], tags=["intended-error"], expect=expect)) == []
    other = html('<pre class="ub-error">Error: something else</pre>')
    problems = check(want, code_cell("f()", [other], tags=["intended-error"], expect=expect))
    assert any("expected text 'dtype mismatch" in p for p in problems)
    problems = check(want, code_cell("f()", [stdout("F32\n")], tags=["intended-error"], expect=expect))
    assert any("ub-error" in p for p in problems)


def test_checker_requires_inline_svg_figures() -> None:
    want = code_cell("plot()", [html(FIGURE)])
    png = {"output_type": "display_data", "data": {"image/png": "iVBOR"}, "metadata": {}}
    assert any("figure" in p for p in check(want, code_cell("plot()", [png])))
    assert any("figure" in p for p in check(want, code_cell("plot()", [html('<div class="ub-figure"></div>')])))


def test_checker_nondeterministic_and_device_dependent_cells() -> None:
    tag = ["nondeterministic"]
    want = code_cell("time()", [stdout("1.0 ms\n"), html(FIGURE.replace("mask", "1.0"))], tags=tag)
    have = code_cell("time()", [stdout("2.5 ms\n"), html(FIGURE.replace("mask", "2.5"))], tags=tag)
    assert check(want, have) == []
    assert any("kinds differ" in p for p in check(want, code_cell("time()", [stdout("2.5 ms\n")], tags=tag)))

    tag = ["device-dependent"]
    want = code_cell("run()", [stdout("Machine has GPU: false\n")], tags=tag)
    have = code_cell("run()", [stdout("Machine has GPU: true\n"), html(ERROR_BLOCK)], tags=tag)
    assert check(want, have, gpu=True) == []
    assert any("differs" in p for p in check(want, have, gpu=False))


def test_checker_sanitises_temp_and_checkout_paths() -> None:
    want = code_cell("save()", [stdout("saved /tmp/understanding-buffers/model.pth\n")])
    have = code_cell("save()", [stdout("saved /tmp/other/model.pth\n")])
    assert check(want, have) == []
    root = code_cell("p()", [stdout(f"{nbcompare.ROOT}/data/reference/x\n")])
    assert nbcompare.comparable(root["outputs"]).endswith("<repo>/data/reference/x\n")


def test_checker_rejects_unexecuted_committed_notebooks() -> None:
    nb = {"cells": [code_cell(":dep x", []), code_cell("f()", [])]}
    assert "no outputs at all" in nbcompare.committed_problems(nb)[0]


def test_timings_summary() -> None:
    def timed(src: str, start: str, end: str) -> dict:
        cell = code_cell(src, [])
        cell["metadata"]["execution"] = {"iopub.execute_input": start, "shell.execute_reply": end}
        return cell

    nb = {
        "cells": [
            {"cell_type": "markdown", "source": "# t", "metadata": {}},
            timed(":dep x", "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:15.000000Z"),
            timed("use x;", "2026-01-01T00:00:15.000000Z", "2026-01-01T00:00:25.000000Z"),
            timed("a()", "2026-01-01T00:00:25.000000Z", "2026-01-01T00:00:26.000000Z"),
            timed("b()", "2026-01-01T00:00:26.000000Z", "2026-01-01T00:00:29.000000Z"),
        ]
    }
    t = nbcompare.timings(nb, 40.0)
    assert (t.dep_cell, t.first_code_cell, t.median_rest) == (15.0, 10.0, 2.0)
    assert "total 40.0 s" in t.summary("x")


def test_checker_requires_pytorch_prints_in_lesson_1() -> None:
    lesson1 = NOTEBOOKS / "en" / "01-understanding-buffers.ipynb"
    prints = nbcompare.pytorch_prints(lesson1)
    everything = "\n".join(text for _, text, _ in prints)
    assert nbcompare.missing_pytorch_prints(lesson1, everything) == []
    # evcxr sends a print line by line: the chunks of one stream are read as one text.
    lines = [stdout(line) for line in prints[0][1].splitlines(keepends=True)]
    assert prints[0][1] in nbcompare.cell_text(code_cell("println!", lines))
    reformatted = everything.replace("-0.4519,  0.2216", "-0.4519, 0.2216")
    [problem] = nbcompare.missing_pytorch_prints(lesson1, reformatted)
    assert "context vectors without buffer" in problem
    # On a GPU the tensors on the device print with device='cuda:0': only CPU prints are required.
    assert len(nbcompare.pytorch_prints(lesson1, gpu=True)) == len(prints) - 4
    assert nbcompare.pytorch_prints(NOTEBOOKS / "en" / "02-positional-encoding-buffers.ipynb") == []
