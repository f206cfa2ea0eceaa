"""When a learner's cell fails, or the machine does (issue 19).

Each test talks to a real `rust` kernel through jupyter_client, as JupyterLab and nbclient do,
and checks what the learner sees (scripts/evcxr/README.md, patches 08-11, says how):

* a `?` that returns `Err` and a panic fail the cell (an `error` reply: Run All stops there, as
  it does on a Python exception), with the message once, and a panic names the line of the
  learner's cell, not a line of evcxr's generated `src/lib.rs`;
* interrupting a running cell, or a cell that kills, aborts or exits the process that runs
  cells, keeps the variables of the cells before it: the kernel runs those cells again in a
  new process and says so in words;
* `RUST_BACKTRACE` is what the kernel spec says;
* a build folder deleted under a running kernel, and a full disk, are said in plain words
  (with what to do), not as compiler errors about other things.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager

import test_kernel
from test_learner_cells import Kernel as LessonKernel, lesson_kernel


@pytest.fixture(scope="module")
def lesson(rust_kernelspec: dict, tmp_path_factory):
    with lesson_kernel(tmp_path_factory.mktemp("failures") / "stderr.log") as k:
        yield k


def failed(out: dict) -> str:
    """The cell must have failed as Jupyter counts it: an error output and an error reply."""
    assert out["status"] == "error" and out["error"] is not None, out
    return out["traceback"]


def test_a_question_mark_that_returns_err_fails_the_cell(lesson: LessonKernel) -> None:
    lesson.ok("let kept = 5;")
    out = lesson.run('println!("before");\nlet n: i32 = "x1".parse()?;\nprintln!("after {n}");')
    text = failed(out)
    assert "invalid digit" in text, text
    assert out["stdout"] == "before\n", out
    assert "invalid digit" not in out["stderr"], "the message is shown once, as the error"
    assert lesson.ok('println!("{}", kept);')["stdout"] == "5\n"


def test_a_panic_names_the_line_of_the_learners_cell(lesson: LessonKernel) -> None:
    out = lesson.run('let v = vec![1, 2, 3];\nlet i = 7;\nprintln!("{}", v[i]);')
    text = failed(out)
    assert out["error"].startswith("panic: index out of bounds"), out["error"]
    # (rustc puts this panic at column 17 of that line, in a file of its own too)
    assert text.splitlines()[0] == "panicked at line 3, column 17 of this cell:", text
    assert "src/lib.rs" not in text + out["stderr"], out


def test_a_panic_in_a_function_an_earlier_cell_defined_names_that_code(lesson: LessonKernel) -> None:
    lesson.ok('fn boom(n: i32) -> i32 {\n    if n > 2 {\n        panic!("too big: {n}");\n    }\n    n\n}')
    text = failed(lesson.run("let b = boom(3);"))
    assert 'panic!("too big: {n}");`, in code an earlier cell defined' in text.splitlines()[0], text
    assert "too big: 3" in text


def test_an_interrupted_loop_keeps_the_variables_of_the_cells_before_it(lesson: LessonKernel) -> None:
    lesson.ok("let kept = 41;\nlet t = Tensor::new(&[1f32, 2., 3.], &Device::Cpu)?;")
    out = lesson.run(  # (the loop never ends: the cell ends only if the interrupt stops it)
        'println!("looping");\nlet mut spins = 0u64;\nloop {\n    spins = std::hint::black_box(spins + 1);\n}',
        on_output=lambda k: k.manager.interrupt_kernel(),
    )
    text = failed(out)
    assert "The cell was interrupted" in text and "are back" in text, text
    out = lesson.ok('println!("{} {}", kept + 1, t.sum_all()?.to_scalar::<f32>()?);')
    assert out["stdout"] == "42 6\n"


@pytest.mark.parametrize(
    ("cell", "words"),
    [
        ("std::process::exit(3);", "exit status: 3"),
        (
            'std::process::Command::new("kill").args(["-9", &std::process::id().to_string()]).status()?;\n'
            "std::thread::sleep(std::time::Duration::from_secs(30));",
            "killed (SIGKILL)",
        ),
        (
            "fn down(n: u64) -> u64 {\n    if n == 0 { 0 } else { 1 + down(std::hint::black_box(n - 1)) }\n}\n"
            'println!("{}", down(u64::MAX));',
            "overflows the stack",
        ),
    ],
    ids=["exit", "sigkill", "stack-overflow"],
)
def test_a_cell_that_ends_the_process_keeps_the_earlier_variables(lesson: LessonKernel, cell: str, words: str) -> None:
    lesson.ok('let before_crash = String::from("still here");')
    text = failed(lesson.run(cell))
    assert words in text and "are back" in text, text
    assert lesson.ok('println!("{before_crash}");')["stdout"] == "still here\n"


def test_a_panic_after_a_crash_names_the_line(lesson: LessonKernel) -> None:
    # The panic hook is installed by the first cell that runs in a process (patch 15): the
    # process that replaces a crashed one gets it again.
    lesson.ok("let survivor: usize = 2;")
    failed(lesson.run("std::process::exit(4);"))
    text = failed(lesson.run('let w = vec![survivor];\nprintln!("{}", w[survivor]);'))
    assert text.splitlines()[0] == "panicked at line 2, column 17 of this cell:", text


def test_an_interrupt_while_idle_changes_nothing(lesson: LessonKernel) -> None:
    lesson.ok("let idle_value = 7;")
    # The interrupt, and its reply: the kernel has handled it before the next cell comes.
    request = lesson.client.session.msg("interrupt_request", {})
    lesson.client.control_channel.send(request)
    lesson.reply_to(request["header"]["msg_id"], channel="control", timeout=60)
    assert lesson.ok('println!("{}", idle_value * 6);')["stdout"] == "42\n"


def test_rust_backtrace_is_what_the_kernel_spec_says(lesson: LessonKernel, rust_kernelspec: dict) -> None:
    wanted = rust_kernelspec["env"]["RUST_BACKTRACE"]
    out = lesson.ok('println!("{:?}", std::env::var("RUST_BACKTRACE"));')
    assert out["stdout"] == f'Ok("{wanted}")\n'
    text = failed(lesson.run('panic!("no backtrace wanted");'))
    assert ("stack backtrace:" in text) == (wanted not in ("", "0")), text


@pytest.fixture()
def bare(rust_kernelspec: dict, tmp_path: Path):
    """A kernel with no dependency (its cells compile in a second), in a build folder of its own."""
    k = test_kernel.kernel_in(tmp_path)
    try:
        yield k, tmp_path / "builds" / "slot-0"
    finally:
        k.close()


def test_a_deleted_build_folder_is_said_and_built_again(bare) -> None:
    kernel, build_dir = bare
    assert kernel.run("let a = 20;")["error"] is None
    assert (build_dir / "Cargo.toml").exists(), list(build_dir.iterdir())
    shutil.rmtree(build_dir)
    out = kernel.run('println!("{}", a + 22);')
    assert out["error"] is None, out
    assert "build folder" in out["stdout"] and "was deleted" in out["stdout"], out
    assert out["stdout"].endswith("42\n"), out


def unshare_works() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not unshare_works(), reason="needs `unshare -rm` (a user and mount namespace) for a small disk")
def test_a_full_disk_is_said_in_plain_words(rust_kernelspec: dict, tmp_path: Path, monkeypatch) -> None:
    # The kernel's build folder on a 64 MiB tmpfs, mounted in a mount namespace of its own.
    slots = tmp_path / "builds"
    slots.mkdir()
    spec_dir = tmp_path / "kernels" / "rust"
    spec_dir.mkdir(parents=True)
    spec = KernelSpecManager().get_kernel_spec("rust").to_dict()  # the one Kernel() would start
    spec["argv"] = [
        "unshare", "-rm", "bash", "-c",
        f'mount -t tmpfs -o size=64m tmpfs "{slots}" && exec "$0" "$@"',
        *spec["argv"],
    ]
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join([str(tmp_path), os.environ["JUPYTER_PATH"]]))
    kernel = test_kernel.kernel_in(tmp_path)  # (its build dirs: `slots`)
    try:
        assert kernel.run("let x = 1;")["error"] is None
        fill = (  # in a block: the file is closed at its end, so deleting it frees the space
            "{\n"
            '    let filler = std::path::Path::new(&std::env::var("EVCXR_TMPDIR")?).join("filler");\n'
            "    let mut file = std::fs::File::create(&filler)?;\n"
            "    let chunk = vec![0u8; 1 << 16];\n"
            "    while std::io::Write::write_all(&mut file, &chunk).is_ok() {}\n"
            "}"
        )
        assert kernel.run(fill)["error"] is None
        text = failed(kernel.run("let y = x + 1;"))
        assert text.startswith("The disk is full"), text
        assert "unused variable" not in text, text
        # The learner frees space (here through the kernel process's view of its mount).
        pid = kernel.manager.provisioner.process.pid
        filler = Path(f"/proc/{pid}/root") / str(slots).lstrip("/") / "slot-0" / "filler"
        filler.unlink()
        out = kernel.run('println!("{}", x + 41);')
        assert out["error"] is None and out["stdout"] == "42\n", out
    finally:
        kernel.close()
