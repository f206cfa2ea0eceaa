"""Reading, checking and comparing the outputs of the lesson notebooks.

Shared by test_notebooks.py (nbclient runs) and test_browser.py (JupyterLab runs) and
test_lessons_source.py (the committed notebooks), so that all three agree on what a cell's
output means. The rules follow how our notebooks show things (see src/display.rs, plots.rs):

* a figure is a `text/html` output holding `<div class="ub-figure">` and an inline `<svg`
  (or an `image/svg+xml` output);
* an intended error is a `text/html` output holding `<pre class="ub-error">Error: ...`;
* a panic, and a `?` that returns `Err`, make the cell fail: an `error` output (the project's
  kernel, scripts/evcxr/ patch 08; its traceback starts `panicked at line L, column C of this
  cell:` for a panic); a `panicked at` line in a stream is still counted, for other kernels;
* stderr lines can be lost: so a cell whose committed outputs are not empty must show output
  again.

Code-cell tags (lessons/cells.py): "intended-error" (its `expect` metadata lists text the cell
must show), "nondeterministic" (only the kinds of its outputs are compared) and
"device-dependent" (compared exactly on a CPU machine, only checked for errors on a GPU one),
"raises-exception" (Jupyter's own: the cell may fail, and Run All goes on; lesson 1's first
forward pass after the move to the GPU fails there with the device mismatch).
"""

from __future__ import annotations

import difflib
import html
import re
import statistics
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

INTENDED_ERROR = "intended-error"
NONDETERMINISTIC = "nondeterministic"
DEVICE_DEPENDENT = "device-dependent"
# Jupyter's tag for a cell that may fail on purpose: nbclient and JupyterLab's Run All go on.
RAISES = "raises-exception"

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TAG = re.compile(r"<[^>]+>")
# Absolute paths that differ between machines and runs: the checkout, the home folder, the
# temp folder (scratch_dir() lives in it) and evcxr's build dirs.
TEMP_PATH = re.compile(r"/(?:tmp|var/tmp|var/folders)/[^\s\"'<>),;]*")
PANIC = re.compile(r"panicked at ")
# What an unexpected error looks like in stderr: evcxr's `Error: ...` for a failed `?`,
# a compile error (`error[E0308]`, `error: ...`) or a panic.
STDERR_ERROR = re.compile(r"\berror\b|panicked", re.IGNORECASE)
MAX_DIFF_LINES = 60


# ---------------------------------------------------------------- cells
def source(cell: dict) -> str:
    src = cell.get("source", "")
    return src if isinstance(src, str) else "".join(src)


def first_line(cell: dict) -> str:
    for line in source(cell).splitlines():
        if line.strip():
            return line.strip()
    return "(empty cell)"


def tags(cell: dict) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def expected_texts(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("expect", []))


def code_cells(nb: dict) -> list[tuple[int, dict]]:
    """(index in the notebook, cell) of every code cell."""
    return [(i, c) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]


def describe(index: int, cell: dict) -> str:
    return f"cell {index} (`{first_line(cell)[:80]}`)"


# ---------------------------------------------------------------- outputs
def _text(value) -> str:
    return value if isinstance(value, str) else "".join(value)


def html_to_text(markup: str) -> str:
    """What a reader sees of an HTML fragment: tags removed, entities decoded.

    SVG elements are dropped whole (a figure's labels are not prose to compare)."""
    markup = re.sub(r"<svg[\s>].*?</svg>", " [figure] ", markup, flags=re.DOTALL)
    markup = re.sub(r"<br\s*/?>|</(?:p|div|tr|pre|li|h\d|caption)>", "\n", markup)
    markup = re.sub(r"</t[dh]>", " ", markup)
    return html.unescape(TAG.sub("", markup))


def merged_outputs(outputs: list[dict]) -> list[dict]:
    """The outputs with consecutive stream chunks of one stream joined, as JupyterLab shows them.

    How the kernel splits stdout into messages depends on timing, not on the cell."""
    merged: list[dict] = []
    for out in outputs:
        if (
            out.get("output_type") == "stream"
            and merged
            and merged[-1].get("output_type") == "stream"
            and merged[-1].get("name") == out.get("name")
        ):
            merged[-1] = dict(merged[-1], text=_text(merged[-1]["text"]) + _text(out["text"]))
        else:
            merged.append(dict(out))
    return merged


def is_figure(out: dict) -> bool:
    data = out.get("data", {})
    return "image/svg+xml" in data or bool(re.search(r"<svg[\s>]", _text(data.get("text/html", ""))))


def is_inline_svg_figure(out: dict) -> bool:
    """A figure as the notebooks show it: `<div class="ub-figure">` with an inline <svg>."""
    markup = _text(out.get("data", {}).get("text/html", ""))
    return 'class="ub-figure"' in markup and bool(re.search(r"<svg[\s>]", markup)) and "</svg>" in markup


def output_kind(out: dict) -> str:
    """stream:stdout, execute_result:text/html+figure, error, ..."""
    kind = out.get("output_type", "?")
    if kind == "stream":
        return f"stream:{out.get('name')}"
    if kind == "error":
        return "error"
    mimes = "+".join(sorted(out.get("data", {})))
    return f"{kind}:{mimes}" + (":figure" if is_figure(out) else "")


def output_text(out: dict) -> str:
    """Readable text of one output (used for `expect` and error checks)."""
    kind = out.get("output_type")
    if kind == "stream":
        return ANSI.sub("", _text(out.get("text", "")))
    if kind == "error":
        trace = "\n".join(out.get("traceback", []))
        return ANSI.sub("", f"{out.get('ename', '')}: {out.get('evalue', '')}\n{trace}")
    data = out.get("data", {})
    parts = []
    if "text/plain" in data:
        parts.append(_text(data["text/plain"]))
    if "text/html" in data:
        parts.append(html_to_text(_text(data["text/html"])))
    if "text/markdown" in data:
        parts.append(_text(data["text/markdown"]))
    return ANSI.sub("", "\n".join(parts))


def cell_text(cell: dict) -> str:
    """Readable text of all of a cell's outputs (a stream's chunks joined as Jupyter shows them)."""
    return "\n".join(output_text(o) for o in merged_outputs(cell.get("outputs", [])))


def sanitize(text: str) -> str:
    """Text with what legitimately differs between runs and machines replaced."""
    text = ANSI.sub("", text)
    text = text.replace(str(ROOT), "<repo>")
    text = text.replace(str(Path.home()), "<home>")
    return TEMP_PATH.sub("<tmp>", text)


def comparable(outputs: list[dict]) -> str:
    """A cell's outputs as one text for comparing and diffing: one header line per output,
    then its content (HTML broken at tags so a diff shows the element that changed)."""
    lines = []
    for out in merged_outputs(outputs):
        lines.append(f"--- {output_kind(out)}")
        if out.get("output_type") == "stream":
            lines.append(_text(out.get("text", "")))
        elif out.get("output_type") == "error":
            lines.append(output_text(out))
        else:
            for mime, value in sorted(out.get("data", {}).items()):
                body = value if isinstance(value, (str, list)) else repr(value)
                body = _text(body)
                if mime in ("text/html", "image/svg+xml"):
                    body = re.sub(r">\s*<", ">\n<", body)
                lines.append(f"[{mime}]\n{body}")
    return sanitize("\n".join(lines))


def unified_diff(expected: str, actual: str) -> str:
    diff = list(
        difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), "committed", "this run", lineterm="", n=2
        )
    )
    if len(diff) > MAX_DIFF_LINES:
        diff = diff[:MAX_DIFF_LINES] + [f"... ({len(diff) - MAX_DIFF_LINES} more diff lines)"]
    return "\n".join(diff)


def first_problems(problems: list[str], limit: int = 25) -> str:
    """The problems for a failure message; a broken early cell makes later ones fail too, so
    the first ones say what is wrong and the rest are counted."""
    shown = "\n\n".join(problems[:limit])
    if len(problems) > limit:
        shown += f"\n\n... and {len(problems) - limit} more problem(s), most likely caused by the ones above"
    return shown


def indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


# ---------------------------------------------------------------- checks
def unexpected_errors(cell: dict) -> list[str]:
    """What in a cell's outputs is an error nobody intended.

    A `ub-error` block is intended in an "intended-error" cell, and allowed in a
    "device-dependent" one (lesson 1 shows the real device mismatch on a GPU): on a CPU such
    a cell is compared with its committed outputs, so an error appearing there still fails."""
    found = []
    allowed_shown_errors = tags(cell) & {INTENDED_ERROR, DEVICE_DEPENDENT}
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        text = output_text(out)
        if kind == "error" and RAISES in tags(cell):
            continue  # Jupyter's own tag: the cell may fail (Run All goes on)
        if kind == "error":
            found.append(f"error output: {text.strip()[:800]}")
        elif kind == "stream" and out.get("name") == "stderr" and STDERR_ERROR.search(text):
            found.append(f"stderr: {text.strip()[:800]}")
        elif kind == "stream" and PANIC.search(text):
            found.append(f"panic on {out.get('name')}: {text.strip()[:800]}")
        elif kind in ("display_data", "execute_result"):
            markup = _text(out.get("data", {}).get("text/html", ""))
            if 'class="ub-error"' in markup and not allowed_shown_errors:
                found.append(f"error shown by the cell: {html_to_text(markup).strip()[:800]}")
            if PANIC.search(text):
                found.append(f"panic: {text.strip()[:800]}")
    return found


def missing_expected(cell: dict) -> list[str]:
    """`expect` texts of an intended-error cell that its outputs do not show."""
    if INTENDED_ERROR not in tags(cell):
        return []
    shown = cell_text(cell)
    problems = [f"expected text {text!r} is not in the outputs" for text in expected_texts(cell) if text not in shown]
    if not any('class="ub-error"' in _text(o.get("data", {}).get("text/html", "")) for o in cell.get("outputs", [])):
        problems.append('no <pre class="ub-error"> error block in the outputs')
    return problems


@dataclass
class Mode:
    """How to compare: on a GPU machine device-dependent cells are only checked for errors."""

    gpu: bool = False


def compare_cell(index: int, committed: dict, actual: dict, mode: Mode) -> list[str]:
    """Problems of one code cell of a fresh run against its committed version."""
    where = describe(index, committed)
    problems = [f"{where}: {p}" for p in unexpected_errors(actual)]
    problems += [f"{where}: {p}" for p in missing_expected(actual)]
    if source(committed) != source(actual):
        problems.append(f"{where}: the executed cell's source differs from the committed one")
        return problems
    want, have = committed.get("outputs", []), actual.get("outputs", [])
    if want and not have:
        problems.append(
            f"{where}: showed no output at all, but the committed notebook shows:\n"
            f"{indent(comparable(want))[:2000]}\n"
            "    (evcxr reports a failed `?` as a successful cell and can lose its stderr)"
        )
        return problems
    for n, out in enumerate(merged_outputs(want)):
        if is_figure(out):
            figures = [o for o in merged_outputs(have) if is_inline_svg_figure(o) or "image/svg+xml" in o.get("data", {})]
            if not figures:
                problems.append(f"{where}: the committed figure (output {n}) is missing: no inline <svg> in this run")
    cell_tags = tags(committed)
    if DEVICE_DEPENDENT in cell_tags and mode.gpu:
        return problems
    if NONDETERMINISTIC in cell_tags:
        want_kinds = [output_kind(o) for o in merged_outputs(want)]
        have_kinds = [output_kind(o) for o in merged_outputs(have)]
        if want_kinds != have_kinds:
            problems.append(
                f"{where}: (nondeterministic cell) output kinds differ:\n"
                f"    committed: {want_kinds}\n    this run:  {have_kinds}"
            )
        return problems
    expected, got = comparable(want), comparable(have)
    if expected != got:
        problems.append(f"{where}: output differs from the committed notebook:\n{indent(unified_diff(expected, got))}")
    return problems


def committed_problems(nb: dict) -> list[str]:
    """What is wrong with a committed notebook on its own: not executed, or showing errors."""
    cells = code_cells(nb)
    problems = []
    if not any(c.get("outputs") for _, c in cells):
        return ["the committed notebook has no outputs at all: commit it executed (scripts/notebooks.py update)"]
    for i, cell in cells:
        if cell.get("execution_count") is None:
            problems.append(f"{describe(i, cell)}: committed without an execution count (not executed)")
        problems += [f"{describe(i, cell)}: committed output shows {p}" for p in unexpected_errors(cell)]
        problems += [f"{describe(i, cell)}: committed output: {p}" for p in missing_expected(cell)]
    return problems


# ---------------------------------------------------------------- timings
def _stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def cell_seconds(cell: dict) -> float | None:
    """Wall time of one executed cell from nbclient's record_timing metadata."""
    ex = cell.get("metadata", {}).get("execution", {})
    start, end = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
    if not (start and end):
        return None
    return (_stamp(end) - _stamp(start)).total_seconds()


@dataclass
class Timings:
    total: float  # the whole run, kernel start included
    dep_cell: float | None  # the `:dep` cell: builds the crate
    first_code_cell: float | None  # the first cell after `:dep`: evcxr's first real compile
    median_rest: float | None  # median of the code cells after those two
    cells: list[tuple[int, float]]

    def summary(self, name: str) -> str:
        def fmt(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.1f} s"

        slowest = sorted(self.cells, key=lambda c: -c[1])[:3]
        return (
            f"{name}: total {fmt(self.total)}, `:dep` cell {fmt(self.dep_cell)}, first code cell "
            f"{fmt(self.first_code_cell)}, median of the other {max(len(self.cells) - 2, 0)} code cells "
            f"{fmt(self.median_rest)}; slowest: " + ", ".join(f"cell {i} {s:.1f} s" for i, s in slowest)
        )


def timings(nb: dict, total: float) -> Timings:
    cells = [(i, s) for i, c in code_cells(nb) if (s := cell_seconds(c)) is not None]
    dep = next((s for i, s in cells if source(nb["cells"][i]).lstrip().startswith(":dep")), None)
    rest = [(i, s) for i, s in cells if not source(nb["cells"][i]).lstrip().startswith(":dep")]
    first = rest[0][1] if rest else None
    others = [s for _, s in rest[1:]]
    return Timings(total, dep, first, statistics.median(others) if others else None, cells)


# ---------------------------------------------------------------- the PyTorch original
PYTORCH_EXPECTED = ROOT / "tests" / "fixtures" / "pytorch" / "expected.json"


def squash(text: str) -> str:
    """Whitespace runs as one space (for messages that HTML may re-wrap)."""
    return " ".join(text.split())


def pytorch_prints(notebook: Path, gpu: bool = False) -> list[tuple[str, str, bool]]:
    """(what, text, exact) that a lesson must show as PyTorch printed it.

    From tests/fixtures/pytorch/expected.json, which bench/make_expected.py wrote by running
    the PyTorch original: independent of our code and of the committed notebooks. `exact`
    texts (tensor prints) must appear character for character, the others up to whitespace.
    On a GPU kernel the tensors that live on the GPU print with `device='cuda:0'`, as in
    PyTorch, so only the prints of CPU tensors are required there."""
    import json

    if notebook.stem != "01-understanding-buffers":  # lesson 1 itself, not its solutions
        return []
    ref = json.loads(PYTORCH_EXPECTED.read_text(encoding="utf-8"))
    trip = ref["mask_round_trip"]
    prints = [  # (what, text, exact, printed from a tensor on the lesson's device)
        ("context vectors without buffer (CPU)", ref["without_buffer"]["context_vecs_print"], True, False),
        ("context vectors with buffer", ref["with_buffer"]["context_vecs_print"], True, True),
        # As Jupyter shows a state dict: one key per line (the "pretty" print).
        ("state dict without buffer", ref["without_buffer"]["state_dict"]["pretty"], True, True),
        ("state dict with buffer", ref["with_buffer"]["state_dict"]["pretty"], True, True),
        ("mask with 2s", trip["edited_mask_print"], True, True),
        ("mask loaded into the buffered module", trip["loaded_with_buffer_mask_print"], True, False),
        ("mask of the unbuffered module after loading", trip["loaded_without_buffer_mask_print"], True, False),
        ("strict load error", ref["errors"]["strict_missing_mask"]["message"], False, False),
        ("non-strict load result", ref["load_state_dict_non_strict"]["with_buffer_loading_without_buffer_sd"], True, False),
    ]
    return [(what, text, exact) for what, text, exact, on_device in prints if not (gpu and on_device)]


def missing_pytorch_prints(notebook: Path, shown: str, gpu: bool = False) -> list[str]:
    """The PyTorch prints of pytorch_prints() that `shown` (a notebook's text) lacks."""
    problems = []
    for what, text, exact in pytorch_prints(notebook, gpu):
        found = text in shown if exact else squash(text) in squash(shown)
        if not found:
            problems.append(f"PyTorch's {what} is not shown; PyTorch printed:\n{indent(text)}")
    return problems


# ---------------------------------------------------------------- one language per notebook
HAN_CHAR = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]")
# Messages that stay verbatim in every language: candle's and PyTorch's own texts, and what
# PyTorch prints (tensors, state dicts, sizes). The zh prose explains them in Chinese.
FOREIGN_MESSAGES = [
    re.compile(p, re.DOTALL)
    for p in (
        r"(?:device|dtype|shape) mismatch in \w+, lhs: .*?, rhs: [^\n]*",
        r"Error\(s\) in loading state_dict for \w+:[^\n]*",
        r"(?:Missing|Unexpected) key\(s\) in state_dict: [^\n]*",
        r"size mismatch for [\w.]+: copying a param with shape torch\.Size\(\[[\d, ]*\]\) from checkpoint, "
        r"the shape in current model is torch\.Size\(\[[\d, ]*\]\)\.",
        r"_IncompatibleKeys\(.*?\)\)?",
        r"<All keys matched successfully>",
        r"OrderedDict\(\[.*?\]\)",
        r"tensor\(\[.*?\]\)|tensor\([^)]*\)",
        r"torch\.Size\(\[[\d, ]*\]\)",
    )
]
# Words a Chinese technical text writes in Latin letters: names of products, formats and
# devices, Rust and PyTorch values and attribute names (`dtype`, `.grad`), units.
LATIN_IN_CHINESE = set(
    "GPU CPU GPUs Rust PyTorch candle safetensors NVIDIA CUDA Metal Apple Jupyter JupyterLab evcxr "
    "None True False true false Ok Err cpu cuda metal mps SVG MiB KiB GiB ms Python API Transformer "
    "bf16 f16 f32 f64 u8 u32 i64 BF16 F16 F32 F64 U8 U32 I64 dtype grad".split()
)
# A Rust type name such as `CausalAttentionWithBuffer` (several capitals): code, not English.
CAMEL_CASE = re.compile(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+")
LATIN_WORD = re.compile(r"(?<![\w.:/`'\"-])[A-Za-z]{2,}(?![\w.:/(`'\"-])")
CODE_SPANS = re.compile(r"<code>.*?</code>|<pre class=\"ub-code\".*?</pre>", re.DOTALL)
# Code that a printed sentence quotes in backticks, as the prose does: "`pe` 由构造函数重新计算".
BACKTICK_CODE = re.compile(r"`[^`\n]+`")


def _visible_texts(out: dict) -> list[str]:
    """What a reader sees of one output, figures' text included; code spans left out."""
    kind = out.get("output_type")
    if kind == "stream":
        return [ANSI.sub("", _text(out.get("text", "")))]
    if kind == "error":
        return [f"{out.get('ename', '')}: {out.get('evalue', '')}"]
    data = out.get("data", {})
    if "text/html" in data:
        markup = CODE_SPANS.sub(" ", _text(data["text/html"]))
        texts = re.findall(r"<text[^>]*>(.*?)</text>", markup, flags=re.DOTALL)
        markup = re.sub(r"<svg[\s>].*?</svg>", " ", markup, flags=re.DOTALL)
        return [html.unescape(TAG.sub(" ", t)) for t in texts] + [html_to_text(markup)]
    if "text/markdown" in data:
        return []  # code shown by lesson_code: Rust, not prose
    return [_text(data.get("text/plain", ""))]


def language_problems(nb: dict, language: str) -> list[str]:
    """Outputs not in the notebook's language: Chinese in an English notebook, or an English
    word of ours (not a code identifier, a number, a name the Chinese text keeps in Latin
    letters, or a candle/PyTorch message) in a Chinese one."""
    problems = []
    for i, cell in code_cells(nb):
        for out in merged_outputs(cell.get("outputs", [])):
            for text in _visible_texts(out):
                if language == "en":
                    found = HAN_CHAR.findall(text)
                    if found:
                        line = next(l for l in text.splitlines() if HAN_CHAR.search(l))
                        problems.append(f"{describe(i, cell)}: Chinese in an English notebook: {line.strip()[:120]!r}")
                else:
                    text = BACKTICK_CODE.sub(" ", text)
                    for message in FOREIGN_MESSAGES:
                        text = message.sub(" ", text)
                    words = [w for w in LATIN_WORD.findall(text) if w not in LATIN_IN_CHINESE and not CAMEL_CASE.fullmatch(w)]
                    if words:
                        line = next(l for l in text.splitlines() if any(w in l for w in words))
                        problems.append(f"{describe(i, cell)}: English in a Chinese notebook ({', '.join(words[:6])}): "
                                        f"{line.strip()[:120]!r}")
    return problems


# ---------------------------------------------------------------- code in the notebook's language
def _rust_tokens(src: str):
    """Splits Rust source into ("code" | "string" | "comment", text) pieces: `//` comments,
    "..." strings with escapes, r"..." and r#"..."# raw strings. Enough for lesson cells."""
    i, n, start = 0, len(src), 0
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            end = src.find("\n", i)
            end = n if end < 0 else end
            yield "code", src[start:i]
            yield "comment", src[i:end]
            i = start = end
            continue
        raw = re.match(r'r(#*)"', src[i:]) if c == "r" and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")) else None
        if raw:
            close = '"' + raw.group(1)
            end = src.find(close, i + len(raw.group(0)))
            end = n if end < 0 else end + len(close)
            yield "code", src[start:i]
            yield "string", src[i:end]
            i = start = end
            continue
        if c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            end = min(j + 1, n)
            yield "code", src[start:i]
            yield "string", src[i:end]
            i = start = end
            continue
        i += 1
    yield "code", src[start:]


def blank_strings_and_comments(src: str) -> str:
    """`src` with every string literal replaced by "" and every comment by //."""
    out = []
    for kind, text in _rust_tokens(src):
        out.append({"code": text, "string": '""', "comment": "//"}[kind])
    # Alignment spaces before a comment depend on the length of the code's strings.
    return "\n".join(line.rstrip() for line in "".join(out).split("\n"))


ENGLISH_RUN = re.compile(r"(?<![\w.`'/])[A-Za-z]{2,}(?:[ ,;]+[A-Za-z]{2,}){2,}(?![\w(`'])")


def code_language_problems(src: str, lang: str) -> list[str]:
    """What in a code cell's strings and comments is not in the notebook's language `lang`."""
    problems = []
    for kind, text in _rust_tokens(src):
        if kind == "code":
            continue
        if lang == "en" and HAN_CHAR.search(text):
            problems.append(f"Chinese in an English notebook's code: {text.strip()!r}")
        if lang == "zh" and not HAN_CHAR.search(text):
            bare = re.sub(r"`[^`]*`", "", text)
            if any(pattern.search(bare) for pattern in FOREIGN_MESSAGES):
                continue
            if ENGLISH_RUN.search(bare):
                problems.append(f"English in a Chinese notebook's code: {text.strip()!r}")
    return problems
