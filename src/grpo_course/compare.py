"""Before vs after, once for the whole course: the same problems, the same template, a paired comparison.

Training's end-of-run check (greedy, the task's own grader: :func:`evaluate_greedy`, an
:class:`Evaluation`) and stage 05's evaluation (``grpo_course.evaluate.evaluate_model``: lenient and
strict graders, samples, pass@k) both go through :func:`before_after` and :class:`Comparison`; only the
grading function differs.

"Before" is the trained model with its LoRA adapter **switched off** (``disable_adapter``), "after"
the same model with it on: one set of weights in memory, the same tokenizer, chat template, prompts,
decoding settings and seed. Reloading a different checkpoint or prompt format for "before" would mix
the effect of training with the effect of the format (a format change alone can move GSM8K scores by
tens of points: 78.5% with flexible vs 20.2% with strict answer extraction for Llama-3.1-8B-Instruct,
EleutherAI/lm-evaluation-harness PR #2034; 38.3% lenient vs 1.7% strict for Qwen2.5-1.5B-Instruct before
training, in a blog post that is not peer-reviewed, abhishuoza.github.io/portfolio/grpo-qwen).

Because both runs see the same problems, the comparison is **paired**: the interval for the difference
comes from resampling problems (before and after together), and McNemar's exact test counts the
problems that were fixed against those that were broken. Pairing removes problem difficulty from the
noise, so it detects smaller changes than two separate intervals would.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import metrics
from .generation import generate, has_adapter

ADAPTER_NAMES = ("before (adapter off)", "after (adapter on)")


@dataclass
class Evaluation:
    """Greedy completions on held-out rows, graded by the task: correct and well-formed per row.

    ``correct[i]`` is ``None`` when the task could not grade row ``i`` (legal-qa's judges could not score it:
    budget cap, outage). Such a row is excluded, never counted as wrong, and :attr:`unscored` counts it."""

    completions: list[str]
    correct: list[bool | None]
    formatted: list[bool]
    name: str = "model"
    rows: list[dict] = field(default_factory=list, repr=False)

    @property
    def n(self) -> int:
        return len(self.completions)

    @property
    def graded(self) -> int:
        return sum(c is not None for c in self.correct)

    @property
    def unscored(self) -> int:
        return self.n - self.graded

    @property
    def accuracy(self) -> float:
        """The share of graded rows that are correct (``nan`` when no row could be graded)."""
        return sum(c is True for c in self.correct) / self.graded if self.graded else float("nan")

    @property
    def format_rate(self) -> float:
        return sum(self.formatted) / self.n if self.n else 0.0

    # the graded-run interface Comparison reads (stage 05's EvalResult has the same, plus samples)
    modes = ("lenient",)
    n_samples = 0

    @property
    def greedy(self) -> list[str]:
        return self.completions

    @property
    def problems(self) -> list[dict]:
        return self.rows

    @property
    def n_problems(self) -> int:
        return self.n

    def greedy_correct(self, mode: str = "lenient") -> list[bool]:
        return list(self.correct)

    def as_dict(self) -> dict:
        """What a run saves to resume with (``before.json``)."""
        return {"completions": self.completions, "correct": self.correct, "formatted": self.formatted}


def evaluate_greedy(model, tokenizer, rows: Sequence[dict], *, task, max_new_tokens: int, profile=None,
                    use_adapter: bool = True, name: str = "model") -> Evaluation:
    """Greedy completions for ``rows`` (their ``prompt`` column, else the task's prompt), graded with
    ``task.is_correct`` and ``task.follows_format``."""
    rows = list(rows)
    prompts = [r["prompt"] if "prompt" in r else task.to_prompt(r) for r in rows]
    completions = generate(model, tokenizer, prompts, max_new_tokens, profile, use_adapter=use_adapter)
    verdicts = [task.is_correct(c, r) for c, r in zip(completions, rows)]  # None: could not be graded
    return Evaluation(list(completions), [None if v is None else bool(v) for v in verdicts],
                      [bool(task.follows_format(c)) for c in completions], name, rows)


def _keys(result) -> list:
    return [(p.get("id"), p.get("question")) for p in result.problems]


def _greedy_text(result, i: int) -> str:
    g = result.greedy[i]
    return g["completion"] if isinstance(g, dict) else g


def check_paired(before, after) -> None:
    if not before.n_problems or not after.n_problems:
        raise ValueError("nothing to compare: no held-out problems were evaluated (an empty held-out set), so there "
                         "is no before/after accuracy to report")
    if before.n_problems != after.n_problems:
        raise ValueError(f"{before.name} ({before.n_problems} problems) and {after.name} ({after.n_problems}) were "
                         "not run on the same problems: a paired comparison needs identical problem lists")
    ids_b, ids_a = _keys(before), _keys(after)
    if ids_b != ids_a:
        raise ValueError(f"{before.name} and {after.name} were not run on the same problems in the same order: "
                         "a paired comparison needs identical problem lists")
    if before.n_samples != after.n_samples:
        raise ValueError(f"{before.name} has {before.n_samples} samples per problem, {after.name} "
                         f"{after.n_samples}: compare pass@k with the same n")


@dataclass
class Comparison:
    """Two graded runs of the same problems (an :class:`Evaluation`, or stage 05's ``EvalResult``) and the
    paired statistics between them."""

    before: Any
    after: Any
    confidence: float = 0.95
    seed: int = 0
    gold_column: str = "answer"

    def __post_init__(self):
        check_paired(self.before, self.after)

    def graded_pairs(self, mode: str = "lenient") -> tuple[list[bool], list[bool], int]:
        """Greedy verdicts before and after on the problems graded both times, and how many problems were
        left out because one side could not be graded (``None``: e.g. the judges could not score it)."""
        pairs = [(b, a) for b, a in zip(self.before.greedy_correct(mode), self.after.greedy_correct(mode))
                 if b is not None and a is not None]
        return [b for b, _ in pairs], [a for _, a in pairs], self.before.n_problems - len(pairs)

    def greedy(self, mode: str = "lenient") -> metrics.PairedDifference:
        b, a, _ = self.graded_pairs(mode)
        return metrics.paired_bootstrap([float(x) for x in b], [float(x) for x in a], self.confidence,
                                        seed=self.seed)

    def greedy_mcnemar(self, mode: str = "lenient") -> metrics.McNemar:
        b, a, _ = self.graded_pairs(mode)
        return metrics.mcnemar(b, a)

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
            for mode in self.before.modes:
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

    @property
    def labels(self) -> tuple[str, str]:
        return self.before.name, self.after.name

    def summary(self) -> str:
        if isinstance(self.after, Evaluation):  # training's short report: accuracy, format, fixed and broken
            b, a = self.before, self.after
            before, after, left_out = self.graded_pairs()
            fixed = sum((not x) and y for x, y in zip(before, after))
            broken = sum(x and (not y) for x, y in zip(before, after))
            fmt = f"format followed: {b.format_rate:.1%} -> {a.format_rate:.1%}"
            if not left_out:
                return (f"held-out accuracy (greedy, {a.n} problems never trained on): "
                        f"{b.accuracy:.1%} -> {a.accuracy:.1%}  ({a.accuracy - b.accuracy:+.1%})\n"
                        f"{fmt}; problems fixed {fixed}, broken {broken}")
            unscored = (f"{left_out} of {a.n} problems left out: unscored before {b.unscored}, after {a.unscored} "
                        "(the judges could not score them; excluded, not counted as wrong)")
            if not before:
                return f"held-out accuracy (greedy): no problem was graded both before and after\n{unscored}\n{fmt}"
            acc_b, acc_a = sum(before) / len(before), sum(after) / len(after)
            return (f"held-out accuracy (greedy, the {len(before)} of {a.n} problems graded both times): "
                    f"{acc_b:.1%} -> {acc_a:.1%}  ({acc_a - acc_b:+.1%})\n{unscored}\n"
                    f"{fmt}; problems fixed {fixed}, broken {broken}")
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

    def side_by_side(self, n: int = 3, width: int = 48, only_changed: bool = True) -> str:
        """A few prompts with both completions next to each other (changed verdicts first)."""
        idx = list(range(len(self.after.problems)))
        if only_changed:
            changed = [i for i in idx if self.before.greedy_correct()[i] != self.after.greedy_correct()[i]]
            idx = changed + [i for i in idx if i not in changed]
        blocks = []
        for i in idx[:n]:
            row = self.after.problems[i]
            question = row["prompt"][-1]["content"] if "prompt" in row else row.get("question", "")
            gold = str(row.get(self.gold_column, "")).split("####")[-1].strip()
            left = textwrap.wrap(_greedy_text(self.before, i), width, replace_whitespace=False) or [""]
            right = textwrap.wrap(_greedy_text(self.after, i), width, replace_whitespace=False) or [""]
            left = [piece for line in left for piece in line.split("\n")]
            right = [piece for line in right for piece in line.split("\n")]
            mark = {True: "correct", False: "wrong", None: "unscored"}
            lines = [f"Q: {question}", f"gold answer: {gold}",
                     f"{self.labels[0] + ': ' + mark[self.before.greedy_correct()[i]]:<{width}} | "
                     f"{self.labels[1]}: {mark[self.after.greedy_correct()[i]]}"]
            for j in range(max(len(left), len(right))):
                lines.append(f"{(left[j] if j < len(left) else ''):<{width}} | {right[j] if j < len(right) else ''}")
            blocks.append("\n".join(lines))
        return ("\n" + "-" * (2 * width + 3) + "\n").join(blocks)

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


def before_after(model, tokenizer, problems: Sequence[dict], evaluate: Callable[..., Any], *, base_model=None,
                 before=None, names: tuple[str, str] = ADAPTER_NAMES, **kwargs) -> Comparison:
    """Grade ``problems`` with the LoRA adapter off, then on, with identical settings, and compare.

    ``evaluate(model, tokenizer, problems, name=..., use_adapter=..., **kwargs)`` grades one run
    (:func:`evaluate_greedy` for training's check, ``grpo_course.evaluate.evaluate_model`` for stage 05;
    same seed, so sampled runs differ only because the weights do). A model without an adapter (full
    fine-tuning) needs ``base_model`` (the starting weights) or ``before`` (a run graded before training)."""
    if before is not None:
        before.name = "before training"
        after_name = "after training"
    elif has_adapter(model):
        before = evaluate(model, tokenizer, problems, name=names[0], use_adapter=False, **kwargs)
        after_name = names[1]
    elif base_model is not None:
        before = evaluate(base_model, tokenizer, problems, name="before (starting weights)", **kwargs)
        after_name = "after (trained weights)"
    else:
        raise ValueError("before_after needs a peft model (its adapter is switched off for 'before'), "
                         "base_model= (the starting weights of a fully fine-tuned model) or before=")
    after = evaluate(model, tokenizer, problems, name=after_name, **kwargs)
    task = kwargs.get("task")  # the gold answer shown beside each example is in the task's own column
    return Comparison(before, after, gold_column=getattr(task, "gold_column", "answer"))
