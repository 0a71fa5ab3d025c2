"""The tiny lab's figures: the learning curve (reward, held-out accuracy, zero-std groups and length against
step) and notebook 09's counterfactual panels (sharpening, KL)."""

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


def plot_sharpening(run, probs_before: Sequence[dict], probs_after: Sequence[dict], curves: dict):
    """Notebook 09, section 1: held-out greedy accuracy by problem type before and after GRPO, the
    distribution of P(' -') at the decisive position of subtraction problems, and pass@k before and after.

    ``run`` is a counterfactual result (its ``sharpening.greedy(when, group)``), ``probs_*`` are
    :func:`grpo_course.tiny.counterfactuals.operator_probabilities` rows and ``curves`` is
    :func:`~grpo_course.tiny.counterfactuals.pass_curves`' ``{"before": {k: pass@k}, "after": {...}}``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    groups = ["subtraction", "other"]
    for i, when in enumerate(("before", "after")):
        ax[0].bar([g + i * 0.4 for g in range(2)], [run.sharpening.greedy(when, g) for g in groups], 0.4, label=when)
    ax[0].set(xticks=[0.2, 1.2], xticklabels=groups, ylabel="held-out greedy accuracy", title="by problem type",
              ylim=(0, 1.25))
    ax[0].legend(loc="upper center", ncol=2)
    bins = [i / 20 for i in range(21)]
    ax[1].hist([r["p_minus"] for r in probs_before], bins, alpha=0.6, label="before")
    ax[1].hist([r["p_minus"] for r in probs_after], bins, alpha=0.6, label="after")
    ax[1].set(xlabel="P(' -') at the decisive position", ylabel="subtraction problems", title="the operator")
    ax[1].legend(loc="upper left")
    for when in ("before", "after"):
        ax[2].plot(list(curves[when]), list(curves[when].values()), "o-", ms=3, label=when)
    ax[2].set(xscale="log", xlabel="k (samples)", ylabel="pass@k", title="pass@k", ylim=(0, 1.02))
    ax[2].set_xticks([1, 2, 4, 8, 16], labels=["1", "2", "4", "8", "16"])
    ax[2].minorticks_off()
    ax[2].legend(loc="lower right")
    fig.tight_layout()
    return fig


def plot_kl_runs(runs: dict, k3=None):
    """Notebook 09, section 5: for each ``{label: result}`` of a KL experiment, the exact KL to the SFT model
    (``result.kl_curve``), the share of clipped tokens on reused batches (the ``step_log`` rows without a
    reward) and held-out accuracy (``result.curve``), against step. ``k3``: a result whose TRL-logged k3 KL
    estimate (``step_log`` rows with ``"kl"``) is drawn dotted on the first panel, labelled with its label in
    ``runs``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(14, 3.6))
    for label, r in runs.items():
        ax[0].plot([c["step"] for c in r.kl_curve], [c["kl"] for c in r.kl_curve], "o-", ms=3, label=label)
        reused = [h for h in r.step_log if "reward" not in h]
        ax[1].plot([h["step"] for h in reused], [h["clip_ratio/region_mean"] for h in reused], "o-", ms=3,
                   label=label)
        ax[2].plot([c["step"] for c in r.curve], [c["heldout_greedy"] for c in r.curve], "o-", ms=3, label=label)
    if k3 is not None:
        logged = [h for h in k3.step_log if "kl" in h]
        name = next((label for label, r in runs.items() if r is k3), "")
        ax[0].plot([h["step"] for h in logged], [h["kl"] for h in logged], ":", color="tab:orange",
                   label=f"{name}, TRL's k3 log".lstrip(", "))
    ax[0].set(xlabel="GRPO step", ylabel="KL to the SFT model (nats/token)", title="KL (exact, the policy's samples)")
    ax[1].set(xlabel="GRPO step", ylabel="share of tokens clipped", title="clip_ratio/region_mean, reused batches")
    ax[2].set(xlabel="GRPO step", ylabel="held-out greedy accuracy", ylim=(0, 1.02), title="accuracy")
    for a in ax:
        a.xaxis.get_major_locator().set_params(integer=True)
        a.legend(fontsize=8)
    fig.tight_layout()
    return fig
