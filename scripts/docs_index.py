#!/usr/bin/env python3
"""Write the index page of the HTML docs (scripts/docs.sh runs this after nbconvert).

  docs_index.py SRC OUT

SRC holds en/*.ipynb and zh/*.ipynb; OUT holds their HTML exports in en/ and zh/. The
index lists every lesson of both languages, titled by the notebook's first heading, and
links each to its page. In the pages, links between the notebooks (`../zh/01-….ipynb`, the
other language's twin) are turned into links to the exported pages (`../zh/01-….html`).
"""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path

LANGUAGES = {"en": ("English", "en"), "zh": ("中文", "zh-Hans")}

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Understanding buffers: the lessons / 理解缓冲区：课程</title>
<style>
  body {{ font-family: system-ui, "Noto Sans CJK SC", sans-serif; max-width: 46rem;
         margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #222; }}
  h1 {{ font-size: 1.6rem; }}
  section {{ margin-top: 1.5rem; }}
  li {{ margin: .3rem 0; }}
  .file {{ color: #777; font-size: .85em; }}
</style>
</head>
<body>
<h1>Understanding buffers: the lessons / 理解缓冲区：课程</h1>
<p>The executed notebooks of the Rust port of “Understanding PyTorch Buffers”, with their
outputs and pictures. To run them yourself, see the README.</p>
{sections}
</body>
</html>
"""


def lesson_title(notebook: Path) -> str:
    """The first Markdown heading of the notebook, else its file name."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        if cell["cell_type"] != "markdown":
            continue
        source = "".join(cell["source"])
        match = re.search(r"^#{1,6}\s+(.+?)\s*#*\s*$", source, re.MULTILINE)
        if match:
            return match.group(1)
    return notebook.stem


NOTEBOOK_LINK = re.compile(r'(href="(?:\.\./(?:en|zh)/|\./)?[\w.-]+)\.ipynb(["#])')


def link_pages(out: Path) -> None:
    """Points each exported page's links to sibling notebooks at their exported pages."""
    for lang in LANGUAGES:
        for page in (out / lang).glob("*.html"):
            text = page.read_text(encoding="utf-8")
            linked = NOTEBOOK_LINK.sub(r"\1.html\2", text)
            if linked != text:
                page.write_text(linked, encoding="utf-8")


def main(src: Path, out: Path) -> None:
    link_pages(out)
    sections = []
    for lang, (label, html_lang) in LANGUAGES.items():
        notebooks = sorted((src / lang).glob("*.ipynb"))
        if not notebooks:
            raise SystemExit(f"docs_index.py: no notebooks in {src / lang}")
        items = []
        for nb in notebooks:
            page = out / lang / f"{nb.stem}.html"
            if not page.exists():
                raise SystemExit(f"docs_index.py: {page} is missing: did nbconvert fail?")
            items.append(
                f'  <li><a href="{lang}/{html.escape(nb.stem)}.html">{html.escape(lesson_title(nb))}</a>'
                f' <span class="file">{html.escape(nb.name)}</span></li>'
            )
        sections.append(
            f'<section lang="{html_lang}">\n<h2>{label}</h2>\n<ol>\n' + "\n".join(items) + "\n</ol>\n</section>"
        )
    (out / "index.html").write_text(PAGE.format(sections="\n".join(sections)), encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
