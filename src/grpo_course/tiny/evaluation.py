"""Generate with the tiny model and grade held-out problems: greedy accuracy, pass@1 and pass@k."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..chat_format import build_messages
from ..metrics import pass_at_k
from ..rewards import is_correct
from .problems import subtracts


def prompt_texts(tokenizer, questions: Sequence[str]) -> list[str]:
    return [tokenizer.apply_chat_template(build_messages(q), add_generation_prompt=True, tokenize=False)
            for q in questions]


def generate(model, tokenizer, questions: Sequence[str], *, max_new_tokens: int = 48, do_sample: bool = False,
             temperature: float = 1.0, num_return_sequences: int = 1, batch_size: int = 256,
             seed: int | None = None) -> list[str]:
    """Completions for ``questions`` (``num_return_sequences`` per question, grouped per question), from the
    course's one generation loop (:func:`grpo_course.generation.generate_samples`)."""
    from ..generation import Decoding, generate_samples

    decoding = Decoding(max_new_tokens=max_new_tokens, temperature=temperature if do_sample else 0.0,
                        n=num_return_sequences, seed=seed, batch_size=batch_size)
    groups = generate_samples(model, tokenizer, [build_messages(q) for q in questions], decoding, progress=False)
    return [g.text for group in groups for g in group]


def grade(completions: Sequence[str], golds: Sequence[str]) -> list[bool]:
    """The course's lenient grader (``grpo_course.rewards.is_correct``), one verdict per completion."""
    return [bool(is_correct(c, g, mode="lenient")) for c, g in zip(completions, golds)]


def greedy_accuracy(model, tokenizer, problems: Sequence[dict], **kw) -> float:
    comps = generate(model, tokenizer, [p["question"] for p in problems], **kw)
    return sum(grade(comps, [p["answer"] for p in problems])) / max(1, len(problems))


@dataclass(frozen=True)
class ProblemScores:
    """Per problem: the greedy completion's verdict and how many of ``k`` samples were right."""

    greedy: tuple[bool, ...]
    counts: tuple[int, ...]
    k: int


def score_problems(model, tokenizer, problems: Sequence[dict], *, k: int = 8, temperature: float = 1.0,
                   seed: int = 0, max_new_tokens: int = 48) -> ProblemScores:
    """One greedy completion and ``k`` samples at ``temperature`` per problem, graded (``k=0``: greedy only)."""
    qs, golds = [p["question"] for p in problems], [p["answer"] for p in problems]
    greedy = grade(generate(model, tokenizer, qs, max_new_tokens=max_new_tokens), golds)
    counts: list[int] = []
    if k:
        sampled = generate(model, tokenizer, qs, max_new_tokens=max_new_tokens, do_sample=True,
                           temperature=temperature, num_return_sequences=k, seed=seed)
        ok = grade(sampled, [g for g in golds for _ in range(k)])
        counts = [sum(ok[i * k:(i + 1) * k]) for i in range(len(problems))]
    return ProblemScores(tuple(greedy), tuple(counts), k)


def summarize(problems: Sequence[dict], scores: ProblemScores) -> dict:
    """Greedy accuracy (overall, on problems with a subtraction step, on the others), pass@1 and pass@k."""
    greedy = scores.greedy
    sub = [g for g, p in zip(greedy, problems) if subtracts(p)]
    rest = [g for g, p in zip(greedy, problems) if not subtracts(p)]
    n = max(1, len(problems))
    out = {
        "greedy": sum(greedy) / n,
        "greedy_subtraction": sum(sub) / max(1, len(sub)),
        "greedy_other": sum(rest) / max(1, len(rest)),
        "n": len(problems),
    }
    if scores.k:
        out["pass@1"] = sum(pass_at_k(scores.k, c, 1) for c in scores.counts) / n
        out[f"pass@{scores.k}"] = sum(pass_at_k(scores.k, c, scores.k) for c in scores.counts) / n
    return out


def evaluate(model, tokenizer, problems: Sequence[dict], *, k: int = 8, temperature: float = 1.0,
             seed: int = 0, max_new_tokens: int = 48) -> dict:
    """Greedy accuracy, and pass@1 / pass@k from ``k`` samples per problem at ``temperature`` (``k=0``: greedy only).

    Also splits greedy accuracy by whether the problem has a subtraction step (the demonstrator's flaw).
    """
    scores = score_problems(model, tokenizer, problems, k=k, temperature=temperature, seed=seed,
                            max_new_tokens=max_new_tokens)
    return summarize(problems, scores)
