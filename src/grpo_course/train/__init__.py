"""Stage 04: GRPO training, one pipeline for every hardware profile and every task.

``train(RunConfig(task="gsm8k", steps=30))``, or ``train("gsm8k", steps=30)`` (the keywords build the
:class:`RunConfig`), builds everything from the task and the profile and returns a :class:`TrainResult`;
a re-run resumes an interrupted run and trains a finished one afresh (``resume="interrupted"``).
Modules: :mod:`.run` (``RunConfig``, printed at the start of every run), :mod:`.data` (a task's rows as
TRL datasets), :mod:`.config` (GRPOConfig with a reason per setting), :mod:`.monitor` (live panel,
warnings, JSONL logs), :mod:`.sft` (format priming), :mod:`.pipeline` (``train``). Below it:
:mod:`grpo_course.tasks` (what to train on), :mod:`grpo_course.checkpoint` (run folders, Drive, resume),
:mod:`grpo_course.compare` (before/after), :mod:`grpo_course.models` (the model per profile and task).

Importing this package does not import torch, transformers, TRL or Unsloth: on a GPU the notebook calls
:func:`prepare_runtime` first, which imports Unsloth before anything else loads TRL.
"""

from ..tasks import TASKS, Task, TaskData, get_task, register_task
from .pipeline import TrainResult, prepare_runtime, resolve_profile, train
from .run import RunConfig

__all__ = ["TASKS", "RunConfig", "Task", "TaskData", "TrainResult", "get_task", "prepare_runtime", "register_task",
           "resolve_profile", "train"]
