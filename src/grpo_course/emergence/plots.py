"""The R1-style figure: accuracy, step-writing and completion length rising together against the GRPO step."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

PANELS = [
    ("accuracy", "held-out accuracy"),
    ("steps", "completions that write steps"),
    ("length", "mean completion length (tokens)"),
    ("frac_reward_zero_std", "frac_reward_zero_std"),
]


def curve_series(result, decoding: str, metric: str) -> tuple[list[int], list[float]]:
    """``(steps, values)`` of one held-out metric from a result's curve (``decoding``: greedy or sampled)."""
    rows = [row for row in result.curve if metric in row.get(decoding, {})]
    return [row["step"] for row in rows], [row[decoding][metric] for row in rows]


def plot_emergence(results: Sequence, controls: Sequence = (), path: str | Path | None = None,
                   title: str | None = None):
    """One panel per metric; greedy solid, sampled dashed, one colour per seed; coin-flip control runs in grey.

    The last panel shows ``frac_reward_zero_std`` on the held-out samples (dashed) and in TRL's
    training logs (dotted): the share of groups whose completions all earned the same reward.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS), 3.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    runs = [(r, colors[i % len(colors)], f"seed {r.seed}") for i, r in enumerate(results)]
    runs += [(r, "grey", "coin-flip control" if i == 0 else None) for i, r in enumerate(controls)]
    for ax, (metric, label) in zip(axes, PANELS):
        for r, color, name in runs:
            first = ax is axes[0]
            if metric != "frac_reward_zero_std":
                ax.plot(*curve_series(r, "greedy", metric), color=color, marker=".", label=name if first else None)
            ax.plot(*curve_series(r, "sampled", metric), color=color, ls="--", alpha=0.8)
            if metric == "frac_reward_zero_std" and r.history:
                ax.plot([h["step"] for h in r.history], [h["frac_reward_zero_std"] for h in r.history],
                        color=color, ls=":", alpha=0.5)
        if metric in ("accuracy", "steps", "frac_reward_zero_std"):
            ax.set_ylim(-0.02, 1.02)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("GRPO step")
        ax.grid(alpha=0.3)
    fig.legend(loc="center right", fontsize=8)
    fig.suptitle(title or ("GRPO with an answer-only reward, held-out problems: solid greedy, dashed sampled "
                           "(last panel: dashed held-out groups, dotted training groups)"), fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
