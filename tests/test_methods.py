"""The method comparison (grpo_course.methods): the decision table and the critic's memory from the planner."""

from __future__ import annotations

import pytest

from grpo_course.lora.memory import plan_memory
from grpo_course.methods import METHODS, critic_memory


def test_decision_table_rows():
    rows = {r["method"]: r for r in METHODS}
    assert set(rows) == {"GRPO", "PPO + reward model", "DPO / ORPO"}
    assert rows["GRPO"]["critic / value network"].startswith("no")
    assert rows["PPO + reward model"]["critic / value network"].startswith("yes")
    assert all(set(r) == {"method", "learns from", "critic / value network", "best for"} for r in METHODS)


@pytest.mark.parametrize("model", ["llama-3.2-1b", "llama-3.2-3b"])
def test_ppo_adds_a_critic_and_a_reward_model_to_the_grpo_plan(model):
    plan = plan_memory(model, "t4")
    cost = critic_memory(model, "t4")
    weights = plan.term("base weights").gib
    assert cost.grpo_gib == pytest.approx(plan.peak_gib)
    assert cost.reward_model_gib == pytest.approx(weights)
    assert weights < cost.critic_gib < 2 * weights  # its own base weights plus a small adapter and activations
    assert cost.ppo_gib == pytest.approx(plan.training_gib + cost.critic_gib + cost.reward_model_gib)
    assert cost.row()["PPO fits"] == cost.ppo_fits == (cost.ppo_gib <= cost.usable_gib)


def test_the_3b_model_fits_a_t4_with_grpo_but_not_with_ppo():
    cost = critic_memory("llama-3.2-3b", "t4")
    assert cost.grpo_fits and not cost.ppo_fits
