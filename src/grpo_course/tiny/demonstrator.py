"""The flawed demonstrator: a solver that writes the course's format but often adds where it should subtract.

On a problem with a subtraction step it swaps ``-`` for ``+`` with probability :data:`FLAW_RATE`
(and carries the wrong number through the rest of the solution); everything else it solves correctly.
A model fine-tuned to imitate it (SFT) learns that mistake as its most likely move, yet still gives
the right step some of the time: exactly what GRPO, rewarded by the answer's correctness, can amplify.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from ..chat_format import format_response
from .problems import OPS, gold_number, run_program

FLAW_RATE = 0.65
FLAWED_OPS = {**OPS, "-": OPS["+"]}


def reasoning_lines(rows: Sequence[tuple[int, str, int, int]], flawed: bool = False) -> list[str]:
    """One ``"a op b = r"`` line per step (the flawed solver writes ``+`` in place of ``-``)."""
    return [f"{a} {'+' if (flawed and op == '-') else op} {b} = {r}" for a, op, b, r in rows]


def solve(problem: dict, flawed: bool = False) -> str:
    """The completion for one problem in the course format, correct or with the flaw applied."""
    rows = run_program(problem["program"], FLAWED_OPS if flawed else None)
    return format_response("\n".join(reasoning_lines(rows, flawed)), str(rows[-1][3]))


def demonstrate(problem: dict, rng: random.Random, flaw_rate: float = FLAW_RATE) -> tuple[str, bool]:
    """One demonstration; returns ``(completion, correct)``. The flaw fires only on subtraction problems."""
    flawed = bool(problem.get("has_subtraction")) and rng.random() < flaw_rate
    text = solve(problem, flawed)
    answer = run_program(problem["program"], FLAWED_OPS if flawed else None)[-1][3]
    return text, answer == gold_number(problem["answer"])


def demonstrator_accuracy(problems: Sequence[dict], seed: int = 0, flaw_rate: float = FLAW_RATE) -> float:
    """The fraction of problems the demonstrator answers correctly (one draw per problem)."""
    rng = random.Random(seed)
    return sum(demonstrate(p, rng, flaw_rate)[1] for p in problems) / max(1, len(problems))
