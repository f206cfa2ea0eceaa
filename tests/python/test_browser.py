"""Every lesson runs and renders in JupyterLab in a real browser (issue 5).

JupyterLab is started the README's way, `scripts/lab.sh` (with the project's `rust` kernel),
on 127.0.0.1 with a random token; Debian's Chromium (never a downloaded browser) is driven
headless by Playwright (scripts/jupyterlab_driver.py, shared with the kernel-connection check
scripts/kernel_connect_check.py). For each lesson notebook the test opens it, waits until the
page shows its kernel idle, clears its outputs, runs all cells from the menu (Run > Run All
Cells), waits for every code cell to get an execution count and the kernel to go idle, then
checks the page a learner sees:

* no unexpected error: no stderr output with an error or a panic, no panic text anywhere,
  no error block outside the cells that show one on purpose;
* each intended error is shown: a visible `pre.ub-error` containing the cell's `expect` text;
* the outputs show what the committed notebook shows (deterministic cells, whitespace-
  insensitive) and, for lesson 1, PyTorch's own prints character for character
  (tests/fixtures/pytorch/expected.json), e.g. `[-0.4519,  0.2216]`;
* every committed figure is an <svg> element in the page with a non-empty box and content,
  both after the run and when the notebook is first opened, before anything runs (a
  notebook JupyterLab does not trust shows no inline SVG; scripts/setup.sh trusts the
  committed lessons);
* Chinese text is drawn with real glyphs: Chrome's DevTools protocol
  (CSS.getPlatformFontsForNode) names the fonts that rendered a node's text and how many
  glyphs each drew; the Han characters must have been drawn by a font that fontconfig says
  covers Chinese (`fc-list :lang=zh`), not by a Latin font showing .notdef boxes. Checked on a
  Chinese heading and paragraph (zh notebooks), and on a figure's bilingual title (all).

Screenshots of each notebook after the run (also after a failure) go to screenshots/
(git-ignored), one per screenful: `<lang>-<notebook>-NN.png`.

Nothing is written to the notebooks: autosave is off, checkpoints, workspaces, settings and
runtime files go to a temporary folder. JupyterLab, its kernels and Chromium are shut down
also when a step fails.

Every wait is bounded and nothing is retried or reloaded: a kernel that the page never sees
as idle is what a learner would get too, so it fails the test with its evidence (the server's
log lines about that kernel, and what the kernel process is doing); a cell that never ends
fails after UB_BROWSER_CELL_TIMEOUT with the same evidence.

Two tests prove the checks can fail: a deliberately broken notebook (wrong number, panic,
wrong intended error, compile error, missing figure, a cell that never ends) is run through
the same code and each problem must be reported; and the Chinese-glyph check must fail in a
Chromium whose fontconfig hides the CJK fonts (the page then shows boxes).

Environment: UB_CHROMIUM (browser path; default: chromium on PATH), UB_LAB_START_TIMEOUT
(default 180 s), UB_BROWSER_CELL_TIMEOUT (default 240 s per cell: scripts/test.sh has warmed
the kernel's build dir), UB_NOTEBOOKS (space-separated notebook paths to test instead of the
four lessons).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

import nbcompare
from conftest import LANGUAGES, NOTEBOOKS, ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import jupyterlab_driver as lab_driver  # noqa: E402  (shared with scripts/kernel_connect_check.py)
from jupyterlab_driver import Lab  # noqa: E402

LAB_START_TIMEOUT = int(os.environ.get("UB_LAB_START_TIMEOUT", "180"))
CELL_TIMEOUT = int(os.environ.get("UB_BROWSER_CELL_TIMEOUT", "240"))
KERNEL_START_TIMEOUT = 120
SCREENSHOTS = ROOT / "screenshots"
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
# Per process, so that two test runs in one checkout do not remove each other's notebook.
SELFTEST_DIR = NOTEBOOKS / f"_browser_selftest_{os.getpid()}"


def lesson_notebooks() -> list[Path]:
    chosen = os.environ.get("UB_NOTEBOOKS", "").split()
    if chosen:
        return [Path(p).resolve() for p in chosen]
    return [p for lang in LANGUAGES for p in sorted((NOTEBOOKS / lang).glob("*.ipynb"))]


def notebook_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


# ---------------------------------------------------------------- JupyterLab and Chromium
SILENT_KERNEL = "ub-silent-selftest"


def silent_kernelspec(data_dir: Path) -> None:
    """A kernel that starts and never answers: what a learner sees when a kernel hangs."""
    spec = data_dir / "kernels" / SILENT_KERNEL / "kernel.json"
    spec.parent.mkdir(parents=True)
    argv = [sys.executable, "-c", "import sys, time; time.sleep(3600)", "{connection_file}"]
    spec.write_text(json.dumps({"argv": argv, "display_name": "silent", "language": "rust"}), encoding="utf-8")


@pytest.fixture(scope="module")
def lab(rust_kernelspec: dict, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("jupyter-data")
    silent_kernelspec(data_dir)
    try:
        server = lab_driver.start_lab(LAB_START_TIMEOUT, extra_kernels=data_dir)
    except lab_driver.LabError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as instance:
        yield instance


def launch(playwright, **options):
    try:
        return lab_driver.launch(playwright, **options)
    except lab_driver.LabError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="module")
def browser(playwright):
    chromium = launch(playwright)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def page(browser, lab: Lab):
    context = browser.new_context(viewport=lab_driver.VIEWPORT)
    context.set_default_timeout(60_000)
    try:
        yield context.new_page()
    finally:
        context.close()
        lab.shutdown_sessions()


# ---------------------------------------------------------------- driving the notebook
PAGE_JS = """() => {
  const box = e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; };
  const cells = Array.from(document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell'));
  return cells.map((c, index) => ({
    index,
    code: c.classList.contains('jp-CodeCell'),
    prompt: (c.querySelector('.jp-InputArea-prompt')?.textContent ?? '').trim(),
    outputs: Array.from(c.querySelectorAll('.jp-OutputArea-output')).map(o => ({
      mime: o.dataset.mimeType || '',
      text: o.innerText,
      visible: o.checkVisibility(),
      figures: Array.from(o.querySelectorAll('.ub-figure > svg')).map(s => {
        const b = s.getBBox();
        return {svg: s instanceof SVGSVGElement, box: box(s), content: [b.width, b.height],
                shapes: s.querySelectorAll('rect, path, line, polyline, circle, text').length};
      }),
      errors: Array.from(o.querySelectorAll('pre.ub-error')).map(p => ({
        text: p.innerText, box: box(p), visible: p.checkVisibility(), fontSize: parseFloat(getComputedStyle(p).fontSize)})),
    })),
  }));
}"""

# Marks up to one element of each kind whose own text holds Han characters.
MARK_CJK_JS = """() => {
  const han = /[\\u3400-\\u4dbf\\u4e00-\\u9fff]/;
  const own = e => Array.from(e.childNodes).filter(n => n.nodeType === 3).map(n => n.data).join('');
  const panel = '.jp-NotebookPanel:not(.lm-mod-hidden) ';
  const kinds = {
    'markdown heading': panel + '.jp-RenderedMarkdown h1, ' + panel + '.jp-RenderedMarkdown h2',
    'markdown paragraph': panel + '.jp-RenderedMarkdown p',
    'figure title': panel + '.ub-figure svg text',
  };
  const marked = {};
  for (const [kind, selector] of Object.entries(kinds)) {
    const e = Array.from(document.querySelectorAll(selector)).find(e => han.test(own(e)));
    if (e) { e.setAttribute('data-ub-cjk', kind); marked[kind] = own(e); }
  }
  return marked;
}"""


@dataclass
class Run:
    problems: list[str] = field(default_factory=list)
    cells: list[dict] = field(default_factory=list)
    # The page as opened, before anything ran: what a learner sees of the committed notebook.
    opened: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def wait_for_all_cells(page, lab: Lab, path: Path, cell_timeout: float) -> list[str]:
    """Waits until every code cell shows an execution count; bounded per cell.

    The running cell is the first `[*]` one. After a cell fails, JupyterLab clears the `[*]`
    of the cells queued behind it while evcxr goes on running them: then, while the kernel is
    busy, the running cell is the first one without a count after the last one with a count."""
    running, since, idle_since = None, time.monotonic(), None
    while True:
        prompts = lab_driver.execution_counts(page)
        code = [(i, p) for i, p in enumerate(prompts) if p is not None]
        done = [i for i, p in code if lab_driver.is_done(p)]
        if code and len(done) == len(code):
            return []
        pending = [i for i, _ in code if i not in done]
        busy = [i for i, p in code if p == "[*]:"]
        now = time.monotonic()
        if busy:
            current, idle_since = busy[0], None
        else:
            shown, server, _ = lab_driver.kernel_states(page, lab, path)
            if (shown, server) == ("idle", "idle"):
                idle_since = idle_since or now
                if now - idle_since > 15:
                    return [f"cells {pending} never ran: the kernel went idle without running them"]
                current = None
            else:
                idle_since = None
                after = [i for i in pending if not done or i > max(done)]
                current = (after or pending)[0]
        if current != running:
            running, since = current, now
        elif running is not None and now - since > cell_timeout:
            _, _, kernel_id = lab_driver.kernel_states(page, lab, path)
            return [
                f"cell {running} never finished after {cell_timeout:.0f} s (the kernel stayed busy)\n"
                f"{lab_driver.kernel_evidence(lab, kernel_id)}"
            ]
        time.sleep(1)


def run_all(page, lab: Lab, path: Path, cell_timeout: float = CELL_TIMEOUT) -> Run:
    """Opens the notebook in JupyterLab, runs all cells from the menu and reads the page."""
    run = Run()
    lab_driver.open_notebook(page, lab, path)
    problem = lab_driver.wait_for_kernel_idle(page, lab, path, KERNEL_START_TIMEOUT, "before running")
    if problem:
        run.problems.append(problem)
        return run

    run.opened = page.evaluate(PAGE_JS)
    lab_driver.click_menu(page, "Edit", "Clear Outputs of All Cells")
    page.wait_for_function(
        "() => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output').length === 0",
        timeout=30_000,
    )
    start = time.monotonic()
    lab_driver.click_menu(page, "Run", "Run All Cells")
    run.problems += wait_for_all_cells(page, lab, path, cell_timeout)
    if not run.problems:
        problem = lab_driver.wait_for_kernel_idle(page, lab, path, 60, "after the last cell")
        if problem:
            run.problems.append(problem)
    run.seconds = time.monotonic() - start
    page.wait_for_timeout(1000)  # let the last outputs render
    run.cells = page.evaluate(PAGE_JS)
    return run


# ---------------------------------------------------------------- checking the page
def visible_text(dom_cell: dict) -> str:
    return "\n".join(o["text"] for o in dom_cell["outputs"] if o["visible"])


def committed_texts(cell: dict) -> list[tuple[str, str]]:
    """(kind, text) of what a committed cell's outputs must show readably in the page (figures aside)."""
    texts = []
    for out in nbcompare.merged_outputs(cell.get("outputs", [])):
        data = out.get("data", {})
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            texts.append(("stdout", nbcompare._text(out["text"])))
        elif "text/html" in data and not nbcompare.is_figure(out):
            texts.append(("html", nbcompare.html_to_text(nbcompare._text(data["text/html"]))))
        elif "text/markdown" in data:
            markdown = nbcompare._text(data["text/markdown"])
            texts.append(("markdown", "\n".join(line for line in markdown.splitlines() if not line.startswith("```"))))
    return [(kind, t) for kind, t in texts if t.strip()]


def drawn_figures(dom_cell: dict) -> list[dict]:
    """The figures of a cell in the page that are really drawn: an <svg> with a box and shapes."""
    figures = [f for out in dom_cell["outputs"] for f in out["figures"]]
    return [f for f in figures if f["svg"] and min(f["box"]) > 50 and min(f["content"]) > 10 and f["shapes"] > 3]


def check_committed_figures(nb: dict, opened: list[dict]) -> list[str]:
    """Every committed figure is drawn as soon as the notebook opens, before anything runs
    (JupyterLab shows no inline SVG of a notebook it does not trust: scripts/setup.sh trusts
    the committed lessons)."""
    if len(opened) != len(nb["cells"]):
        return [f"as opened, the page shows {len(opened)} cells, the notebook has {len(nb['cells'])}"]
    problems = []
    for i, cell in nbcompare.code_cells(nb):
        want = sum(1 for o in cell.get("outputs", []) if nbcompare.is_figure(o))
        drawn = drawn_figures(opened[i])
        if len(drawn) < want:
            text = visible_text(opened[i])[:200]
            problems.append(
                f"{nbcompare.describe(i, cell)}: opened before running, {want} committed figure(s) but "
                f"{len(drawn)} drawn (the page shows: {text!r}); is the notebook trusted?"
            )
    return problems


def check_page(path: Path, nb: dict, cells: list[dict], gpu: bool) -> list[str]:
    if len(cells) != len(nb["cells"]):
        return [f"the page shows {len(cells)} cells, the notebook has {len(nb['cells'])}"]
    problems = []
    for i, cell in nbcompare.code_cells(nb):
        dom, where, tags = cells[i], nbcompare.describe(i, cell), nbcompare.tags(cell)
        for out in dom["outputs"]:
            # A panic first: the kernel shows it as an error output (`panicked at line L …`).
            if nbcompare.PANIC.search(out["text"]):
                problems.append(f"{where}: panic in the page:\n{nbcompare.indent(out['text'][:800])}")
            elif out["mime"] == "application/vnd.jupyter.stderr" and nbcompare.STDERR_ERROR.search(out["text"]):
                problems.append(f"{where}: error output in the page:\n{nbcompare.indent(out['text'][:800])}")
        shown_errors = [e for out in dom["outputs"] for e in out["errors"]]
        if shown_errors and not tags & {nbcompare.INTENDED_ERROR, nbcompare.DEVICE_DEPENDENT}:
            problems.append(f"{where}: shows an error block: {shown_errors[0]['text'][:400]}")
        if nbcompare.INTENDED_ERROR in tags:
            readable = [e for e in shown_errors if e["visible"] and e["box"][0] > 50 and e["box"][1] > 10 and e["fontSize"] >= 10]
            if not readable:
                problems.append(f"{where}: the intended error is not shown as a visible, readable pre.ub-error")
            text = " ".join(e["text"] for e in readable)
            for expected in nbcompare.expected_texts(cell):
                if nbcompare.squash(expected) not in nbcompare.squash(text):
                    problems.append(f"{where}: the intended error does not show {expected!r}; it shows: {text[:400]!r}")

        want_figures = sum(1 for o in cell.get("outputs", []) if nbcompare.is_figure(o))
        figures = [f for out in dom["outputs"] for f in out["figures"]]
        drawn = drawn_figures(dom)
        if len(drawn) < want_figures:
            problems.append(
                f"{where}: {want_figures} figure(s) committed, {len(drawn)} rendered as a visible <svg> in the page "
                f"(found: {figures})"
            )

        if nbcompare.NONDETERMINISTIC in tags or (gpu and nbcompare.DEVICE_DEPENDENT in tags):
            continue
        shown = nbcompare.squash(visible_text(dom))
        for _, text in committed_texts(cell):
            if nbcompare.squash(text) not in shown:
                problems.append(
                    f"{where}: the page does not show the committed output\n"
                    f"{nbcompare.indent(text[:600])}\n  it shows:\n{nbcompare.indent(visible_text(dom)[:600])}"
                )
    everything = "\n".join(visible_text(c) for c in cells if c["code"])
    problems += nbcompare.missing_pytorch_prints(path, everything, gpu)
    return problems


def chinese_fonts() -> set[str]:
    """Font families fontconfig says cover Chinese."""
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return {name.strip() for line in out.splitlines() for name in line.split(",") if name.strip()}


def check_chinese_glyphs(page, path: Path, has_figures: bool = True) -> list[str]:
    """Han characters must be drawn by a font that covers Chinese (not as .notdef boxes)."""
    marked = page.evaluate(MARK_CJK_JS)
    chinese = path.parent.name.split("-")[0] == "zh"  # notebooks/zh/ (or a scratch copy in zh-*/)
    # An English notebook's figures are in English; its link to the Chinese twin is its only Chinese.
    wanted = (["figure title"] if has_figures else []) + ["markdown heading", "markdown paragraph"]
    wanted = wanted if chinese else []
    problems = [f"no {kind} with Chinese text found in the page" for kind in wanted if kind not in marked]
    fonts_zh = chinese_fonts()
    if not fonts_zh:
        return problems + ["fontconfig lists no font that covers Chinese: install fonts-noto-cjk (scripts/setup.sh --with-browser)"]
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        for node in cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": "[data-ub-cjk]"})["nodeIds"]:
            attrs = cdp.send("DOM.getAttributes", {"nodeId": node})["attributes"]
            kind = attrs[attrs.index("data-ub-cjk") + 1]
            han = len(HAN.findall(marked[kind]))
            fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
            cjk_glyphs = sum(f["glyphCount"] for f in fonts if f["familyName"] in fonts_zh)
            if cjk_glyphs < han:
                used = ", ".join(f"{f['familyName']} ({f['glyphCount']} glyphs)" for f in fonts)
                problems.append(
                    f"{kind} {marked[kind][:40]!r}: {han} Han characters but only {cjk_glyphs} glyphs drawn by a "
                    f"Chinese font; fonts used: {used}. Install fonts-noto-cjk."
                )
    finally:
        cdp.detach()
    return problems


def screenshots(page, path: Path, prefix: str | None = None) -> list[Path]:
    """One screenshot per screenful of the notebook, top to bottom: <prefix>-NN.png."""
    SCREENSHOTS.mkdir(exist_ok=True)
    prefix = prefix or f"{path.parent.name}-{path.stem}"
    for old in SCREENSHOTS.glob(f"{prefix}-*.png"):
        old.unlink()
    scroller = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"
    saved = []
    try:
        # The content ends at the last cell's bottom (JupyterLab adds empty space after it).
        height, view = page.evaluate(
            f"""() => {{ const e = document.querySelector('{scroller}');
                const cells = e.querySelectorAll('.jp-Cell');
                const last = cells[cells.length - 1].getBoundingClientRect().bottom;
                return [last - e.getBoundingClientRect().top + e.scrollTop, e.clientHeight]; }}"""
        )
    except Exception:  # the notebook never opened: one shot of whatever is there
        height, view = 0, 1
    step = max(view - 60, 100)  # screenfuls overlap by 60 px
    for n in range(60):
        top = n * step
        if n and top - step + view >= height:  # the previous shot reached the end
            break
        if height:
            page.evaluate(f"() => {{ document.querySelector('{scroller}').scrollTop = {top}; }}")
            page.wait_for_timeout(150)
        shot = SCREENSHOTS / f"{prefix}-{n:02d}.png"
        page.screenshot(path=str(shot))
        saved.append(shot)
    return saved


def run_and_check(
    page, lab: Lab, path: Path, gpu: bool, cell_timeout: float = CELL_TIMEOUT, shots: str | None = None
) -> tuple[Run, list[str]]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    run, problems, saved = Run(), [], []
    try:
        run = run_all(page, lab, path, cell_timeout)
        problems += run.problems
        if run.opened:
            problems += check_committed_figures(nb, run.opened)
        if run.cells:
            problems += check_page(path, nb, run.cells, gpu)
            has_figures = any(nbcompare.is_figure(o) for _, c in nbcompare.code_cells(nb) for o in c.get("outputs", []))
            problems += check_chinese_glyphs(page, path, has_figures)
    finally:
        try:  # also after a failed step; never hides that step's own exception
            saved = screenshots(page, path, shots)
        except Exception as error:  # noqa: BLE001 - reported below
            problems.append(f"taking the screenshots failed: {error}")
    if not saved:
        problems.append("no screenshot was saved")
    return run, problems


# ---------------------------------------------------------------- tests
@pytest.mark.parametrize("path", lesson_notebooks(), ids=notebook_id)
def test_lesson_runs_and_renders_in_jupyterlab(path: Path, page, lab: Lab, rust_kernelspec: dict, capsys) -> None:
    before = path.read_bytes()
    gpu = rust_kernelspec.get("metadata", {}).get("understanding_buffers", {}).get("mode", "cpu") != "cpu"
    run, problems = run_and_check(page, lab, path, gpu)
    with capsys.disabled():
        print(f"\n[timing] browser {notebook_id(path)}: Run All Cells took {run.seconds:.1f} s", flush=True)
    assert path.read_bytes() == before, f"{path} was modified by JupyterLab during the test"
    if problems:
        pytest.fail(
            f"{notebook_id(path)} in JupyterLab ({len(problems)} problem(s); screenshots in "
            f"{SCREENSHOTS.relative_to(ROOT)}/):\n\n" + nbcompare.first_problems(problems),
            pytrace=False,
        )


def broken_notebook() -> nbformat.NotebookNode:
    """A small notebook with one problem per cell; its 'committed' outputs are what a correct run would show."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "rust", "display_name": "Rust", "language": "rust"}

    def cell(src: str, outputs=(), **metadata):
        c = nbformat.v4.new_code_cell(src, metadata=metadata, execution_count=1)
        c.outputs = [nbformat.from_dict(o) for o in outputs]
        return c

    figure = {
        "output_type": "execute_result",
        "execution_count": 1,
        "metadata": {},
        "data": {"text/html": '<div class="ub-figure">\n<svg width="9" height="9"><rect width="9" height="9"/></svg></div>'},
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Self-test 自检: every code cell below is broken on purpose"),
        cell(':dep understanding-buffers = { path = "../.." }'),
        cell("use understanding_buffers::prelude::*;\nlesson_setup();"),
        # 3: a wrong number
        cell('println!("{}", 6 * 7);', [{"output_type": "stream", "name": "stdout", "text": "41\n"}]),
        # 4: a panic (a failed cell: the kernel's error output names the line)
        cell('let v: Vec<u8> = Vec::new();\nprintln!("{}", v[3]);', [{"output_type": "stream", "name": "stdout", "text": "0\n"}]),
        # 5: an intended error that shows the wrong error
        cell(
            'match "x".parse::<u32>() {\n    Ok(v) => println!("{v}"),\n    Err(err) => show_error(&err),\n}',
            tags=["intended-error"],
            expect=["dtype mismatch in add"],
        ),
        # 6: a compile error
        cell('let x: u32 = "two";'),
        # 7: a figure that is not drawn
        cell('println!("no picture");', [figure]),
        # 8: a cell that never ends
        cell("std::thread::sleep(std::time::Duration::from_secs(3600));"),
    ]
    return nb


def test_browser_checks_fail_on_a_broken_notebook(page, lab: Lab) -> None:
    """The checks above are not vacuous: each kind of breakage is reported."""
    shutil.rmtree(SELFTEST_DIR, ignore_errors=True)
    SELFTEST_DIR.mkdir()
    path = SELFTEST_DIR / "broken.ipynb"
    try:
        nbformat.write(broken_notebook(), path)
        _, problems = run_and_check(page, lab, path, gpu=False, cell_timeout=45, shots="selftest-broken")
    finally:
        shutil.rmtree(SELFTEST_DIR, ignore_errors=True)
    report = "\n".join(problems)
    expected = {
        "wrong number": "cell 3 (`println!(\"{}\", 6 * 7);`): the page does not show the committed output",
        "panic": "cell 4 (`let v: Vec<u8> = Vec::new();`): panic in the page",
        "wrong intended error": "cell 5 (`match \"x\".parse::<u32>() {`): the intended error does not show 'dtype mismatch in add'",
        "compile error": "cell 6 (`let x: u32 = \"two\";`): error output in the page",
        "missing figure": "cell 7 (`println!(\"no picture\");`): 1 figure(s) committed, 0 rendered",
        "endless cell": "cell 8 never finished after 45 s",
    }
    missing = [what for what, text in expected.items() if text not in report]
    assert not missing, f"the browser checks did not report: {missing}\nthey reported:\n{report}"


def test_a_kernel_that_never_connects_fails_with_its_evidence(page, lab: Lab) -> None:
    """Not reloaded away: the problem names the states, the server's log and the process."""
    shutil.rmtree(SELFTEST_DIR, ignore_errors=True)
    SELFTEST_DIR.mkdir()
    path = SELFTEST_DIR / "silent.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": SILENT_KERNEL, "display_name": "silent", "language": "rust"}
    nb.cells = [nbformat.v4.new_code_cell("1 + 1")]
    try:
        nbformat.write(nb, path)
        lab_driver.open_notebook(page, lab, path)
        problem = lab_driver.wait_for_kernel_idle(page, lab, path, 20, "before running")
    finally:
        shutil.rmtree(SELFTEST_DIR, ignore_errors=True)
    assert problem, "a kernel that never answers was taken for a connected one"
    assert "the kernel was not idle in the page after 20 s" in problem
    assert "server log lines about kernel" in problem
    assert re.search(r"kernel process: pid \d+ \(python", problem), problem


CJK_PAGE = """<html><body><div class="jp-NotebookPanel">
<div class="jp-RenderedMarkdown"><h1>理解缓冲区（用 Rust 和 candle 实现）</h1><p>PyTorch 模块拥有两类张量：参数和缓冲区。</p></div>
<div class="ub-figure"><svg width="400" height="60"><text x="5" y="30" font-size="16">往返前的因果掩码 / causal mask</text></svg></div>
</div></body></html>"""

NO_CJK_FONTS = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>
  <selectfont><rejectfont><glob>*CJK*</glob></rejectfont></selectfont>
</fontconfig>
"""


def test_chinese_glyph_check_tells_glyphs_from_boxes(playwright, browser, tmp_path: Path) -> None:
    """The CJK check passes with the system's fonts and fails when Chromium has no CJK font."""
    zh = NOTEBOOKS / "zh" / "page.ipynb"  # only its folder name matters: zh pages check prose too
    page = browser.new_page()
    try:
        page.set_content(CJK_PAGE)
        assert check_chinese_glyphs(page, zh) == []
    finally:
        page.close()

    conf = tmp_path / "fonts.conf"
    conf.write_text(NO_CJK_FONTS, encoding="utf-8")
    env = dict(os.environ, FONTCONFIG_FILE=str(conf))
    left = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, env=env, timeout=60).stdout
    if left.strip():
        pytest.skip(f"fonts other than Noto CJK cover Chinese here, cannot hide them all: {left.split()[:3]}")
    without = launch(playwright, env=env)
    try:
        page = without.new_page()
        page.set_content(CJK_PAGE)
        problems = check_chinese_glyphs(page, zh)
        page.screenshot(path=str(tmp_path / "boxes.png"))
    finally:
        without.close()
    assert len(problems) == 3 and all("glyphs drawn by a Chinese font" in p for p in problems), problems
