"""The course's training tasks: the GRPO systems of the source documents, one name each.

==========  ==========================================  ===============================  ==========================
task        data (hub id, split; licence)                reward (weights)                 metric
==========  ==========================================  ===============================  ==========================
gsm8k       openai/gsm8k main, train / test; MIT         tag format + tag answer          held-out accuracy
code        google-research-datasets/mbpp full, train    1.0 code_pass_fraction           pass@k on HumanEval
            (CC BY 4.0); eval openai/openai_humaneval    + 0.2 format                     (hidden tests, sandbox)
            test (MIT)
medcalc     ncbi/MedCalc-Bench-v1.0 train / test;        1.0 numeric_tolerance (per-row   tolerance accuracy
            CC BY-SA 4.0                                 atol) + 0.2 format
legal-qa    ymoslem/Law-StackExchange train, 1 in 5      1.0 two LLM judges (rubric)      judge score + inter-judge
            held out; CC BY-SA 4.0                       + 0.2 format                     agreement
==========  ==========================================  ===============================  ==========================

The registry is the stage-04 one (:mod:`grpo_course.train.tasks`): ``get_task("code")`` works there
and here, and ``grpo_course.train.train("medcalc")`` trains the task. :func:`train` adds what a task
beyond GSM8K needs (its model per profile, lengths, reward weights, judge panel and cost plan) and
:func:`evaluate_task` grades held-out completions with the task's metric; ``grpo-course train --task T``
and ``grpo-course eval --task T`` call them. Each task module documents its data, prompt, rewards,
pitfalls and metric: :mod:`.code`, :mod:`.medcalc`, :mod:`.legal_qa`. On CPU each runs offline on a
handful of rows in the hub dataset's schema (``data/tasks/<task>/``) with a tiny character-level model
(:mod:`.tiny_text`).

Importing this package does not import torch, transformers or datasets.
"""

from ..train.tasks import TASKS, Task, TaskData, get_task, register_task
from . import code, legal_qa, medcalc  # noqa: F401  (each registers its task)
from .base import CourseTask, HubSource, Scored

_LAZY = {"train": ".runner", "evaluate_task": ".runner", "TaskEvaluation": ".runner"}


def list_tasks() -> list[str]:
    """Registered task names, GSM8K first."""
    return sorted(TASKS, key=lambda n: (n != "gsm8k", n))


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["TASKS", "CourseTask", "HubSource", "Scored", "Task", "TaskData", "evaluate_task", "get_task",
           "list_tasks", "register_task", "train", "TaskEvaluation"]
