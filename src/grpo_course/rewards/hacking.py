"""Reward hacking, reproduced on purpose.

Two halves:

* **Naive rewards** (do not train with them): our own re-creations of reward bugs that were
  reported in public GRPO code: a format regex without ``re.DOTALL`` (unslothai/unsloth #1761,
  huggingface/open-r1 #237: Will Brown's GSM8K reward set as copied into Unsloth's GRPO notebooks), a
  substring "contains the answer" check (Liuziyu77/Visual-RFT #176), "any answer tag matches" (several
  answer blocks, huggingface/open-r1 PR #418; hedged answers, Visual-RFT #79), and string equality
  against the raw GSM8K gold, commas kept (``correctness_reward_func`` of that same reward set; golds such
  as ``1,080`` are in openai/grade-school-math's data). The fifth, a steps counter that counts lines with
  ``=``, is no reported bug: it is this course's own naive version of a step term, shown to be gameable.
  Each has TRL's signature; the notebook puts them next to :mod:`grpo_course.rewards.math`'s
  guarded versions in PASS/FAIL tables.
* **A template policy** (:func:`simulate_policy`): a softmax over a few ways of answering
  (formatted and right, formatted and guessing, plain and right, plain and guessing), trained
  with GRPO's group advantages (:func:`grpo_course.advantages.group_advantages`) on *real* reward
  functions over *real* completion texts. No language model, so it runs in a second, yet it shows
  the dynamics of a run: with a format-only reward the format rate climbs to 1 while accuracy
  falls, the way huggingface/open-r1 #255 logged it (accuracy 0.160 -> 0.064 while the format
  reward went 0.476 -> 0.857).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from grpo_course.chat_format import format_response
from grpo_course.rewards.math import (
    _golds,
    _tag_blocks,
    completion_text,
    has_tag_format,
    is_correct,
    parse_gsm8k_gold,
)

# ---------------------------------------------------------------------------------------------
# Naive rewards (the bugs, re-created)
# ---------------------------------------------------------------------------------------------

# "." does not match a newline without re.DOTALL, so multi-line reasoning never matches.
_NO_DOTALL = re.compile(r"<think>.*</think>\s*<answer>.*</answer>")


def no_dotall_format_reward(completions, **kwargs) -> list[float]:
    """0.5 if ``re.match`` finds think then answer tags, **without** ``re.DOTALL``: any reasoning
    over two lines scores 0 (unsloth #1761, open-r1 #237). Range [0, 0.5]."""
    return [0.5 if _NO_DOTALL.match(completion_text(c)) else 0.0 for c in completions]


def _first_answer(text: str) -> str | None:
    blocks = _tag_blocks(text, lenient=False)
    return blocks[0].strip() if blocks else None


def naive_contains_reward(completions, answer=None, **kwargs) -> list[float]:
    """1.0 if the gold contains the answer or the answer contains the gold (Visual-RFT #176):
    an empty answer is contained in every gold, and "17 or 18" contains "18". Range [0, 1]."""
    golds = _golds({"answer": answer, **kwargs}, len(completions))
    out = []
    for c, g in zip(completions, golds):
        pred, gold = _first_answer(completion_text(c)), parse_gsm8k_gold(g)
        out.append(1.0 if pred is not None and (gold in pred or pred in gold) else 0.0)
    return out


def naive_any_tag_reward(completions, answer=None, **kwargs) -> list[float]:
    """1.0 if *any* ``<answer>`` block equals the gold: write several and one will hit. Range [0, 1]."""
    golds = _golds({"answer": answer, **kwargs}, len(completions))
    return [
        1.0 if parse_gsm8k_gold(g) in [b.strip() for b in _tag_blocks(completion_text(c), False)] else 0.0
        for c, g in zip(completions, golds)
    ]


def naive_string_equal_reward(completions, answer=None, **kwargs) -> list[float]:
    """1.0 if the answer block equals the text after ``####`` as a string (commas kept): ``1080``
    scores 0 against ``1,080`` and ``18.0`` against ``18``. Range [0, 1]."""
    golds = _golds({"answer": answer, **kwargs}, len(completions))
    out = []
    for c, g in zip(completions, golds):
        gold = str(g).split("####")[-1].strip() if g is not None else None
        out.append(1.0 if gold is not None and _first_answer(completion_text(c)) == gold else 0.0)
    return out


def naive_count_steps(completion) -> int:
    """Lines that contain ``=``: padding, repetition and false arithmetic all count."""
    return sum("=" in line for line in completion_text(completion).splitlines())


def naive_steps_reward(completions, **kwargs) -> list[float]:
    """0.2 if at least two lines contain ``=`` (the composite reward's step term, naively). Range [0, 0.2]."""
    return [0.2 if naive_count_steps(c) >= 2 else 0.0 for c in completions]


NAIVE_REWARDS: dict[str, Callable] = {
    "no_dotall_format": no_dotall_format_reward,
    "naive_contains": naive_contains_reward,
    "naive_any_tag": naive_any_tag_reward,
    "naive_string_equal": naive_string_equal_reward,
    "naive_steps": naive_steps_reward,
}

# ---------------------------------------------------------------------------------------------
# A template policy trained with group advantages
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    question: str
    answer: str  # GSM8K-style gold field ending in "#### N"
    value: int
    reasoning: str


def make_problems(n: int, seed: int = 0) -> list[Problem]:
    """Two-step word problems with GSM8K-style golds, e.g. 12 apples, 7 more, 3 eaten."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b, c = rng.randint(10, 90), rng.randint(2, 40), rng.randint(1, 9)
        value = a + b - c
        question = f"Sam has {a} apples, buys {b} more and eats {c}. How many apples are left?"
        reasoning = f"Sam has {a} + {b} = {a + b} apples.\nAfter eating, {a + b} - {c} = {value} are left."
        gold = f"{a} + {b} = <<{a}+{b}={a + b}>>{a + b}\n{a + b} - {c} = <<{a + b}-{c}={value}>>{value}\n#### {value}"
        out.append(Problem(question, gold, value, reasoning))
    return out


def _guess(p: Problem) -> int:
    return p.value + 1 + (p.value * 7) % 9  # a deterministic wrong number


BEHAVIOURS: dict[str, Callable[[Problem], str]] = {
    "format + right": lambda p: format_response(p.reasoning, str(p.value)),
    # one line of "reasoning": the only completion a regex without re.DOTALL accepts
    "format + guess": lambda p: f"<think>Let me guess.</think><answer>{_guess(p)}</answer>",
    "plain + right": lambda p: f"{p.reasoning}\nSo {p.value} apples are left.",
    "plain + guess": lambda p: f"I think about {_guess(p)} apples are left.",
}
# Where a base model starts: mostly plain prose, rarely the format, often wrong.
DEFAULT_START = {"format + right": 0.05, "format + guess": 0.15, "plain + right": 0.50, "plain + guess": 0.30}


@dataclass
class PolicyHistory:
    """What the template policy did at each step: the mean reward of its samples and, exactly
    (from its probabilities), its format rate and its accuracy (lenient evaluation)."""

    behaviours: list[str]
    reward: list[float] = field(default_factory=list)
    format_rate: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    probs: list[list[float]] = field(default_factory=list)


def simulate_policy(
    reward_fn: Callable,
    steps: int = 40,
    group_size: int = 8,
    prompts_per_step: int = 4,
    lr: float = 2.0,
    start: dict[str, float] | None = None,
    seed: int = 0,
) -> PolicyHistory:
    """Train a softmax over :data:`BEHAVIOURS` with GRPO on ``reward_fn``.

    Each step samples ``group_size`` completions for each of ``prompts_per_step`` problems, scores
    the texts with ``reward_fn`` (TRL signature, ``answer`` column), turns the rewards into group
    advantages and takes one policy-gradient step on the logits:
    ``logits += lr * mean_i A_i * (onehot(b_i) - p)``, the gradient of ``A_i log p(b_i)``.
    """
    from grpo_course.advantages import group_advantages

    names = list(BEHAVIOURS)
    start = start or DEFAULT_START
    logits = np.log(np.array([start[n] for n in names], dtype=float))
    rng = np.random.default_rng(seed)
    problems = make_problems(64, seed)
    probe = problems[:16]
    fmt = np.array([np.mean([has_tag_format(BEHAVIOURS[n](p)) for p in probe]) for n in names])
    acc = np.array(
        [np.mean([is_correct(BEHAVIOURS[n](p), p.answer, "lenient") for p in probe]) for n in names]
    )
    hist = PolicyHistory(behaviours=names)
    for _ in range(steps):
        p = np.exp(logits - logits.max())
        p /= p.sum()
        hist.probs.append(p.tolist())
        hist.format_rate.append(float(p @ fmt))
        hist.accuracy.append(float(p @ acc))
        batch = [problems[i] for i in rng.integers(0, len(problems), prompts_per_step)]
        picks, texts, golds = [], [], []
        for prob in batch:
            for b in rng.choice(len(names), size=group_size, p=p):
                picks.append(b)
                texts.append(BEHAVIOURS[names[b]](prob))
                golds.append(prob.answer)
        rewards = np.array([np.nan if r is None else r for r in reward_fn(texts, answer=golds)], dtype=float)
        hist.reward.append(float(np.nanmean(rewards)) if np.isfinite(rewards).any() else float("nan"))
        adv = np.asarray(group_advantages(rewards, group_size), dtype=float)
        grad = np.zeros_like(logits)
        for b, a in zip(picks, adv):
            onehot = np.zeros_like(logits)
            onehot[b] = 1.0
            grad += a * (onehot - p)
        logits += lr * grad / len(picks)
    return hist


def policy_summary(hist: PolicyHistory) -> dict[str, tuple[float, float]]:
    """(first, last) of format rate, accuracy and mean reward."""
    return {
        "format rate": (hist.format_rate[0], hist.format_rate[-1]),
        "accuracy": (hist.accuracy[0], hist.accuracy[-1]),
        "mean reward": (hist.reward[0], hist.reward[-1]),
    }


def behaviour_table(rewards: Sequence[tuple[str, Callable]], problem: Problem | None = None) -> str:
    """Each behaviour's completion scored by each reward (one problem), as a text table."""
    problem = problem or make_problems(1)[0]
    names = list(BEHAVIOURS)
    texts = [BEHAVIOURS[n](problem) for n in names]
    cols = [(label, fn(texts, answer=[problem.answer] * len(texts))) for label, fn in rewards]
    head = f"{'behaviour':<16}" + "".join(f"{label:>18}" for label, _ in cols)
    lines = [head]
    for i, n in enumerate(names):
        lines.append(f"{n:<16}" + "".join(f"{'None' if v[i] is None else f'{v[i]:g}':>18}" for _, v in cols))
    return "\n".join(lines)
