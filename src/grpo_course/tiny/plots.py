"""The tiny lab's learning curve: reward, held-out accuracy, zero-std groups and length against step."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

PANELS = [
    ("reward", "train reward (tag + composite, max 2.5)"),
    ("heldout_greedy", "held-out greedy accuracy (100 problems)"),
    ("frac_reward_zero_std", "frac_reward_zero_std"),
    ("completions/mean_length", "mean completion length (tokens)"),
]


def _running_mean(values: Sequence[float], window: int) -> list[float]:
    out = []
    for i in range(len(values)):
        chunk = values[max(0, i - window + 1):i + 1]
        out.append(sum(chunk) / len(chunk))
    return out


def plot_learning_curve(results: Sequence, path: str | Path | None = None, title: str | None = None,
                        smooth: int = 5):
    """One panel per metric, one line per seed; reference lines for the demonstrator and SFT accuracy.

    Training metrics (from TRL's logs) get a running mean over ``smooth`` steps drawn over the raw values.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for key, (ax, (metric, label)) in enumerate(zip(axes, PANELS)):
        for i, r in enumerate(results):
            color = colors[i % len(colors)]
            rows = r.curve if metric == "heldout_greedy" else r.history
            xs = [row["step"] for row in rows if metric in row]
            ys = [row[metric] for row in rows if metric in row]
            if metric == "heldout_greedy":
                ax.plot(xs, ys, marker=".", color=color, label=f"seed {r.seed}")
            else:  # per-step values from 8 groups are noisy: faint raw line, bold running mean
                ax.plot(xs, ys, color=color, alpha=0.25, lw=1)
                ax.plot(xs, _running_mean(ys, smooth), color=color, lw=2, label=f"seed {r.seed}")
        if metric == "heldout_greedy" and results:
            demo = sum(r.demonstrator for r in results) / len(results)
            sft = sum(r.sft["greedy"] for r in results) / len(results)
            ax.axhline(demo, color="grey", ls="--", lw=1, label=f"demonstrator {demo:.0%}")
            ax.axhline(sft, color="black", ls=":", lw=1, label=f"SFT model {sft:.0%}")
            ax.set_ylim(0, 1.02)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("GRPO step")
        ax.grid(alpha=0.3)
        if key == 1:
            ax.legend(fontsize=8, loc="center right")
    fig.suptitle(title or "GRPO on the tiny model (TRL GRPOTrainer, CPU)", fontsize=11)
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
