"""Before vs after on the same problems, with the same template: a paired comparison.

"Before" is the trained model with its LoRA adapter **switched off** (``disable_adapter``), "after"
the same model with it on: one set of weights in memory, the same tokenizer, chat template, prompts,
decoding settings and seed. Reloading a different checkpoint or prompt format for "before" would mix
the effect of training with the effect of the format (a format change alone can move GSM8K scores by
tens of points, ``../shared/reference/evaluation.md`` §2.6, §4.6).

Because both runs see the same problems, the comparison is **paired**: the interval for the difference
comes from resampling problems (before and after together), and McNemar's exact test counts the
problems that were fixed against those that were broken. Pairing removes problem difficulty from the
noise, so it detects smaller changes than two separate intervals would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..hardware import Profile
from . import metrics
from .generation import has_adapter
from .runner import EvalResult, evaluate_model


def check_paired(before: EvalResult, after: EvalResult) -> None:
    ids_b = [(p["id"], p["question"]) for p in before.problems]
    ids_a = [(p["id"], p["question"]) for p in after.problems]
    if ids_b != ids_a:
        raise ValueError(f"{before.name} and {after.name} were not run on the same problems in the same order: "
                         "a paired comparison needs identical problem lists")
    if before.n_samples != after.n_samples:
        raise ValueError(f"{before.name} has {before.n_samples} samples per problem, {after.name} "
                         f"{after.n_samples}: compare pass@k with the same n")


@dataclass
class Comparison:
    """Two evaluations of the same problems and the paired statistics between them."""

    before: EvalResult
    after: EvalResult
    confidence: float = 0.95
    seed: int = 0

    def __post_init__(self):
        check_paired(self.before, self.after)

    def greedy(self, mode: str = "lenient") -> metrics.PairedDifference:
        b = [float(x) for x in self.before.greedy_correct(mode)]
        a = [float(x) for x in self.after.greedy_correct(mode)]
        return metrics.paired_bootstrap(b, a, self.confidence, seed=self.seed)

    def greedy_mcnemar(self, mode: str = "lenient") -> metrics.McNemar:
        return metrics.mcnemar(self.before.greedy_correct(mode), self.after.greedy_correct(mode))

    def sampled(self, mode: str = "lenient") -> metrics.PairedDifference:
        """Sampled pass@1 (each problem's ``c/n``), paired over problems."""
        return metrics.paired_bootstrap(self.before.pass1_per_problem(mode), self.after.pass1_per_problem(mode),
                                        self.confidence, seed=self.seed)

    def pass_at_k(self, k: int, mode: str = "lenient") -> metrics.PairedDifference:
        n = self.before.n_samples
        b = [metrics.pass_at_k(n, c, k) for c in self.before.correct_counts(mode)]
        a = [metrics.pass_at_k(n, c, k) for c in self.after.correct_counts(mode)]
        return metrics.paired_bootstrap(b, a, self.confidence, seed=self.seed)

    def table(self) -> str:
        """Metric by metric: before, after, the paired difference with its interval."""
        rows = []
        if self.before.greedy is not None and self.after.greedy is not None:
            for mode in ("lenient", "strict"):
                rows.append((f"greedy accuracy ({mode})", self.greedy(mode)))
        if self.before.n_samples:
            n = self.before.n_samples
            for mode in ("lenient", "strict"):
                rows.append((f"sampled pass@1 ({mode})", self.sampled(mode)))
            rows.append((f"pass@{n} (lenient)", self.pass_at_k(n)))
        pct = f"{self.confidence:.0%} CI"
        lines = [f"{'metric':<28}{'before':>9}{'after':>9}{'after - before':>16}   {pct} (paired bootstrap)"
                 f"{'':>10}verdict", "-" * 108]
        for label, d in rows:
            iv = d.difference
            verdict = "up" if iv.low > 0 else "down" if iv.high < 0 else "no detectable change"
            cell = f"[{iv.low:+.1%}, {iv.high:+.1%}]  {d.p_text}"
            lines.append(f"{label:<28}{d.before:>9.1%}{d.after:>9.1%}{iv.estimate:>+16.1%}   {cell:<36}{verdict}")
        return "\n".join(lines)

    def summary(self) -> str:
        lines = [f"before: {self.before.name}   after: {self.after.name}   "
                 f"({self.before.n_problems} problems, the same for both)", self.table()]
        if self.before.greedy is not None and self.after.greedy is not None:
            lines.append(f"greedy, problem by problem: {self.greedy_mcnemar()}")
        return "\n".join(lines)

    def headline(self) -> str:
        """The main before/after differences with their intervals: greedy accuracy and sampled pass@1."""
        lines = []
        if self.before.greedy is not None and self.after.greedy is not None:
            lines.append(f"greedy accuracy (lenient) {self.greedy()}")
        if self.before.n_samples:
            lines.append(f"sampled pass@1 (lenient)  {self.sampled()}")
        return "\n".join(lines)

    def plot_pass_curves(self, ax=None, mode: str = "lenient"):
        """pass@k against k (1..n) before and after, on a log-scaled k axis."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5.5, 3.8))
        for res, style in ((self.before, "o--"), (self.after, "o-")):
            curve = res.pass_curve(mode)
            ax.plot(list(curve), list(curve.values()), style, label=res.name)
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(self.after.pass_curve(mode)))
        ax.get_xaxis().set_major_formatter(plt.ScalarFormatter())
        ax.set_xlabel("k (samples allowed)")
        ax.set_ylabel(f"pass@k ({mode})")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend()
        return ax


def before_after(model, tokenizer, problems: Sequence[dict], *, base_model=None, names: tuple[str, str] = (
        "before (adapter off)", "after (adapter on)"), profile: Profile | None = None,
                 adapter_path: str | Path | None = None, **kwargs) -> Comparison:
    """Evaluate a LoRA model with its adapter off, then on, with identical settings, and compare.

    ``kwargs`` go to :func:`~grpo_course.evaluate.runner.evaluate_model` for both runs (same seed,
    so the sampled runs differ only because the weights do). A model without an adapter (full
    fine-tuning) needs ``base_model`` (the starting weights) instead.
    """
    common = dict(profile=profile, adapter_path=adapter_path, **kwargs)
    if has_adapter(model):
        before = evaluate_model(model, tokenizer, problems, name=names[0], use_adapter=False, **common)
    elif base_model is not None:
        before = evaluate_model(base_model, tokenizer, problems, name=names[0], **common)
    else:
        raise ValueError("before_after needs a peft model (its adapter is switched off for 'before') or "
                         "base_model= (the starting weights of a fully fine-tuned model)")
    after = evaluate_model(model, tokenizer, problems, name=names[1], **common)
    return Comparison(before, after)
