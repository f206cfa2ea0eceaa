"""The `rust` kernel itself: the patched evcxr_jupyter of scripts/evcxr/ and its build dirs.

Each test talks to a real kernel through jupyter_client, the way nbclient and JupyterLab do,
and checks one of the defects scripts/evcxr/README.md lists is gone:

* every line a cell prints arrives before the cell's `idle` status (clients drop what comes
  after it);
* with the crate loaded, a cell compiles only itself: no dependency is rebuilt per cell, in a
  build dir filled from evcxr's cache (`:cache` used to leave 18 crates stale in every build);
* every cell runs its own code: the cell crate, built without incremental compilation, has
  the same rustc command line in every cell, which is all evcxr's `:cache` keys on;
* while only the cell changes, cargo does not run at all (rustc is run directly with cargo's
  last command line): cargo's fingerprint of the cell crate stays as it was;
* one copy of each dependency per kernel (`:shared_deps`): a tensor made in one cell gets its
  gradient in a later cell's backward pass (with a copy of candle per cell, tensor ids repeat);
* a path crate edited mid-session is used by the next cell (not the library loaded before),
  and dependencies whose library name differs from the package's name or is renamed work;
* the kernelspec starts evcxr through scripts/kernel-launch.sh, which gives each running
  kernel a build dir of its own and reuses a free one;
* a new session in a build dir that had the crate adds it again without the network (the lock
  file of the last build with dependencies is kept);
* the panic hook is compiled into the first cell that runs in a process, and evcxr's runtime
  into the library of all dependencies, not into every cell; a variable made before `:dep`
  is still there after it;
* `:dep` interrupted as soon as the kernel is ready (while it waits for rust-analyzer's
  analysis of `std`, or of the new crate graph) can be run again, and the crate works;
* a cell takes out of evcxr's store only the variables it names (in code or in a format
  string); the others stay there for later cells, and a variable whose type a cell redefined
  is said to be lost by the next cell that names it.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from jupyter_client import KernelManager

from conftest import ROOT


class Kernel:
    """A `rust` kernel started in `cwd`; `run(code)` returns what the cell sent before idle,
    and what the kernel process itself wrote to its stderr meanwhile (cargo's `Compiling`
    lines go there: Jupyter shows them in the terminal of the server, not in the notebook)."""

    def __init__(self, cwd: Path, log: Path, env: dict | None = None):
        self.log = log
        self.started = time.time()
        self.manager = KernelManager(kernel_name="rust")
        with open(log, "wb") as stderr:  # the kernel keeps its own descriptor
            self.manager.start_kernel(cwd=str(cwd), stderr=stderr, env=dict(os.environ, **(env or {})))
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=120)

    def run(self, code: str, timeout: float = 300, on_output=None) -> dict:
        """Runs a cell: its streams, its error (`ename: evalue`, and the traceback as one text),
        and the status of its reply. `on_output(kernel)` is called once, when the cell first
        prints something (e.g. to interrupt it once it runs)."""
        logged = self.log.stat().st_size
        msg_id = self.client.execute(code)
        out = {"stdout": "", "stderr": "", "error": None, "traceback": "", "late": []}
        while True:
            msg = self.client.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out[content["name"]] += content["text"]
                if on_output is not None:
                    on_output, call = None, on_output
                    call(self)
            elif kind == "error":
                out["error"] = f"{content['ename']}: {content['evalue']}"
                out["traceback"] = "\n".join(content["traceback"])
            elif kind == "status" and content["execution_state"] == "idle":
                break
        out["status"] = self.reply_to(msg_id, timeout=timeout)["content"]["status"]
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

    def reply_to(self, msg_id: str, channel: str = "shell", timeout: float = 300) -> dict:
        """The reply to request `msg_id` on `channel` ("shell" or "control"); replies to earlier
        requests, such as the ones wait_for_ready sends, may still be queued before it."""
        get = self.client.get_shell_msg if channel == "shell" else self.client.get_control_msg
        while True:
            reply = get(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply

    def build_dir(self) -> Path:
        """The build dir this kernel compiles cells in (its `EVCXR_TMPDIR`)."""
        return Path(self.run('println!("{}", std::env::var("EVCXR_TMPDIR").unwrap());')["stdout"].strip())

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


DEP = f':dep understanding-buffers = {{ path = "{ROOT}" }}'


def kernel_in(folder: Path, cwd: Path = ROOT, log: str = "stderr.log", **env: str) -> Kernel:
    """A kernel whose build dirs are in `folder/builds` (a new one, unless an earlier kernel
    used that folder), its stderr in `folder/log`."""
    return Kernel(cwd, folder / log, env={"UB_BUILD_SLOTS": str(folder / "builds"), **env})


@pytest.fixture(scope="module")
def kernel(rust_kernelspec: dict, tmp_path_factory):
    """A kernel with the crate loaded, in a new build dir (which `:dep` fills from evcxr's cache)."""
    base = tmp_path_factory.mktemp("kernel")
    k = kernel_in(base)
    try:
        loaded = k.run(DEP)
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


def _crate_edited_since(start: float) -> bool:
    """Whether a file of this crate changed since `start` (someone working in the checkout)."""
    files = [ROOT / "Cargo.toml", ROOT / "build.rs", *(ROOT / "src").rglob("*")]
    return any(f.is_file() and f.stat().st_mtime >= start - 1 for f in files)


def test_a_cell_compiles_no_dependency_again(kernel: Kernel) -> None:
    kernel.run("use understanding_buffers::prelude::*;")
    for code in ('let a = 1 + 1;', 'println!("{}", a);', 'let t = Tensor::zeros(3, DType::F32, &Device::Cpu)?;'):
        out = kernel.run(code)
        assert out["error"] is None, out
        rebuilt = [line.strip() for line in out["kernel_log"].splitlines() if "Compiling" in line]
        if _crate_edited_since(kernel.started):
            # The crate itself was edited meanwhile: the library of all dependencies
            # (`evcxr_deps`, `:shared_deps`) is rebuilt with it, rightly.
            rebuilt = [line for line in rebuilt if "Compiling evcxr_deps " not in line]
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


def test_every_cell_runs_its_own_code(kernel: Kernel) -> None:
    # Same code shape, different text: a cell crate served from evcxr's cache would print an
    # earlier cell's word.
    for word in ("first", "second", "third"):
        out = kernel.run(f'println!("{word}");')
        assert out["error"] is None, out
        assert out["stdout"] == f"{word}\n", f"the cell printing {word!r} ran other code: {out['stdout']!r}"


def test_a_tensor_from_an_earlier_cell_gets_its_gradient(kernel: Kernel) -> None:
    made = kernel.run("use understanding_buffers::prelude::*;\n"
                      "let w = candle_core::Var::new(&[1f32, 2., 3.], &Device::Cpu)?;")
    assert made["error"] is None, made
    # Tensors made in this cell: with a copy of candle per cell, their ids start again and one
    # of them takes `w`'s, and the backward pass mixes the two up.
    out = kernel.run(
        "let ks = (0..8).map(|_| Tensor::ones(3, DType::F32, &Device::Cpu))"
        ".collect::<candle_core::Result<Vec<_>>>()?;\n"
        "let mut loss = Tensor::zeros((), DType::F32, &Device::Cpu)?;\n"
        "for k in &ks { loss = (loss + (w.as_tensor() * k)?.sum_all()?)?; }\n"
        "let grads = loss.backward()?;\n"
        'println!("{:?}", grads.get(w.as_tensor()).map(|g| g.to_vec1::<f32>()));'
    )
    assert out["error"] is None, out
    # d(sum_k sum(w * k))/dw = sum of the eight ks
    assert out["stdout"].strip() == "Some(Ok([8.0, 8.0, 8.0]))", out


def _write_crate(path: Path, package: str, lib: str | None, body: str) -> None:
    (path / "src").mkdir(parents=True, exist_ok=True)
    lib_section = f'[lib]\nname = "{lib}"\n' if lib else ""
    (path / "Cargo.toml").write_text(
        f'[package]\nname = "{package}"\nversion = "0.1.0"\nedition = "2021"\n\n{lib_section}\n[workspace]\n',
        encoding="utf-8",
    )
    _edit(path / "src" / "lib.rs", body)


def _edit(file: Path, text: str) -> None:
    before = file.stat().st_mtime if file.exists() else 0
    file.write_text(text, encoding="utf-8")
    # A new modification time even on a file system with coarse timestamps.
    stamp = max(before + 2, file.stat().st_mtime)
    os.utime(file, (stamp, stamp))


def test_path_crates_edited_and_named_otherwise(rust_kernelspec: dict, tmp_path: Path) -> None:
    one = tmp_path / "one"
    two = tmp_path / "two"
    # A library named otherwise than its package, and a package under another name (a rename).
    _write_crate(one, "ub-probe-one", "probe_lib_one", "pub fn value() -> i32 { 1 }\n")
    _write_crate(two, "ub-probe-two", None, "pub fn value() -> i32 { 10 }\n")
    k = kernel_in(tmp_path, cwd=tmp_path)
    try:
        for dep in (f':dep ub-probe-one = {{ path = "{one}" }}',
                    f':dep probe_alias = {{ path = "{two}", package = "ub-probe-two" }}'):
            out = k.run(dep)
            assert out["error"] is None, out
        out = k.run('println!("{} {}", probe_lib_one::value(), probe_alias::value());')
        assert out["error"] is None and out["stdout"] == "1 10\n", out
        for value in (2, 3):
            _edit(one / "src" / "lib.rs", f"pub fn value() -> i32 {{ {value} }}\n")
            out = k.run('println!("{}", probe_lib_one::value());')
            assert out["error"] is None, out
            assert out["stdout"] == f"{value}\n", f"after the edit to {value}, the cell printed {out['stdout']!r}"
    finally:
        k.close()


def test_cargo_does_not_run_while_only_the_cell_changes(kernel: Kernel) -> None:
    build_dir = kernel.build_dir()
    kernel.run("let direct_a = 1;")  # cargo may run once more here (a new variable)
    fingerprints = sorted(build_dir.glob("target/*/debug/.fingerprint/ctx-*/*"))
    assert fingerprints, f"no fingerprint of the cell crate under {build_dir}"
    before = {p: p.stat().st_mtime_ns for p in fingerprints}
    for code in ("let direct_b = direct_a + 1;", 'println!("{}", direct_b);', "let direct_c = direct_b * 2;"):
        assert kernel.run(code)["error"] is None
    changed = [p.name for p in before if p.stat().st_mtime_ns != before[p]]
    assert not changed, f"cargo ran for a cell whose crate graph did not change (touched: {changed})"


def test_dep_in_a_new_session_needs_no_network(rust_kernelspec: dict, tmp_path: Path) -> None:
    first = kernel_in(tmp_path, log="first.log")
    try:
        assert first.run(DEP)["error"] is None
    finally:
        first.close()
    # The same build dir, and cargo sent to a proxy that refuses every connection: a fetch of
    # the registry's index would fail. Every crate is on disk, and so is the lock file.
    nowhere = "http://127.0.0.1:9"
    second = kernel_in(tmp_path, log="second.log",
                       CARGO_HTTP_PROXY=nowhere, HTTPS_PROXY=nowhere, CARGO_NET_RETRY="0")
    try:
        out = second.run(DEP)
        assert out["error"] is None, out
        out = second.run("use understanding_buffers::prelude::*;\n"
                         'println!("{}", Tensor::ones(2, DType::F32, &Device::Cpu)?.sum_all()?);')
        assert out["error"] is None and out["stdout"].startswith("[2.]"), out
    finally:
        second.close()


def test_a_cell_compiles_neither_the_panic_hook_nor_evcxrs_runtime(kernel: Kernel) -> None:
    build_dir = kernel.build_dir()
    assert kernel.run("let hook_probe = 1;")["error"] is None
    source = (build_dir / "src" / "lib.rs").read_text(encoding="utf-8")
    assert "hook_probe" in source, "not the source of the last cell"
    assert "set_hook" not in source, "the panic hook was compiled into a later cell again"
    # The variable store comes from the library of all dependencies (patch 16).
    assert "mod evcxr_internal_runtime" not in source, "evcxr's runtime was compiled into the cell"
    out = kernel.run('let w = vec![hook_probe];\nprintln!("{}", w[2]);')
    assert out["error"] is not None and "panicked at line 2" in out["traceback"], out


def test_a_variable_made_before_dep_is_kept(rust_kernelspec: dict, tmp_path: Path) -> None:
    # Before `:dep` a cell carries evcxr's runtime itself; after it, the cells use the copy in
    # the library of all dependencies, with the store the earlier cells filled.
    k = kernel_in(tmp_path)
    try:
        assert k.run('let early = vec![1, 2, 3];\nlet word = String::from("kept");')["error"] is None
        assert k.run(DEP)["error"] is None
        out = k.run("use understanding_buffers::prelude::*;\n"
                    "let t = Tensor::new(early.iter().map(|&v| v as f32).collect::<Vec<_>>(), &Device::Cpu)?;\n"
                    'println!("{word} {}", t.sum_all()?);')
        assert out["error"] is None and out["stdout"].startswith("kept [6.]"), out
        assert k.run('println!("{} {}", early.len(), word);')["stdout"] == "3 kept\n"
    finally:
        k.close()


def test_an_interrupted_dep_can_be_run_again(rust_kernelspec: dict, tmp_path: Path) -> None:
    # Sent as soon as the kernel is ready, as Run All does, `:dep` first waits for the analysis
    # of `std` that started with the kernel (patch 17), then for that of the new crate graph
    # (patch 13); an interrupt ends either wait. Wherever it lands, the learner runs the cell
    # again and goes on: the kernel must neither hang nor lose the crate.
    k = kernel_in(tmp_path)
    try:
        interrupt = threading.Timer(1.0, k.manager.interrupt_kernel)
        interrupt.start()
        k.run(DEP)
        interrupt.join()
        assert k.run(DEP)["error"] is None
        out = k.run("use understanding_buffers::prelude::*;\n"
                    "let ones = Tensor::ones(2, DType::F32, &Device::Cpu)?;\n"
                    'println!("{}", ones.sum_all()?);')
        assert out["error"] is None and out["stdout"].startswith("[2.]"), out
        # (a variable's type comes from rust-analyzer: it is kept for the next cell)
        assert k.run('println!("{:?}", ones.dims());')["stdout"] == "[2]\n"
    finally:
        k.close()


def test_a_cell_takes_out_only_the_variables_it_names(kernel: Kernel) -> None:
    build_dir = kernel.build_dir()
    assert kernel.run('let named_a = 20;\nlet untouched_b = String::from("still here");')["error"] is None
    out = kernel.run('println!("{}", named_a + 1);')
    assert out["error"] is None and out["stdout"] == "21\n", out
    source = (build_dir / "src" / "lib.rs").read_text(encoding="utf-8")
    assert "take_variable::<i32>(stringify!(named_a))" in source, "not the source of the last cell"
    assert "untouched_b" not in source, "a cell took out a variable it does not name"
    # A name inside a format string counts; the variable left alone is intact.
    assert kernel.run('println!("{untouched_b} {named_a}");')["stdout"] == "still here 20\n"
    # A failing cell that does not name it leaves it where it is.
    assert kernel.run('let v = vec![named_a];\nprintln!("{}", v[3]);')["error"] is not None
    assert kernel.run("println!(\"{}\", untouched_b.len());")["stdout"] == "10\n"
    # A type redefined under a variable: the next cell that names the variable says so.
    assert kernel.run("struct Shape { w: i32 }\nlet shape = Shape { w: 3 };")["error"] is None
    assert kernel.run("struct Shape { w: i32, h: i64 }")["error"] is None
    assert kernel.run("let unrelated = named_a * 2;")["error"] is None
    out = kernel.run('println!("{}", shape.w);')
    assert "The type of the variable shape was redefined, so was lost." in out["stdout"] + out["stderr"], out
    assert kernel.run('println!("{}", unrelated);')["stdout"] == "40\n"
