"""Choosing a checkpoint: by held-out pass@1, not by training reward.

Training reward is measured on the prompts being optimised, with the reward being optimised: it keeps
rising when the policy overfits the verifier (the seeds' checklist: "Checkpoint selection by pass@1 on
eval, not training reward average"). :func:`evaluate_checkpoints` evaluates every saved checkpoint of a
run (and the starting point, the adapter switched off) on held-out problems, puts the training reward
logged at that step next to it, and picks the checkpoint with the best held-out pass@1. Optionally it
evaluates weight interpolations of the chosen adapter with its start point (the seeds' 0.7 / 0.3, see
:mod:`.interpolate`) the same way.

Checkpoints hold LoRA adapters (``adapter_model.safetensors``, what ``grpo_course.train`` saves): one
peft model stays in memory and each checkpoint's adapter weights are swapped into it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..generation import has_adapter
from ..hardware import Profile
from .interpolate import scaled_adapter
from .runner import EvalResult, evaluate_model


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``[(step, folder), ...]`` of the run's checkpoints with whole weights and trainer state, oldest first."""
    from ..checkpoint import checkpoints

    return checkpoints(run_dir, need="weights")


def training_log(run_dir: str | Path) -> list[dict]:
    """Per-step training rows with ``step`` and ``reward``: the run's ``metrics.jsonl`` (stage 04's
    monitor) or, failing that, the newest checkpoint's ``trainer_state.json`` log history."""
    from ..checkpoint import read_log

    run_dir = Path(run_dir)
    rows = read_log(run_dir / "metrics.jsonl")[0]  # a last line cut off mid-write is skipped
    if not any("reward" in r for r in rows):
        found = list_checkpoints(run_dir)
        if found:
            state = json.loads((found[-1][1] / "trainer_state.json").read_text())
            rows = state.get("log_history", [])
    return [{"step": int(r["step"]), "reward": float(r["reward"])} for r in rows
            if r.get("reward") is not None and r.get("step") is not None]


def reward_at(log: Sequence[dict], step: int, window: int = 5) -> float | None:
    """Mean training reward over the ``window`` logged steps up to ``step`` (rewards are noisy)."""
    vals = [r["reward"] for r in log if step - window < r["step"] <= step]
    if not vals and step == 0:
        vals = [r["reward"] for r in sorted(log, key=lambda r: r["step"])[:1]]
    return sum(vals) / len(vals) if vals else None


def load_adapter_weights(model, folder: str | Path) -> None:
    """Swap the weights of a saved LoRA adapter into ``model``'s active adapter (same config)."""
    from peft.utils import load_peft_weights, set_peft_model_state_dict

    weights = load_peft_weights(str(folder))
    result = set_peft_model_state_dict(model, weights, adapter_name=getattr(model, "active_adapter", "default"))
    unexpected = [k for k in getattr(result, "unexpected_keys", []) if "lora" in k]
    if unexpected:
        raise ValueError(f"{folder}: adapter weights do not fit this model (e.g. {unexpected[:3]})")


def load_for_eval(profile: Profile, model_id: str | None = None, adapter: str | Path | None = None,
                  task=None, progress: bool = True):
    """``(model, tokenizer)`` for evaluation: the profile's model (or ``model_id``; with ``task``, the task's
    model for the profile), with the LoRA ``adapter`` if given. GPU profiles go through ``grpo_course.gpu``
    (Unsloth; the adapter's weights are swapped into its LoRA); CPU through transformers + peft."""
    from ..models import prepare_runtime, tiny_text_model
    from ..tasks import get_task

    task = get_task(task) if task is not None else None
    if profile.device != "cpu":
        from .. import gpu
        from ..lora import lora_settings

        prepare_runtime(profile)
        if task is not None:
            profile = task.profile_for(profile)
        if model_id:
            profile = profile.with_overrides(model_id=model_id)
        model, tokenizer = gpu.load_model_and_tokenizer(profile, lora_settings(profile.name))
        if adapter is not None:
            load_adapter_weights(model, adapter)
        return model, tokenizer
    if task is not None and task.uses_tiny_text_model:
        if model_id:
            from ..tasks.tiny_text import load

            model, tokenizer = load(model_id)
        else:
            model, tokenizer, _ = tiny_text_model(task, progress=progress)
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = model_id or profile.model_path()
        model = AutoModelForCausalLM.from_pretrained(path, dtype="float32")
        tokenizer = AutoTokenizer.from_pretrained(path)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    return model, tokenizer


@dataclass
class CheckpointScore:
    label: str
    step: int
    train_reward: float | None
    result: EvalResult
    weight: float = 1.0  # interpolation weight of the adapter (1 = the checkpoint itself)

    def pass1(self, mode: str = "lenient") -> float:
        r = self.result
        return r.pass_at_k(1, mode) if r.n_samples else r.greedy_accuracy(mode).estimate


@dataclass
class CheckpointSelection:
    """Every checkpoint's held-out score next to its training reward, and the pick."""

    scores: list[CheckpointScore]
    interpolations: list[CheckpointScore] = field(default_factory=list)
    metric: str = "pass@1"

    def _pool(self) -> list[CheckpointScore]:
        return [s for s in self.scores if s.step > 0] or self.scores

    @property
    def best(self) -> CheckpointScore:
        """The checkpoint with the highest held-out pass@1 (ties: the earliest, closest to the start)."""
        return max(self._pool(), key=lambda s: (round(s.pass1(), 9), -s.step))

    @property
    def best_by_training_reward(self) -> CheckpointScore:
        pool = [s for s in self._pool() if s.train_reward is not None] or self._pool()
        return max(pool, key=lambda s: (s.train_reward if s.train_reward is not None else -math.inf, -s.step))

    def table(self) -> str:
        rows = [*self.scores, *self.interpolations]
        show_greedy = any(s.result.greedy is not None and s.result.n_samples for s in rows)
        lines = [f"{'checkpoint':<34}{'step':>6}{'train reward':>14}{'held-out pass@1':>17}{'95% CI':>18}"
                 + (f"{'greedy':>9}" if show_greedy else ""), "-" * (89 + 9 * show_greedy)]
        for s in rows:
            r = s.result
            iv = r.pass1_interval() if r.n_samples else r.greedy_accuracy()
            greedy = f"{r.greedy_accuracy().estimate:.1%}" if r.greedy is not None else "-"
            reward = f"{s.train_reward:.3f}" if s.train_reward is not None else "-"
            mark = "  <- best" if s is self.best else ""
            lines.append(f"{s.label:<34}{s.step:>6}{reward:>14}{s.pass1():>17.1%}"
                         f"{f'[{iv.low:.1%}, {iv.high:.1%}]':>18}" + (f"{greedy:>9}" if show_greedy else "") + mark)
        by_reward = self.best_by_training_reward
        lines.append(f"picked by held-out pass@1: {self.best.label}; training reward would pick: {by_reward.label}")
        return "\n".join(lines)

    def plot(self, path: str | Path | None = None):
        """Left: held-out pass@1 (with its interval) and training reward against step. Right: pass@1
        against training reward, one point per checkpoint (the chosen one circled)."""
        import matplotlib
        import matplotlib.ticker

        if path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig, (ax1, ax3) = plt.subplots(1, 2, figsize=(11, 4.3))
        steps = [s.step for s in self.scores]
        p1 = [s.pass1() for s in self.scores]
        ivs = [s.result.pass1_interval() if s.result.n_samples else s.result.greedy_accuracy() for s in self.scores]
        ax1.fill_between(steps, [iv.low for iv in ivs], [iv.high for iv in ivs], color="C0", alpha=0.15)
        ax1.plot(steps, p1, "o-", color="C0", label="held-out pass@1 (95% CI)")
        ax1.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax1.set_xlabel("GRPO step")
        ax1.set_ylabel("held-out pass@1", color="C0")
        lows = [iv.low for iv in ivs] + [s.pass1() for s in self.interpolations]
        highs = [iv.high for iv in ivs] + [s.pass1() for s in self.interpolations]
        ax1.set_ylim(max(0.0, min(lows) - 0.05), min(1.0, max(highs) + 0.05))
        best = self.best
        ax1.axvline(best.step, color="C0", ls=":", lw=1)
        ax2 = ax1.twinx()
        rs = [(s.step, s.train_reward) for s in self.scores if s.train_reward is not None]
        if rs:
            ax2.plot([a for a, _ in rs], [b for _, b in rs], "s--", color="C1", label="training reward")
        ax2.set_ylabel("training reward (mean of recent steps)", color="C1")
        for s in self.interpolations:
            ax1.plot([s.step], [s.pass1()], "D", color="C2", label=s.label)
        handles = ax1.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
        ax1.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8,
                   frameon=False)
        ax1.set_title("pass@1 and training reward by checkpoint")
        pts = [(s.train_reward, s.pass1(), s) for s in self.scores if s.train_reward is not None]
        if pts:
            ax3.plot([x for x, _, _ in pts], [y for _, y, _ in pts], "o", color="C0")
            for x, y, s in pts:
                ax3.annotate(str(s.step), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
            if best.train_reward is not None:
                ax3.plot([best.train_reward], [best.pass1()], "o", ms=14, mfc="none", mec="C3",
                         label=f"chosen: step {best.step}")
                ax3.legend(fontsize=8)
        ax3.set_xlabel("training reward")
        ax3.set_ylabel("held-out pass@1")
        ax3.set_title("does training reward predict held-out pass@1?")
        ax3.grid(alpha=0.3)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
        return fig


def evaluate_checkpoints(model, tokenizer, run_dir: str | Path, problems: Sequence[dict], *,
                         include_start: bool = True, interpolate: Sequence[float] = (), reward_window: int = 5,
                         profile: Profile | None = None, progress: bool = True, **eval_kwargs) -> CheckpointSelection:
    """Evaluate the start point (adapter off) and every checkpoint of ``run_dir`` on ``problems``.

    ``model`` is a peft model with the run's adapter config (e.g. the trained model, or
    ``PeftModel.from_pretrained(base, checkpoint)``); its adapter weights are swapped checkpoint by
    checkpoint and the final weights are restored afterwards. ``interpolate=(0.7,)`` also evaluates the
    best checkpoint scaled by 0.7 (= 0.7 x RL + 0.3 x start). ``eval_kwargs`` go to ``evaluate_model``.
    """
    import torch

    if not has_adapter(model):
        raise ValueError("evaluate_checkpoints needs a peft model (load one checkpoint with "
                         "peft.PeftModel.from_pretrained(base_model, folder) first)")
    found = list_checkpoints(run_dir)
    if not found:
        raise FileNotFoundError(f"no complete checkpoint-<step> folders in {run_dir}")
    log = training_log(run_dir)
    original = {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k}
    scores: list[CheckpointScore] = []
    common = dict(profile=profile, progress=progress, **eval_kwargs)
    try:
        if include_start:
            res = evaluate_model(model, tokenizer, problems, name="start (adapter off)", use_adapter=False, **common)
            scores.append(CheckpointScore("start (adapter off)", 0, reward_at(log, 0, reward_window), res))
        for step, folder in found:
            load_adapter_weights(model, folder)
            res = evaluate_model(model, tokenizer, problems, name=folder.name, adapter_path=folder, **common)
            scores.append(CheckpointScore(folder.name, step, reward_at(log, step, reward_window), res))
        selection = CheckpointSelection(scores)
        best = selection.best
        for w in interpolate:
            if best.step == 0:
                break
            load_adapter_weights(model, Path(run_dir) / best.label)
            label = f"{best.label} x{w:g} + start x{1 - w:g}"
            with scaled_adapter(model, w):
                res = evaluate_model(model, tokenizer, problems, name=label,
                                     extra_context={"interpolation_weight": w, "interpolated_from": best.label},
                                     **common)
            selection.interpolations.append(CheckpointScore(label, best.step, None, res, weight=w))
    finally:
        with torch.no_grad():
            state = model.state_dict()
            for k, v in original.items():
                state[k].copy_(v)
    return selection
