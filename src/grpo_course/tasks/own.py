"""Your own task: a data file, a prompt builder and reward functions, as one :class:`~.base.Task`.

The course's pipeline trains any :class:`~.base.Task` (``grpo_course.train.train(task)``) and
``grpo_course.preflight`` checks it; :func:`own_task` builds one from what a learner brings:

* **data**: a JSONL or CSV file (or a list of dicts), one row per problem, any columns; on a GPU
  profile (Colab) a hub dataset instead, when ``hub=`` names one (``datasets.load_dataset``). CSV
  values arrive as strings (the standard library's ``csv`` reader: no type guessing);
* **prompt**: ``row -> str`` (wrapped in the course's chat prompt, :func:`grpo_course.chat_format.build_messages`)
  or ``row -> list of chat messages``;
* **rewards**: functions with TRL's signature (``completions``, dataset columns as keyword lists,
  ``**kwargs``) or names of course rewards (``"tag_format"``), summed by TRL with ``weights``.

Which reward is a *format* reward and which pays for the *answer* is read from the name
(:func:`reward_role`): ``format`` in the name is a format reward, anything else pays for the answer;
a function may say so itself with ``fn.reward_role = "format" | "answer" | "mixed"``. A completion is
correct (the before/after accuracy) when its answer rewards sum to more than 0.

Rows are split once: ``heldout=`` a second file, else every ``heldout_every``-th row (5: 20%) is held
out and never trained on. Nothing here imports torch; ``datasets`` only for a hub dataset.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from ..chat_format import build_messages
from ..hardware import Profile
from ..jsonl import read_jsonl
from .base import TASKS, Row, Task, TaskData, register_task

FORMAT, ANSWER, MIXED = "format", "answer", "mixed"
# Course rewards that pay for the format and the answer in one number (stage 02): they count for neither side
# of preflight's format-versus-answer split, and never as "a positive answer reward".
MIXED_COURSE_REWARDS = {"tag": "tag_format + tag_answer", "composite_math": "0.2 format + 0.6 answer + 0.2 steps"}
NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def reward_role(name: str, fn: Callable | None = None) -> str:
    """``"format"``, ``"answer"`` or ``"mixed"``: the function's own ``reward_role`` if it has one, else
    ``"format"`` when the name says format, ``"mixed"`` for the course's combined rewards, else ``"answer"``."""
    declared = getattr(fn, "reward_role", None)
    if declared is not None:
        if declared not in (FORMAT, ANSWER, MIXED):
            raise ValueError(f"reward {name!r}: reward_role must be 'format', 'answer' or 'mixed', got {declared!r}")
        return declared
    short = name.rsplit(".", 1)[-1]
    if "format" in short.lower():
        return FORMAT
    return MIXED if short in MIXED_COURSE_REWARDS else ANSWER


def read_rows(source: str | Path | Sequence[dict]) -> tuple[list[dict], str]:
    """The rows of a ``.jsonl`` / ``.json`` (one object per line) or ``.csv`` file, or a list of dicts, and a
    description of where they came from. An empty file, an unknown suffix or a missing file raise ``ValueError``."""
    if not isinstance(source, (str, Path)):
        rows = [dict(r) for r in source]
        where = f"{len(rows)} rows given in Python"
    else:
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"no data file at {path}")
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".json"):
            rows = read_jsonl(path)
        elif suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as f:
                rows = [dict(r) for r in csv.DictReader(f)]
        else:
            raise ValueError(f"{path}: a data file is .jsonl or .csv, not {suffix or 'a file without a suffix'!r}")
        where = path.name
    if not rows:
        raise ValueError(f"{where}: no rows")
    if not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{where}: every row must be an object (a dict of columns)")
    return rows, where


def _hub_rows(hub: str, split: str, config: str | None) -> list[dict]:
    from datasets import load_dataset

    return [dict(r) for r in load_dataset(hub, config, split=split)]


def split_heldout(rows: list[dict], every: int) -> tuple[list[dict], list[dict]]:
    """(train, held-out): every ``every``-th row (the 5th, 10th, ...) is held out."""
    if every < 2:
        raise ValueError(f"heldout_every must be >= 2, got {every}")
    return ([r for i, r in enumerate(rows) if i % every != every - 1],
            [r for i, r in enumerate(rows) if i % every == every - 1])


def _as_messages(prompt: Callable[[Row], str | list[dict]]) -> Callable[[Row], list[dict]]:
    def to_prompt(row: Row) -> list[dict]:
        out = prompt(row)
        if isinstance(out, str):
            return build_messages(out)
        if isinstance(out, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in out):
            return out
        raise TypeError(f"the prompt builder must return a string or a list of chat messages, got {type(out).__name__}")

    return to_prompt


def _register(task_name: str, rewards: Sequence[Callable | str]) -> tuple[tuple[str, ...], dict[str, Callable]]:
    from ..rewards import get_reward, register_reward

    names, functions = [], {}
    for r in rewards:
        if isinstance(r, str):  # a course reward by its registry name
            fn = get_reward(r)
            name = r
        elif callable(r):
            name = f"{task_name}.{getattr(r, '__name__', 'reward')}"
            register_reward(name, r, replace=True)  # re-running a notebook cell redefines the function
            fn = r
        else:
            raise TypeError(f"a reward is a function with TRL's signature or a course reward's name, got {r!r}")
        if name in names:
            raise ValueError(f"reward {name!r} is listed twice")
        names.append(name)
        functions[name] = fn
    return tuple(names), functions


def own_task(name: str, data: str | Path | Sequence[dict] | None, prompt: Callable[[Row], str | list[dict]],
             rewards: Sequence[Callable | str], *, weights: Sequence[float] | None = None,
             answer_column: str = "answer", heldout: str | Path | Sequence[dict] | None = None,
             heldout_every: int = 5, hub: str | None = None, hub_split: str = "train", hub_config: str | None = None,
             demonstration: Callable[[Row], str] | None = None, is_correct: Callable[[str, Row], bool] | None = None,
             description: str = "", register: bool = True) -> Task:
    """A :class:`Task` from your data, prompt builder and rewards (registered under ``name`` unless
    ``register=False``, so ``grpo-course``'s ``--task`` and :func:`~.base.get_task` find it in this process).

    ``answer_column`` names the gold column (checked on every row; preflight puts its edge cases there).
    ``is_correct(completion, row)`` defaults to "the answer rewards sum to more than 0"; ``demonstration(row)``
    (a well-formed correct completion) enables SFT priming and preflight's check that a correct answer scores.
    """
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(f"a task name is lower-case letters, digits, '-' and '_', got {name!r}")
    if name in TASKS and TASKS[name].notes.get("own") != "yes":
        raise ValueError(f"{name!r} is a course task: choose another name for yours")
    if data is None and hub is None:
        raise ValueError("own_task needs data (a JSONL or CSV file, or rows) or hub (a hub dataset id)")
    if not rewards:
        raise ValueError("own_task needs at least one reward function")
    names, functions = _register(name, rewards)
    if weights is not None and len(weights) != len(names):
        raise ValueError(f"{len(weights)} weights for {len(names)} rewards")
    to_prompt = _as_messages(prompt)
    answer_names = [n for n in names if reward_role(n, functions[n]) == ANSWER]
    if is_correct is None and not answer_names:
        raise ValueError("none of the rewards pays for the answer (every name says 'format'): add an answer "
                         "reward, or pass is_correct=")
    w = dict(zip(names, weights)) if weights is not None else dict.fromkeys(names, 1.0)

    def load(profile: Profile) -> TaskData:
        if hub is not None and (data is None or profile.device != "cpu"):
            rows, where = _hub_rows(hub, hub_split, hub_config), f"{hub} {hub_split} from the hub"
        else:
            rows, where = read_rows(data)
        missing = [i for i, r in enumerate(rows) if answer_column not in r]
        if missing:
            raise ValueError(f"{where}: row {missing[0]} has no {answer_column!r} column (answer_column=); "
                             f"its columns: {sorted(rows[missing[0]])}")
        if heldout is not None:
            held, held_where = read_rows(heldout)
            return TaskData(rows, held, f"{where}; held out: {held_where}")
        train, held = split_heldout(rows, heldout_every)
        return TaskData(train, held, f"{where}; every {heldout_every}th row held out ({len(held)} of {len(rows)})")

    def answer_positive(completion: str, row: Row) -> bool:
        columns = {k: [v] for k, v in row.items() if k != "prompt"}
        total = 0.0
        for n in answer_names:
            value = functions[n](completions=[[{"role": "assistant", "content": completion}]],
                                 prompts=[to_prompt(row)], **columns)[0]
            total += w[n] * (value or 0.0)
        return total > 0

    task = Task(
        name=name,
        description=description or f"your own task ({len(names)} reward(s))",
        load=load,
        to_prompt=to_prompt,
        reward_sets={"own": names},
        default_reward="own",
        is_correct=is_correct or answer_positive,
        demonstration=demonstration,
        gold_column=answer_column,
        notes={"own": "yes", "heldout": f"a second file ({heldout})" if heldout is not None
               else f"every {heldout_every}th row"},
        reward_weights={"own": tuple(float(x) for x in weights)} if weights is not None else {},
        metric="held-out accuracy: completions whose answer rewards sum to more than 0",
    )
    return register_task(task) if register else task


# ---- the course's example of "your own data" (notebook 08) ------------------------------------------------

EXAMPLE_FILE = "own_task/take_away.jsonl"  # under data/
EXAMPLE_ROWS = 300
EXAMPLE_SEED = 808


def example_rows(n: int = EXAMPLE_ROWS, seed: int = EXAMPLE_SEED) -> list[dict]:
    """The rows of ``data/own_task/take_away.jsonl``: word problems in which something is taken away (the
    tiny model's weak spot: its demonstrator added where it should subtract), none of them in the tiny
    model's own training or test split, in a learner's own columns: ``problem``, ``result`` (a number)
    and ``topic``. Made by the course's problem generator (:mod:`grpo_course.tiny.problems`), whose words the
    tiny model can read; on a GPU bring any data."""
    from ..tiny.problems import generate_problems, gold_number, load_split

    seen = [p["question"] for split in ("train", "test") for p in load_split(split)]
    rows: list[dict] = []
    batch = 0
    while len(rows) < n:
        for p in generate_problems(2 * n, seed=seed + batch, exclude=seen):
            if p["has_subtraction"] and len(rows) < n:
                rows.append({"problem": p["question"], "result": gold_number(p["answer"]), "topic": p["template"]})
                seen.append(p["question"])
        batch += 1
    return rows
