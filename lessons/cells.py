"""The kinds of cell a lesson is made of. See scripts/notebooks.py."""

from dataclasses import dataclass, field


@dataclass
class Markdown:
    en: str
    zh: str
    # Part of the exercises at the end of a lesson: also in its solutions notebook.
    exercise: bool = False


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
    # Exercises: the id of the exercise this cell belongs to ("a", "b", …), and its role:
    # "answer" (the cell the learner edits; `source` is the unsolved version the notebook
    # shows, `solution` the answer, `wrong` typical wrong answers, each with a text its
    # checker must say) or "check" (the cell that shows the checker's verdict:
    # `exercises::…(…).show();`).
    exercise: str = ""
    role: str = ""
    solution: str = ""
    wrong: list = field(default_factory=list)


def md(en: str, zh: str, exercise: bool = False) -> Markdown:
    return Markdown(en.strip("\n"), zh.strip("\n"), exercise)


def code(source: str, tags=(), expect=(), defines=False) -> Code:
    return Code(source.strip("\n"), list(tags), list(expect), defines)


def answer(exercise: str, source: str, solution: str, wrong: list[tuple[str, str]]) -> Code:
    """The cell of exercise `exercise` that the learner edits: `source` unsolved, `solution`
    solved, and `wrong` as (source, text the checker must say) pairs."""
    return Code(source.strip("\n"), exercise=exercise, role="answer", solution=solution.strip("\n"),
                wrong=[(w.strip("\n"), says) for w, says in wrong])


def check(exercise: str, source: str) -> Code:
    """The cell that checks exercise `exercise`: `exercises::…(…).show();`."""
    return Code(source.strip("\n"), exercise=exercise, role="check")
