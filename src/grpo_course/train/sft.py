"""Optional SFT format priming: a few dozen supervised steps on well-formed answers before GRPO.

The seeds' "SFT cold start": a model that never writes the answer tags earns no reward, every group is
all zeros, and GRPO wastes its samples on unparseable outputs. Unsloth's FP8 Llama notebook primes on
~60-80 examples for 100 steps for the same reason (the saved output of nb/Llama_FP8_GRPO.ipynb in
github.com/unslothai/notebooks: 78 examples, batch 2 x 2, lr 2e-4, loss 1.24 -> 0.44). We build the
demonstrations from the task's own gold solutions (GSM8K's worked answers, written in the course's
think/answer format), train on the completion only, and stop after ``steps`` steps.

On by default on GPU profiles; off on ``cpu-tiny``, whose model is already SFT'd on the format.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..hardware import Profile
from ..tasks import Task, get_task

DEFAULT_SFT_STEPS = 40
DEFAULT_SFT_EXAMPLES = 80


@dataclass
class PrimingResult:
    steps: int
    examples: int
    first_loss: float | None
    last_loss: float | None

    def report(self) -> str:
        def fmt(x):
            return "n/a" if x is None else f"{x:.3f}"

        return (f"SFT format priming: {self.steps} steps on {self.examples} demonstrations, "
                f"loss {fmt(self.first_loss)} -> {fmt(self.last_loss)}")


def priming_rows(task: Task | str, train_rows, n: int = DEFAULT_SFT_EXAMPLES) -> list[dict]:
    """Prompt-completion rows (TRL's conversational format) from the first ``n`` training rows."""
    task = get_task(task)
    if task.demonstration is None:
        raise ValueError(f"Task {task.name!r} has no demonstration builder, so it cannot be SFT-primed.")
    rows = []
    for row in list(train_rows)[:n]:
        prompt = row["prompt"] if "prompt" in row else task.to_prompt(row)
        rows.append({"prompt": prompt, "completion": [{"role": "assistant", "content": task.demonstration(row)}]})
    return rows


def sft_settings(profile: Profile, output_dir: str, steps: int, seed: int = 0) -> dict:
    """SFTConfig keywords, with the reason for each."""
    kwargs = {
        "output_dir": output_dir,
        "max_steps": steps,  # "a few dozen steps": enough to learn the tags, too few to memorise answers
        "per_device_train_batch_size": 2,  # Unsloth's priming recipe: batch 2 x accumulation 2
        "gradient_accumulation_steps": 2,
        "learning_rate": 2e-4,  # Unsloth's priming value for LoRA (adapters need a much higher rate than full FT)
        "lr_scheduler_type": "linear",
        "warmup_steps": 0.1,  # fraction of max_steps (transformers 5)
        "completion_only_loss": True,  # learn to write answers, not to predict the questions
        "max_length": profile.max_prompt_length + profile.max_completion_length,
        "logging_steps": max(1, min(5, steps // 2)),  # every 5 steps; a short priming still logs its loss
        "save_strategy": "no",  # short; the GRPO checkpoints cover the adapter afterwards
        "report_to": "none",
        "seed": seed,
        "disable_tqdm": False,
    }
    if profile.device == "cpu":
        kwargs.update(use_cpu=True, bf16=False)
    else:
        from .. import gpu

        precision = {k: v for k, v in gpu.grpo_config_overrides(profile).items() if k in ("bf16", "fp16")}
        kwargs.update(precision)
    return kwargs


def prime_format(model, tokenizer, task: Task | str, train_rows, profile: Profile, output_dir: str,
                 steps: int = DEFAULT_SFT_STEPS, examples: int = DEFAULT_SFT_EXAMPLES, seed: int = 0,
                 **overrides) -> PrimingResult:
    """Run the priming in place on ``model`` (the LoRA adapter, or all weights without one)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    rows = priming_rows(task, train_rows, examples)
    args = SFTConfig(**{**sft_settings(profile, output_dir, steps, seed), **overrides})
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    trainer.train()
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    return PrimingResult(trainer.state.global_step, len(rows), losses[0] if losses else None,
                         losses[-1] if losses else None)
