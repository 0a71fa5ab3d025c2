"""Task ``gsm8k``: grade-school math word problems; the answer is one number (the course's default).

**Data.** ``openai/gsm8k`` (Cobbe et al. 2021; config ``main``; MIT): train 7,473 / test 1,319 problems,
columns ``question`` and ``answer`` (a worked solution with ``<<48/2=24>>`` calculator annotations,
ending in ``#### 72``). On CPU: the project's generated GSM8K-style problems (``data/tiny/problems``)
with the same columns, for the course's tiny model.

**Reward.** ``"tag"`` = ``tag_format`` + ``tag_answer`` (stage 02; TRL sums them, exactly ``tag_reward``,
0..1.5; logged as two parts so the panel shows format and correctness separately); ``"composite"``;
``"answer"``. On ``cpu-tiny`` the tiny recipe's rewards (``grpo_course.tiny.recipe.TINY_REWARDS``).

**Metric.** Held-out accuracy with the lenient grader; stage 05's math evaluation (``grpo-course eval``)
adds the strict grader, pass@k, maj@k and the reward-hacking audit.
"""

from __future__ import annotations

import re

from ..chat_format import build_messages, format_response
from ..hardware import Profile
from ..tiny.recipe import TINY_REWARDS
from .base import HubSource, Row, Task, TaskData, register_task

HUB_ID = "openai/gsm8k"
CONFIG = "main"
TEST_SIZE = 1319
_ANNOTATION = re.compile(r"<<[^<>]*>>")

SOURCES = {  # local files: data/tiny/problems (paths relative to data/tasks/gsm8k)
    "train": HubSource(HUB_ID, "train", "MIT", "7,473 problems", "../../tiny/problems/train.jsonl", config=CONFIG,
                       url="https://huggingface.co/datasets/openai/gsm8k"),
    "heldout": HubSource(HUB_ID, "test", "MIT", "1,319 problems", "../../tiny/problems/test.jsonl", config=CONFIG,
                         url="https://huggingface.co/datasets/openai/gsm8k"),
}


def reasoning_and_answer(answer_text: str) -> tuple[str, str]:
    """Split a GSM8K gold answer into its reasoning (calculator annotations removed) and final answer."""
    reasoning, _, final = answer_text.rpartition("####")
    if not _:
        return "", answer_text.strip()
    return _ANNOTATION.sub("", reasoning).strip(), final.strip().replace(",", "")


def demonstration(row: Row) -> str:
    """A completion in the course's format built from the gold solution (for SFT format priming)."""
    reasoning, answer = reasoning_and_answer(row["answer"])
    return format_response(reasoning or "The answer follows.", answer)


def to_prompt(row: Row) -> list[dict]:
    return build_messages(row["question"])


def is_correct(completion: str, row: Row) -> bool:
    """Lenient grading (the evaluation mode of ``grpo_course.rewards.is_correct``)."""
    from ..rewards import is_correct as graded

    return bool(graded(completion, row["answer"], mode="lenient"))


def _keep_columns(rows) -> list[Row]:
    return [{"question": r["question"], "answer": r["answer"]} for r in rows]


def load(profile: Profile) -> TaskData:
    """GSM8K from the hub on GPU profiles; the project's generated GSM8K-style problems on CPU.

    Both have GSM8K's ``question``/``answer`` columns and a test split that is never trained on.
    """
    if profile.device == "cpu":
        from ..tiny.problems import load_split

        return TaskData(_keep_columns(load_split("train")), _keep_columns(load_split("test")),
                        "data/tiny/problems (the project's generated GSM8K-style problems)")
    from datasets import load_dataset

    ds = load_dataset(HUB_ID, CONFIG)
    return TaskData(_keep_columns(ds["train"]), _keep_columns(ds["test"]), f"{HUB_ID} ({CONFIG}) from the Hugging Face hub")


TASK = register_task(Task(
    name="gsm8k",
    description="grade-school math word problems; the answer is one number",
    load=load,
    to_prompt=to_prompt,
    reward_sets={
        "tag": ("tag_format", "tag_answer"),
        "composite": ("composite_math",),
        "composite_math": ("composite_math",),
        "answer": ("tag_answer",),
    },
    default_reward="tag",
    is_correct=is_correct,
    demonstration=demonstration,
    notes={"heldout": "GSM8K's test split (1,319 problems) on GPU; data/tiny/problems/test.jsonl on CPU"},
    sources=SOURCES,
    metric="held-out accuracy (lenient grader); stage 05 adds strict, pass@k, maj@k and the hacking audit",
    colab="any GPU; Llama-3.2-1B (FP8 on an L4)",
    cpu_reward=tuple(TINY_REWARDS),
    math_answers=True,
))
