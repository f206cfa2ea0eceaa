"""examples/candle_user_model.rs: a candle user's model (a buffer, tied weights, a Vec of
blocks), trained one step with candle's AdamW and saved as a `.pth` file for PyTorch.

The test runs the example and reads its file the way `torch.load(weights_only=True)` does
(test_pth_structure.py's emulation of torch's weights-only unpickler; the tests need no
PyTorch): PyTorch's key names and order, a `ModuleList`'s `blocks.N.` keys, the buffers, and
the tied head saved with the embedding's values. With `UB_TORCH_PYTHON` set to a Python that
has torch, it also loads the file in PyTorch itself, strictly, into the same model written
in PyTorch (tests/fixtures/pytorch/tiny_gpt.py).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import ROOT
from test_pth_structure import read_pth

KEYS = ["pos_emb", "tok_emb.weight"] + [
    f"blocks.{i}.{name}"
    for i in range(2)
    for name in ("att.mask", "att.W_query.weight", "att.W_key.weight", "att.W_value.weight", "ff.weight", "ff.bias")
] + ["out_head.weight"]


def run_example(path: Path) -> str:
    result = subprocess.run(
        ["cargo", "run", "--quiet", "--example", "candle_user_model", "--", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_candle_users_model_trains_and_saves_what_pytorch_loads(tmp_path: Path) -> None:
    path = tmp_path / "tiny_gpt.pth"
    out = run_example(path)
    assert "11 parameter tensors for the optimizer (the tied head is the embedding), 15 state-dict keys" in out, out
    before, after = (float(x) for x in out.split("loss ")[1].split(" after")[0].split(" -> "))
    assert after < before, f"one AdamW step did not lower the loss: {out}"

    state = read_pth(path, {"cpu"})
    assert list(state) == KEYS
    assert state["out_head.weight"].values() == state["tok_emb.weight"].values(), "the tie was lost"
    mask = state["blocks.1.att.mask"]
    assert mask.shape == (6, 6) and mask.values()[:6] == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    pos = state["pos_emb"].values()
    assert [round(v, 6) for v in pos[5 * 8:5 * 8 + 4]] == [-0.958924, 0.283662, 0.479426, 0.877583]

    torch_python = os.environ.get("UB_TORCH_PYTHON")
    if torch_python:
        check = subprocess.run(
            [torch_python, str(ROOT / "tests" / "fixtures" / "pytorch" / "tiny_gpt.py"), str(path)],
            capture_output=True, text=True, timeout=600,
        )
        assert check.returncode == 0 and "<All keys matched successfully>" in check.stdout, check.stdout + check.stderr
