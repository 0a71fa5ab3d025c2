"""The model a run or an evaluation uses, for a hardware profile and a task: one place for both.

* :func:`prepare_runtime`: on a GPU profile Unsloth is imported first (it must patch trl, transformers
  and peft before they load); on CPU nothing GPU-related is touched.
* :func:`load_model`: ``(model, tokenizer, peft_config)`` for training. GPU: ``grpo_course.gpu``
  (Unsloth, FP8 on an L4, fp16 on a T4) already wrapped with the stage-03 LoRA (``peft_config`` None);
  CPU: the course's tiny model (a task with a tiny character model brings that one, :mod:`grpo_course.tasks.tiny_text`)
  plain, with the LoRA config for GRPOTrainer to apply.
* :func:`tiny_text_model`: a task's tiny character model on CPU (evaluation loads it too).

Importing this module does not import torch.
"""

from __future__ import annotations

import os

from .hardware import Profile, current_profile, get_profile
from .tasks import Task, get_task


def resolve_profile(profile: Profile | str | None) -> Profile:
    """A profile, its name, or None (this runtime's profile)."""
    if profile is None:
        return current_profile()[0]
    return get_profile(profile) if isinstance(profile, str) else profile


def prepare_runtime(profile: Profile | str | None = None) -> Profile:
    """Call before anything imports trl or transformers: on GPU profiles this imports Unsloth first. On the
    CPU it tells DeepSpeed (which TRL imports when installed) that the CPU is meant, so it does not warn
    "Setting accelerator to CPU. If you have GPU ... we were unable to detect it"."""
    profile = resolve_profile(profile)
    if profile.device == "cpu":
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    else:
        from . import gpu

        gpu.import_unsloth(profile)
    return profile


def tiny_text_model(task: Task | str, progress: bool = True):
    """(model, tokenizer, TinyTextModel) of the task's tiny character model (committed, else built)."""
    from .tasks import tiny_text

    task = get_task(task)
    built = tiny_text.build_or_load(task.name, task.tiny_pairs(), committed=task.data_folder / "tiny",
                                    progress=progress)
    model, tokenizer = tiny_text.load(built.path)
    return model, tokenizer, built


def load_model(profile: Profile, task: Task | str | None = None):
    """(model, tokenizer, peft_config): GPU models come back already LoRA-wrapped by Unsloth (peft_config
    None); CPU models come back plain with the LoRA config for GRPOTrainer to apply. With ``task``, the
    task's own model for the profile (on CPU a task's tiny character model, if it has one)."""
    from .lora import lora_settings, to_peft_config

    if task is not None:
        task = get_task(task)
        if profile.device == "cpu" and task.uses_tiny_text_model:
            model, tokenizer, _ = tiny_text_model(task, progress=False)
            return model, tokenizer, to_peft_config(lora_settings(profile.name))
        profile = task.profile_for(profile)
    settings = lora_settings(profile.name)
    if profile.device != "cpu":
        from . import gpu

        model, tokenizer = gpu.load_model_and_tokenizer(profile, settings)
        return model, tokenizer, None
    if profile.name == "cpu-tiny":
        from .tiny import load_tiny

        model, tokenizer = load_tiny("sft")
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(profile.model_path(), dtype="float32")
        tokenizer = AutoTokenizer.from_pretrained(profile.model_path())
    return model, tokenizer, to_peft_config(settings)
