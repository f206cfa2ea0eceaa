"""What a learner types into a cell of their own, after a lesson's set-up cell (issue 19).

Each test talks to a real `rust` kernel through jupyter_client, started in notebooks/en with
the lessons' own `:dep` and set-up lines, and checks what the learner sees:

* a function and a `#[derive(Module)]` struct of their own run; a closure kept in a
  variable gets evcxr's own advice (box it), and a boxed one runs (the prelude's one-
  parameter `Result` alias once hid that advice behind "type alias takes 1 generic argument
  but 2 generic arguments were supplied", with no location);
* a typo is a compile error that names the typo;
* a module prints as PyTorch prints it; `candle_core` and `candle_nn` can be named;
* Tab offers a module's methods (`state_dict`, `to_device`, `load`, ...), which its
  `#[derive(Module)]` implements, for the crate's modules and for the learner's own;
* two kernels saving and loading checkpoints at the same time never read each other's
  files (each has a private scratch folder).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from pathlib import Path

import pytest

import test_kernel
from conftest import NOTEBOOKS

DEP = ':dep understanding-buffers = { path = "../.." }'
SETUP = "use understanding_buffers::prelude::*;\nlesson_setup();"


class Kernel(test_kernel.Kernel):
    """test_kernel.py's kernel client, started in notebooks/en as a lesson's kernel is, with
    `ok(code)`: the cell must succeed, print no error and no panic."""

    def __init__(self, log: Path):
        super().__init__(NOTEBOOKS / "en", log)

    def ok(self, code: str) -> dict:
        out = self.run(code)
        assert out["error"] is None, f"`{code}` failed:\n{out['error']}"
        assert "Error" not in out["stderr"] and "panicked" not in out["stdout"] + out["stderr"], out
        return out


@contextlib.contextmanager
def lesson_kernel(log: Path):
    """A kernel as a lesson has it: the crate loaded (`:dep`), the set-up cell run."""
    k = Kernel(log)
    try:
        k.ok(DEP)
        k.ok(SETUP)
        yield k
    finally:
        k.close()


@pytest.fixture(scope="module")
def kernel(rust_kernelspec: dict, tmp_path_factory):
    with lesson_kernel(tmp_path_factory.mktemp("learner") / "stderr.log") as k:
        yield k


def test_a_learners_closure_and_function_run_after_the_setup_cell(kernel: Kernel) -> None:
    out = kernel.run("let double = |x: f32| x * 2.0;")
    assert out["error"] is not None and "cannot be persisted" in out["error"] and "Box::new" in out["error"], out
    assert "generic argument" not in out["error"], out["error"]
    out = kernel.ok("let double: Box<dyn Fn(f32) -> f32> = Box::new(|x| x * 2.0);\nprintln!(\"{}\", double(2.5));")
    assert out["stdout"].strip() == "5"
    out = kernel.ok("fn triple(x: i32) -> i32 {\n    x * 3\n}\nprintln!(\"{}\", triple(7));")
    assert out["stdout"].strip() == "21"


def test_a_learners_own_module_runs_and_prints_like_pytorch(kernel: Kernel) -> None:
    kernel.ok(
        "#[derive(Module)]\n"
        "struct Tiny {\n"
        "    #[module(rename = \"Proj\")]\n"
        "    proj: Linear,\n"
        "    scale: Buffer,\n"
        "}\n"
        "let tiny = Tiny { proj: Linear::new(3, 2, false)?, scale: Buffer::new(Tensor::ones(2, DType::F32, &Device::Cpu)?) };"
    )
    out = kernel.ok('println!("{tiny}");\nprintln!("{:?}", tiny.state_dict().keys().collect::<Vec<_>>());')
    assert out["stdout"] == 'Tiny(\n  (Proj): Linear(in_features=3, out_features=2, bias=False)\n)\n["scale", "Proj.weight"]\n'


def test_a_typo_is_an_error_that_names_it(kernel: Kernel) -> None:
    out = kernel.run("let y = undefined_value + 1;")
    assert out["error"] is not None, out
    assert "undefined_value" in out["error"], out["error"]


def test_candle_can_be_named_in_a_cell(kernel: Kernel) -> None:
    out = kernel.ok(
        "let t = candle_core::Tensor::zeros((2, 3), candle_core::DType::F32, &candle_core::Device::Cpu)?;\n"
        "let s = candle_nn::ops::sigmoid(&t)?;\n"
        "println!(\"{:?}\", s.dims());"
    )
    assert out["stdout"].strip() == "[2, 3]"


ROUND_TRIPS = 150
ROUND_TRIP_CELL = """
#[derive(Module)]
struct Holder {{
    value: Buffer,
}}
let path = scratch_dir()?.join("model.pth");
let mut wrong = 0;
for _ in 0..{n} {{
    Holder {{ value: Buffer::new(Tensor::new(&[{k}f32], &Device::Cpu)?) }}.save(&path)?;
    let mut back = Holder {{ value: Buffer::new(Tensor::new(&[0f32], &Device::Cpu)?) }};
    back.load(&path, LoadMode::Strict)?;
    if back.value.to_vec1::<f32>()?[0] != {k}f32 {{
        wrong += 1;
    }}
}}
println!("{{}} {{}}", wrong, path.display());
"""


def test_two_kernels_saving_and_loading_at_once_keep_their_own_files(rust_kernelspec: dict, tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        kernels = [stack.enter_context(lesson_kernel(tmp_path / f"k{i}.log")) for i in range(2)]
        # Both compile the cell first (once), then run their loops at the same moment.
        results: queue.Queue = queue.Queue()
        start = threading.Barrier(len(kernels))

        def work(index: int, k: Kernel) -> None:
            start.wait()
            results.put((index, k.run(ROUND_TRIP_CELL.format(n=ROUND_TRIPS, k=index + 1))))

        threads = [threading.Thread(target=work, args=(i, k)) for i, k in enumerate(kernels)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        outs = dict(results.get_nowait() for _ in kernels)
        paths = []
        for index, out in sorted(outs.items()):
            assert out["error"] is None, out["error"]
            wrong, path = out["stdout"].split()
            assert wrong == "0", f"kernel {index} read the other kernel's checkpoint {wrong} times in {ROUND_TRIPS}"
            paths.append(path)
        assert paths[0] != paths[1], f"both kernels wrote to {paths[0]}"


def complete(kernel: Kernel, code: str) -> list[str]:
    """What Tab offers at the end of `code` (a complete_request, as JupyterLab sends it)."""
    return kernel.reply_to(kernel.client.complete(code, len(code)), timeout=120)["content"]["matches"]


def test_completion_offers_a_modules_methods(kernel: Kernel) -> None:
    kernel.ok("let completed = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false)?;")
    offered = complete(kernel, "completed.")
    for method in ("state_dict", "to_device", "load", "save", "named_buffers", "forward"):
        assert any(m.startswith(method) for m in offered), f"`completed.` does not offer {method}: {offered}"
    kernel.ok(
        "#[derive(Module)]\n"
        "struct Mine {\n"
        "    proj: Linear,\n"
        "}\n"
        "let mine = Mine { proj: Linear::new(3, 2, false)? };"
    )
    offered = complete(kernel, "mine.sta")
    assert any(m.startswith("state_dict") for m in offered), offered


def test_a_variable_that_a_derived_method_returns_keeps_its_type(kernel: Kernel) -> None:
    # evcxr asks rust-analyzer for each new variable's type; without the derive expanded, it
    # answered "Couldn't automatically determine type of variable `sd`".
    kernel.ok("let typed = CausalAttentionWithBuffer::new(3, 2, 6, 0.0, false)?;")
    kernel.ok("let sd = typed.state_dict();\nlet names = typed.named_buffers();")
    out = kernel.ok('println!("{} {}", sd.len(), names.len());')
    assert out["stdout"] == "4 1\n", out
