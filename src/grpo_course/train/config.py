"""GRPOConfig from the hardware profile: every setting carries the reason it was chosen.

:func:`grpo_settings` returns ``{field: Setting(value, why, source)}``; :func:`make_grpo_config`
turns it into TRL's ``GRPOConfig``; :func:`settings_table` prints the reasons (the notebook shows it).
Precedence, lowest first: the seeds' recipe and the pipeline's plumbing, then the profile's sizes,
then the tiny model's recipe on ``cpu-tiny`` (``grpo_course.tiny.recipe.TINY_GRPO``, the settings
that make it learn on a CPU) or ``grpo_course.gpu.grpo_config_overrides`` on GPU profiles, then
the caller's ``overrides``.

Facts used below, with their sources: TRL 1.14 defaults ``beta=0``, ``loss_type="dapo"``,
``learning_rate=1e-6``, ``bf16=True`` (which raises on a CPU without ``use_cpu``), and no longer has
``max_prompt_length`` (removed in TRL 0.28): the field defaults in ``trl/trainer/grpo_config.py`` and
``trl/trainer/base_config.py`` of the pinned wheel (github.com/huggingface/trl); transformers 5 folds
``warmup_ratio`` into ``warmup_steps`` (a value below 1 is a fraction of the steps: ``TrainingArguments``,
github.com/huggingface/transformers; ``tests/test_train.py`` checks it on the installed package); Unsloth
silently swaps TRL's defaults for ``beta=0.001`` and ``loss_type="bnpo"`` unless they are passed (the GRPO
default overrides in ``unsloth/models/rl.py``, github.com/unslothai/unsloth; ``tests/test_gpu_contracts.py``
reads them from the pinned wheel), so we pass them.

Importing this module does not import torch or TRL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..hardware import Profile


@dataclass(frozen=True)
class Setting:
    value: Any
    why: str
    source: str


SEED_LEARNING_RATE = 5e-6  # seed 000's recipe; also the Unsloth run that visibly learns (Llama-3.2-3B, T4)
SEED_WARMUP = 0.1  # seed 000: warmup_ratio 0.1


def _seed_recipe(profile: Profile) -> dict[str, Setting]:
    s = "seed recipe"
    return {
        "learning_rate": Setting(SEED_LEARNING_RATE, "seeds' value: low enough that LoRA updates do not wreck the "
                                 "base model's skills, high enough to move in a few hundred steps", s),
        "warmup_steps": Setting(SEED_WARMUP, "seeds' warmup ratio 0.1 (a float below 1 is a fraction of max_steps "
                                "in transformers 5): early rewards are noisy, so start gently", s),
        "lr_scheduler_type": Setting("cosine", "decay to ~0 at the end, as in Unsloth's GRPO notebook whose saved "
                                     "run learns (Advanced Llama-3.2-3B)", s),
        "beta": Setting(0.04, "KL penalty to the reference (the adapter switched off, so no second model in "
                        "memory): the seeds' guard against reward hacking, and it makes KL visible in the panel", s),
        "loss_type": Setting("dapo", "TRL's default, passed explicitly because Unsloth would silently switch "
                             "to 'bnpo'", s),
        "temperature": Setting(1.0, "diverse samples inside a group; identical samples give zero advantage "
                               "(seeds: 0.7-1.0)", s),
        "max_grad_norm": Setting(1.0, "clip rare huge gradients from one lucky group", s),
        "num_iterations": Setting(1, "one update per generation batch (on-policy): the simplest GRPO, and "
                                  "every checkpoint falls on a generation boundary, so resume is exact", s),
        "scale_rewards": Setting("group", "divide by each group's std, as in the GRPO paper (TRL's default)", s),
        "mask_truncated_completions": Setting(False, "keep truncated completions in the loss: early on most are "
                                              "long, and masking them would discard most of the signal; the "
                                              "panel's truncation ratio shows when to raise the length", s),
    }


def _plumbing(profile: Profile, output_dir: str | Path, save_steps: int, seed: int) -> dict[str, Setting]:
    p = "pipeline"
    out = {
        "output_dir": Setting(str(output_dir), "checkpoints and logs (Google Drive on Colab when mounted)", p),
        "logging_steps": Setting(1, "one row per step for the live panel; a GRPO step is slow, so logging is free", p),
        "save_strategy": Setting("steps", "checkpoint every save_steps: Colab sessions die", p),
        "save_steps": Setting(save_steps, "how much work a crash can lose", p),
        "save_total_limit": Setting(2, "keep two, in case the session dies while the newest is being written", p),
        "save_only_model": Setting(False, "save optimizer, scheduler and RNG state too, so a resumed run "
                                   "continues exactly", p),
        "report_to": Setting("none", "no account needed; the panel and JSONL logs show everything", p),
        "disable_tqdm": Setting(True, "our monitor draws one progress bar with the reward in it instead of "
                                "transformers' 30-column table", p),
        "log_completions": Setting(False, "the monitor writes sample groups to samples.jsonl instead", p),
        "remove_unused_columns": Setting(False, "reward functions read dataset columns such as `answer`", p),
        "seed": Setting(seed, "same seed, same run (data order, sampling)", p),
    }
    if profile.device == "cpu":
        out["use_cpu"] = Setting(True, "no GPU: without it transformers raises 'Your setup doesn't support "
                                 "bf16/gpu'", p)
        out["bf16"] = Setting(False, "fp32 on CPU: exact, and CPU bf16 autocast is slower on most CPUs", p)
        out["gradient_checkpointing"] = Setting(False, "a tiny model needs no memory saving; recomputation "
                                                "would only cost time", p)
    return out


def _from_profile(profile: Profile, steps: int | None) -> dict[str, Setting]:
    p = f"profile {profile.name}"
    return {
        "num_generations": Setting(profile.num_generations, "G completions per prompt (seeds: 4-8); more "
                                   "means fewer all-equal groups but proportionally more generation time", p),
        "per_device_train_batch_size": Setting(profile.per_device_train_batch_size, "counts completions, not "
                                               "prompts (TRL >= 0.15): prompts per step = this / G", p),
        "gradient_accumulation_steps": Setting(profile.gradient_accumulation_steps, "the seed accumulates 4; "
                                               "the profile keeps steps short enough for a Colab session", p),
        "max_completion_length": Setting(profile.max_completion_length, "room for the reasoning; watch the "
                                         "truncation ratio", p),
        "max_steps": Setting(steps or profile.max_steps, "steps this profile can afford", p),
    }


# The tiny recipe's learning rate is tuned for full fine-tuning (grpo_course.tiny.lab). A LoRA adapter starts
# with B = 0 and moves far less per step at the same rate. Measured here on the committed tiny model (30 steps,
# 200 held-out problems, greedy): full FT at 1.5e-4: 37% -> 99%; LoRA r=8 at 1.5e-4: 37% -> 37%; at 1.5e-3:
# 37% -> 99%; at 5e-3: -> 95.5%; at 1.5e-2 the policy collapsed (2%).
TINY_LORA_LR_FACTOR = 10


def _tiny_recipe(lora: bool) -> dict[str, Setting]:
    from ..tiny.recipe import TINY_GRPO

    why = "the tiny model's recipe (grpo_course.tiny.recipe.TINY_GRPO): tuned so it learns on a CPU in a minute"
    out = {k: Setting(v, why, "tiny recipe") for k, v in TINY_GRPO.items()}
    if lora and "learning_rate" in TINY_GRPO:
        out["learning_rate"] = Setting(
            round(TINY_GRPO["learning_rate"] * TINY_LORA_LR_FACTOR, 12),
            f"the tiny recipe's rate x {TINY_LORA_LR_FACTOR}: the recipe is tuned for full fine-tuning, and a LoRA "
            "adapter (B starts at 0) barely moves at that rate; ten times more learns as fast, much more "
            "collapses (measured, see TINY_LORA_LR_FACTOR in grpo_course.train.config)", "tiny recipe")
    return out


def _gpu_overrides(profile: Profile) -> dict[str, Setting]:
    from .. import gpu

    reasons = gpu.grpo_config_reasons(profile)
    return {k: Setting(v, reasons.get(k, f"grpo_course.gpu's choice for {profile.name}"), "gpu")
            for k, v in gpu.grpo_config_overrides(profile).items()}


def default_save_steps(profile: Profile) -> int:
    # A GPU step takes 30-100 s on Colab (the saved outputs of Unsloth's GRPO notebooks, github.com/unslothai/
    # notebooks nb/: about 50 s/step on a T4, 100 s on an L4): 10 steps lose at most
    # ~15 min. The tiny model's steps take a fraction of a second; 10 keeps checkpoints cheap.
    return 10


def grpo_settings(profile: Profile, output_dir: str | Path, steps: int | None = None,
                  save_steps: int | None = None, seed: int = 0,
                  overrides: dict[str, Any] | None = None, lora: bool = True) -> dict[str, Setting]:
    """Every GRPOConfig keyword the pipeline sets, with its reason and where it comes from.

    ``lora``: a LoRA adapter is trained (every profile's default); False for full fine-tuning.
    """
    settings = _seed_recipe(profile)
    settings.update(_from_profile(profile, None))
    if profile.name == "cpu-tiny":
        settings.update(_tiny_recipe(lora))
    elif profile.device != "cpu":
        settings.update(_gpu_overrides(profile))
    settings.update(_plumbing(profile, output_dir, save_steps or default_save_steps(profile), seed))
    if steps is not None:
        settings["max_steps"] = Setting(steps, "asked for by the caller", "you")
    for key, value in (overrides or {}).items():
        settings[key] = Setting(value, "asked for by the caller", "you")
    check_batch(settings)
    return settings


def check_batch(settings: dict[str, Setting]) -> None:
    """TRL's divisibility rule, with the fix in words (Unsloth would silently raise the batch size)."""
    g = settings["num_generations"].value
    per_device = settings["per_device_train_batch_size"].value
    accum = settings.get("gradient_accumulation_steps", Setting(1, "", "")).value
    if g < 2:
        raise ValueError(f"num_generations={g}: GRPO needs at least 2 completions per prompt to compare.")
    if (per_device * accum) % g:
        raise ValueError(
            f"per_device_train_batch_size ({per_device}) x gradient_accumulation_steps ({accum}) must be a "
            f"multiple of num_generations ({g}): the batch counts completions, and every prompt needs its "
            f"whole group. Try per_device_train_batch_size={g}.")


def grpo_kwargs(settings: dict[str, Setting]) -> dict[str, Any]:
    return {k: s.value for k, s in settings.items()}


def make_grpo_config(settings: dict[str, Setting]):
    """TRL's ``GRPOConfig`` (imports TRL: on GPU, call ``grpo_course.gpu.import_unsloth()`` first)."""
    import dataclasses

    from trl import GRPOConfig

    known = {f.name for f in dataclasses.fields(GRPOConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TypeError(f"GRPOConfig (trl installed here) has no field(s) {unknown}; "
                        "max_prompt_length was removed in trl 0.28: filter long prompts instead.")
    return GRPOConfig(**grpo_kwargs(settings))


def settings_rows(settings: dict[str, Setting], keys=None) -> list[dict]:
    """One dict per setting (``keys`` in that order, default all, grouped by source) for a DataFrame."""
    keys = keys or sorted(settings, key=lambda k: (settings[k].source, settings[k].why, k))
    return [{"setting": k, "value": settings[k].value, "from": settings[k].source, "why": settings[k].why}
            for k in keys]


def settings_table(settings: dict[str, Setting], width: int = 100) -> str:
    """A readable table: field, value, source, why."""
    import textwrap

    lines = [f"{'setting':<30} {'value':<14} {'from':<16} why", "-" * width]
    previous = None
    for key in sorted(settings, key=lambda k: (settings[k].source, settings[k].why, k)):
        s = settings[key]
        text = "(same reason as above)" if s.why == previous else s.why
        previous = s.why
        why = textwrap.wrap(text, max(30, width - 62)) or [""]
        value = str(s.value) if len(str(s.value)) <= 14 else "..." + str(s.value)[-11:]
        lines.append(f"{key:<30} {value:<14} {s.source:<16} {why[0]}")
        lines.extend(f"{'':<62} {w}" for w in why[1:])
    return "\n".join(lines)
