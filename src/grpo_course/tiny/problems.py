"""GSM8K-style word problems made from templates: the tiny lab's task and the course's offline GSM8K.

Each problem is a dict with GSM8K's two columns, ``question`` and ``answer`` (worked solution with
``<<48/2=24>>`` calculator annotations, then ``#### 24``), plus three columns the lab uses:

- ``program``: the calculation as steps ``[left, op, right]``; ``"#k"`` names the result of step k,
- ``template`` and ``level`` (difficulty: the number of steps is 1, 2 or 3 for levels 1, 2, 3),
- ``has_subtraction``: whether a step subtracts (the flawed demonstrator's weak spot, see ``demonstrator``).

Every number in a problem (operands, intermediate results, answer) is an integer in ``0..MAX_NUMBER``,
so the tiny model's word-level tokenizer has one token per number. The arithmetic is kept to a set of
facts a tiny model can learn in minutes: one-digit factors, and sums or differences with a one-digit
second operand (except the change from a 20, 50 or 100 dollar note). Generation is deterministic:
the same ``(n, seed, levels)`` gives the same list on every machine.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ..jsonl import read_jsonl, write_jsonl  # noqa: F401  (re-exported: the build writes the splits)
from ..paths import data_dir

MAX_NUMBER = 255
LEVELS = (1, 2, 3)
# Default mix of difficulty levels (weights), chosen so that a bit over half the problems subtract.
DEFAULT_LEVEL_WEIGHTS = {1: 0.3, 2: 0.4, 3: 0.3}

NAMES = [("Ava", "She"), ("Ben", "He"), ("Cara", "She"), ("Dan", "He"), ("Eli", "He"), ("Fay", "She"),
         ("Gus", "He"), ("Hana", "She"), ("Ivan", "He"), ("Jade", "She"), ("Kai", "He"), ("Lena", "She"),
         ("Max", "He"), ("Nora", "She"), ("Omar", "He"), ("Pia", "She"), ("Raj", "He"), ("Sara", "She"),
         ("Tom", "He"), ("Uma", "She"), ("Vic", "He"), ("Wen", "She"), ("Yuri", "He"), ("Zoe", "She")]
ITEMS = ["apples", "pencils", "cookies", "marbles", "stickers", "books", "eggs", "cards", "shells", "candies",
         "buttons", "stamps", "beads", "coins", "crayons", "muffins"]
CONTAINERS = [("box", "boxes"), ("bag", "bags"), ("pack", "packs"), ("jar", "jars"), ("basket", "baskets"),
              ("crate", "crates"), ("tray", "trays"), ("tin", "tins")]
GAIN_VERBS = ["gets", "buys", "finds", "wins", "receives"]
LOSE_VERBS = ["gives away", "loses", "sells", "uses", "donates"]
COLORS = [("red", "blue"), ("green", "yellow"), ("big", "small"), ("old", "new")]

OPS: dict[str, Callable[[int, int], int]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a // b,
}


def run_program(program: Sequence[Sequence[str]], ops: dict[str, Callable[[int, int], int]] | None = None
                ) -> list[tuple[int, str, int, int]]:
    """Execute a program; returns ``(left, op, right, result)`` for each step (``ops`` may be swapped)."""
    ops = ops or OPS
    results: list[int] = []
    rows = []
    for left, op, right in program:
        a = results[int(left[1:])] if str(left).startswith("#") else int(left)
        b = results[int(right[1:])] if str(right).startswith("#") else int(right)
        r = ops[op](a, b)
        results.append(r)
        rows.append((a, op, b, r))
    return rows


def _annotation(a: int, op: str, b: int, r: int) -> str:
    return f"{a}{op}{b}=<<{a}{op}{b}={r}>>{r}"


class _Builder:
    """Collects the program and the GSM8K sentences for one problem."""

    def __init__(self) -> None:
        self.program: list[list[str]] = []
        self.values: list[int] = []
        self.sentences: list[str] = []

    def step(self, left: int | str, op: str, right: int | str, sentence: str) -> int:
        """Add a step; ``sentence`` has ``{calc}`` where the annotated calculation goes."""
        a = self.values[int(left[1:])] if isinstance(left, str) else left
        b = self.values[int(right[1:])] if isinstance(right, str) else right
        r = OPS[op](a, b)
        self.program.append([str(left), op, str(right)])
        self.values.append(r)
        self.sentences.append(sentence.format(calc=_annotation(a, op, b, r)))
        return r

    def ref(self) -> str:
        return f"#{len(self.values) - 1}"


def _pick(rng: random.Random):
    name, pron = rng.choice(NAMES)
    item = rng.choice(ITEMS)
    cont, conts = rng.choice(CONTAINERS)
    return name, pron, item, cont, conts


# ---- templates: each returns (question, builder) -------------------------------------------------------

def _t_gain(rng):
    name, pron, item, _, _ = _pick(rng)
    a, b, verb = rng.randint(10, 90), rng.randint(2, 9), rng.choice(GAIN_VERBS)
    q = f"{name} has {a} {item}. {pron} {verb} {b} more {item}. How many {item} does {name} have now?"
    bl = _Builder()
    bl.step(a, "+", b, f"{name} has {{calc}} {item} now.")
    return q, bl


def _t_lose(rng):
    name, pron, item, _, _ = _pick(rng)
    a = rng.randint(12, 90)
    b, verb = rng.randint(2, 9), rng.choice(LOSE_VERBS)
    q = f"{name} has {a} {item}. {pron} {verb} {b} {item}. How many {item} does {name} have left?"
    bl = _Builder()
    bl.step(a, "-", b, f"{name} has {{calc}} {item} left.")
    return q, bl


def _t_groups(rng):
    name, _, item, cont, conts = _pick(rng)
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    q = f"{name} has {a} {conts}. Each {cont} holds {b} {item}. How many {item} does {name} have?"
    bl = _Builder()
    bl.step(a, "*", b, f"{name} has {{calc}} {item}.")
    return q, bl


def _t_share(rng):
    name, pron, item, cont, conts = _pick(rng)
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    q = f"{name} puts {a * b} {item} equally into {a} {conts}. How many {item} are in each {cont}?"
    bl = _Builder()
    bl.step(a * b, "/", a, f"Each {cont} has {{calc}} {item}.")
    return q, bl


def _t_groups_lose(rng):
    name, pron, item, cont, conts = _pick(rng)
    a, b = rng.randint(2, 9), rng.randint(3, 9)
    c, verb = rng.randint(2, min(9, a * b - 1)), rng.choice(LOSE_VERBS)
    q = (f"{name} buys {a} {conts} of {item}. Each {cont} has {b} {item}. {pron} {verb} {c} {item}. "
         f"How many {item} does {name} have left?")
    bl = _Builder()
    bl.step(a, "*", b, f"{name} buys {{calc}} {item}.")
    bl.step(bl.ref(), "-", c, f"After that {name} has {{calc}} {item} left.")
    return q, bl


def _t_groups_gain(rng):
    name, pron, item, cont, conts = _pick(rng)
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    c, verb = rng.randint(2, 9), rng.choice(GAIN_VERBS)
    q = (f"{name} buys {a} {conts} of {item}. Each {cont} has {b} {item}. {pron} {verb} {c} more {item}. "
         f"How many {item} does {name} have now?")
    bl = _Builder()
    bl.step(a, "*", b, f"{name} buys {{calc}} {item}.")
    bl.step(bl.ref(), "+", c, f"Now {name} has {{calc}} {item}.")
    return q, bl


def _t_two_colors(rng):
    name, _, item, cont, conts = _pick(rng)
    c1, c2 = rng.choice(COLORS)
    a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(2, 9)
    q = (f"{name} has {a} {c1} {conts} and {b} {c2} {conts}. Each {cont} holds {c} {item}. "
         f"How many {item} are there in all?")
    bl = _Builder()
    bl.step(a, "+", b, f"{name} has {{calc}} {conts}.")
    bl.step(bl.ref(), "*", c, f"They hold {{calc}} {item}.")
    return q, bl


def _t_share_lose(rng):
    name, pron, item, cont, conts = _pick(rng)
    a, b = rng.randint(2, 9), rng.randint(4, 9)
    c = rng.randint(2, b - 1)
    q = (f"{name} puts {a * b} {item} equally into {a} {conts}. Then {pron.lower()} takes {c} {item} "
         f"out of one {cont}. How many {item} are left in that {cont}?")
    bl = _Builder()
    bl.step(a * b, "/", a, f"Each {cont} gets {{calc}} {item}.")
    bl.step(bl.ref(), "-", c, f"That {cont} has {{calc}} {item} left.")
    return q, bl


def _t_change(rng):
    name, pron, item, _, _ = _pick(rng)
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    c = rng.choice([x for x in (20, 50, 100) if x > a * b])
    q = (f"{name} buys {a} {item} that cost {b} dollars each. {pron} pays with {c} dollars. "
         f"How many dollars of change does {name} get?")
    bl = _Builder()
    bl.step(a, "*", b, f"The {item} cost {{calc}} dollars.")
    bl.step(c, "-", bl.ref(), "The change is {calc} dollars.")
    return q, bl


def _t_groups_lose_gain(rng):
    name, pron, item, cont, conts = _pick(rng)
    a, b = rng.randint(2, 9), rng.randint(3, 9)
    c = rng.randint(2, min(9, a * b - 1))
    d = rng.randint(2, 9)
    lose, gain = rng.choice(LOSE_VERBS), rng.choice(GAIN_VERBS)
    q = (f"{name} has {a} {conts} with {b} {item} in each {cont}. {pron} {lose} {c} {item} "
         f"and then {gain} {d} more {item}. How many {item} does {name} have now?")
    bl = _Builder()
    bl.step(a, "*", b, f"{name} starts with {{calc}} {item}.")
    bl.step(bl.ref(), "-", c, f"Then {pron.lower()} has {{calc}} {item}.")
    bl.step(bl.ref(), "+", d, f"Now {pron.lower()} has {{calc}} {item}.")
    return q, bl


def _t_two_colors_lose(rng):
    name, pron, item, cont, conts = _pick(rng)
    c1, c2 = rng.choice(COLORS)
    a, b, c = rng.randint(2, 6), rng.randint(2, 6), rng.randint(2, 9)
    d, verb = rng.randint(2, min(9, (a + b) * c - 1)), rng.choice(LOSE_VERBS)
    q = (f"{name} has {a} {c1} {conts} and {b} {c2} {conts}. Each {cont} holds {c} {item}. "
         f"{pron} {verb} {d} {item}. How many {item} does {name} have left?")
    bl = _Builder()
    bl.step(a, "+", b, f"{name} has {{calc}} {conts}.")
    bl.step(bl.ref(), "*", c, f"They hold {{calc}} {item}.")
    bl.step(bl.ref(), "-", d, f"{name} has {{calc}} {item} left.")
    return q, bl


def _t_two_groups(rng):
    name, _, item, cont, conts = _pick(rng)
    c1, c2 = rng.choice(COLORS)
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    c = rng.randint(2, 9)
    q = (f"{name} has {a} {c1} {conts} with {b} {item} in each. {name} also has {c} loose {item}. "
         f"How many {item} does {name} have?")
    bl = _Builder()
    bl.step(a, "*", b, f"The {c1} {conts} hold {{calc}} {item}.")
    bl.step(bl.ref(), "+", c, f"{name} has {{calc}} {item}.")
    return q, bl


TEMPLATES: dict[int, dict[str, Callable]] = {
    1: {"gain": _t_gain, "lose": _t_lose, "groups": _t_groups, "share": _t_share},
    2: {"groups_lose": _t_groups_lose, "groups_gain": _t_groups_gain, "two_colors": _t_two_colors,
        "share_lose": _t_share_lose, "change": _t_change, "two_groups": _t_two_groups},
    3: {"groups_lose_gain": _t_groups_lose_gain, "two_colors_lose": _t_two_colors_lose},
}


def make_problem(rng: random.Random, level: int) -> dict:
    """One problem of the given difficulty level, drawn with ``rng``."""
    name = rng.choice(sorted(TEMPLATES[level]))
    question, bl = TEMPLATES[level][name](rng)
    answer = bl.values[-1]
    assert all(0 <= v <= MAX_NUMBER for v in bl.values), (name, bl.values)
    return {
        "question": question,
        "answer": "\n".join(bl.sentences) + f"\n#### {answer}",
        "program": bl.program,
        "template": name,
        "level": level,
        "has_subtraction": any(op == "-" for _, op, _ in bl.program),
    }


def generate_problems(n: int, seed: int = 0, levels: Iterable[int] | dict[int, float] | int | None = None,
                      exclude: Iterable[str] = ()) -> list[dict]:
    """``n`` distinct problems (by question text), deterministic in ``seed``.

    ``levels``: one level, a list of levels (equal weights), or ``{level: weight}``; default
    :data:`DEFAULT_LEVEL_WEIGHTS`. ``exclude``: question texts to skip (e.g. the training split).
    """
    if levels is None:
        weights = dict(DEFAULT_LEVEL_WEIGHTS)
    elif isinstance(levels, int):
        weights = {levels: 1.0}
    elif isinstance(levels, dict):
        weights = dict(levels)
    else:
        weights = {lv: 1.0 for lv in levels}
    bad = [lv for lv in weights if lv not in TEMPLATES]
    if bad:
        raise ValueError(f"unknown difficulty level(s) {bad}; choose from {list(TEMPLATES)}")
    rng = random.Random(seed)
    keys, w = list(weights), list(weights.values())
    seen = set(exclude)
    out: list[dict] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise RuntimeError(f"could not make {n} distinct problems; ask for fewer")
        p = make_problem(rng, rng.choices(keys, w)[0])
        if p["question"] in seen:
            continue
        seen.add(p["question"])
        out.append(p)
    return out


_SUBTRACTION = re.compile(r"<<[^>]*\d\s*-\s*\d")  # a calculator annotation such as <<28-5=23>>


def subtracts(problem: dict) -> bool:
    """Whether a problem has a subtraction step: its ``has_subtraction`` column (the tiny problems), else a
    ``-`` between two numbers in a calculator annotation of its GSM8K-format answer (any GSM8K row)."""
    if "has_subtraction" in problem:
        return bool(problem["has_subtraction"])
    return bool(_SUBTRACTION.search(problem.get("answer", "")))


def gold_number(answer_text: str) -> int:
    """The final number of a GSM8K-format answer (the text after ``####``)."""
    return int(answer_text.split("####")[-1].strip().replace(",", ""))


# ---- the committed splits ---------------------------------------------------------------------------

SPLIT_SIZES = {"train": 2000, "test": 500}
SPLIT_SEEDS = {"train": 1234, "test": 5678}


def problems_dir() -> Path:
    return data_dir() / "tiny" / "problems"


def make_splits(sizes: dict[str, int] | None = None) -> dict[str, list[dict]]:
    """The train and test splits; test questions never appear in train."""
    sizes = sizes or SPLIT_SIZES
    train = generate_problems(sizes["train"], SPLIT_SEEDS["train"])
    test = generate_problems(sizes["test"], SPLIT_SEEDS["test"], exclude=(p["question"] for p in train))
    return {"train": train, "test": test}


def split_path(split: str) -> Path:
    if split not in SPLIT_SIZES:
        raise ValueError(f"unknown split {split!r}; choose from {list(SPLIT_SIZES)}")
    return problems_dir() / f"{split}.jsonl"


def load_split(split: str, n: int | None = None) -> list[dict]:
    """The committed ``data/tiny/problems/<split>.jsonl`` (first ``n`` rows if given)."""
    path = split_path(split)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run `grpo-course build-tiny --problems-only` to make it")
    rows = read_jsonl(path)
    return rows[:n] if n is not None else rows


def write_splits() -> dict[str, Path]:
    return {name: write_jsonl(rows, split_path(name)) for name, rows in make_splits().items()}
