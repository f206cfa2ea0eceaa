"""The two kinds of cell a lesson is made of. See scripts/notebooks.py."""

from dataclasses import dataclass, field


@dataclass
class Markdown:
    en: str
    zh: str


@dataclass
class Code:
    source: str
    # "intended-error": the cell shows an error on purpose; `expect` lists text it must show.
    # "nondeterministic": output varies run to run (timings); only its kind is compared.
    # "device-dependent": output differs on a GPU machine (compared on the CPU).
    tags: list = field(default_factory=list)
    expect: list = field(default_factory=list)


def md(en: str, zh: str) -> Markdown:
    return Markdown(en.strip("\n"), zh.strip("\n"))


def code(source: str, tags=(), expect=()) -> Code:
    return Code(source.strip("\n"), list(tags), list(expect))
