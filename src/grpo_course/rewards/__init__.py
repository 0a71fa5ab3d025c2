"""Stage 02: rewards with TRL's signature that are correct, fast and hard to hack.

* :mod:`~grpo_course.rewards.math` - answer extraction, ``is_correct`` (strict for rewards,
  lenient for evaluation), GSM8K gold parsing, the tag / composite / format / exact / tolerance
  rewards; :mod:`~grpo_course.rewards.normalize` turns answer text into exact numbers;
  :mod:`~grpo_course.rewards.timeout` runs math-verify with a limit that works in threads.
* :mod:`~grpo_course.rewards.code` - unit tests in a sandbox (``run_tests``, code rewards).
* :mod:`~grpo_course.rewards.judges` - LLM judges with a rubric.
* :mod:`~grpo_course.rewards.registry` - ``REWARDS``, ``get_reward(name)``, ``list_rewards()``, ``register_reward(name, fn)``.

Importing this package is light: no torch, no SymPy, no sandbox, no HTTP client. ``run_tests``
and the code/judge rewards load their modules on first access.
"""

from grpo_course.rewards.math import (
    completion_text,
    composite_math_reward,
    count_reasoning_steps,
    exact_answer_reward,
    extract_answer,
    find_answer,
    format_reward,
    has_boxed_format,
    has_math_format,
    has_tag_format,
    is_correct,
    numeric_tolerance_reward,
    parse_gsm8k_gold,
    reasoning_steps,
    tag_answer_reward,
    tag_format_reward,
    tag_reward,
)
from grpo_course.rewards.registry import REWARDS, get_reward, list_rewards, register_reward

_LAZY = {
    "run_tests": "grpo_course.rewards.code",
    "TestResult": "grpo_course.rewards.code",
    "code_pass_fraction_reward": "grpo_course.rewards.code",
    "code_all_pass_reward": "grpo_course.rewards.code",
    "make_judge_reward": "grpo_course.rewards.judges",
}

__all__ = [
    "REWARDS",
    "completion_text",
    "composite_math_reward",
    "count_reasoning_steps",
    "exact_answer_reward",
    "extract_answer",
    "find_answer",
    "format_reward",
    "get_reward",
    "has_boxed_format",
    "has_math_format",
    "has_tag_format",
    "is_correct",
    "list_rewards",
    "numeric_tolerance_reward",
    "register_reward",
    "parse_gsm8k_gold",
    "reasoning_steps",
    "tag_answer_reward",
    "tag_format_reward",
    "tag_reward",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
