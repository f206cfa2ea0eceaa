#!/usr/bin/env python3
"""Build, execute and check the lesson notebooks and their plain-program twins.

The source of each lesson is one file, lessons/lessonN.py: its markdown cells in English and
Chinese, and its code cells, once: one program whose string literals and comments carry both
languages as «English‖中文» (see lessons/cells.py). From it this script writes

  notebooks/en/<name>.ipynb, notebooks/zh/<name>.ipynb   one language each, code included
  examples/<example>.rs, examples/<example>_zh.rs        the code cells as one Rust program
  tests/notebook_modules/<name>.rs                       the modules the learner writes (English),
                                                         which tests/notebook_modules.rs compares
                                                         with the crate's own
  notebooks/{en,zh}/<name>-solutions.ipynb               the lesson's exercises, solved
  tests/notebook_modules/<name>-exercises.rs             every exercise unsolved, solved and
                                                         wrong, for tests/exercises.rs

  scripts/notebooks.py build            write the notebooks (without outputs) and examples
  scripts/notebooks.py execute [NB...]  run notebooks in place on the `rust` kernel, keeping outputs
  scripts/notebooks.py update           build + execute every notebook (what you run after an edit)
  scripts/notebooks.py check            exit 1 if committed notebooks or examples differ from the source

Run it with the project's virtualenv (.venv/bin/python), where nbclient and the kernel live.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from pathlib import Path

try:  # nbclient lives in the project's .venv; `build` and `check` run without it
    import time
    from queue import Empty

    from nbclient import NotebookClient
    from nbclient.util import ensure_async
except ImportError:  # pragma: no cover - only `execute` needs it
    NotebookClient = object

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "lessons"
NOTEBOOKS = ROOT / "notebooks"
EXAMPLES = ROOT / "examples"
LANGS = ("en", "zh")
KERNELSPEC = {"name": "rust", "display_name": "Rust", "language": "rust"}
LANGUAGE_INFO = {
    "name": "Rust",
    "codemirror_mode": "rust",
    "file_extension": ".rs",
    "mimetype": "text/rust",
    "pygment_lexer": "rust",
    "version": "",
}


class LateOutputClient(NotebookClient):
    """An nbclient that also watches for output a cell sends after it has ended.

    Jupyter clients (nbclient, JupyterLab) drop what a kernel publishes for a cell after the
    cell's `idle` status. Stock evcxr_jupyter 0.22 could do that with a cell's last lines
    (its output thread raced the reply; scripts/evcxr/patches/ fixes it). This client goes
    on listening for `late_seconds` after each cell and records any stream message of that
    cell in `late`, without adding it to the cell: callers treat late output as a failure."""

    def __init__(self, nb, late_seconds: float = 0.5, **kwargs):
        super().__init__(nb, **kwargs)
        self.late: list[tuple[int, str]] = []
        self.late_seconds = late_seconds

    async def _async_poll_output_msg(self, parent_msg_id: str, cell, cell_index: int) -> None:
        await super()._async_poll_output_msg(parent_msg_id, cell, cell_index)
        deadline = time.monotonic() + self.late_seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=left))
            except Empty:
                return
            if msg["parent_header"].get("msg_id") == parent_msg_id and msg["msg_type"] == "stream":
                self.late.append((cell_index, msg["content"]["text"]))


def load_lessons():
    """The lesson modules, in order."""
    sys.path.insert(0, str(LESSONS))
    lessons = []
    for path in sorted(LESSONS.glob("lesson*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        lessons.append(module)
    return lessons


def is_evcxr_command(line: str) -> bool:
    return line.startswith(":")


BLOCK_START = re.compile(r"\s*([-*>|#]|```|\d+\.\s)")


def join_chinese_lines(text: str) -> str:
    """Joins the lines of each Chinese paragraph: Markdown turns a line break inside a
    paragraph into a space, which shows between Chinese characters. Lists, tables,
    headings and code fences keep their lines."""
    out: list[str] = []
    fenced = False
    for line in text.split("\n"):
        if line.strip().startswith("```"):
            fenced = not fenced
            out.append(line)
            continue
        previous = out[-1] if out else ""
        joinable = (
            not fenced
            and line.strip()
            and previous.strip()
            and not BLOCK_START.match(line)
            and not previous.lstrip().startswith(("|", "#", "```"))
        )
        if joinable:
            out[-1] = previous + line.strip()
        else:
            out.append(line)
    return "\n".join(out)


# «English‖中文»: one text in both languages, inside a code cell's string or comment.
BILINGUAL = re.compile(r"«(.*?)‖(.*?)»", re.S)


def localize(source: str, lang: str) -> str:
    """A code cell's source in `lang`: each «English‖中文» replaced by its `lang` half."""
    leftover = BILINGUAL.sub("", source)
    if "«" in leftover or "»" in leftover or "‖" in leftover:
        raise SystemExit(f"unbalanced «…‖…» in a code cell:\n{source}")
    return BILINGUAL.sub(lambda m: m.group(1) if lang == "en" else m.group(2), source)


def notebook(lesson, lang: str) -> dict:
    """The notebook of `lesson` in `lang`, without outputs."""
    return notebook_of(lesson, lang, lesson.CELLS, lesson.NAME[:2], lesson.TITLE[lang])


SOLUTIONS_HEAD = {
    "en": """# Solutions: {title}

*中文版: [{name}-solutions.ipynb](../zh/{name}-solutions.ipynb)* · back to the lesson: [{name}.ipynb]({name}.ipynb)

The exercises at the end of the lesson, solved, each followed by its checker. Run the cells
from the top: the first two load the crate, as in the lesson.""",
    "zh": """# 参考答案：{title}

*English version: [{name}-solutions.ipynb](../en/{name}-solutions.ipynb)* · 回到课程：[{name}.ipynb]({name}.ipynb)

本课末尾各道练习的参考答案，每个答案后面跟着它的检查单元格。请从头依次运行：前两个单元格和课程中一样，用来加载 crate。""",
}


def has_exercises(lesson) -> bool:
    return any(getattr(c, "role", "") == "answer" for c in lesson.CELLS)


def solutions_notebook(lesson, lang: str) -> dict:
    """The lesson's exercises, solved: its set-up cells, then every exercise cell with each
    answer cell's solution in place of its unsolved source."""
    from cells import Code, Markdown

    codes = [c for c in lesson.CELLS if not hasattr(c, "en")]
    head = Markdown(SOLUTIONS_HEAD["en"], SOLUTIONS_HEAD["zh"])
    head.en = head.en.format(title=lesson.TITLE["en"], name=lesson.NAME)
    head.zh = head.zh.format(title=lesson.TITLE["zh"], name=lesson.NAME)
    cells = [head, codes[0], codes[1]]
    for cell in lesson.CELLS:
        if getattr(cell, "exercise", False) and hasattr(cell, "en"):
            cells.append(cell)
        elif getattr(cell, "role", "") == "answer":
            cells.append(Code(cell.solution, exercise=cell.exercise, role="check-solution"))
        elif getattr(cell, "role", "") == "check":
            cells.append(cell)
    title = {"en": f"Solutions: {lesson.TITLE['en']}", "zh": f"参考答案：{lesson.TITLE['zh']}"}[lang]
    return notebook_of(lesson, lang, cells, f"{lesson.NAME[:2]}s", title)


def notebook_of(lesson, lang: str, source_cells: list, id_prefix: str, title: str) -> dict:
    """A notebook in `lang` of `source_cells`, without outputs."""
    cells = []
    for cell in source_cells:
        if hasattr(cell, "en"):
            text = getattr(cell, lang)
            if lang == "zh":
                text = join_chinese_lines(text)
            cells.append({"cell_type": "markdown", "metadata": {}, "source": text})
        else:
            metadata = {}
            if cell.tags:
                metadata["tags"] = list(cell.tags)
            if cell.expect:
                metadata["expect"] = list(cell.expect)
            cells.append(
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "metadata": metadata,
                    "outputs": [],
                    "source": localize(cell.source, lang),
                }
            )
    for i, cell in enumerate(cells):
        cell["id"] = f"{id_prefix}-{i:03d}"
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": KERNELSPEC,
            "language_info": LANGUAGE_INFO,
            "title": title,
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def example(lesson, lang: str) -> str:
    """The code cells of `lesson` in `lang` as one Rust program (evcxr commands left out)."""
    language = {"en": "English", "zh": "Chinese"}[lang]
    lines = [
        f"//! Lesson: {lesson.TITLE[lang]}, as a plain program ({language}).",
        "//!",
        f"//! Generated by `scripts/notebooks.py build` from `lessons/{Path(lesson.__file__).name}`, the source",
        f"//! of `notebooks/{lang}/{lesson.NAME}.ipynb`: edit the lesson, not this file. Each `// cell N`",
        "//! block is the code of notebook code cell N, minus evcxr's `:dep` line;",
        "//! `scripts/notebooks.py check` (run by the tests) proves they agree.",
        "//!",
        f"//! Run: `cargo run --example {example_name(lesson, lang)}` (add `--features cuda` on an NVIDIA GPU).",
        "",
        "// The cells stay exactly as the notebooks have them: rustfmt leaves main alone.",
        "#[rustfmt::skip]",
        "fn main() -> Result<(), Box<dyn std::error::Error>> {",
        f"    // The notebook's folder sets its language; a program says it here.",
        f"    understanding_buffers::notebook::language::Language::{language}.set_current();",
        "",
    ]
    n = 0
    for cell in lesson.CELLS:
        if hasattr(cell, "en"):
            continue
        n += 1
        body = [line for line in localize(cell.source, lang).splitlines() if not is_evcxr_command(line)]
        if not any(line.strip() for line in body):
            continue
        lines.append(f"    // cell {n}")
        lines.extend(f"    {line}".rstrip() for line in body)
        lines.append("")
    lines += ["    Ok(())", "}", ""]
    return "\n".join(lines)


def module_definitions(lesson) -> str | None:
    """The cells that define the lesson's modules (`defines=True`), in English, as one Rust
    file for tests/notebook_modules.rs; `None` when the lesson defines none."""
    cells = [c for c in lesson.CELLS if getattr(c, "defines", False)]
    if not cells:
        return None
    head = [
        f"// The modules a learner writes in notebooks/en/{lesson.NAME}.ipynb, generated by",
        f"// `scripts/notebooks.py build` from lessons/{Path(lesson.__file__).name}: edit the lesson, not this",
        "// file. tests/notebook_modules.rs includes it and compares these modules with the crate's.",
        "",
    ]
    return "\n".join(head) + "\n\n".join(localize(c.source, "en") for c in cells) + "\n"


def notebook_path(lesson, lang: str) -> Path:
    return NOTEBOOKS / lang / f"{lesson.NAME}.ipynb"


def exercise_tests(lesson) -> str | None:
    """Every exercise of `lesson` as Rust functions, for tests/exercises.rs: per exercise a
    module with `committed()`, `solution()` and `wrong_N()`, each running the answer cell
    (English) and returning its check cell's verdict, and `WRONG_N` the texts the checker
    must say for each wrong answer."""
    if not has_exercises(lesson):
        return None
    out = [
        f"// The exercises of notebooks/en/{lesson.NAME}.ipynb, generated by `scripts/notebooks.py build`",
        f"// from lessons/{Path(lesson.__file__).name}: edit the lesson, not this file. tests/exercises.rs",
        "// includes it: each function runs one version of an answer cell and its check cell.",
        "",
    ]
    answers = {c.exercise: c for c in lesson.CELLS if getattr(c, "role", "") == "answer"}
    checks = {c.exercise: c for c in lesson.CELLS if getattr(c, "role", "") == "check"}
    for key, cell in answers.items():
        check_expr = localize(checks[key].source, "en").strip().removesuffix(".show();")
        versions = [("committed", cell.source), ("solution", cell.solution)]
        versions += [(f"wrong_{i + 1}", src) for i, (src, _) in enumerate(cell.wrong)]
        out.append(f"pub mod exercise_{key} {{")
        out.append("    use super::*;")
        for i, (_, says) in enumerate(cell.wrong):
            out.append(f"    pub const WRONG_{i + 1}: &str = {json.dumps(says, ensure_ascii=False)};")
        for name, src in versions:
            body = "\n".join(f"        {line}".rstrip() for line in localize(src, "en").splitlines())
            out.append("")
            out.append(f"    pub fn {name}() -> Result<exercises::Verdict, Box<dyn std::error::Error>> {{")
            out.append(body)
            out.append(f"        Ok({check_expr})")
            out.append("    }")
        out.append("}")
        out.append("")
    return "\n".join(out)


def exercise_tests_path(lesson) -> Path:
    return ROOT / "tests" / "notebook_modules" / f"{lesson.NAME}-exercises.rs"


def solutions_path(lesson, lang: str) -> Path:
    return NOTEBOOKS / lang / f"{lesson.NAME}-solutions.ipynb"


def example_name(lesson, lang: str) -> str:
    return lesson.EXAMPLE if lang == "en" else f"{lesson.EXAMPLE}_{lang}"


def example_path(lesson, lang: str) -> Path:
    return EXAMPLES / f"{example_name(lesson, lang)}.rs"


def modules_path(lesson) -> Path:
    return ROOT / "tests" / "notebook_modules" / f"{lesson.NAME}.rs"


def generated_files(lesson) -> dict[Path, str]:
    """Every plain file generated from `lesson`, with its text."""
    files = {example_path(lesson, lang): example(lesson, lang) for lang in LANGS}
    modules = module_definitions(lesson)
    if modules is not None:
        files[modules_path(lesson)] = modules
    tests = exercise_tests(lesson)
    if tests is not None:
        files[exercise_tests_path(lesson)] = tests
    return files


def notebooks_of(lesson) -> list[tuple[Path, dict]]:
    """Every notebook generated from `lesson`: the lesson and, if it has exercises, its
    solutions, in both languages."""
    out = [(notebook_path(lesson, lang), notebook(lesson, lang)) for lang in LANGS]
    if has_exercises(lesson):
        out += [(solutions_path(lesson, lang), solutions_notebook(lesson, lang)) for lang in LANGS]
    return out


def write_json(path: Path, nb: dict) -> None:
    """Writes `nb` exactly as nbformat (and so Jupyter and `execute`) writes notebooks."""
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.from_dict(nb), path)


def keep_outputs(new: dict, path: Path) -> dict:
    """Carries the outputs of the committed notebook at `path` over to `new`, cell by cell,
    where a code cell is unchanged, so that `build` alone never throws executed work away."""
    if not path.exists():
        return new
    old = json.loads(path.read_text(encoding="utf-8"))
    old_cells = {comparable(c): c for c in old["cells"] if c["cell_type"] == "code"}
    for cell in new["cells"]:
        previous = old_cells.get(comparable(cell)) if cell["cell_type"] == "code" else None
        if previous is not None:
            cell["outputs"] = previous.get("outputs", [])
            cell["execution_count"] = previous.get("execution_count")
            if "execution" in previous.get("metadata", {}):
                cell["metadata"]["execution"] = previous["metadata"]["execution"]
    return new


def build() -> None:
    for lesson in load_lessons():
        for path, nb in notebooks_of(lesson):
            write_json(path, keep_outputs(nb, path))
        for path, text in generated_files(lesson).items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        names = ", ".join(str(p.relative_to(ROOT)) for p in generated_files(lesson))
        print(f"built {lesson.NAME} (en, zh) and {names}")


def execute(paths: list[Path], timeout: int = 1200) -> None:
    import nbformat

    for path in paths:
        nb = nbformat.read(path, as_version=4)
        client = LateOutputClient(nb, timeout=timeout, kernel_name="rust", allow_errors=False,
                                resources={"metadata": {"path": str(path.parent)}})
        print(f"executing {path.relative_to(ROOT)} ...", flush=True)
        client.execute()
        if client.late:
            raise SystemExit(f"{path.relative_to(ROOT)}: output arrived after its cell had ended "
                             f"(a Jupyter client drops it): {client.late[:5]}")
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = coalesce_streams(cell.outputs)
        nbformat.write(nb, path)


def coalesce_streams(outputs: list) -> list:
    """evcxr sends each printed line as its own message: join consecutive stream outputs of
    the same stream, as Jupyter shows them."""
    merged = []
    for out in outputs:
        if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == out.get("name")):
            merged[-1]["text"] += out["text"]
        else:
            merged.append(out)
    return merged


def comparable(cell: dict) -> tuple:
    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    meta = {k: cell.get("metadata", {}).get(k) for k in ("tags", "expect")}
    return cell["cell_type"], source, json.dumps(meta, sort_keys=True)


def check() -> list[str]:
    """Differences between the committed notebooks/examples and what the lessons generate."""
    problems = []
    for lesson in load_lessons():
        for path, nb in notebooks_of(lesson):
            if not path.exists():
                problems.append(f"{path.relative_to(ROOT)} is missing: run scripts/notebooks.py update")
                continue
            committed = json.loads(path.read_text(encoding="utf-8"))
            want = [comparable(c) for c in nb["cells"]]
            have = [comparable(c) for c in committed["cells"]]
            if want != have:
                problems.append(f"{path.relative_to(ROOT)} differs from lessons/: run scripts/notebooks.py update")
        for path, text in generated_files(lesson).items():
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                problems.append(f"{path.relative_to(ROOT)} differs from lessons/: run scripts/notebooks.py build")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build", "execute", "update", "check"])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args()
    if args.command in ("build", "update"):
        build()
    if args.command in ("execute", "update"):
        paths = [p.resolve() for p in args.notebooks] or [
            path for lesson in load_lessons() for path, _ in notebooks_of(lesson)
        ]
        execute(paths)
    if args.command == "check":
        problems = check()
        for p in problems:
            print(p)
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
