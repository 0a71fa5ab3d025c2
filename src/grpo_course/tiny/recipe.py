"""The GRPO recipe that makes the tiny model learn on a 2-core CPU (reused by the stage-04 pipeline).

``TINY_GRPO`` holds keyword arguments for ``trl.GRPOConfig``; ``TINY_REWARDS`` names reward functions in
``grpo_course.rewards.REWARDS``. Why these values (measured with ``benchmarks/tiny_lab.py`` and probes
on 2026-11-22, 2 shared CPU cores):

- ``num_generations=8`` with 8 prompts per step (64 completions): the SFT model samples the right
  operation on a subtraction problem about a third of the time, so almost every such group holds a
  right and a wrong answer (reward variance: a learning signal). Problems it already solves give
  zero-std groups, hence ``frac_reward_zero_std`` of about 0.4.
- ``max_completion_length=40``: the longest correct solution is 26 tokens with EOS; 40 leaves room.
- ``learning_rate=1.5e-4``, constant, far above TRL's default 1e-6 (a 0.4M-parameter model trained
  from scratch needs it). Probes on an earlier, less-trained SFT model: 1e-4 flipped the flaw after
  about 15 steps; 3e-4 (linear decay) and 5e-4 flipped it within 5-10 steps but then damaged the
  arithmetic (held-out accuracy fell back to 58-90%).
- ``max_steps=20``: held-out greedy accuracy jumps from 36% to 100% between steps 6 and 8 on every
  seed measured; 20 steps leave a wide margin and take about 20 s on an idle 2-core CPU.
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
    "max_steps": 20,
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
