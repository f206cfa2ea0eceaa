"""The lessons have one source, two languages with the same code, and are committed executed.

No kernel is needed: these tests read files only (fast; test_notebooks.py runs the notebooks).

* `scripts/notebooks.py check`: the committed notebooks and examples/*.rs are what
  lessons/*.py generates (cell types, sources, tags). That the examples compile is cargo's
  job (`cargo test` builds every example).
* Read from the .ipynb files themselves, independently of the generator: the English and
  Chinese notebooks have the same program (code cells identical once string literals and
  comments are blanked, same tags and expected texts, at the same places), each in its own
  language; each notebook links to its twin.
* The committed notebooks are executed, show no unexpected error, show their intended
  errors, carry their figures as inline SVG, and lesson 1 shows PyTorch's own prints.
"""

from __future__ import annotations

import difflib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nbcompare
from conftest import NOTEBOOKS, ROOT

NAMES = sorted(p.name for p in (NOTEBOOKS / "en").glob("*.ipynb"))
ALL = [NOTEBOOKS / lang / name for lang in ("en", "zh") for name in NAMES]


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def code_signature(nb: dict) -> list[tuple]:
    """Each cell's type and, for code cells, what must be identical in both languages."""
    out = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            meta = cell.get("metadata", {})
            out.append(("code", nbcompare.source(cell), tuple(meta.get("tags", [])), tuple(meta.get("expect", []))))
        else:
            out.append((cell["cell_type"],))
    return out


def test_generator_check_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "notebooks.py"), "check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        "scripts/notebooks.py check found notebooks or examples that differ from lessons/*.py:\n"
        f"{result.stdout}{result.stderr}"
    )


def test_every_lesson_exists_in_both_languages() -> None:
    assert NAMES, f"no notebooks in {NOTEBOOKS / 'en'}"
    zh = sorted(p.name for p in (NOTEBOOKS / "zh").glob("*.ipynb"))
    assert NAMES == zh, f"English notebooks {NAMES} and Chinese notebooks {zh} differ"


@pytest.mark.parametrize("name", NAMES)
def test_english_and_chinese_code_cells_are_the_same_program(name: str) -> None:
    """Each notebook's code is in its own language, but the program is one: with string
    literals and comments blanked out, the code cells (and their tags) are identical."""
    en, zh = load(NOTEBOOKS / "en" / name), load(NOTEBOOKS / "zh" / name)
    a, b = code_signature(en), code_signature(zh)
    code_a = [c for c in a if c[0] == "code"]
    code_b = [c for c in b if c[0] == "code"]
    assert len(code_a) == len(code_b), f"{name}: en has {len(code_a)} code cells, zh has {len(code_b)}"
    for n, (x, y) in enumerate(zip(code_a, code_b)):
        bx, by = nbcompare.blank_strings_and_comments(x[1]), nbcompare.blank_strings_and_comments(y[1])
        diff = "\n".join(difflib.unified_diff(bx.splitlines(), by.splitlines(), "en", "zh", lineterm=""))
        assert bx == by, f"{name}: code cell {n} is another program in en and zh (strings and comments blanked):\n{diff}"
        assert x[2:] == y[2:], f"{name}: code cell {n} has other tags or expected texts in en and zh"
    assert [c[0] for c in a] == [c[0] for c in b], f"{name}: code cells sit at different places in en and zh"


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_code_cells_are_in_the_notebooks_language(path: Path) -> None:
    """An English notebook's code holds no Chinese; a Chinese one's strings and comments hold
    no English sentence (identifiers, code and library messages are not sentences)."""
    problems = []
    for i, cell in nbcompare.code_cells(load(path)):
        problems += [f"{nbcompare.describe(i, cell)}: {p}" for p in
                     nbcompare.code_language_problems(nbcompare.source(cell), path.parent.name)]
    assert not problems, f"{path.relative_to(ROOT)}:\n" + "\n".join(problems)


def test_code_language_check_finds_the_other_language() -> None:
    rust = 'let x = f()?; // {}\nprintln!("{}{{x}}");'
    assert nbcompare.code_language_problems(rust.format("the weights", "output: "), "en") == []
    assert nbcompare.code_language_problems(rust.format("权重", "output: "), "en")
    assert nbcompare.code_language_problems(rust.format("the weights PyTorch drew", "输出："), "zh")
    assert nbcompare.code_language_problems(rust.format("权重", "the output shape is "), "zh")
    assert nbcompare.code_language_problems(rust.format("torch.optim.SGD(model.parameters(), lr=0.1)", "输出："), "zh") == []
    assert nbcompare.code_language_problems(rust.format("PyTorch 中是 model.half()", "W_query.weight: "), "zh") == []
    blank = nbcompare.blank_strings_and_comments
    assert blank('f("a // b"); // c\nlet s = r#"x"y"#;') == blank('f("甲"); // 乙\nlet s = r#"丙"#;')
    assert blank('f("a")') != blank('g("a")')


@pytest.mark.parametrize("name", NAMES)
def test_chinese_prose_is_not_the_english_one(name: str) -> None:
    en, zh = load(NOTEBOOKS / "en" / name), load(NOTEBOOKS / "zh" / name)
    for i, (a, b) in enumerate(zip(en["cells"], zh["cells"])):
        if a["cell_type"] == "markdown":
            text_zh = nbcompare.source(b)
            assert re.search(r"[\u4e00-\u9fff]", text_zh), f"zh/{name} markdown cell {i} has no Chinese text"
            assert nbcompare.source(a) != text_zh, f"markdown cell {i} of {name} is the same in en and zh"


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_notebook_links_to_its_twin(path: Path) -> None:
    twin_lang = "zh" if path.parent.name == "en" else "en"
    target = f"../{twin_lang}/{path.name}"
    prose = "\n".join(nbcompare.source(c) for c in load(path)["cells"] if c["cell_type"] == "markdown")
    links = re.findall(r"\]\(([^)\s]+)\)", prose)
    assert target in links, f"{path.relative_to(ROOT)} does not link to its twin ({target}); links: {links}"
    assert (path.parent / target).resolve().is_file()


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_committed_notebook_is_executed_and_clean(path: Path) -> None:
    nb = load(path)
    problems = nbcompare.committed_problems(nb)
    assert not any("no outputs at all" in p for p in problems), f"{path.relative_to(ROOT)}: {problems[0]}"
    for i, cell in nbcompare.code_cells(nb):
        for n, out in enumerate(cell.get("outputs", [])):
            if nbcompare.is_figure(out) and not nbcompare.is_inline_svg_figure(out):
                problems.append(f"{nbcompare.describe(i, cell)}: output {n} is a picture but not an inline <svg> figure")
    shown = "\n".join(nbcompare.cell_text(c) for _, c in nbcompare.code_cells(nb))
    problems += nbcompare.missing_pytorch_prints(path, shown)
    assert not problems, f"{path.relative_to(ROOT)}:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", NAMES)
def test_both_languages_committed_outputs_of_the_same_kinds(name: str) -> None:
    """The code is the same, so each cell shows the same kinds of output in both languages
    (the words differ). A difference means one run lost or changed something."""
    en, zh = load(NOTEBOOKS / "en" / name), load(NOTEBOOKS / "zh" / name)
    problems = []
    for (i, a), (_, b) in zip(nbcompare.code_cells(en), nbcompare.code_cells(zh)):
        kinds = [[nbcompare.output_kind(o) for o in nbcompare.merged_outputs(c.get("outputs", []))] for c in (a, b)]
        if kinds[0] != kinds[1]:
            problems.append(f"{nbcompare.describe(i, a)}: en shows {kinds[0]}, zh shows {kinds[1]}")
    assert not problems, f"{name}: en and zh committed outputs differ:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_outputs_are_in_the_notebooks_language(path: Path) -> None:
    problems = nbcompare.language_problems(load(path), path.parent.name)
    assert not problems, f"{path.relative_to(ROOT)}:\n" + "\n".join(problems)


def test_language_check_finds_the_other_language() -> None:
    def nb(*outputs):
        return {"cells": [{"cell_type": "code", "source": "f()", "metadata": {}, "outputs": list(outputs)}]}

    def stdout(text):
        return {"output_type": "stream", "name": "stdout", "text": text}

    def html(markup):
        return {"output_type": "execute_result", "data": {"text/html": markup}, "metadata": {}}

    assert nbcompare.language_problems(nb(stdout("mask device: cpu\n")), "en") == []
    assert nbcompare.language_problems(nb(stdout("掩码所在的设备：cpu\n")), "en")
    figure = html('<div class="ub-figure"><svg><text x="1">往返前的因果掩码</text></svg></div>')
    assert nbcompare.language_problems(nb(figure), "en"), "Chinese in an English figure"
    assert nbcompare.language_problems(nb(stdout("Machine has GPU: false\n")), "zh")
    english_figure = html('<div class="ub-figure"><svg><text x="1">key position</text></svg></div>')
    assert nbcompare.language_problems(nb(english_figure), "zh"), "English in a Chinese figure"
    allowed = [
        stdout("本机有 GPU：否；使用的设备：cpu\n"),
        stdout("W_query.weight 所在的设备：cpu，数据类型 F32，形状 [2, 3]\n"),
        stdout("OrderedDict([('mask', tensor([[0., 1.],\n        [0., 0.]]))])\n"),
        html('<pre class="ub-error">错误：dtype mismatch in add, lhs: BF16, rhs: F32</pre>'),
        html("<table><tr><td><code>mask</code></td><td>缓冲区</td></tr></table>"),
        stdout("_IncompatibleKeys(missing_keys=['mask'], unexpected_keys=[])\n"),
        html("<table><caption>CausalAttentionWithBuffer — backward() 之后的梯度</caption><th>grad</th></table>"),
    ]
    for out in allowed:
        assert nbcompare.language_problems(nb(out), "zh") == [], out


def test_language_check_takes_backticks_for_code() -> None:
    def nb(text):
        out = {"output_type": "stream", "name": "stdout", "text": text}
        return {"cells": [{"cell_type": "code", "source": "f()", "metadata": {}, "outputs": [out]}]}

    assert nbcompare.language_problems(nb("与 `embedding[ids] + pe[:5]` 的最大差值：0\n"), "zh") == []
    assert nbcompare.language_problems(nb("`pe` recomputed by the constructor: true\n"), "zh")
    assert nbcompare.language_problems(nb("`pe` 由构造函数重新计算\n"), "en"), "Chinese outside the backticks"
