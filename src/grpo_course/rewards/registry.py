"""Reward names -> reward functions (or factories), resolved lazily.

Entries are ``"module:attribute"`` strings so that importing :mod:`grpo_course.rewards` stays
light: the code sandbox and the judges' HTTP clients load only when their reward is asked for.
Add a course reward with one line in ``_ENTRIES``; mark a factory (a function that *builds* a
reward, such as a judge configured with its models) with ``factory=True``. Your own reward goes in
with :func:`register_reward` (a function, or a ``"module:attribute"`` string).

    >>> from grpo_course.rewards import get_reward, list_rewards
    >>> reward = get_reward("tag")            # a TRL reward function
    >>> judge = get_reward("legal_judge", judges=[...])   # a factory: called with the keywords
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    target: str  # "package.module:attribute"
    factory: bool = False
    doc: str = ""


_M = "grpo_course.rewards.math"
_ENTRIES: dict[str, Entry] = {
    "tag_format": Entry(f"{_M}:tag_format_reward", doc="0.5 for <think>..</think><answer>N</answer>"),
    "tag_answer": Entry(f"{_M}:tag_answer_reward", doc="1.0 for a correct <answer> (strict)"),
    "tag": Entry(f"{_M}:tag_reward", doc="tag_format + tag_answer, 0..1.5"),
    "composite_math": Entry(f"{_M}:composite_math_reward", doc="0.2 format + 0.6 correct + 0.2 steps"),
    "format": Entry(f"{_M}:format_reward", doc="1.0 for one think block then one answer block"),
    "exact_answer": Entry(f"{_M}:exact_answer_reward", doc="1.0 when <answer> equals the gold string"),
    "numeric_tolerance": Entry(f"{_M}:numeric_tolerance_reward", doc="1.0 when |answer - gold| <= atol"),
    # Code sandbox and LLM judges: one line each, e.g.
    # "code_pass_fraction": Entry("grpo_course.rewards.code:code_pass_fraction_reward", doc="..."),
    # "legal_judge": Entry("grpo_course.rewards.judges:make_judge_reward", factory=True, doc="..."),
    "code_pass_fraction": Entry("grpo_course.rewards.code:code_pass_fraction_reward", doc="fraction of asserts passed in the sandbox, 0..1 or None"),
    "code_all_pass": Entry("grpo_course.rewards.code:code_all_pass_reward", doc="1.0 when every assert passes in the sandbox, else 0; None without tests"),
    "legal_judge": Entry(
        "grpo_course.rewards.judges:make_judge_reward",
        factory=True,
        doc="LLM judges on a 4-dimension legal rubric, 0..1 or None",
    ),
    "legal_qa_judges": Entry(
        "grpo_course.rewards.judge_panel:legal_qa_judges",
        doc="legal-QA judges (the active JudgePanel of grpo_course.rewards.judge_panel), 0..1 or None",
    ),
    "legal_qa_format": Entry(
        "grpo_course.rewards.judge_panel:legal_qa_format",
        doc="format (think block, then a non-empty answer block), None where the legal-QA judges could not score",
    ),
}
_CALLABLES: dict[str, Callable] = {}  # rewards registered as objects, not import strings


def _resolve(entry: Entry) -> Callable:
    if entry.target in _CALLABLES:
        return _CALLABLES[entry.target]
    module, _, attr = entry.target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class RewardRegistry(Mapping):
    """A read-only mapping ``name -> function or factory`` that imports targets on first use."""

    def __init__(self, entries: dict[str, Entry]):
        self._entries = entries

    def __getitem__(self, name: str) -> Callable:
        if name not in self._entries:
            raise KeyError(f"unknown reward {name!r}; known: {', '.join(sorted(self._entries))}")
        return _resolve(self._entries[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, name: str) -> Entry:
        return self._entries[name]

    def __repr__(self) -> str:
        return f"RewardRegistry({sorted(self._entries)})"


REWARDS = RewardRegistry(_ENTRIES)


def list_rewards() -> list[str]:
    """Registered reward names, sorted."""
    return sorted(_ENTRIES)


def get_reward(name: str, **factory_kwargs) -> Callable:
    """The reward function registered as ``name``. For a factory entry (e.g. ``"legal_judge"``)
    the factory is called with ``factory_kwargs`` and the reward it builds is returned."""
    entry = REWARDS.entry(name) if name in _ENTRIES else None
    if entry is None:
        raise KeyError(f"unknown reward {name!r}; known: {', '.join(list_rewards())}")
    target = _resolve(entry)
    if entry.factory:
        return target(**factory_kwargs)
    if factory_kwargs:
        raise TypeError(f"reward {name!r} is a function, not a factory: pass its options when calling it")
    return target


def register_reward(
    name: str, reward: Callable | str, *, factory: bool = False, doc: str = "", replace: bool = False
) -> None:
    """Make ``reward`` available as ``get_reward(name)`` and by name in a training config.

    ``reward`` is a function with TRL's reward signature (or a factory, with ``factory=True``), or a
    ``"module:attribute"`` string imported on first use. Registering a taken name raises unless
    ``replace=True``, so a typo cannot silently shadow a course reward."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a reward name must be a non-empty string")
    if name in _ENTRIES and not replace:
        raise ValueError(f"reward {name!r} is already registered ({_ENTRIES[name].target}); pass replace=True")
    if isinstance(reward, str):
        if ":" not in reward:
            raise ValueError(f"a reward target string looks like 'package.module:function', got {reward!r}")
        target = reward
    elif callable(reward):
        target = f"<registered>:{name}"
        _CALLABLES[target] = reward
        doc = doc or (reward.__doc__ or "").strip().split("\n")[0]
    else:
        raise TypeError(f"register_reward needs a function or a 'module:attribute' string, got {type(reward).__name__}")
    _ENTRIES[name] = Entry(target, factory=factory, doc=doc)
