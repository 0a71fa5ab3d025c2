"""The REINFORCE toy of notebook 01 (grpo_course.bandit): the estimator is unbiased, baselines cut its noise
without turning it, and the notebook's inline estimator equals the package's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grpo_course import bandit as B
from grpo_course.paths import REPO_ROOT


def notebook_function(name: str):
    cells = json.loads((REPO_ROOT / "notebooks" / "01_advantage_math.ipynb").read_text())["cells"]
    matches = ["".join(c["source"]) for c in cells if c["cell_type"] == "code" and f"def {name}(" in "".join(c["source"])]
    assert len(matches) == 1, f"notebook 01 should define {name} in exactly one cell"
    namespace = {"np": np}
    exec(compile(matches[0], f"01:{name}", "exec"), namespace)
    return namespace[name]


def test_exact_gradient_equals_finite_differences():
    theta, R = B.toy_problem()
    g = B.exact_gradient(theta, R)
    h = 1e-6
    for p, a in [(0, 0), (1, 3), (3, 1), (2, 2)]:
        d = np.zeros_like(theta)
        d[p, a] = h
        fd = (B.expected_reward(theta + d, R).mean() - B.expected_reward(theta - d, R).mean()) / (2 * h)
        assert g[p, a] == pytest.approx(fd, abs=1e-8)


def test_the_notebooks_reinforce_equals_the_package():
    by_hand = notebook_function("reinforce_by_hand")
    theta, R = B.toy_problem()
    pi = B.softmax(theta)
    rng = np.random.default_rng(3)
    for p in range(len(R)):
        answers = rng.choice(5, size=8, p=pi[p])
        rewards = R[p][answers]
        for b in (0.0, 0.7):
            ours = B.gradient_estimate(theta[p:p + 1], answers[None], (rewards - b)[None])[0]
            np.testing.assert_allclose(by_hand(pi[p], answers, rewards, b), ours, rtol=1e-12, atol=1e-15)


def test_reinforce_is_unbiased_and_baselines_cut_its_noise():
    theta, R = B.toy_problem()
    stats = {s.baseline: s for s in B.compare_baselines(theta, R, G=8, n=3000)}
    for name in ("none", "batch mean", "critic"):
        assert stats[name].cosine > 0.99 and stats[name].length == pytest.approx(1.0, abs=0.06)
    assert stats["group mean"].length == pytest.approx(7 / 8, abs=0.04)  # (G - 1) / G: the sample is in its mean
    assert stats["group mean / std"].cosine > 0.98
    assert stats["none"].noise > 2.5 * stats["critic"].noise
    assert stats["none"].noise > 2.5 * stats["group mean"].noise
    assert stats["critic"].one_batch_cosine > stats["none"].one_batch_cosine + 0.1


def test_without_a_baseline_large_steps_get_stuck_and_the_group_mean_does_not():
    theta, R = B.toy_problem()
    end = {b: np.array([B.train(theta, R, b, steps=60, G=4, lr=5.0, seed=s)[-1] for s in range(20)])
           for b in ("none", "group mean")}
    assert (end["none"] < 1.45).sum() >= 5  # some runs lock onto a wrong answer
    assert (end["group mean"] < 1.45).sum() <= 2
    curve = B.train(theta, R, "group mean", steps=5, seed=0)
    assert len(curve) == 6 and curve[0] == pytest.approx(B.expected_reward(theta, R).mean())


def test_baseline_errors():
    theta, R = B.toy_problem()
    with pytest.raises(ValueError, match="unknown baseline"):
        B.weights(R[:, :2], "median")
    with pytest.raises(ValueError, match="needs V"):
        B.weights(R[:, :2], "critic")
    assert B.toy_problem(p_right=(0.3,))[1].shape == (1, 5)
    np.testing.assert_allclose(B.softmax(B.toy_problem(p_right=(0.3, 0.6))[0]).max(1), [0.3, 0.6])
