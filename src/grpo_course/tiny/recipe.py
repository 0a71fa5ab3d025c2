"""The GRPO recipe that makes the tiny model learn on a 2-core CPU (reused by the stage-04 pipeline).

``TINY_GRPO`` holds keyword arguments for ``trl.GRPOConfig``; ``TINY_REWARDS`` names reward functions in
``grpo_course.rewards.REWARDS``. Why these values (measured in ``benchmarks/tiny_lab.py``):

- ``num_generations=8`` with 8 prompts per step (64 completions): the SFT model gets a subtraction
  problem right about a third of the time, so a group of 8 almost always holds both a right and a
  wrong answer (reward variance, i.e. a learning signal); problems it always solves give zero-std groups.
- ``max_completion_length=40``: the longest solution is 31 tokens; 40 leaves room without waste.
- ``learning_rate`` is far above TRL's default 1e-6: a model this small, trained from scratch, needs it.
- ``beta=0.0`` (no reference model, TRL's default) and ``loss_type="dapo"`` (TRL's default).
- ``gradient_checkpointing=False`` and ``bf16=False``: fp32 on CPU and no recomputation, for speed.
"""

from __future__ import annotations

TINY_GRPO: dict = {
    "num_generations": 8,
    "per_device_train_batch_size": 64,
    "gradient_accumulation_steps": 1,
    "max_completion_length": 40,
    "temperature": 1.0,
    "learning_rate": 1.5e-4,
    "lr_scheduler_type": "constant",
    "warmup_steps": 0,
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "beta": 0.0,
    "loss_type": "dapo",
    "scale_rewards": "group",
    "max_steps": 30,
    "logging_steps": 1,
    "gradient_checkpointing": False,
    "bf16": False,
    "use_cpu": True,
    "save_strategy": "no",
    "report_to": "none",
    "disable_tqdm": False,
}

# The course's stage-02 rewards, summed by TRL: tag (0.5 format + 1.0 correct answer) and the seeds'
# composite (0.2 format + 0.6 correct + 0.2 for two or more true, grounded steps); range 0..2.5.
TINY_REWARDS: list[str] = ["tag", "composite_math"]


def grpo_config(output_dir: str, seed: int = 0, **overrides):
    """A ``trl.GRPOConfig`` with :data:`TINY_GRPO`, ``seed`` and any overrides."""
    from trl import GRPOConfig

    kwargs = {**TINY_GRPO, "seed": seed, "data_seed": seed, **overrides}
    return GRPOConfig(output_dir=output_dir, **kwargs)
