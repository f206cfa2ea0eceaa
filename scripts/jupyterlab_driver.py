"""JupyterLab in a real browser: start it the README's way, open notebooks, read the page.

Shared by the browser test (tests/python/test_browser.py) and the kernel-connection check
(scripts/kernel_connect_check.py), so that both open notebooks exactly alike:

* JupyterLab starts through `scripts/lab.sh` (the project's `rust` kernel) on 127.0.0.1 with a
  random token; its own state (settings, workspaces, checkpoints, runtime files) lives in a
  temporary folder, and autosave is off, so the notebooks are never written;
* Debian's Chromium (never a downloaded browser) is driven headless by Playwright;
* every wait is bounded, and a kernel that never shows up as idle in the page is reported with
  its evidence: the page's and the server's view of it, the server's log lines about it, and
  what the kernel process is doing (per-thread CPU time from /proc).

Needs Python's standard library, plus Playwright for the browser parts.
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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

# As the machine's probe starts Chromium: no background networking, which this machine's
# closed network refuses (see README, "Browser test").
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
VIEWPORT = {"width": 1400, "height": 1000}

PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
# The execution indicator of the visible notebook: idle, busy, unknown (no kernel status
# received yet), ... and 'none' when there is no notebook panel.
INDICATOR_JS = f"""() => document.querySelector('{PANEL} .jp-Notebook-ExecutionIndicator')?.dataset.status ?? 'none'"""
# The input prompt of every cell of the visible notebook (`[3]:`, `[*]:`), null for markdown.
PROMPTS_JS = f"""() => Array.from(document.querySelectorAll('{PANEL} .jp-Notebook .jp-Cell'))
    .map(c => c.classList.contains('jp-CodeCell') ? (c.querySelector('.jp-InputArea-prompt')?.textContent ?? '').trim() : null)"""


class LabError(RuntimeError):
    """JupyterLab could not be started or driven; the message says why, with log lines."""


# ---------------------------------------------------------------- processes
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_stat(pid: str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (from /proc), kernels included: jupyter_client starts
    kernels in their own session, so killing the server's process group misses them."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _proc_stat(stat.parent.name)
        if fields:
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kernel_pids(kernel_id: str) -> list[int]:
    """The processes whose command line names this kernel's connection file."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(f"kernel-{kernel_id}.json".encode() in a for a in args):
            pids.append(int(cmdline.parent.name))
    return pids


def thread_cpu(pid: int, seconds: float = 2.0) -> list[tuple[str, int, float]]:
    """(thread name, tid, share of one CPU) for each thread of `pid`, measured over `seconds`,
    busiest first. A thread near 1.0 while the kernel should be idle is spinning."""
    tick = os.sysconf("SC_CLK_TCK")

    def sample() -> dict[int, tuple[str, int]]:
        out = {}
        for task in Path(f"/proc/{pid}/task").glob("[0-9]*"):
            fields = _proc_stat(f"{pid}/task/{task.name}")
            try:
                name = (task / "comm").read_text().strip()
            except OSError:
                continue
            if fields:
                out[int(task.name)] = (name, int(fields[11]) + int(fields[12]))
        return out

    before = sample()
    time.sleep(seconds)
    after = sample()
    rows = [
        (name, tid, (ticks - before[tid][1]) / tick / seconds)
        for tid, (name, ticks) in after.items()
        if tid in before
    ]
    return sorted(rows, key=lambda r: -r[2])


def kernel_process_report(kernel_id: str) -> str:
    """What the kernel's processes are doing: state and the busiest threads."""
    lines = []
    for pid in kernel_pids(kernel_id):
        fields = _proc_stat(str(pid))
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        busy = [f"{name}[{tid}] {share:.0%}" for name, tid, share in thread_cpu(pid)[:3]]
        lines.append(f"pid {pid} ({comm}, state {fields[0] if fields else '?'}): busiest threads over 2 s: {', '.join(busy)}")
    return "\n".join(lines) or f"no process found for kernel {kernel_id}"


# ---------------------------------------------------------------- the server
@dataclass
class Lab:
    url: str
    token: str
    proc: subprocess.Popen
    log: Path
    tmp: Path

    def api(self, method: str, path: str, timeout: float = 10, body: dict | None = None):
        sep = "&" if "?" in path else "?"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}{sep}token={self.token}", method=method, data=data)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
        return json.loads(payload) if payload else None

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:]) or "(no log)"

    def log_lines_about(self, kernel_id: str, limit: int = 30) -> str:
        """The server's log lines that name `kernel_id` (nudges, restarts, connections)."""
        lines = [line for line in self.log_text().splitlines() if kernel_id in line]
        return "\n".join(lines[-limit:]) or f"(no log line names kernel {kernel_id})"

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
    """JupyterLab user settings: never save the notebooks, render every cell (no virtual
    scrolling: off-screen cells must be in the page to be checked), no news pop-up."""
    settings = {
        "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }
    for plugin, values in settings.items():
        path = folder / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


def start_lab(start_timeout: float, extra_kernels: Path | None = None) -> Lab:
    """Starts `scripts/lab.sh` and waits (at most `start_timeout` s: lab.sh may first finish
    the set-up) until the server answers. `extra_kernels`: a Jupyter data dir whose kernels/
    the server offers besides the project's (tests use it for kernels that misbehave)."""
    tmp = Path(tempfile.mkdtemp(prefix="ub-lab-"))
    lab_settings(tmp / "settings")
    port, token = free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        # The server's own state stays out of the user's ~/.jupyter and ~/.local.
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
    )
    if extra_kernels:
        # Jupyter looks for kernels in JUPYTER_PATH (lab.sh: .venv's, first), then in the
        # user's data dir.
        env["JUPYTER_DATA_DIR"] = str(extra_kernels)
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
    deadline = time.monotonic() + start_timeout
    while True:
        if proc.poll() is not None:
            tail = lab.log_tail()
            lab.stop()
            raise LabError(f"scripts/lab.sh exited with status {proc.returncode} before JupyterLab answered:\n{tail}")
        try:
            lab.api("GET", "/api/status", timeout=5)
            return lab
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            tail = lab.log_tail()
            lab.stop()
            raise LabError(f"JupyterLab did not answer on {lab.url} within {start_timeout:.0f} s:\n{tail}")
        time.sleep(1)


# ---------------------------------------------------------------- the browser
def chromium_path() -> str:
    path = os.environ.get("UB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise LabError("Chromium is not installed: run `bash scripts/setup.sh --with-browser` (Debian's chromium package)")
    return path


def launch(playwright, **options):
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, timeout=60_000, **options)


def open_notebook(page, lab: Lab, path: Path) -> None:
    """Opens `path` in a fresh workspace (only this notebook open), file browser closed."""
    rel = urllib.parse.quote(path.relative_to(NOTEBOOKS).as_posix())
    page.goto(f"{lab.url}/lab/tree/{rel}?reset&token={lab.token}")
    page.wait_for_selector(f"{PANEL} .jp-Notebook .jp-Cell", timeout=120_000)
    page.keyboard.press("Control+b")  # close the file browser: wider cells in the screenshots


def click_menu(page, menu: str, item: str) -> None:
    page.get_by_role("menuitem", name=menu, exact=True).click()
    page.get_by_role("menuitem", name=item, exact=True).click()


def kernel_states(page, lab: Lab, path: Path) -> tuple[str, str, str | None]:
    """(what the page shows, what the server says, the kernel id) for `path`'s kernel."""
    session = lab.session_of(path) or {}
    kernel = session.get("kernel") or {}
    return page.evaluate(INDICATOR_JS), kernel.get("execution_state", "no kernel"), kernel.get("id")


def kernel_evidence(lab: Lab, kernel_id: str | None) -> str:
    """Everything known about a kernel that does not answer the page."""
    if not kernel_id:
        return "the server lists no kernel for this notebook"
    return (
        f"server log lines about kernel {kernel_id}:\n{lab.log_lines_about(kernel_id)}\n"
        f"kernel process: {kernel_process_report(kernel_id)}"
    )


def wait_for_kernel_idle(page, lab: Lab, path: Path, timeout: float, what: str) -> str | None:
    """Waits until the page's kernel indicator and the server both say idle, twice in a row.

    Returns None, or a problem with its evidence: a kernel the page never sees as idle is a
    product failure (the learner's notebook would never connect), so it is reported, never
    reloaded away."""
    deadline, calm = time.monotonic() + timeout, 0
    shown, server, kernel_id = "?", "?", None
    while time.monotonic() < deadline:
        shown, server, kernel_id = kernel_states(page, lab, path)
        calm = calm + 1 if (shown, server) == ("idle", "idle") else 0
        if calm >= 2:
            return None
        time.sleep(1)
    return (
        f"{what}: the kernel was not idle in the page after {timeout:.0f} s "
        f"(page: {shown}, server: {server})\n{kernel_evidence(lab, kernel_id)}"
    )


def execution_counts(page) -> list[str | None]:
    """The prompt of each cell of the visible notebook (None for markdown cells)."""
    return page.evaluate(PROMPTS_JS)


def is_done(prompt: str | None) -> bool:
    return prompt is not None and re.fullmatch(r"\[\d+\]:", prompt) is not None
