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

Each task is one :class:`Task` (:mod:`.base`, the registry too) in its own module: :mod:`.gsm8k`,
:mod:`.code`, :mod:`.medcalc`, :mod:`.legal_qa`. ``get_task("code")`` finds it;
``grpo_course.train.train("medcalc")`` trains it with the one pipeline (the task brings its model per
profile, lengths, reward weights, judge panel and cost plan), ``grpo_course.evaluate.evaluate_task``
grades held-out completions with its metric; ``grpo-course train --task T`` and ``grpo-course eval
--task T`` call them. On CPU each task beyond GSM8K runs offline on a handful of rows in the hub
dataset's schema (``data/tasks/<task>/``) with a tiny character-level model (:mod:`.tiny_text`).

Importing this package does not import torch, transformers or datasets.
"""

from . import code, gsm8k, legal_qa, medcalc  # noqa: F401  (each registers its task)
from .base import TASKS, HubSource, Scored, Task, TaskData, get_task, list_tasks, register_task

__all__ = ["TASKS", "HubSource", "Scored", "Task", "TaskData", "get_task", "list_tasks", "register_task"]
