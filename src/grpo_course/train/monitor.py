"""Watching a GRPO run: a live panel, plain-words warnings, a JSONL log of sample groups, a progress bar.

:class:`TrainingMonitor` is a ``transformers.TrainerCallback``. At every logged step it

- appends the step's metrics to ``metrics.jsonl`` (one JSON object per step, the same numbers as the
  trainer's ``log_history``) and updates a tqdm bar showing the reward;
- writes the step's sample groups to ``samples.jsonl``: prompt, the G completions, each reward
  function's scores, the total reward and the advantages GRPO computed from them (the seeds'
  checklist: "log sample groups (prompt + rewards + advantages) for debugging failed runs");
- runs :class:`HealthCheck`, which warns in words when groups have had no reward variance for many
  steps, when most completions hit the length cap, or when the KL jumps;
- in a notebook, redraws the panel (:func:`plot_history`) every ``plot_every`` steps.

The pure parts (:class:`HealthCheck`, :func:`plot_history`, :func:`sample_groups`) need no trainer and
are tested on hand-written rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainerCallback

from ..jsonl import read_jsonl as _read_jsonl

# TRL 1.14's logged names (GRPOTrainer's ``_metrics`` keys; TRL docs, "Logged metrics"), the ones the panel and
# the health check read.
REWARD = "reward"
ZERO_STD = "frac_reward_zero_std"
KL = "kl"
CLIPPED = "completions/clipped_ratio"  # fraction of completions that hit max_completion_length
MEAN_LENGTH = "completions/mean_length"
CLIP_REGION = "clip_ratio/region_mean"  # fraction of tokens where PPO-style ratio clipping was active


def reward_component_names(row: dict) -> list[str]:
    """``rewards/<name>/mean`` keys -> reward function names, in logged order."""
    return [k[len("rewards/"):-len("/mean")] for k in row if k.startswith("rewards/") and k.endswith("/mean")]


def _finite(x) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def metric_row(logs: dict, step: int) -> dict:
    """The numeric part of one trainer log, with its step."""
    row = {"step": int(step)}
    for key, value in logs.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            row[key] = _finite(value)
    return row


# ---- warnings --------------------------------------------------------------------------------------


@dataclass
class HealthCheck:
    """Turns metric rows into plain-words warnings, each once per episode (until the metric recovers)."""

    zero_std_level: float = 0.9  # "most groups have all-equal rewards"
    zero_std_patience: int = 5  # ... for this many steps in a row
    truncation_level: float = 0.5  # "most completions hit max_completion_length"
    truncation_patience: int = 3
    kl_factor: float = 5.0  # KL above this many times its recent median ...
    kl_floor: float = 0.05  # ... and above this absolute value counts as a spike
    kl_window: int = 10
    _zero_run: int = 0
    _trunc_run: int = 0
    _kl_seen: list[float] = field(default_factory=list)
    _active: set = field(default_factory=set)
    warnings: list[tuple[int, str]] = field(default_factory=list)

    def _raise(self, key: str, step: int, text: str, out: list[str]) -> None:
        if key not in self._active:
            self._active.add(key)
            self.warnings.append((step, text))
            out.append(text)

    def feed(self, row: dict) -> list[str]:
        """Check one step's row; returns the new warnings (an empty list when all is well)."""
        step, new = row.get("step", 0), []
        zero = _finite(row.get(ZERO_STD))
        if zero is not None:
            self._zero_run = self._zero_run + 1 if zero >= self.zero_std_level else 0
            if self._zero_run >= self.zero_std_patience:
                self._raise("zero_std", step, (
                    f"step {step}: for {self._zero_run} steps, {zero:.0%} of groups gave every completion the "
                    "same reward, so their advantages are 0 and GRPO learns nothing from them. If the reward is "
                    "stuck at its minimum: the task is too hard or the format never appears (SFT priming, an "
                    "easier curriculum, a partial-credit reward). If it is stuck at its maximum: the task is "
                    "solved, stop. Otherwise raise the temperature or num_generations."), new)
            elif self._zero_run == 0:
                self._active.discard("zero_std")
        clipped = _finite(row.get(CLIPPED))
        if clipped is not None:
            self._trunc_run = self._trunc_run + 1 if clipped > self.truncation_level else 0
            if self._trunc_run >= self.truncation_patience:
                self._raise("truncation", step, (
                    f"step {step}: {clipped:.0%} of completions hit max_completion_length and were cut off. "
                    "A cut-off completion has no final answer, so it scores as wrong. Raise "
                    "max_completion_length, or reward shorter reasoning."), new)
            elif self._trunc_run == 0:
                self._active.discard("truncation")
        kl = _finite(row.get(KL))
        if kl is not None:
            recent = sorted(self._kl_seen[-self.kl_window:])
            if len(recent) >= 3:
                median = recent[len(recent) // 2]
                if kl > self.kl_floor and kl > self.kl_factor * max(median, 1e-8):
                    self._raise("kl", step, (
                        f"step {step}: KL to the reference jumped to {kl:.3g} ({kl / max(median, 1e-8):.0f}x its "
                        f"recent median {median:.3g}). The policy moved far in one step: often a reward being "
                        "gamed or a learning rate too high. Look at this step's samples in samples.jsonl; "
                        "lower the learning rate or raise beta if it keeps happening."), new)
                else:
                    self._active.discard("kl")
            self._kl_seen.append(kl)
        return new


# ---- sample groups -----------------------------------------------------------------------------------


def _clean(values: Iterable) -> list:
    return [_finite(v) for v in values]


def group_text(group: dict, n: int = 4, width: int = 70) -> str:
    """One logged sample group as text: its step and prompt's end, then up to ``n`` completions with reward
    and advantage (``nan`` for a reward that is ``None``)."""
    lines = [f"step {group['step']}  prompt: ...{group['prompt'][-100:]!r}"]
    for text, r, a in list(zip(group["completions"], group["reward"], group["advantages"]))[:n]:
        lines.append(f"   reward {r if r is not None else float('nan'):.1f}  advantage {a or 0:+.2f}  "
                     f"{text.replace(chr(10), ' ')[:width]!r}")
    return "\n".join(lines)


def sample_groups(step: int, prompts: Sequence[str], completions: Sequence[str], rewards: dict[str, Sequence],
                  advantages: Sequence[float], num_generations: int, weights: Sequence[float] | None = None,
                  max_groups: int | None = None) -> list[dict]:
    """Cut a generation batch (G completions per prompt, contiguous, as TRL generates them) into groups."""
    n = min(len(prompts), len(completions), len(advantages))
    names = list(rewards)
    weights = list(weights) if weights is not None else [1.0] * len(names)
    groups = []
    for start in range(0, n - num_generations + 1, num_generations):
        idx = range(start, start + num_generations)
        per_func = {name: _clean(rewards[name][i] for i in idx) for name in names}
        total = []
        for j in range(num_generations):
            parts = [(w, per_func[name][j]) for w, name in zip(weights, names)]
            vals = [w * v for w, v in parts if v is not None]
            total.append(sum(vals) if vals else None)
        groups.append({
            "step": int(step),
            "prompt": prompts[start],
            "completions": [completions[i] for i in idx],
            "rewards": per_func,
            "reward": total,
            "advantages": _clean(advantages[i] for i in idx),
        })
        if max_groups is not None and len(groups) >= max_groups:
            break
    return groups


def groups_from_trainer(trainer, step: int, max_groups: int | None = None) -> list[dict]:
    """The latest generation batch from a GRPOTrainer (its ``_logs`` buffer, TRL 1.14), as groups."""
    logs = getattr(trainer, "_logs", None)
    if not logs or not logs.get("prompt"):
        return []
    weights = getattr(trainer, "reward_weights", None)
    weights = weights.tolist() if hasattr(weights, "tolist") else weights
    return sample_groups(step, list(logs["prompt"]), list(logs["completion"]),
                         {k: list(v) for k, v in logs["rewards"].items()}, list(logs["advantages"]),
                         trainer.num_generations, weights, max_groups)


def read_jsonl(path: str | Path) -> list[dict]:
    """A run log's rows; ``[]`` before the first row is written."""
    return _read_jsonl(path, missing_ok=True)


# ---- the panel -----------------------------------------------------------------------------------------


def _series(rows: Sequence[dict], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for r in rows:
        v = _finite(r.get(key))
        if v is not None:
            xs.append(r["step"])
            ys.append(v)
    return xs, ys


def _smooth(ys: list[float], k: int = 5) -> list[float]:
    out = []
    for i in range(len(ys)):
        window = ys[max(0, i - k + 1): i + 1]
        out.append(sum(window) / len(window))
    return out


def plot_history(rows: Sequence[dict], fig=None, title: str | None = None):
    """The six-plot panel: reward and its parts, zero-variance groups, KL, ratio clipping, length, truncation."""
    import matplotlib.pyplot as plt

    if fig is None:
        fig = plt.figure(figsize=(13, 6.5))
    fig.clf()
    axes = fig.subplots(2, 3).ravel()
    names = reward_component_names(rows[-1]) if rows else []

    ax = axes[0]
    xs, ys = _series(rows, REWARD)
    if ys:
        ax.plot(xs, ys, color="C0", alpha=0.3, lw=1)
        ax.plot(xs, _smooth(ys), color="C0", lw=2, label="total reward")
    for i, name in enumerate(names if len(names) > 1 else []):
        xs_c, ys_c = _series(rows, f"rewards/{name}/mean")
        ax.plot(xs_c, _smooth(ys_c), color=f"C{i + 1}", lw=1.5, ls="--", label=name)
    ax.set_title("reward (mean over completions)")
    if ys:
        ax.legend(fontsize=8, loc="best")

    panels = [
        (axes[1], ZERO_STD, "groups with all-equal rewards", (0, 1.02),
         "no learning signal from these groups"),
        (axes[2], KL, "KL to the reference", None, "not tracked: beta = 0\n(no reference model)"),
        (axes[3], CLIP_REGION, "tokens with the ratio clipped", None,
         "not logged: one update per batch\n(on-policy, ratio = 1)"),
        (axes[4], MEAN_LENGTH, "completion length (tokens)", None, ""),
        (axes[5], CLIPPED, "completions cut at max length", (0, 1.02), ""),
    ]
    for ax, key, label, ylim, empty in panels:
        xs, ys = _series(rows, key)
        if ys:
            ax.plot(xs, ys, color="C0", alpha=0.35, lw=1)
            ax.plot(xs, _smooth(ys), color="C0", lw=2)
            if max(ys) == 0 and min(ys) == 0:
                flat = "0 at every step" + ("\n(on-policy: the ratio is 1)" if key == CLIP_REGION else "")
                ax.text(0.5, 0.5, flat, ha="center", va="center", transform=ax.transAxes, color="gray")
        else:
            ax.text(0.5, 0.5, empty or "no data yet", ha="center", va="center", transform=ax.transAxes,
                    color="gray")
        if key == MEAN_LENGTH:
            for k2, style, name in (("completions/min_length", ":", "shortest"),
                                    ("completions/max_length", "--", "longest")):
                x2, y2 = _series(rows, k2)
                if y2:
                    ax.plot(x2, y2, color="gray", ls=style, lw=1, label=name)
            if ys:
                ax.plot([], [], color="C0", lw=2, label="mean")
                ax.legend(fontsize=7, loc="best")
        if ylim:
            ax.set_ylim(*ylim)
        elif key in (KL, CLIP_REGION):  # fractions and KL start at 0; a flat 0 line should sit on the axis
            ax.set_ylim(0, max([0.05, *ys]) * 1.1)
        ax.set_title(label)
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    step = rows[-1]["step"] if rows else 0
    fig.suptitle(title or f"GRPO training, step {step}")
    fig.tight_layout()
    return fig


def in_notebook() -> bool:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


# ---- the callback ------------------------------------------------------------------------------------------


class TrainingMonitor(TrainerCallback):
    """Live panel + warnings + JSONL logs + progress bar for a GRPOTrainer run (see the module docstring).

    Call :meth:`attach` with the trainer so it can read the sample groups. ``live=None`` draws the
    panel only inside a notebook. ``stop_at_step`` simulates a dying session (for the resume demo and
    test): the monitor raises :class:`SimulatedInterruption` right after logging that step, before the
    trainer could save a checkpoint for it; the rows logged since the last checkpoint are then redone.
    """

    def __init__(self, output_dir: str | Path, live: bool | None = None, plot_every: int = 5,
                 max_groups_per_step: int | None = 4, health: HealthCheck | None = None, progress: bool = True,
                 stop_at_step: int | None = None, title: str | None = None):
        self.output_dir = Path(output_dir)
        self.live = in_notebook() if live is None else live
        self.plot_every = max(1, plot_every)
        self.max_groups = max_groups_per_step
        self.health = health or HealthCheck()
        self.progress = progress
        self.stop_at_step = stop_at_step
        self.title = title
        self.trainer = None
        self.rows: list[dict] = []
        self._bar = None
        self._fig = None
        self._handle = None

    @property
    def metrics_path(self) -> Path:
        return self.output_dir / "metrics.jsonl"

    @property
    def samples_path(self) -> Path:
        return self.output_dir / "samples.jsonl"

    def attach(self, trainer) -> TrainingMonitor:
        self.trainer = trainer
        return self

    @property
    def warnings(self) -> list[tuple[int, str]]:
        return self.health.warnings

    def _say(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write("WARNING " + text)
        else:
            print("WARNING " + text)

    # -- trainer events
    def on_train_begin(self, args, state, control, **kwargs):
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.rows = [r for r in read_jsonl(self.metrics_path) if r.get("step", 0) <= state.global_step]
        for r in self.rows:  # a resumed run: replay the health check over the rows before the checkpoint
            self.health.feed(r)
        if self.progress and state.is_world_process_zero:  # one bar, not one per process under a launcher
            from tqdm.auto import tqdm

            self._bar = tqdm(total=state.max_steps, initial=state.global_step, desc="GRPO", unit="step",
                             dynamic_ncols=True)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if REWARD not in logs:  # the end-of-training summary row, not a step
            return
        row = metric_row(logs, state.global_step)
        self.rows.append(row)
        # Under a launcher every process logs the same (gathered) metrics and sample groups: only the main
        # process writes and warns, so each step is one row (see grpo_course.scale_out).
        main = state.is_world_process_zero
        if main:
            with self.metrics_path.open("a") as f:
                f.write(json.dumps(row) + "\n")
        if main and self.trainer is not None:
            groups = groups_from_trainer(self.trainer, state.global_step, self.max_groups)
            if groups:
                with self.samples_path.open("a") as f:
                    for g in groups:
                        f.write(json.dumps(g) + "\n")
        for text in self.health.feed(row):
            if main:
                self._say(text)
        if self._bar is not None:
            post = {"reward": f"{row.get(REWARD) or 0:.3f}"}
            if row.get(ZERO_STD) is not None:
                post["zero-std"] = f"{row[ZERO_STD]:.2f}"
            self._bar.set_postfix(post, refresh=False)
        if main and self.live and (state.global_step % self.plot_every == 0 or state.global_step == state.max_steps):
            self.draw()
        if self.stop_at_step is not None and state.global_step >= self.stop_at_step:
            if self._bar is not None:  # a notebook bar closed early turns red: say that it is on purpose
                self._bar.set_description_str(f"GRPO stopped at step {state.global_step} on purpose (simulated "
                                              "session death)", refresh=True)
            self.close()
            raise SimulatedInterruption(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self._bar is not None:
            self._bar.update(state.global_step - self._bar.n)

    def on_train_end(self, args, state, control, **kwargs):
        self.close()
        if self.live:
            self.draw()

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # -- drawing
    def draw(self):
        """Redraw the panel in place (notebooks); returns the figure."""
        import matplotlib.pyplot as plt

        if self._fig is None:
            self._fig = plt.figure(figsize=(13, 6.5))
        plot_history(self.rows, self._fig, self.title)
        try:
            from IPython.display import display

            if self._handle is None:
                self._handle = display(self._fig, display_id=True)
            else:
                self._handle.update(self._fig)
        except ImportError:
            pass
        plt.close(self._fig)  # keep the inline backend from drawing it a second time
        return self._fig

    def save_plot(self, path: str | Path | None = None) -> Path:
        import matplotlib.pyplot as plt

        path = Path(path or self.output_dir / "training_panel.png")
        fig = plot_history(self.rows, title=self.title)
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return path


class SimulatedInterruption(KeyboardInterrupt):
    """Raised by ``TrainingMonitor(stop_at_step=k)`` after step k is logged: a session dying on purpose."""

    def __init__(self, step: int):
        super().__init__(f"simulated interruption at step {step}")
        self.step = step
