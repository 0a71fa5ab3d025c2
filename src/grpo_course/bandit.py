"""A toy to derive GRPO on: REINFORCE over a handful of answers, with and without a baseline.

Notebook 01 starts here, before any language model. There are ``P`` prompts; prompt ``p`` has ``K`` possible
answers (actions) ``a``; the policy picks answer ``a`` with probability ``pi[p, a] = softmax(theta[p])[a]``,
and answer ``a`` earns the reward ``R[p, a]``. The objective is the mean expected reward

    J(theta) = 1/P * sum_p sum_a pi[p, a] R[p, a].

**REINFORCE** (the log-derivative trick): ``grad J = E[r(a) * grad log pi(a)]``, so the gradient can be
*estimated* from sampled answers alone, ``1/(P G) * sum_i (r_i - b_i) * grad log pi(a_i)`` with ``G`` samples
per prompt. For a softmax, ``grad_theta[p] log pi[p, a] = onehot(a) - pi[p]``. Any baseline ``b`` that does
not depend on the sampled answer leaves the expectation unchanged (``E[grad log pi] = 0``) and can cut the
variance a lot. The baselines compared here (:data:`BASELINES`):

- ``"none"``: ``b = 0``;
- ``"batch mean"``: one number for every prompt, the mean reward of the whole batch;
- ``"critic"``: the prompt's expected reward ``V[p] = sum_a pi[p, a] R[p, a]`` (what PPO's value network
  learns to predict; here the exact value, the best a critic can do);
- ``"group mean"``: the mean reward of the prompt's own ``G`` samples (GRPO's baseline, no network);
- ``"group mean / std"``: the same, divided by the group's sample std + 1e-4 (GRPO as TRL runs it).

The group mean includes the sample itself, so its estimate is ``(G - 1) / G`` of the true gradient: the
same direction, a little shorter (:func:`compare_baselines` measures it).

numpy only; deterministic given ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BASELINES = ("none", "batch mean", "critic", "group mean", "group mean / std")
EPS = 1e-4  # TRL's epsilon added to the group std


def softmax(theta: np.ndarray) -> np.ndarray:
    z = np.exp(theta - theta.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def expected_reward(theta: np.ndarray, R: np.ndarray) -> np.ndarray:
    """``V[p] = sum_a pi[p, a] R[p, a]``, shape ``(P,)``."""
    return (softmax(theta) * R).sum(-1)


def exact_gradient(theta: np.ndarray, R: np.ndarray) -> np.ndarray:
    """``grad J``: ``pi[p] * (R[p] - V[p]) / P`` for each prompt, shape ``(P, K)``."""
    pi = softmax(theta)
    return pi * (R - (pi * R).sum(-1, keepdims=True)) / len(R)


def sample(theta: np.ndarray, G: int, rng: np.random.Generator) -> np.ndarray:
    """``G`` answers per prompt drawn from the policy, shape ``(P, G)``."""
    pi = softmax(theta)
    return np.stack([rng.choice(len(row), size=G, p=row) for row in pi])


def weights(rewards: np.ndarray, baseline: str, V: np.ndarray | None = None) -> np.ndarray:
    """The factor each sample's ``grad log pi`` is multiplied by: reward minus baseline (``(P, G)``)."""
    if baseline == "none":
        return rewards
    if baseline == "batch mean":
        return rewards - rewards.mean()
    if baseline == "critic":
        if V is None:
            raise ValueError("the critic baseline needs V, the expected reward of each prompt")
        return rewards - V[:, None]
    centred = rewards - rewards.mean(1, keepdims=True)
    if baseline == "group mean":
        return centred
    if baseline == "group mean / std":
        return centred / (rewards.std(1, ddof=1, keepdims=True) + EPS)
    raise ValueError(f"unknown baseline {baseline!r}; choose from {', '.join(BASELINES)}")


def gradient_estimate(theta: np.ndarray, answers: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``1/(P G) * sum_i w_i * (onehot(a_i) - pi[p])`` for each prompt: REINFORCE's estimate of ``grad J``."""
    P, G = answers.shape
    pi = softmax(theta)
    onehot = np.eye(theta.shape[1])[answers]  # (P, G, K)
    return (w[..., None] * (onehot - pi[:, None, :])).sum(1) / (P * G)


def estimates(theta: np.ndarray, R: np.ndarray, G: int, baseline: str, n: int = 2000, seed: int = 0) -> np.ndarray:
    """``n`` independent gradient estimates (one batch of ``G`` samples per prompt each), ``(n, P, K)``."""
    rng = np.random.default_rng(seed)
    V = expected_reward(theta, R)
    out = []
    for _ in range(n):
        answers = sample(theta, G, rng)
        rewards = np.take_along_axis(R, answers, 1)
        out.append(gradient_estimate(theta, answers, weights(rewards, baseline, V)))
    return np.stack(out)


@dataclass(frozen=True)
class BaselineStats:
    """How one baseline's estimates relate to the true gradient (over many independent batches)."""

    baseline: str
    cosine: float  # cosine between the mean estimate and the true gradient (1: the right direction)
    length: float  # |mean estimate| / |true gradient| (group mean: (G - 1) / G)
    noise: float  # E|estimate - mean estimate|^2 / |true gradient|^2: the variance, in units of the signal
    one_batch_cosine: float  # mean cosine between a single batch's estimate and the true gradient


def compare_baselines(theta: np.ndarray, R: np.ndarray, G: int = 8, n: int = 2000, seed: int = 0,
                      baselines=BASELINES) -> list[BaselineStats]:
    """Every baseline on the same ``n`` batches (the same sampled answers), at the policy ``theta``."""
    true = exact_gradient(theta, R).ravel()
    norm2 = float(true @ true)
    out = []
    for b in baselines:
        est = estimates(theta, R, G, b, n, seed).reshape(n, -1)
        m = est.mean(0)
        one = est @ true / (np.linalg.norm(est, axis=1) * np.sqrt(norm2) + 1e-300)
        out.append(BaselineStats(b, float(m @ true / (np.linalg.norm(m) * np.sqrt(norm2))),
                                 float(np.linalg.norm(m) / np.sqrt(norm2)),
                                 float(((est - m) ** 2).sum(1).mean() / norm2), float(one.mean())))
    return out


def train(theta: np.ndarray, R: np.ndarray, baseline: str, steps: int = 200, G: int = 8, lr: float = 1.0,
          seed: int = 0, critic_lr: float = 0.1) -> np.ndarray:
    """Plain gradient ascent with REINFORCE's estimate; returns the mean expected reward after each step
    (``steps + 1`` values, the first at the start). The ``"critic"`` baseline here is *learned*, as PPO's is:
    ``V[p]`` starts at 0 and moves ``critic_lr`` of the way to each batch's mean reward of prompt ``p``."""
    rng = np.random.default_rng(seed)
    theta = np.array(theta, dtype=float)
    V = np.zeros(len(R))
    curve = [float(expected_reward(theta, R).mean())]
    for _ in range(steps):
        answers = sample(theta, G, rng)
        rewards = np.take_along_axis(R, answers, 1)
        theta = theta + lr * gradient_estimate(theta, answers, weights(rewards, baseline, V)) * len(R)
        V += critic_lr * (rewards.mean(1) - V)
        curve.append(float(expected_reward(theta, R).mean()))
    return np.array(curve)


def toy_problem(p_right=(0.05, 0.2, 0.5, 0.8), K: int = 5, right: float = 1.5, wrong: float = 0.5, seed: int = 0):
    """``(theta, R)``: one prompt per entry of ``p_right``, each with ``K`` answers, one right (reward ``right``)
    and the rest wrong (``wrong``: the format credit every well-formed answer gets, as the course's tag reward
    pays 0.5). The policy starts with probability ``p_right[p]`` on prompt ``p``'s right answer (hard to
    easy prompts) and spreads the rest evenly; where the right answer sits is drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    P = len(p_right)
    R = np.full((P, K), wrong, dtype=float)
    best = rng.integers(0, K, size=P)
    R[np.arange(P), best] = right
    theta = np.zeros((P, K))
    theta[np.arange(P), best] = np.log(np.asarray(p_right) * (K - 1) / (1 - np.asarray(p_right)))
    return theta, R
