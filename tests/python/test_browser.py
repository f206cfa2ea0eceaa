"""Every lesson runs and renders in JupyterLab in a real browser (issue 5).

JupyterLab is started the README's way, `scripts/lab.sh` (with the project's `rust` kernel),
on 127.0.0.1 with a random token; Debian's Chromium (never a downloaded browser) is driven
headless by Playwright. For each lesson notebook the test opens it, clears its outputs, runs
all cells from the menu (Run > Run All Cells), waits for every code cell to get an execution
count and the kernel to go idle (bounded waits), then checks the page a learner sees:

* no unexpected error: no stderr output with an error or a panic, no panic text anywhere,
  no error block outside the cells that show one on purpose;
* each intended error is shown: a visible `pre.ub-error` containing the cell's `expect` text;
* the outputs show what the committed notebook shows (deterministic cells, whitespace-
  insensitive) and, for lesson 1, PyTorch's own prints character for character
  (tests/fixtures/pytorch/expected.json), e.g. `[-0.4519,  0.2216]`;
* every committed figure is an <svg> element in the page with a non-empty box and content;
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

evcxr_jupyter 0.22 can send a cell's last output lines after reporting the cell done, and
JupyterLab then drops them (test_notebooks.py, LateOutputClient). When the only problems of a
run are such missing trailing lines, the notebook is run once more and the first run's
problems are printed as `[flaky]`; any other problem fails at once.

Two tests prove the checks can fail: a deliberately broken notebook (wrong number, panic,
wrong intended error, compile error, missing figure, a cell that never ends) is run through
the same code and each problem must be reported; and the Chinese-glyph check must fail in a
Chromium whose fontconfig hides the CJK fonts (the page then shows boxes).

Environment: UB_CHROMIUM (browser path; default: chromium on PATH), UB_LAB_START_TIMEOUT
(default 900 s: lab.sh may first finish the set-up), UB_BROWSER_CELL_TIMEOUT (default 900 s per
cell), UB_NOTEBOOKS (space-separated notebook paths to test instead of the four lessons).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

import nbcompare
from conftest import LANGUAGES, NOTEBOOKS, ROOT

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAB_START_TIMEOUT = int(os.environ.get("UB_LAB_START_TIMEOUT", "900"))
CELL_TIMEOUT = int(os.environ.get("UB_BROWSER_CELL_TIMEOUT", "900"))
KERNEL_START_TIMEOUT = 300
SCREENSHOTS = ROOT / "screenshots"
VIEWPORT = {"width": 1400, "height": 1000}
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


# ---------------------------------------------------------------- JupyterLab
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (from /proc), kernels included: jupyter_client starts
    kernels in their own session, so killing the server's process group misses them."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class Lab:
    url: str
    token: str
    proc: subprocess.Popen
    log: Path
    tmp: Path

    def api(self, method: str, path: str, timeout: float = 10):
        sep = "&" if "?" in path else "?"
        request = urllib.request.Request(f"{self.url}{path}{sep}token={self.token}", method=method)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def session_of(self, path: Path) -> dict | None:
        rel = path.relative_to(NOTEBOOKS).as_posix()
        for session in self.api("GET", "/api/sessions"):
            if session.get("path") == rel:
                return session
        return None

    def shutdown_sessions(self) -> None:
        """Ends every kernel the browser started (closing the page leaves them running)."""
        try:
            for session in self.api("GET", "/api/sessions"):
                self.api("DELETE", f"/api/sessions/{session['id']}", timeout=30)
        except (OSError, urllib.error.URLError):
            pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            below = descendants(self.proc.pid)
            self.shutdown_sessions()
            try:
                self.api("POST", "/api/shutdown", timeout=10)
                self.proc.wait(timeout=30)
            except (OSError, urllib.error.URLError, subprocess.TimeoutExpired):
                pass
            for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                if self.proc.poll() is not None:
                    break
                try:
                    os.killpg(self.proc.pid, sig)
                    self.proc.wait(timeout=wait)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
            for pid in below:  # kernels that outlived the server
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def lab_settings(folder: Path) -> None:
    """JupyterLab user settings for the test: never save the notebooks, render every cell
    (no virtual scrolling: off-screen cells must be in the page to be checked), no news pop-up."""
    settings = {
        "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }
    for plugin, values in settings.items():
        path = folder / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


def start_lab() -> Lab:
    tmp = Path(tempfile.mkdtemp(prefix="ub-lab-"))
    lab_settings(tmp / "settings")
    port, token = free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        # The server's own state stays out of the user's ~/.jupyter and ~/.local.
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
    )
    log = tmp / "lab.log"
    cmd = [
        "bash",
        str(ROOT / "scripts" / "lab.sh"),
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--LabApp.user_settings_dir={tmp / 'settings'}",
        f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
        f"--FileCheckpoints.root_dir={tmp / 'checkpoints'}",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, proc, log, tmp)
    deadline = time.monotonic() + LAB_START_TIMEOUT
    while True:
        if proc.poll() is not None:
            tail = lab.log_tail()
            lab.stop()
            pytest.fail(f"scripts/lab.sh exited with status {proc.returncode} before JupyterLab answered:\n{tail}")
        try:
            lab.api("GET", "/api/status", timeout=5)
            return lab
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            tail = lab.log_tail()
            lab.stop()
            pytest.fail(f"JupyterLab did not answer on {lab.url} within {LAB_START_TIMEOUT} s:\n{tail}")
        time.sleep(1)


@pytest.fixture(scope="module")
def lab(rust_kernelspec: dict):
    server = start_lab()
    try:
        yield server
    finally:
        server.stop()


def chromium_path() -> str:
    path = os.environ.get("UB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Chromium is not installed: run `bash scripts/setup.sh --with-browser` (Debian's chromium package)")
    return path


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as instance:
        yield instance


def launch(playwright, **options):
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, timeout=60_000, **options)


@pytest.fixture(scope="module")
def browser(playwright):
    chromium = launch(playwright)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def page(browser, lab: Lab):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    try:
        yield context.new_page()
    finally:
        context.close()
        lab.shutdown_sessions()


# ---------------------------------------------------------------- driving the notebook
PROMPTS_JS = """() => Array.from(document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell'))
    .map(c => c.classList.contains('jp-CodeCell') ? (c.querySelector('.jp-InputArea-prompt')?.textContent ?? '').trim() : null)"""

INDICATOR_JS = """() => document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator')?.dataset.status ?? 'none'"""

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
    seconds: float = 0.0


def click_menu(page, menu: str, item: str) -> None:
    page.get_by_role("menuitem", name=menu, exact=True).click()
    page.get_by_role("menuitem", name=item, exact=True).click()


def wait_for_kernel_idle(page, lab: Lab, path: Path, timeout: float, what: str) -> str | None:
    """Waits until the page's kernel indicator and the server both say idle, twice in a row."""
    deadline, calm, status = time.monotonic() + timeout, 0, "?"
    # JupyterLab sometimes never gets the kernel's status over its websocket ("Rust | Unknown"
    # in the status bar) although the server reports the kernel idle; reloading the page
    # reconnects. Done at most twice, after 45 s of that state.
    stuck_since, reloads = None, 0
    while time.monotonic() < deadline:
        session = lab.session_of(path)
        server = (session or {}).get("kernel", {}).get("execution_state", "no kernel")
        shown = page.evaluate(INDICATOR_JS)
        status = f"page: {shown}, server: {server}"
        calm = calm + 1 if status == "page: idle, server: idle" else 0
        if calm >= 2:
            return None
        if server == "idle" and shown in ("unknown", "none"):
            stuck_since = stuck_since or time.monotonic()
            if time.monotonic() - stuck_since > 45 and reloads < 2:
                print(f"[browser] {what}: page shows kernel '{shown}' while the server says idle: reloading")
                page.reload()
                stuck_since, reloads = None, reloads + 1
        else:
            stuck_since = None
        time.sleep(1)
    return f"{what}: the kernel was not idle after {timeout:.0f} s ({status})"


def wait_for_all_cells(page, lab: Lab, path: Path, cell_timeout: float) -> list[str]:
    """Waits until every code cell shows an execution count; bounded per cell.

    The running cell is the first `[*]` one. After a cell fails, JupyterLab clears the `[*]`
    of the cells queued behind it while evcxr goes on running them: then, while the kernel is
    busy, the running cell is the first one without a count after the last one with a count."""
    running, since, idle_since = None, time.monotonic(), None
    while True:
        prompts = page.evaluate(PROMPTS_JS)
        code = [(i, p) for i, p in enumerate(prompts) if p is not None]
        done = [i for i, p in code if re.fullmatch(r"\[\d+\]:", p)]
        if code and len(done) == len(code):
            return []
        pending = [i for i, _ in code if i not in done]
        busy = [i for i, p in code if p == "[*]:"]
        now = time.monotonic()
        if busy:
            current, idle_since = busy[0], None
        else:
            session = lab.session_of(path)
            server = (session or {}).get("kernel", {}).get("execution_state")
            if page.evaluate(INDICATOR_JS) == "idle" and server == "idle":
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
            return [f"cell {running} never finished after {cell_timeout:.0f} s (the kernel stayed busy)"]
        time.sleep(1)


def run_all(page, lab: Lab, path: Path, cell_timeout: float = CELL_TIMEOUT) -> Run:
    """Opens the notebook in JupyterLab, runs all cells from the menu and reads the page."""
    run = Run()
    rel = urllib.parse.quote(path.relative_to(NOTEBOOKS).as_posix())
    # ?reset: a fresh workspace, so only this notebook is open.
    page.goto(f"{lab.url}/lab/tree/{rel}?reset&token={lab.token}")
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell", timeout=120_000)
    page.keyboard.press("Control+b")  # close the file browser: wider cells in the screenshots
    problem = wait_for_kernel_idle(page, lab, path, KERNEL_START_TIMEOUT, "before running")
    if problem:
        run.problems.append(problem)
        return run

    click_menu(page, "Edit", "Clear Outputs of All Cells")
    page.wait_for_function(
        "() => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output').length === 0",
        timeout=30_000,
    )
    start = time.monotonic()
    click_menu(page, "Run", "Run All Cells")
    run.problems += wait_for_all_cells(page, lab, path, cell_timeout)
    if not run.problems:
        problem = wait_for_kernel_idle(page, lab, path, 60, "after the last cell")
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


# evcxr_jupyter 0.22 forwards a cell's stdout from another thread and can send its last lines
# after it has reported the cell done; JupyterLab then drops them (see test_notebooks.py,
# LateOutputClient). A problem that is only that is marked, and the notebook is run once more.
LOST_TAIL = "[lost trailing output] "


def check_page(path: Path, nb: dict, cells: list[dict], gpu: bool) -> list[str]:
    if len(cells) != len(nb["cells"]):
        return [f"the page shows {len(cells)} cells, the notebook has {len(nb['cells'])}"]
    problems = []
    for i, cell in nbcompare.code_cells(nb):
        dom, where, tags = cells[i], nbcompare.describe(i, cell), nbcompare.tags(cell)
        for out in dom["outputs"]:
            if out["mime"] == "application/vnd.jupyter.stderr" and nbcompare.STDERR_ERROR.search(out["text"]):
                problems.append(f"{where}: error output in the page:\n{nbcompare.indent(out['text'][:800])}")
            elif nbcompare.PANIC.search(out["text"]):
                problems.append(f"{where}: panic in the page:\n{nbcompare.indent(out['text'][:800])}")
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
        drawn = [f for f in figures if f["svg"] and min(f["box"]) > 50 and min(f["content"]) > 10 and f["shapes"] > 3]
        if len(drawn) < want_figures:
            problems.append(
                f"{where}: {want_figures} figure(s) committed, {len(drawn)} rendered as a visible <svg> in the page "
                f"(found: {figures})"
            )

        if nbcompare.NONDETERMINISTIC in tags or (gpu and nbcompare.DEVICE_DEPENDENT in tags):
            continue
        shown = nbcompare.squash(visible_text(dom))
        stdout = nbcompare.squash(
            "\n".join(o["text"] for o in dom["outputs"] if o["visible"] and o["mime"] == "application/vnd.jupyter.stdout")
        )
        for kind, text in committed_texts(cell):
            if nbcompare.squash(text) not in shown:
                lost = kind == "stdout" and 0 < len(stdout) < len(nbcompare.squash(text)) and nbcompare.squash(text).startswith(stdout)
                problems.append(
                    f"{LOST_TAIL if lost else ''}{where}: the page does not show the committed output\n"
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


def check_chinese_glyphs(page, path: Path) -> list[str]:
    """Han characters must be drawn by a font that covers Chinese (not as .notdef boxes)."""
    marked = page.evaluate(MARK_CJK_JS)
    chinese = path.parent.name.split("-")[0] == "zh"  # notebooks/zh/ (or a scratch copy in zh-*/)
    wanted = ["figure title"] + (["markdown heading", "markdown paragraph"] if chinese else [])
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
        if run.cells:
            problems += check_page(path, nb, run.cells, gpu)
            problems += check_chinese_glyphs(page, path)
    finally:
        try:  # also after a failed step; never hides that step's own exception
            saved = screenshots(page, path, shots)
        except Exception as error:  # noqa: BLE001 - reported below
            problems.append(f"taking the screenshots failed: {error}")
    if not saved:
        problems.append("no screenshot was saved")
    return run, problems


# ---------------------------------------------------------------- tests
def only_lost_output(problems: list[str]) -> bool:
    """True when every problem can come from evcxr losing a cell's last lines (LOST_TAIL)."""
    lost = [p for p in problems if p.startswith(LOST_TAIL)]
    return bool(lost) and all(p.startswith(LOST_TAIL) or p.startswith("PyTorch's ") for p in problems)


@pytest.mark.parametrize("path", lesson_notebooks(), ids=notebook_id)
def test_lesson_runs_and_renders_in_jupyterlab(path: Path, page, lab: Lab, rust_kernelspec: dict, capsys) -> None:
    before = path.read_bytes()
    gpu = rust_kernelspec.get("metadata", {}).get("understanding_buffers", {}).get("mode", "cpu") != "cpu"
    run, problems = run_and_check(page, lab, path, gpu)
    with capsys.disabled():
        print(f"\n[timing] browser {notebook_id(path)}: Run All Cells took {run.seconds:.1f} s", flush=True)
        if only_lost_output(problems):
            print(f"[flaky] {notebook_id(path)}: evcxr lost trailing output lines, running it once more:", flush=True)
            print(nbcompare.indent("\n".join(problems)), flush=True)
            lab.shutdown_sessions()
            run, problems = run_and_check(page, lab, path, gpu)
            print(f"[timing] browser {notebook_id(path)} (second run): {run.seconds:.1f} s", flush=True)
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
        # 4: a panic (a successful cell for evcxr)
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


def test_only_lost_output_is_retried() -> None:
    lost = f"{LOST_TAIL}cell 10 (`let ids = ...`): the page does not show the committed output"
    assert only_lost_output([lost, "PyTorch's mask with 2s is not shown; PyTorch printed: ..."])
    assert not only_lost_output(["PyTorch's mask with 2s is not shown"])
    assert not only_lost_output([lost, "cell 4 (`let v`): panic in the page"])
