"""What a GRPO run taught the model, computed from the run: the sharpening verdict.

The tiny model imitated a demonstrator that writes ``+`` where a step subtracts, so greedy decoding gets
almost every subtraction problem wrong, yet some of its *samples* pick ``-`` and are right. GRPO pays for
right answers, so it can raise the probability of what the model already samples: pass@k before training
becomes greedy accuracy after. That is *sharpening*, not a new skill. This module measures it:

- per problem: the greedy verdict and the number of right samples out of ``k``, before and after;
- split into problems with a subtraction step (the flaw's place) and the others;
- a verdict in words built from those numbers (:meth:`Sharpening.sentence`): ``"sharpened"`` when the
  problems greedy decoding newly solves were (almost) all solved by a sample before, ``"beyond"`` when
  many were not, ``"no gain"`` when the change is within noise.

:func:`measure_sharpening` generates with a model (its LoRA adapter off for "before", or a separate
``before_model``); :func:`sharpening_from_evaluations` reuses stage 05's two evaluations; :func:`sharpening`
builds it from per-problem scores (:class:`~.evaluation.ProblemScores`). Importing this module does not
import torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .evaluation import ProblemScores, pass_at_k
from .problems import subtracts

GROUPS = ("subtraction", "other", "all")
# "Sharpened" when at least this share of the problems greedy decoding newly solves already had a right
# sample before training (a problem with none would be a skill the model lacked, or sampling luck).
IN_REACH_SHARE = 0.9


@dataclass(frozen=True)
class Outcome:
    """One held-out problem before and after training (``before_correct``: right samples out of ``k``)."""

    question: str
    subtraction: bool
    before_greedy: bool
    after_greedy: bool
    before_correct: int
    after_correct: int


@dataclass(frozen=True)
class Sharpening:
    """Per-problem outcomes before and after training, and the verdict they support (see the module doc)."""

    outcomes: tuple[Outcome, ...]
    k: int

    def group(self, name: str = "all") -> list[Outcome]:
        if name not in GROUPS:
            raise ValueError(f"group {name!r}: choose one of {', '.join(GROUPS)}")
        return [o for o in self.outcomes if name == "all" or o.subtraction == (name == "subtraction")]

    def greedy(self, when: str, group: str = "all") -> float:
        """Greedy accuracy ``"before"`` or ``"after"`` on a group (NaN for an empty group)."""
        rows = self.group(group)
        return sum(getattr(o, f"{_when(when)}_greedy") for o in rows) / len(rows) if rows else math.nan

    def pass_at(self, k: int, when: str, group: str = "all") -> float:
        """Unbiased pass@k from the ``self.k`` samples per problem (``k <= self.k``)."""
        if not 1 <= k <= self.k:
            raise ValueError(f"pass@{k} needs 1 <= k <= {self.k} (the samples drawn per problem)")
        rows = self.group(group)
        return (sum(pass_at_k(self.k, getattr(o, f"{_when(when)}_correct"), k) for o in rows) / len(rows)
                if rows else math.nan)

    @property
    def newly_solved(self) -> list[Outcome]:
        """Problems greedy decoding gets right after training and got wrong before."""
        return [o for o in self.outcomes if o.after_greedy and not o.before_greedy]

    @property
    def newly_broken(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.before_greedy and not o.after_greedy]

    @property
    def in_reach(self) -> list[Outcome]:
        """Newly solved problems for which at least one of the ``k`` samples before training was right."""
        return [o for o in self.newly_solved if o.before_correct > 0]

    @property
    def kind(self) -> str:
        """``"sharpened"``, ``"beyond"`` or ``"no gain"`` (greedy fixes minus breaks within two standard
        errors of a sign test count as no gain)."""
        fixed, broken = len(self.newly_solved), len(self.newly_broken)
        if fixed - broken <= 2 * math.sqrt(fixed + broken):
            return "no gain"
        return "sharpened" if len(self.in_reach) >= IN_REACH_SHARE * fixed else "beyond"

    def rows(self) -> list[dict]:
        """One row per group: problems, greedy and sampled accuracy before and after (a table's rows)."""
        out = []
        for g in GROUPS:
            out.append({"problems": g, "n": len(self.group(g)),
                        "greedy before": self.greedy("before", g), f"pass@{self.k} before": self.pass_at(
                            self.k, "before", g),
                        "greedy after": self.greedy("after", g), "pass@1 after": self.pass_at(1, "after", g)})
        return out

    def table(self) -> str:
        """The rows as narrow text (60 characters)."""
        k = self.k
        lines = [f"{'problems':<12}{'n':>5}{'greedy before':>15}{f'pass@{k} before':>15}{'greedy after':>14}"]
        for r in self.rows():
            lines.append(f"{r['problems']:<12}{r['n']:>5}{r['greedy before']:>15.1%}{r[f'pass@{k} before']:>15.1%}"
                         f"{r['greedy after']:>14.1%}")
        return "\n".join(lines)

    def sentence(self) -> str:
        """The verdict in words, every number computed from the outcomes."""
        k, sub, other = self.k, self.group("subtraction"), self.group("other")
        fixed, reach = self.newly_solved, self.in_reach
        numbers = (f"On the {len(sub)} held-out problems with a subtraction step, greedy accuracy went from "
                   f"{self.greedy('before', 'subtraction'):.1%} to {self.greedy('after', 'subtraction'):.1%}, "
                   f"while {k} samples of the model before GRPO already held a right answer for "
                   f"{self.pass_at(k, 'before', 'subtraction'):.1%} of them (pass@{k}); on the {len(other)} "
                   f"other problems it went from {self.greedy('before', 'other'):.1%} to "
                   f"{self.greedy('after', 'other'):.1%}.")
        if not sub or not other:
            numbers = (f"On {len(self.outcomes)} held-out problems greedy accuracy went from "
                       f"{self.greedy('before'):.1%} to {self.greedy('after'):.1%}; pass@{k} before was "
                       f"{self.pass_at(k, 'before'):.1%}.")
        if self.kind == "no gain":
            return (f"No measurable gain: greedy decoding newly solves {len(fixed)} problems and breaks "
                    f"{len(self.newly_broken)}. " + numbers)
        reach_text = (f"Of the {len(fixed)} problems greedy decoding newly solves, {len(reach)} already had a "
                      f"right answer among the {k} samples before GRPO.")
        if self.kind == "sharpened":
            where = (" (here: which operation to write in a subtraction step)"
                     if sum(o.subtraction for o in fixed) >= IN_REACH_SHARE * len(fixed) else "")
            return (f"GRPO sharpened what the model could already sample: it turned pass@{k} into greedy accuracy. "
                    + numbers + " " + reach_text + f" What it learned is a choice it could already make{where}, "
                    "not a skill it lacked.")
        return ("GRPO did more than sharpen: " + reach_text + f" {len(fixed) - len(reach)} of them had none, "
                "so the model now solves problems its samples almost never did. " + numbers)

    def summary(self, width: int = 100) -> str:
        """The table, then the sentence wrapped at ``width`` characters (a notebook wraps long lines mid-word)."""
        import textwrap

        return self.table() + "\n\n" + textwrap.fill(self.sentence(), width)


def _when(when: str) -> str:
    if when not in ("before", "after"):
        raise ValueError(f"when={when!r}: 'before' or 'after'")
    return when


def sharpening(problems: Sequence[dict], before: ProblemScores, after: ProblemScores) -> Sharpening:
    """The verdict from per-problem scores before and after training, on the same problems and ``k``."""
    if not (len(problems) == len(before.greedy) == len(after.greedy)):
        raise ValueError(f"scores for {len(before.greedy)} / {len(after.greedy)} problems, but {len(problems)} "
                         "problems: before and after must score the same problems")
    if before.k != after.k or not before.k or not len(before.counts) == len(after.counts) == len(problems):
        raise ValueError(f"need the same number of samples per problem before and after (got {before.k} and "
                         f"{after.k}); sample at least one")
    outcomes = tuple(Outcome(p["question"], subtracts(p), bg, ag, bc, ac) for p, bg, ag, bc, ac in zip(
        problems, before.greedy, after.greedy, before.counts, after.counts))
    return Sharpening(outcomes, before.k)


def measure_sharpening(model, tokenizer, problems: Sequence[dict], *, k: int = 8, seed: int = 0,
                       max_new_tokens: int = 48, before_model=None, threads: int | None = 1) -> Sharpening:
    """Generate and grade before and after: "before" is ``before_model``, or ``model`` with its LoRA adapter
    switched off (``disable_adapter``); "after" is ``model`` as it is. Greedy plus ``k`` samples at T=1.

    ``threads``: torch threads while generating (restored after). The tiny model has nothing to split: on
    a shared 2-core machine 200 problems x 8 samples took 6 s on one thread and 99 s on two (measured)."""
    import torch

    from .evaluation import score_problems

    if before_model is None and not hasattr(model, "disable_adapter"):
        raise ValueError("no 'before' model: pass before_model=, or a model with a LoRA adapter to switch off")
    kw = dict(k=k, seed=seed, max_new_tokens=max_new_tokens)
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        if before_model is not None:
            before = score_problems(before_model, tokenizer, problems, **kw)
        else:
            with model.disable_adapter():
                before = score_problems(model, tokenizer, problems, **kw)
        after = score_problems(model, tokenizer, problems, **kw)
    finally:
        torch.set_num_threads(old_threads)
    return sharpening(problems, before, after)


def sharpening_from_evaluations(before, after) -> Sharpening:
    """The verdict from stage 05's two evaluations (``grpo_course.evaluate`` results with samples) on the
    same problems: no generation, the same lenient grading."""
    if [p["question"] for p in before.problems] != [p["question"] for p in after.problems]:
        raise ValueError("before and after were evaluated on different problems")
    scores = [ProblemScores(tuple(r.greedy_correct()), tuple(r.correct_counts()), r.n_samples) for r in (before, after)]
    return sharpening(before.problems, *scores)
