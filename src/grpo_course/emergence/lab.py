"""R1-Zero on a laptop: GRPO with an answer-only reward, measured on held-out problems at every few steps.

:func:`run_emergence` loads the committed starting model (``data/emergence/sft``), measures it
(:func:`~.measure.measure`), trains it with TRL's ``GRPOTrainer`` on the task's training prompts with
the reward :data:`~.task.REWARD_NAMES` (the answer's correctness only) and records the held-out
measurements every ``measure_every`` steps: the R1-style curve. ``reward="coin"`` swaps in
:func:`coin_reward` (a reward that ignores the answer), the control: whatever rises there, the answer
did not cause it. ``grpo_seconds`` is the wall time of ``trainer.train()`` minus the time spent measuring.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..rewards.math import completion_text
from ..tiny.lab import silence, to_dataset
from ..tiny.recipe import grpo_config
from .measure import measure
from .task import REWARD_NAMES, load_split

# GRPO settings on top of the tiny lab's recipe (grpo_course.tiny.recipe.TINY_GRPO): 8 prompts x 8
# completions per step, temperature 1, constant learning rate, no KL term, TRL's default "dapo" loss
# (token-level: no 1/|o| length bias, see notebooks/10_r1_zero.ipynb).
EMERGENCE_GRPO: dict = {"max_steps": 30, "learning_rate": 1.5e-4, "max_completion_length": 40}
REWARDS = ("answer", "coin")


def coin_reward(completions, **kwargs) -> list[float]:
    """The control reward: 0.0 or 1.0 from a hash of the completion's text, whatever it says.

    Deterministic (the same text always gets the same coin) and blind to the answer, the steps and the
    length, so it carries no information GRPO could use. Range [0, 1]; never raises."""
    out = []
    for c in completions or []:
        try:
            digest = hashlib.sha256(completion_text(c).encode("utf-8", "replace")).digest()
            out.append(float(digest[0] & 1))
        except Exception:  # noqa: BLE001 - a reward never crashes training
            out.append(0.0)
    return out


coin_reward.reward_range = (0.0, 1.0)


def reward_functions(reward: str = "answer") -> list:
    """``"answer"``: the course rewards named in :data:`~.task.REWARD_NAMES`; ``"coin"``: :func:`coin_reward`."""
    if reward == "answer":
        from ..rewards import get_reward

        return [get_reward(name) for name in REWARD_NAMES]
    if reward == "coin":
        return [coin_reward]
    raise ValueError(f"unknown reward {reward!r}; choose from {', '.join(REWARDS)}")


@dataclass
class EmergenceResult:
    seed: int
    reward: str
    steps: int
    before: dict
    after: dict
    grpo_seconds: float
    train_seconds_total: float
    curve: list[dict] = field(default_factory=list)  # held-out measurements against the GRPO step
    history: list[dict] = field(default_factory=list)  # TRL's per-step logs (reward, frac_reward_zero_std, ...)
    settings: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        b, a = self.before["greedy"], self.after["greedy"]
        return (f"seed {self.seed} ({self.reward} reward): greedy steps {b['steps']:.0%} -> {a['steps']:.0%}, "
                f"length {b['length']:.1f} -> {a['length']:.1f} tokens, accuracy {b['accuracy']:.0%} -> "
                f"{a['accuracy']:.0%}; {self.steps} GRPO steps in {self.grpo_seconds:.0f} s")


def _measuring_callback(model_ref: dict, tokenizer, problems, every: int, k: int, seed: int,
                        curve: list, spent: list):
    from transformers import TrainerCallback

    class HeldOutMeasurements(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if every and state.global_step % every == 0:
                t = time.perf_counter()
                curve.append({"step": state.global_step,
                              **measure(model_ref["model"], tokenizer, problems, k=k, seed=seed)})
                spent.append(time.perf_counter() - t)

    return HeldOutMeasurements()


def run_emergence(seed: int = 0, steps: int | None = None, *, reward: str = "answer",
                  model_dir: str | Path | None = None, n_test: int = 200, n_curve: int = 100,
                  measure_every: int = 5, k: int = 4, overrides: dict | None = None,
                  threads: int | None = None, progress: bool = True) -> EmergenceResult:
    """Starting model -> GRPO with ``reward`` on the task's training prompts (see the module doc).

    ``n_test`` held-out problems are measured before and after (greedy and ``k`` samples each);
    every ``measure_every`` steps the first ``n_curve`` of them are measured (not counted in
    ``grpo_seconds``; ``measure_every=0`` turns the curve off). The trained model is ``result.model``.
    """
    import torch
    from trl import GRPOTrainer

    from .build import load_emergence

    if threads:
        torch.set_num_threads(threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    funcs = reward_functions(reward)
    test, train = load_split("test", n_test), load_split("train")
    model, tokenizer = load_emergence(model_dir)
    before = measure(model, tokenizer, test, k=k, seed=seed)

    settings = {**EMERGENCE_GRPO, **(overrides or {})}
    if steps is not None:
        settings["max_steps"] = steps
    curve_set = test[:n_curve]
    curve: list[dict] = []
    spent: list[float] = []
    if measure_every:
        curve.append({"step": 0, **measure(model, tokenizer, curve_set, k=k, seed=seed)})
    with tempfile.TemporaryDirectory(prefix="emergence-grpo-") as tmp:
        args = grpo_config(tmp, seed=seed, **settings)
        trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=to_dataset(train),
                              processing_class=tokenizer,
                              callbacks=[_measuring_callback({"model": model}, tokenizer, curve_set,
                                                             measure_every, k, seed, curve, spent)])
        if not progress:
            silence(trainer)  # the Jupyter bar too: notebook 10 runs quiet
        start = time.perf_counter()
        trainer.train()
        total = time.perf_counter() - start
    model = trainer.model
    after = measure(model, tokenizer, test, k=k, seed=seed)
    history = [row for row in trainer.state.log_history if "frac_reward_zero_std" in row]
    result = EmergenceResult(seed=seed, reward=reward, steps=args.max_steps, before=before, after=after,
                             grpo_seconds=total - sum(spent), train_seconds_total=total, curve=curve,
                             history=history, settings={**settings, "rewards": [f.__name__ for f in funcs]})
    result.model, result.tokenizer = model, tokenizer  # attributes, not fields: as_dict stays JSON
    return result
