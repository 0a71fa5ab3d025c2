"""The tiny lab's learning curve: reward, held-out accuracy, zero-std groups and length against step."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

PANELS = [
    ("reward", "mean reward (sum of the reward functions)"),
    ("heldout_greedy", "held-out greedy accuracy"),
    ("frac_reward_zero_std", "frac_reward_zero_std"),
    ("completions/mean_length", "mean completion length (tokens)"),
]


def plot_learning_curve(results: Sequence, path: str | Path | None = None, title: str | None = None):
    """One panel per metric, one line per seed; reference lines for the demonstrator and SFT accuracy."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for key, (ax, (metric, label)) in zip(range(4), zip(axes, PANELS)):
        for r in results:
            rows = r.curve if metric == "heldout_greedy" else r.history
            xs = [row["step"] for row in rows if metric in row]
            ys = [row[metric] for row in rows if metric in row]
            ax.plot(xs, ys, marker="." if metric == "heldout_greedy" else None, label=f"seed {r.seed}")
        if metric == "heldout_greedy" and results:
            demo = sum(r.demonstrator for r in results) / len(results)
            ax.axhline(demo, color="grey", ls="--", lw=1, label=f"demonstrator {demo:.0%}")
            ax.set_ylim(0, 1.02)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("GRPO step")
        ax.grid(alpha=0.3)
        if key == 1:
            ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(title or "GRPO on the tiny model (TRL GRPOTrainer, CPU)", fontsize=11)
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
