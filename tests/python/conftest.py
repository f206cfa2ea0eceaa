"""Shared fixtures for the Python tests (scripts/test.sh runs them with .venv's Python).

The Jupyter environment is set up here too, so that `pytest tests/python` run by hand
finds the project's `rust` kernel in .venv (scripts/setup.sh registers it there) rather
than a `rust` kernel registered globally for other projects.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
JUPYTER_DIR = VENV / "share" / "jupyter"
NOTEBOOKS = ROOT / "notebooks"
LANGUAGES = ("en", "zh")


def pytest_configure(config: pytest.Config) -> None:
    # Same values scripts/setup.sh exports; setdefault keeps what a caller chose.
    os.environ.setdefault("JUPYTER_PATH", str(JUPYTER_DIR))
    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
    cargo_bin = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo")) / "bin"
    path = os.environ.get("PATH", "").split(os.pathsep)
    for extra in (VENV / "bin", cargo_bin):
        if str(extra) not in path:
            path.insert(0, str(extra))
    os.environ["PATH"] = os.pathsep.join(path)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root folder."""
    return ROOT


@pytest.fixture(scope="session")
def venv_bin() -> Path:
    """.venv/bin: jupyter, python, pytest of the project's virtualenv."""
    return VENV / "bin"


@pytest.fixture(scope="session")
def rust_kernelspec() -> dict:
    """The `rust` kernelspec that scripts/setup.sh wrote into .venv (kernel.json)."""
    path = JUPYTER_DIR / "kernels" / "rust" / "kernel.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/setup.sh (or scripts/test.sh) first")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def lesson_notebooks() -> list[Path]:
    """Every lesson notebook, English then Chinese (notebooks/en/*.ipynb, notebooks/zh/*.ipynb)."""
    found = [p for lang in LANGUAGES for p in sorted((NOTEBOOKS / lang).glob("*.ipynb"))]
    if not found:
        pytest.fail(f"no lesson notebooks under {NOTEBOOKS}/en or {NOTEBOOKS}/zh")
    return found
