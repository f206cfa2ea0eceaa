"""The `rust` kernel itself: the patched evcxr_jupyter of scripts/evcxr/ and its build dirs.

Each test talks to a real kernel through jupyter_client, the way nbclient and JupyterLab do,
and checks one of the defects scripts/evcxr/README.md lists is gone:

* every line a cell prints arrives before the cell's `idle` status (clients drop what comes
  after it);
* with the crate loaded, a cell compiles only itself: no dependency is rebuilt per cell
  (evcxr's `:cache` used to leave 18 crates stale in every build);
* the kernelspec starts evcxr through scripts/kernel-launch.sh, which gives each running
  kernel a build dir of its own and reuses a free one.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from jupyter_client import KernelManager

from conftest import ROOT


class Kernel:
    """A `rust` kernel started in `cwd`; `run(code)` returns what the cell sent before idle,
    and what the kernel process itself wrote to its stderr meanwhile (cargo's `Compiling`
    lines go there: Jupyter shows them in the terminal of the server, not in the notebook)."""

    def __init__(self, cwd: Path, log: Path):
        self.log = log
        self.manager = KernelManager(kernel_name="rust")
        with open(log, "wb") as stderr:  # the kernel keeps its own descriptor
            self.manager.start_kernel(cwd=str(cwd), stderr=stderr)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=120)

    def run(self, code: str, timeout: float = 300) -> dict:
        logged = self.log.stat().st_size
        msg_id = self.client.execute(code)
        out = {"stdout": "", "stderr": "", "error": None, "late": []}
        while True:
            msg = self.client.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out[content["name"]] += content["text"]
            elif kind == "error":
                out["error"] = f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                break
        self.client.get_shell_msg(timeout=timeout)
        # Anything for this cell that still comes is what clients drop.
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=0.5)
            except Exception:  # queue.Empty
                break
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                out["late"].append(msg["content"]["text"])
        with open(self.log, "rb") as log:
            log.seek(logged)
            out["kernel_log"] = log.read().decode(errors="replace")
        return out

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def kernel(rust_kernelspec: dict, tmp_path_factory):
    k = Kernel(ROOT, tmp_path_factory.mktemp("kernel") / "stderr.log")
    try:
        loaded = k.run(f':dep understanding-buffers = {{ path = "{ROOT}" }}')
        assert loaded["error"] is None, loaded
        yield k
    finally:
        k.close()


def test_every_printed_line_arrives_before_the_cell_ends(kernel: Kernel) -> None:
    lines = 3000
    for attempt in range(int(os.environ.get("UB_OUTPUT_RUNS", "3"))):
        out = kernel.run(f'for i in 0..{lines} {{ println!("line {{i}}"); }}')
        got = out["stdout"].splitlines()
        assert out["late"] == [], f"run {attempt}: {len(out['late'])} chunks arrived after the cell ended"
        assert len(got) == lines and got[-1] == f"line {lines - 1}", (
            f"run {attempt}: {len(got)} of {lines} lines before idle; last: {got[-1:]}")


def test_a_cell_compiles_no_dependency_again(kernel: Kernel) -> None:
    kernel.run("use understanding_buffers::prelude::*;")
    for code in ('let a = 1 + 1;', 'println!("{}", a);', 'let t = Tensor::zeros(3, DType::F32, &Device::Cpu)?;'):
        out = kernel.run(code)
        assert out["error"] is None, out
        rebuilt = [line.strip() for line in out["kernel_log"].splitlines() if "Compiling" in line]
        assert not rebuilt, f"`{code}` rebuilt dependencies: {rebuilt}"


def test_the_kernelspec_runs_the_patched_kernel_through_the_launcher(rust_kernelspec: dict) -> None:
    argv = rust_kernelspec["argv"]
    assert argv[:2] == ["bash", str(ROOT / "scripts" / "kernel-launch.sh")], argv
    evcxr = Path(argv[2])
    assert evcxr.name == "evcxr_jupyter" and evcxr.parent.parent.name.startswith("evcxr-0.22.0-"), evcxr
    assert os.access(evcxr, os.X_OK)
    # The CPU kernel's build dirs follow the user's cache folder (kernel-launch.sh's default).
    assert "UB_BUILD_SLOTS" not in rust_kernelspec["env"]


def test_kernels_running_at_once_get_their_own_build_dirs(tmp_path: Path) -> None:
    fake = tmp_path / "fake-evcxr"
    fake.write_text('#!/bin/sh\necho "$EVCXR_TMPDIR"\nsleep 2\n', encoding="utf-8")
    fake.chmod(0o755)
    env = dict(os.environ, UB_BUILD_SLOTS=str(tmp_path / "builds"))
    script = str(ROOT / "scripts" / "kernel-launch.sh")
    running = [
        subprocess.Popen(["bash", script, str(fake), "--control_file", "x"], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    dirs = [p.communicate(timeout=30)[0].strip() for p in running]
    assert len(set(dirs)) == 3, f"three kernels at once shared a build dir: {dirs}"
    again = subprocess.run(["bash", script, str(fake)], env=env, capture_output=True, text=True, timeout=30)
    assert again.stdout.strip() == str(tmp_path / "builds" / "slot-0"), "a free build dir is reused"
