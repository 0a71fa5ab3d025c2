"""PPO, DPO and GRPO side by side: what each learns from, whether it needs a critic, and what the critic costs.

:data:`METHODS` is the seeds' method decision table (the GRPO guide among the course's sources: signal type,
critic or value network, best use), one row per method. :func:`critic_memory` puts a number on the "no value
network" argument with the stage-03 memory planner (:func:`grpo_course.lora.memory.plan_memory`): the GRPO
step's estimate, and the same step with what PPO adds for LLMs, a value model (the critic) as large as the
policy, trained alongside it with its own LoRA adapter, and a reward model scoring the completions.

Assumptions of the PPO estimate (it is an estimate, not a measurement): the critic has its own copy of the
base weights (a value model is a separate network), its own LoRA weights, gradients and optimizer state, and
the policy's activations without the vocabulary logits (its head outputs one number per token); the reward
model is a third copy of the base weights, forward only. Sharing weights between policy and critic would
save the copy but couple their training; the course does not model that.
"""

from __future__ import annotations

from dataclasses import dataclass

METHODS: list[dict] = [
    {"method": "GRPO", "learns from": "a scalar reward per completion (often a verifier)",
     "critic / value network": "no: the group's mean reward is the baseline",
     "best for": "math, code, verifiable reasoning; memory-efficient RL"},
    {"method": "PPO + reward model", "learns from": "a learned reward model's score of each completion",
     "critic / value network": "yes: a value network predicts the expected reward",
     "best for": "chat alignment, several objectives, online RLHF"},
    {"method": "DPO / ORPO", "learns from": "pairs of answers, one preferred",
     "critic / value network": "no (and no sampling during training)",
     "best for": "tone, helpfulness, style: no verifier available"},
]


@dataclass(frozen=True)
class CriticCost:
    """One model/profile: the GRPO step's planner estimate and PPO's (GiB)."""

    model: str
    gpu: str
    usable_gib: float
    grpo_gib: float
    critic_gib: float  # the value model's weights, adapter, gradients, optimizer state and activations
    reward_model_gib: float
    ppo_gib: float

    @property
    def grpo_fits(self) -> bool:
        return self.grpo_gib <= self.usable_gib

    @property
    def ppo_fits(self) -> bool:
        return self.ppo_gib <= self.usable_gib

    def row(self) -> dict:
        return {"model": self.model, "GPU": self.gpu, "usable GiB": round(self.usable_gib, 2),
                "GRPO GiB": round(self.grpo_gib, 2), "critic GiB": round(self.critic_gib, 2),
                "reward model GiB": round(self.reward_model_gib, 2), "PPO GiB": round(self.ppo_gib, 2),
                "GRPO fits": self.grpo_fits, "PPO fits": self.ppo_fits}


def critic_memory(model: str = "llama-3.2-1b", profile: str = "t4", **plan_kwargs) -> CriticCost:
    """The planner's GRPO estimate for ``model`` on ``profile`` and the same step with a critic and a reward
    model added (see the module doc for what is assumed)."""
    from .lora.memory import plan_memory

    plan = plan_memory(model, profile, **plan_kwargs)

    def named(prefix: str) -> float:
        return sum(t.gib for t in plan.terms if t.name.startswith(prefix))

    weights = named("base weights")
    adapter = named("LoRA weights") + named("optimizer state")
    critic_always = weights + adapter
    critic_training = named("LoRA gradients") + named("activations")
    reward_model = weights
    ppo = max(plan.generation_gib + critic_always + reward_model,
              plan.training_gib + critic_always + critic_training + reward_model)
    return CriticCost(plan.model, plan.gpu.name, plan.limit_gib, plan.peak_gib, critic_always + critic_training,
                      reward_model, ppo)
