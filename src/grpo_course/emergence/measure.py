"""What the experiment watches on held-out problems: step-writing, completion length, accuracy.

:func:`measure` decodes greedily (one completion per problem: what the model *prefers*) and samples
``k`` completions per problem at temperature 1 (what it *does*, and what GRPO sees). For each decoding:

- ``steps``: the fraction of completions that write intermediate results (:func:`~.task.writes_steps`);
- ``length``: the mean completion length in tokens (EOS not counted);
- ``accuracy``: the fraction whose final answer is right (the course's lenient grader);
- sampled only: ``frac_reward_zero_std``, the fraction of problems whose ``k`` samples all get the same
  reward from :data:`~.task.REWARD_NAMES` (all right or all wrong: GRPO would learn nothing from that
  group, as TRL's log of the same name says of the training groups), ``pass@k`` (the chance that one of
  the ``k`` samples is right, unbiased), and accuracy split by behaviour: ``accuracy_steps``
  (completions that wrote steps) and ``accuracy_bare`` (the rest).

:func:`advantages_by_behaviour` is the mechanism in numbers: it samples GRPO's groups, scores them with
the experiment's reward and computes TRL's group-relative advantages, then averages them separately over
the completions that wrote steps and those that did not.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..tiny.evaluation import generate, grade, pass_at_k
from .task import REWARD_NAMES, writes_steps

MAX_NEW_TOKENS = 48  # the longest worked solution is 30 tokens with EOS


def _nan_mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def describe(completions: Sequence[str], correct: Sequence[bool], tokenizer) -> dict:
    """``steps``, ``length`` and ``accuracy`` of a list of completions, with accuracy per behaviour."""
    wrote = [writes_steps(c) for c in completions]
    lengths = [len(ids) for ids in tokenizer(list(completions), add_special_tokens=False)["input_ids"]]
    return {
        "steps": _nan_mean([float(w) for w in wrote]),
        "length": _nan_mean([float(n) for n in lengths]),
        "accuracy": _nan_mean([float(c) for c in correct]),
        "accuracy_steps": _nan_mean([float(c) for c, w in zip(correct, wrote) if w]),
        "accuracy_bare": _nan_mean([float(c) for c, w in zip(correct, wrote) if not w]),
        "n": len(completions),
    }


def _experiment_rewards(completions: Sequence[str], golds: Sequence[str]) -> list[float]:
    """The experiment's reward for each completion (the sum of :data:`~.task.REWARD_NAMES`, as TRL sums them)."""
    from ..rewards import get_reward

    per_reward = [get_reward(name)(list(completions), answer=list(golds)) for name in REWARD_NAMES]
    return [sum(r or 0.0 for r in scores) for scores in zip(*per_reward)]


def measure(model, tokenizer, problems: Sequence[dict], *, k: int = 4, seed: int = 0,
            max_new_tokens: int = MAX_NEW_TOKENS) -> dict:
    """``{"greedy": {...}, "sampled": {...}}`` on ``problems`` (see the module doc); ``k=0``: greedy only."""
    if not problems:
        raise ValueError("measure needs at least one held-out problem")
    qs, golds = [p["question"] for p in problems], [p["answer"] for p in problems]
    greedy = generate(model, tokenizer, qs, max_new_tokens=max_new_tokens)
    out = {"greedy": describe(greedy, grade(greedy, golds), tokenizer)}
    if k:
        sampled = generate(model, tokenizer, qs, max_new_tokens=max_new_tokens, do_sample=True,
                           num_return_sequences=k, seed=seed)
        repeated = [g for g in golds for _ in range(k)]
        correct = grade(sampled, repeated)
        out["sampled"] = describe(sampled, correct, tokenizer)
        rewards = _experiment_rewards(sampled, repeated)
        groups = [tuple(rewards[i * k:(i + 1) * k]) for i in range(len(problems))]
        out["sampled"]["frac_reward_zero_std"] = sum(len(set(g)) == 1 for g in groups) / len(groups)
        counts = [sum(correct[i * k:(i + 1) * k]) for i in range(len(problems))]
        out["sampled"][f"pass@{k}"] = sum(pass_at_k(k, c, k) for c in counts) / len(problems)
    return out


def advantages_by_behaviour(model, tokenizer, problems: Sequence[dict], *, group_size: int = 8, seed: int = 0,
                            max_new_tokens: int = MAX_NEW_TOKENS) -> dict:
    """Sample a group of ``group_size`` completions per problem, reward them, and compute the advantages.

    Returns the summary (``advantage_steps`` and ``advantage_bare``: the mean advantage of the completions
    that wrote steps and of those that did not, ``n_steps``, ``n_bare``, ``frac_reward_zero_std``) and the
    rows (``completions``, ``rewards``, ``advantages``, ``writes_steps``; grouped per problem).
    """
    from ..advantages import group_advantages

    if not problems or group_size < 2:
        raise ValueError("advantages need at least one problem and groups of two or more")
    qs = [p["question"] for p in problems]
    golds = [p["answer"] for p in problems for _ in range(group_size)]
    completions = generate(model, tokenizer, qs, max_new_tokens=max_new_tokens, do_sample=True,
                           num_return_sequences=group_size, seed=seed)
    rewards = _experiment_rewards(completions, golds)
    advantages = [float(a) for a in group_advantages(rewards, group_size)]
    wrote = [writes_steps(c) for c in completions]
    groups = [tuple(rewards[i:i + group_size]) for i in range(0, len(rewards), group_size)]
    return {
        "advantage_steps": _nan_mean([a for a, w in zip(advantages, wrote) if w]),
        "advantage_bare": _nan_mean([a for a, w in zip(advantages, wrote) if not w]),
        "n_steps": sum(wrote),
        "n_bare": len(wrote) - sum(wrote),
        "frac_reward_zero_std": sum(len(set(g)) == 1 for g in groups) / len(groups),
        "completions": completions, "rewards": rewards, "advantages": advantages, "writes_steps": wrote,
    }


def step_probability(model, tokenizer, problems: Sequence[dict], batch_size: int = 256) -> list[float]:
    """Per problem, the model's probability of starting to write steps: after ``<think>`` and a newline,
    a bare answer writes a second newline (the empty block), a worked solution its first number. So this
    is one minus the probability of that second newline: exact, no sampling."""
    import torch

    from ..chat_format import REASONING_START
    from ..tiny.evaluation import prompt_texts

    newline = tokenizer.convert_tokens_to_ids("\n")
    texts = [t + REASONING_START + "\n" for t in prompt_texts(tokenizer, [p["question"] for p in problems])]
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    was_training = model.training
    model.eval()
    out: list[float] = []
    try:
        with torch.no_grad():
            for i in range(0, len(texts), batch_size):
                enc = tokenizer(texts[i:i + batch_size], return_tensors="pt", padding=True)
                positions = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)  # left padding: count real tokens
                logits = model(**enc, position_ids=positions).logits[:, -1, :]
                out.extend((1 - torch.softmax(logits, dim=-1)[:, newline]).tolist())
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return out
