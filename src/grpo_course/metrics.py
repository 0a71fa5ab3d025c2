"""Numbers a researcher would trust: pass@k, maj@k, and intervals around accuracies.

* :func:`pass_at_k` - the unbiased estimator of Chen et al. (2021, "Evaluating Large Language Models
  Trained on Code", arXiv 2107.03374, eq. 1): with ``n`` samples of which ``c`` are correct,
  ``pass@k = 1 - C(n-c, k) / C(n, k)``, computed as the product ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``
  (in log space), which never forms the huge binomials. :func:`naive_pass_at_k` is the tempting
  ``1 - (1 - c/n)^k``, which is biased low (the paper's appendix A; our tests show it).
* :func:`maj_at_k` - majority vote over ``k`` of the ``n`` samples, averaged exactly over every
  subset of size ``k`` (ties share the credit), or over random subsets when there are too many.
* :func:`wilson_interval`, :func:`bootstrap_interval` - intervals for an accuracy.
* :func:`paired_bootstrap`, :func:`mcnemar` - before vs after *on the same problems*.

Pure Python plus numpy (for the bootstrap); no torch.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from itertools import combinations
from statistics import NormalDist

# ---------------------------------------------------------------------------------------------
# pass@k
# ---------------------------------------------------------------------------------------------


def _check_counts(n: int, c: int, k: int) -> None:
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (n, c, k)):
        raise TypeError(f"n, c and k must be integers, got n={n!r}, c={c!r}, k={k!r}")
    if n < 1 or not 0 <= c <= n:
        raise ValueError(f"need n >= 1 samples and 0 <= c <= n correct, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n = {n}: with fewer samples than k there is no "
                         "unbiased estimate (draw more samples per problem)")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of pass@k for one problem from ``c`` correct out of ``n`` samples.

    pass@k is the probability that at least one of ``k`` samples is correct. Drawing ``k`` of the
    ``n`` samples without replacement, all ``k`` are wrong with probability ``C(n-c, k) / C(n, k)``;
    that ratio equals ``prod_{i=n-c+1}^{n} (1 - k/i)``, summed here as logarithms so that ``n`` in
    the millions is as exact as ``n = 10``. ``pass_at_k(n, c, 1) == c / n``.
    """
    _check_counts(n, c, k)
    if n - c < k:  # every k-subset holds a correct sample
        return 1.0
    log_all_wrong = math.fsum(math.log1p(-k / i) for i in range(n - c + 1, n + 1))
    return -math.expm1(log_all_wrong)


def naive_pass_at_k(n: int, c: int, k: int) -> float:
    """``1 - (1 - c/n)^k``: plug the pass@1 estimate into the formula for k independent tries.

    Biased **low** for ``k > 1`` (Chen et al. 2021, appendix A): ``x -> 1 - (1-x)^k`` is concave, so by
    Jensen's inequality its expectation over the noise in ``c/n`` is below its value at the truth.
    Here only to show that bias; use :func:`pass_at_k`.
    """
    _check_counts(n, c, k)
    return 1.0 - (1.0 - c / n) ** k


def mean_pass_at_k(counts: Sequence[tuple[int, int]] | Sequence[int], k: int, n: int | None = None) -> float:
    """The dataset's pass@k: the mean over problems of the per-problem estimates.

    ``counts`` is ``[(n, c), ...]`` or, with ``n`` given, ``[c, ...]``."""
    pairs = [(n, c) for c in counts] if n is not None else list(counts)
    if not pairs:
        raise ValueError("no problems to average over")
    return math.fsum(pass_at_k(nn, cc, k) for nn, cc in pairs) / len(pairs)


def pass_at_k_curve(counts: Sequence[tuple[int, int]] | Sequence[int], n: int | None = None,
                    ks: Sequence[int] | None = None) -> dict[int, float]:
    """``{k: pass@k}`` for ``k = 1 .. min(n)`` (or the given ``ks``)."""
    pairs = [(n, c) for c in counts] if n is not None else list(counts)
    if not pairs:
        raise ValueError("no problems to average over")
    top = min(nn for nn, _ in pairs)
    return {k: mean_pass_at_k(pairs, k) for k in (ks or range(1, top + 1))}


# ---------------------------------------------------------------------------------------------
# maj@k
# ---------------------------------------------------------------------------------------------


def majority_vote(answers: Sequence[Hashable | None]) -> list[Hashable]:
    """The most frequent answers (all of them when tied; ``None`` = no answer, which never votes)."""
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return []
    top = max(votes.values())
    return [a for a, v in votes.items() if v == top]


def _vote_credit(answers: Sequence[Hashable | None], is_right: Callable[[Hashable], bool]) -> float:
    winners = majority_vote(answers)
    if not winners:
        return 0.0
    return sum(1 for w in winners if is_right(w)) / len(winners)


def maj_at_k(answers: Sequence[Hashable | None], correct: Sequence[bool] | Callable[[Hashable], bool], k: int,
             max_subsets: int = 5000, rounds: int = 2000, seed: int = 0) -> float:
    """Majority-vote accuracy with ``k`` votes (maj@k) for one problem, from its ``n`` samples.

    ``answers`` are the samples' extracted answers (equal answers must be equal values, e.g.
    ``grpo_course.rewards.extract_answer``'s canonical strings; ``None`` = no answer, it does not
    vote). ``correct`` is each sample's verdict (the vote's winner is right if the samples giving
    that answer were graded right) or a function ``answer -> bool``.

    The estimate is the expectation over which ``k`` samples vote: exact (all ``C(n, k)`` subsets)
    when there are at most ``max_subsets`` of them, else the mean over ``rounds`` random subsets.
    A tie between answers gives the fraction of tied answers that are right (a fair coin decides).
    ``maj@1 == pass@1``; lm-eval's ``maj@8`` uses the *first* 8 samples instead (one subset).
    """
    n = len(answers)
    if not 1 <= k <= n:
        raise ValueError(f"maj@{k} needs 1 <= k <= n = {n}")
    if callable(correct):
        is_right = correct
    else:
        if len(correct) != n:
            raise ValueError("answers and correct must have the same length")
        right = {a for a, ok in zip(answers, correct) if ok and a is not None}
        is_right = right.__contains__
    if math.comb(n, k) <= max_subsets:
        subsets = combinations(range(n), k)
        total, count = 0.0, 0
        for idx in subsets:
            total += _vote_credit([answers[i] for i in idx], is_right)
            count += 1
        return total / count
    rng = random.Random(seed)
    return math.fsum(_vote_credit([answers[i] for i in rng.sample(range(n), k)], is_right)
                     for _ in range(rounds)) / rounds


# ---------------------------------------------------------------------------------------------
# Intervals and paired comparisons
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """An estimate with a confidence interval, e.g. an accuracy ``0.62 [0.55, 0.68]``."""

    estimate: float
    low: float
    high: float
    confidence: float
    method: str
    n: int

    def __str__(self) -> str:
        return f"{self.estimate:.1%} [{self.low:.1%}, {self.high:.1%}]"

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for a proportion (Wilson 1927): good at small ``n`` and near 0 or 1,
    where the textbook ``p +- z sqrt(p(1-p)/n)`` leaves [0, 1] or collapses to a point."""
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need n >= 1 and 0 <= successes <= n, got {successes}/{n}")
    z = _z(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else min(p, centre - half)  # exact at the ends (no 1e-17 from rounding)
    high = 1.0 if successes == n else max(p, centre + half)
    return Interval(p, max(0.0, low), min(1.0, high), confidence, "wilson", n)


def bootstrap_interval(values: Sequence[float], confidence: float = 0.95, n_boot: int = 5000,
                       seed: int = 0) -> Interval:
    """Percentile bootstrap interval for the mean of per-problem scores (e.g. each problem's ``c/n``,
    which is not a 0/1 outcome, so Wilson does not apply). Problems are resampled with replacement."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("no values")
    _z(confidence)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Interval(float(x.mean()), float(lo), float(hi), confidence, "bootstrap", int(x.size))


@dataclass(frozen=True)
class PairedDifference:
    """``after - before`` on the same problems, with a paired bootstrap interval."""

    before: float
    after: float
    difference: Interval
    p_value: float  # two-sided, from the bootstrap distribution (no difference = 0)
    n_boot: int = 5000

    @property
    def p_text(self) -> str:
        """``p~0.03``, or ``p<0.0002`` when no resample crossed zero (the bootstrap cannot say smaller)."""
        floor = 1.0 / self.n_boot
        return f"p<{floor:.2g}" if self.p_value <= floor else f"p~{self.p_value:.2g}"

    def __str__(self) -> str:
        d = self.difference
        return (f"{self.before:.1%} -> {self.after:.1%}: {d.estimate:+.1%} "
                f"[{d.low:+.1%}, {d.high:+.1%}] ({d.confidence:.0%} paired bootstrap, n={d.n}, {self.p_text})")


def paired_bootstrap(before: Sequence[float], after: Sequence[float], confidence: float = 0.95,
                     n_boot: int = 5000, seed: int = 0) -> PairedDifference:
    """Resample *problems* (keeping each problem's before and after together) and recompute the
    difference of means. Pairing removes the problem-difficulty noise two independent intervals
    would carry: an easy problem is easy before and after."""
    import numpy as np

    b, a = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if b.shape != a.shape or b.size == 0:
        raise ValueError(f"before and after must be non-empty and paired, got {b.size} and {a.size} values")
    _z(confidence)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, b.size, size=(n_boot, b.size))
    diffs = a[idx].mean(axis=1) - b[idx].mean(axis=1)
    lo, hi = np.quantile(diffs, [(1 - confidence) / 2, (1 + confidence) / 2])
    est = float(a.mean() - b.mean())
    # Two-sided bootstrap p-value: how often the resampled difference lands on the other side of 0.
    if np.all(diffs == 0):
        p = 1.0
    else:
        p = float(min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0))))
        p = max(p, 1.0 / n_boot)
    return PairedDifference(float(b.mean()), float(a.mean()),
                            Interval(est, float(lo), float(hi), confidence, "paired bootstrap", int(b.size)), p,
                            n_boot)


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test on paired right/wrong outcomes: only discordant problems carry information."""

    fixed: int  # wrong before, right after
    broken: int  # right before, wrong after
    p_value: float  # exact two-sided binomial test of fixed vs broken at 1/2

    def __str__(self) -> str:
        return f"fixed {self.fixed}, broken {self.broken}: exact McNemar p = {self.p_value:.3g}"


def mcnemar(before: Sequence[bool], after: Sequence[bool]) -> McNemar:
    """Exact McNemar test for two paired 0/1 outcome lists (e.g. greedy correctness)."""
    if len(before) != len(after):
        raise ValueError("before and after must be paired (same problems, same order)")
    fixed = sum(1 for x, y in zip(before, after) if not x and y)
    broken = sum(1 for x, y in zip(before, after) if x and not y)
    m = fixed + broken
    if m == 0:
        return McNemar(0, 0, 1.0)
    tail = math.fsum(math.comb(m, i) for i in range(min(fixed, broken) + 1)) / 2**m
    return McNemar(fixed, broken, min(1.0, 2 * tail))
