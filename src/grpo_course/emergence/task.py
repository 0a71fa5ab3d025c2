"""The emergence task: chains of three or four changes to a two-digit count, where writing steps pays.

A problem reads "Ava has 47 apples. She gets 8 more apples. She loses 3 apples. She finds 6 more apples.
How many apples does Ava have now?". The course's problem machinery writes it
(:mod:`grpo_course.tiny.problems`: the names, items and verbs, the ``program`` of steps, and GSM8K's
``answer`` column with ``<<47+8=55>>`` annotations and ``#### N``), so the tiny tokenizer reads every word.

Why this task: each step is one fact the tiny model knows (a number up to 255 plus or minus a digit),
so a completion that writes the intermediate results is usually right; the answer alone needs all
three or four changes summed in one forward pass, which a 3-layer model does badly, and there are
millions of distinct problems (no lookup table to memorise). Two ways to answer, one task:

- **steps**: ``<think>`` one line per step (``47 + 8 = 55``) ``</think><answer>50</answer>``;
- **bare**: an empty ``<think>`` block, then the answer (9 tokens instead of 24-30).

:func:`writes_steps` tells them apart in any completion. :data:`REWARD_NAMES` is the whole reward of
the experiment: the correctness of the final answer, nothing about steps, format or length.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Sequence

from ..chat_format import ANSWER_START, format_response
from ..rewards.math import find_equations
from ..tiny.demonstrator import solve
from ..tiny.problems import GAIN_VERBS, LOSE_VERBS, MAX_NUMBER, _Builder, _pick, gold_number

OPERATIONS = (3, 4)  # changes per problem
START = (40, 99)  # the two-digit count a problem starts from
CHANGE = (2, 9)  # each change gets or loses this many (the tiny model's one-digit facts)
# GRPO prompts and held-out problems; the SFT pool is drawn with its own seed (build.py), never the test set.
SPLIT_SIZES = {"train": 2000, "test": 500}
SPLIT_SEEDS = {"train": 2468, "test": 1357}
# The reward of the experiment: 1.0 when the number in <answer> equals the gold, else 0 (strict mode).
REWARD_NAMES: tuple[str, ...] = ("tag_answer",)


def make_problem(rng: random.Random, operations: int) -> dict:
    """One chain problem with ``operations`` changes, in the tiny lab's columns (``question``,
    ``answer``, ``program``, ``template``, ``level`` = number of operations, ``has_subtraction``)."""
    if operations < 1:
        raise ValueError(f"a problem needs at least one operation, got {operations}")
    name, pron, item, _, _ = _pick(rng)
    start = rng.randint(*START)
    sentences = [f"{name} has {start} {item}."]
    bl = _Builder()
    for k in range(operations):
        change, left = rng.randint(*CHANGE), start if k == 0 else bl.ref()
        if rng.random() < 0.5:
            sentences.append(f"{pron} {rng.choice(LOSE_VERBS)} {change} {item}.")
            bl.step(left, "-", change, f"{name} has {{calc}} {item}.")
        else:
            sentences.append(f"{pron} {rng.choice(GAIN_VERBS)} {change} more {item}.")
            bl.step(left, "+", change, f"{name} has {{calc}} {item}.")
    assert all(0 <= v <= MAX_NUMBER for v in bl.values), bl.values
    sentences.append(f"How many {item} does {name} have now?")
    return {
        "question": " ".join(sentences),
        "answer": "\n".join(bl.sentences) + f"\n#### {bl.values[-1]}",
        "program": bl.program,
        "template": "chain",
        "level": operations,
        "has_subtraction": any(op == "-" for _, op, _ in bl.program),
    }


def generate_problems(n: int, seed: int, operations: Iterable[int] = OPERATIONS,
                      exclude: Iterable[str] = ()) -> list[dict]:
    """``n`` distinct problems (by question), deterministic in ``seed``; ``exclude``: questions to skip."""
    ops = list(operations)
    if not ops:
        raise ValueError("operations must name at least one number of operations")
    rng = random.Random(seed)
    seen, out = set(exclude), []
    for _ in range(50 * n + 1000):
        if len(out) == n:
            break
        p = make_problem(rng, rng.choice(ops))
        if p["question"] not in seen:
            seen.add(p["question"])
            out.append(p)
    if len(out) < n:
        raise RuntimeError(f"could not make {n} distinct problems; ask for fewer")
    return out


def make_splits(sizes: dict[str, int] | None = None) -> dict[str, list[dict]]:
    """GRPO's training prompts and the held-out problems (disjoint questions)."""
    sizes = sizes or SPLIT_SIZES
    test = generate_problems(sizes["test"], SPLIT_SEEDS["test"])
    train = generate_problems(sizes["train"], SPLIT_SEEDS["train"], exclude=(p["question"] for p in test))
    return {"train": train, "test": test}


def load_split(split: str, n: int | None = None) -> list[dict]:
    """The ``train`` or ``test`` split (first ``n`` rows), made afresh: generation is instant and exact."""
    if split not in SPLIT_SIZES:
        raise ValueError(f"unknown split {split!r}; choose from {list(SPLIT_SIZES)}")
    size = SPLIT_SIZES[split] if n is None else n
    if not 0 <= size <= SPLIT_SIZES[split]:
        raise ValueError(f"the {split} split has {SPLIT_SIZES[split]} problems; asked for {n}")
    return make_splits()[split][:size]


def problems_sha256(problems: Sequence[dict]) -> str:
    """A fingerprint of a problem list (the build records the held-out split's)."""
    return hashlib.sha256(json.dumps(list(problems), sort_keys=True).encode()).hexdigest()


# ---- the two ways to answer -------------------------------------------------------------------------

def steps_demonstration(problem: dict) -> str:
    """The worked solution: one ``a op b = r`` line per step, then the answer."""
    return solve(problem)


def bare_demonstration(problem: dict) -> str:
    """The answer alone, after an empty reasoning block."""
    return format_response("", str(gold_number(problem["answer"])))


def step_lines(completion: str) -> int:
    """How many arithmetic lines (``expression = value``, true or not) a completion writes before its answer."""
    text = completion if isinstance(completion, str) else str(completion)
    return len(find_equations(text.split(ANSWER_START, 1)[0]))


def writes_steps(completion: str) -> bool:
    """Whether a completion writes intermediate results: at least one calculation before ``<answer>``."""
    return step_lines(completion) > 0
