"""The two kinds of cell a lesson is made of. See scripts/notebooks.py."""

from dataclasses import dataclass, field


@dataclass
class Markdown:
    en: str
    zh: str


@dataclass
class Code:
    # One program for both notebooks: a string literal's or comment's text is written
    # «English‖中文», and each notebook gets its own half (scripts/notebooks.py, `localize`).
    source: str
    # "intended-error": the cell shows an error on purpose; `expect` lists text it must show.
    # "nondeterministic": output varies run to run (timings); only its kind is compared.
    # "device-dependent": output differs on a GPU machine (compared on the CPU).
    tags: list = field(default_factory=list)
    expect: list = field(default_factory=list)
    # True for a cell that defines the lesson's modules: tests/notebook_modules.rs checks
    # that they behave as the crate's own copies.
    defines: bool = False


def md(en: str, zh: str) -> Markdown:
    return Markdown(en.strip("\n"), zh.strip("\n"))


def code(source: str, tags=(), expect=(), defines=False) -> Code:
    return Code(source.strip("\n"), list(tags), list(expect), defines)
