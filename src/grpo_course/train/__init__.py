"""Stage 04: GRPO training, one pipeline for every hardware profile and every task.

``train(task="gsm8k", profile=None, steps=None, output_dir=None, resume="interrupted", reward=None, ...)`` builds
everything from the profile and returns a :class:`TrainResult`. Modules: :mod:`.tasks` (data, prompt,
rewards per task), :mod:`.config` (GRPOConfig with a reason per setting), :mod:`.monitor` (live panel,
warnings, JSONL logs), :mod:`.checkpoint` (Drive, resume), :mod:`.compare` (before/after),
:mod:`.sft` (format priming), :mod:`.pipeline` (``train``).

Importing this package does not import torch, transformers, TRL or Unsloth: on a GPU the notebook calls
:func:`prepare_runtime` first, which imports Unsloth before anything else loads TRL.
"""

from .pipeline import TrainResult, prepare_runtime, resolve_profile, train
from .tasks import TASKS, Task, TaskData, get_task, register_task

__all__ = ["TASKS", "Task", "TaskData", "TrainResult", "get_task", "prepare_runtime", "register_task",
           "resolve_profile", "train"]
