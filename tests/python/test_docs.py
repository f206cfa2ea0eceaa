"""The HTML docs command (scripts/docs.sh) exports every lesson of both languages.

It runs the command into a temporary folder, as a reader would run it into site/, and
checks that the index links every lesson in English and Chinese and that every page
carries its notebook's pictures inside the page (SVG, inline or as a data: URI).
"""

from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from conftest import LANGUAGES, NOTEBOOKS, ROOT

# How a picture appears in nbconvert's HTML: an SVG inside a text/html output stays
# `<svg ...>`; an image/svg+xml or image/png output becomes an <img> with a data: URI.
# (The page's CSS holds data: URIs of its own icons, so only <img> sources count.)
PICTURE = re.compile(r"<svg[\s>]|<img[^>]*\ssrc=\"data:image/(?:svg\+xml|png);base64,")


def figure_outputs(notebook: Path) -> int:
    """How many outputs of the notebook are pictures."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    count = 0
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            html = "".join(data.get("text/html", []))
            if "image/svg+xml" in data or "image/png" in data or "<svg" in html:
                count += 1
    return count


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [value for name, value in attrs if name == "href" and value]


def build_site(src: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "docs.sh"), "--src", str(src), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def check_site(src: Path, out: Path) -> None:
    """Every notebook of src/{en,zh} has a page in out, linked from the index, with its pictures."""
    index = out / "index.html"
    assert index.exists(), f"{index} was not written"
    links = Links()
    links.feed(index.read_text(encoding="utf-8"))
    for lang in LANGUAGES:
        notebooks = sorted((src / lang).glob("*.ipynb"))
        assert notebooks, f"no notebooks in {src / lang}"
        for nb in notebooks:
            page = out / lang / f"{nb.stem}.html"
            assert page.exists(), f"{page} missing for {nb}"
            assert f"{lang}/{nb.stem}.html" in links.hrefs, f"index.html does not link {lang}/{nb.stem}.html"
            pictures = len(PICTURE.findall(page.read_text(encoding="utf-8")))
            assert pictures >= figure_outputs(nb), (
                f"{page} shows {pictures} pictures, but {nb} has {figure_outputs(nb)} figure outputs"
            )


def make_notebook(path: Path, title: str, svg_html: int, svg_images: int) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "rust", "display_name": "Rust", "language": "rust"}
    cells = [nbformat.v4.new_markdown_cell(f"# {title}")]
    for i in range(svg_html):
        cell = nbformat.v4.new_code_cell(f"figure_{i}()", execution_count=len(cells))
        svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="{i + 1}" height="5"/></svg>'
        cell.outputs = [nbformat.v4.new_output("execute_result", data={"text/html": svg}, execution_count=len(cells))]
        cells.append(cell)
    for i in range(svg_images):
        cell = nbformat.v4.new_code_cell(f"image_{i}()", execution_count=len(cells))
        svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><circle r="{i + 1}"/></svg>'
        cell.outputs = [
            nbformat.v4.new_output("display_data", data={"image/svg+xml": svg, "text/plain": "figure"})
        ]
        cells.append(cell)
    nb.cells = cells
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_docs_command_exports_a_small_two_language_book(tmp_path: Path) -> None:
    src = tmp_path / "notebooks"
    make_notebook(src / "en" / "01-a.ipynb", "Lesson A", svg_html=2, svg_images=1)
    make_notebook(src / "en" / "02-b.ipynb", "Lesson B", svg_html=0, svg_images=2)
    make_notebook(src / "zh" / "01-a.ipynb", "课程 A", svg_html=2, svg_images=1)
    make_notebook(src / "zh" / "02-b.ipynb", "课程 B", svg_html=0, svg_images=2)
    out = tmp_path / "site"
    result = build_site(src, out)
    assert result.returncode == 0, result.stdout + result.stderr
    check_site(src, out)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "Lesson B" in index and "课程 A" in index, "index titles come from each notebook's heading"
    page = (out / "en" / "01-a.html").read_text(encoding="utf-8")
    assert len(PICTURE.findall(page)) == 3


def test_docs_command_fails_when_a_language_is_missing(tmp_path: Path) -> None:
    src = tmp_path / "notebooks"
    make_notebook(src / "en" / "01-a.ipynb", "Lesson A", svg_html=1, svg_images=0)
    result = build_site(src, tmp_path / "site")
    assert result.returncode != 0
    assert "no notebooks in" in result.stdout + result.stderr


@pytest.fixture(scope="module")
def real_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = build_site(NOTEBOOKS, out)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_docs_pages_link_to_their_twin_pages(real_site: Path) -> None:
    """A notebook's link to its other-language twin (`../zh/X.ipynb`) leads, in the exported
    site, to the twin's page, not to a notebook file the site does not have."""
    for lang, other in (("en", "zh"), ("zh", "en")):
        for page in sorted((real_site / lang).glob("*.html")):
            links = Links()
            links.feed(page.read_text(encoding="utf-8"))
            local = [h for h in links.hrefs if not re.match(r"[a-z]+:|#", h)]
            assert f"../{other}/{page.name}" in local, f"{page.name} ({lang}) does not link to its twin page: {local}"
            for href in local:
                target = (page.parent / href.split("#")[0]).resolve()
                assert target.is_file(), f"{lang}/{page.name} links to {href}, which the site does not have"


def test_docs_site_holds_every_lesson_with_its_pictures(real_site: Path, lesson_notebooks: list[Path]) -> None:
    check_site(NOTEBOOKS, real_site)
    # Lesson 1 draws the mask round trip: its page must hold that picture (lesson 2 and the
    # solutions notebooks have none; check_site compares each page with its notebook).
    for nb in lesson_notebooks:
        if nb.stem == "01-understanding-buffers":
            assert figure_outputs(nb) >= 1, f"{nb} has no picture among its outputs: is it executed and committed?"
