"""The tiny lab: GRPO (TRL's ``GRPOTrainer``, the course's rewards) lifts the SFT model past its teacher.

:func:`run_lab` loads the committed SFT model, measures the demonstrator and the SFT model on held-out
problems, GRPO-trains with :data:`~grpo_course.tiny.recipe.TINY_GRPO`, records a learning curve, and
measures the GRPO model the same way. ``grpo_seconds`` is the wall time of ``trainer.train()`` minus
the time spent measuring the held-out curve inside it.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..chat_format import build_messages
from .demonstrator import demonstrator_accuracy
from .evaluation import greedy_accuracy, score_problems, summarize
from .problems import load_split
from .recipe import TINY_GRPO, TINY_REWARDS, grpo_config


def reward_functions(names: list[str] | None = None) -> list:
    """The course's reward functions for ``names`` (default :data:`TINY_REWARDS`)."""
    from ..rewards import get_reward

    return [get_reward(n) for n in (names or TINY_REWARDS)]


def silence(trainer) -> None:
    """Remove the trainer's progress bars and log printing (in a terminal and in Jupyter) for quiet runs."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.utils.notebook import NotebookProgressCallback

    for callback in (PrinterCallback, ProgressCallback, NotebookProgressCallback):
        trainer.remove_callback(callback)


def to_dataset(problems: list[dict]):
    """A ``datasets.Dataset`` with TRL's conversational ``prompt`` column and GSM8K's ``answer``."""
    from datasets import Dataset

    return Dataset.from_list([{"prompt": build_messages(p["question"]), "answer": p["answer"],
                               "has_subtraction": p["has_subtraction"]} for p in problems])


@dataclass
class LabResult:
    seed: int
    steps: int
    demonstrator: float
    sft: dict
    grpo: dict
    grpo_seconds: float
    train_seconds_total: float
    history: list[dict] = field(default_factory=list)  # TRL's log rows of the steps that generated (rewards)
    curve: list[dict] = field(default_factory=list)  # held-out greedy accuracy against step
    settings: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def gain(self) -> float:
        """GRPO minus SFT held-out greedy accuracy."""
        return self.grpo["greedy"] - self.sft["greedy"]

    def summary(self) -> str:
        passes = "".join(f", {key} {self.sft[key]:.1%} -> {self.grpo[key]:.1%}"
                         for key in self.sft if key.startswith("pass@"))
        return (f"seed {self.seed}: demonstrator {self.demonstrator:.1%}  sft {self.sft['greedy']:.1%}  "
                f"grpo {self.grpo['greedy']:.1%}  (greedy{passes})  {self.steps} GRPO steps in "
                f"{self.grpo_seconds:.1f} s")


def _curve_callback(model_ref: dict, tokenizer, problems, every: int, curve: list, spent: list):
    from transformers import TrainerCallback

    class HeldOutCurve(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if every and state.global_step % every == 0:
                t = time.perf_counter()
                acc = greedy_accuracy(model_ref["model"], tokenizer, problems)
                curve.append({"step": state.global_step, "heldout_greedy": acc})
                spent.append(time.perf_counter() - t)

    return HeldOutCurve()


def run_lab(seed: int = 0, steps: int | None = None, *, model_dir: str | Path | None = None,
            n_test: int | None = None, n_curve: int = 100, curve_every: int = 5, k: int = 8,
            reward_names: list[str] | None = None, reward_funcs: list | None = None,
            overrides: dict | None = None, callbacks: list | None = None,
            output_dir: str | None = None, threads: int | None = None, progress: bool = True) -> LabResult:
    """SFT model -> GRPO on the train split; held-out accuracies before and after (see module doc).

    ``n_test`` held-out problems (default all 500) are scored greedily and, with ``k`` samples each at
    temperature 1, for pass@1 and pass@k (``k=0``: greedy only). Every ``curve_every`` steps the
    greedy accuracy on the first ``n_curve`` of them is recorded (its time is not counted in
    ``grpo_seconds``). The trained model is ``result.model`` (with ``result.tokenizer``); with ``k`` samples,
    ``result.sharpening`` is the verdict of :mod:`.verdict` (SFT model before, GRPO model after), and
    ``result.before_scores`` / ``result.after_scores`` the per-problem scores it was built from.
    ``callbacks``: more ``transformers.TrainerCallback`` objects for the trainer (e.g. a probe of the KL).
    """
    import torch
    from trl import GRPOTrainer

    from . import load_tiny

    if threads:
        torch.set_num_threads(threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    test = load_split("test", n_test)
    train = load_split("train")
    model, tokenizer = load_tiny("sft", path=model_dir)
    demo = demonstrator_accuracy(test, seed=seed)
    sft_scores = score_problems(model, tokenizer, test, k=k, seed=seed)
    sft = summarize(test, sft_scores)

    overrides = dict(overrides or {})
    if steps is not None:
        overrides["max_steps"] = steps
    tmp = tempfile.TemporaryDirectory(prefix="tiny-grpo-") if output_dir is None else None
    args = grpo_config(output_dir or tmp.name, seed=seed, **overrides)
    curve: list[dict] = []
    spent: list[float] = []
    ref = {"model": model}
    curve_set = test[:n_curve]
    if curve_every:
        curve.append({"step": 0, "heldout_greedy": greedy_accuracy(model, tokenizer, curve_set)})
    funcs = reward_funcs if reward_funcs is not None else reward_functions(reward_names)
    trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args,
                          train_dataset=to_dataset(train), processing_class=tokenizer,
                          callbacks=[_curve_callback(ref, tokenizer, curve_set, curve_every, curve, spent),
                                     *(callbacks or [])])
    if not progress:
        silence(trainer)
    start = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - start
    model = trainer.model
    grpo_scores = score_problems(model, tokenizer, test, k=k, seed=seed)
    grpo = summarize(test, grpo_scores)
    history = [row for row in trainer.state.log_history if "reward" in row]
    if tmp is not None:
        tmp.cleanup()
    names = [getattr(f, "__name__", str(f)) for f in funcs]
    result = LabResult(seed=seed, steps=args.max_steps, demonstrator=demo, sft=sft, grpo=grpo,
                       grpo_seconds=total - sum(spent), train_seconds_total=total, history=history,
                       curve=curve, settings={**TINY_GRPO, **overrides, "rewards": names})
    result.model, result.tokenizer = model, tokenizer  # the GRPO-trained model (attributes, not fields)
    result.before_scores, result.after_scores = sft_scores, grpo_scores
    # every optimiser step's log row: with num_iterations > 1 the steps that reuse a batch log no rewards, only
    # the loss-side metrics (kl, entropy, clip_ratio/*), and those are the steps whose ratio has left 1
    result.step_log = [row for row in trainer.state.log_history if "loss" in row]
    if k:  # what GRPO taught it, from the same samples: grpo_course.tiny.verdict
        from .verdict import sharpening

        result.sharpening = sharpening(test, sft_scores, grpo_scores)
    return result
