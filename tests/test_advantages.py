"""grpo_course.advantages: worked examples, TRL's conventions, and properties that must hold for any rewards."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from notebook_code import notebook_functions

from grpo_course.advantages import (
    TRL_EPS,
    group_advantages,
    group_stats,
    weight_of_lone_success,
)

# --- the seeds' worked examples ------------------------------------------------------------------


def test_seed_example_population_std_gives_plus_minus_one():
    a = group_advantages(np.array([1.0, 0.0, 1.0, 0.0]), 4, std="population", eps=1e-8)
    np.testing.assert_allclose(a, [1, -1, 1, -1], atol=1e-7)


def test_seed_example_with_trl_sample_std_gives_0866():
    a = group_advantages(np.array([1.0, 0.0, 1.0, 0.0]), 4)  # TRL: sample std, eps 1e-4
    expected = 0.5 / (math.sqrt(1 / 3) + 1e-4)  # sample std of [1,0,1,0] is sqrt(1/3) = 0.577
    np.testing.assert_allclose(a, [expected, -expected, expected, -expected], rtol=1e-12)
    assert round(float(a[0]), 3) == 0.866


def test_one_success_in_eight_mean_only():
    a = group_advantages([1, 0, 0, 0, 0, 0, 0, 0], 8, scale="none")
    np.testing.assert_allclose(a, [0.875] + [-0.125] * 7)
    assert weight_of_lone_success(8, scale="none") == pytest.approx((0.875, -0.125))


def test_lone_success_weight_grows_with_group_size_under_std_scaling():
    weights = [weight_of_lone_success(g)[0] for g in (2, 4, 8, 16, 32, 64)]
    assert all(b > a for a, b in zip(weights, weights[1:]))
    # one 1 among G-1 zeros: mean 1/G, sample std 1/sqrt(G), so the weights are (G-1)/sqrt(G) and -1/sqrt(G)
    for g, w in zip((2, 4, 8, 16, 32, 64), weights):
        assert w == pytest.approx((g - 1) / math.sqrt(g), rel=1e-3)
        assert weight_of_lone_success(g)[1] == pytest.approx(-1 / math.sqrt(g), rel=1e-3)
    # mean-only: the success weight approaches 1 and failures approach 0
    assert weight_of_lone_success(64, scale="none") == pytest.approx((63 / 64, -1 / 64))


@pytest.mark.parametrize("value", [0.0, 1.0, 0.5])
@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_all_equal_group_gives_exactly_zero(value, scale):
    rewards = np.array([value] * 4 + [1.0, 0.0, 0.0, 1.0])
    a, stats = group_advantages(rewards, 4, scale=scale, return_stats=True)
    assert np.all(a[:4] == 0.0)
    assert stats.zero_std.tolist() == [True, False]
    assert stats.frac_zero_std == 0.5


def test_eps_goes_outside_the_std():
    rewards = torch.tensor([3.0, 1.0, 2.0, 2.0], dtype=torch.float64)
    for eps in (1e-4, 0.5, 3.0):
        got = group_advantages(rewards, 4, eps=eps)
        assert torch.allclose(got, (rewards - 2.0) / (rewards.std() + eps))


def test_batch_scale_uses_group_mean_and_batch_std():
    rewards = torch.tensor([1.0, 0.0, 5.0, 7.0, 2.0, 2.0], dtype=torch.float64)
    got = group_advantages(rewards, 2, scale="batch")
    means = torch.tensor([0.5, 0.5, 6.0, 6.0, 2.0, 2.0], dtype=torch.float64)
    assert torch.allclose(got, (rewards - means) / (rewards.std() + TRL_EPS))


# --- input kinds ---------------------------------------------------------------------------------


def test_kinds_and_dtypes_are_preserved():
    r = [1.0, 0.0, 0.5, 0.5]
    a_list = group_advantages(r, 2)
    assert isinstance(a_list, np.ndarray) and a_list.dtype == np.float64
    a_np32 = group_advantages(np.array(r, dtype=np.float32), 2)
    assert isinstance(a_np32, np.ndarray) and a_np32.dtype == np.float32
    a_t = group_advantages(torch.tensor(r), 2)
    assert isinstance(a_t, torch.Tensor) and a_t.dtype == torch.float32
    a_int = group_advantages(torch.tensor([1, 0, 1, 1]), 2)
    assert a_int.dtype == torch.float32
    np.testing.assert_allclose(a_list, a_t.numpy(), rtol=1e-6)


def test_numpy_and_torch_give_the_same_numbers():
    r = np.random.default_rng(0).normal(size=24)
    for scale in ("group", "batch", "none"):
        np.testing.assert_array_equal(group_advantages(r, 6, scale=scale),
                                      group_advantages(torch.from_numpy(r), 6, scale=scale).numpy())


@pytest.mark.parametrize("bad, msg", [
    (dict(rewards=[1.0, 2.0, 3.0], group_size=2), "cannot be split"),
    (dict(rewards=[], group_size=2), "cannot be split"),
    (dict(rewards=[1.0, 2.0], group_size=0), "positive integer"),
    (dict(rewards=[1.0, 2.0], group_size=2, scale="global"), "scale must be"),
    (dict(rewards=[1.0, 2.0], group_size=2, std="unbiased"), "std must be"),
    (dict(rewards=np.zeros((2, 2)), group_size=2), "1-D"),
])
def test_bad_input_is_a_clear_error(bad, msg):
    with pytest.raises(ValueError, match=msg):
        group_advantages(**bad)


# --- unscored completions (TRL: a reward function returning None) ---------------------------------


def test_nan_rewards_are_left_out_and_get_zero_advantage():
    rewards = np.array([1.0, np.nan, 0.0, 1.0])
    a, stats = group_advantages(rewards, 4, return_stats=True)
    assert a[1] == 0.0
    kept = np.array([1.0, 0.0, 1.0])
    assert stats.mean[0] == pytest.approx(kept.mean())
    assert stats.std[0] == pytest.approx(kept.std(ddof=1))
    assert a[0] == pytest.approx((1 - kept.mean()) / (kept.std(ddof=1) + TRL_EPS))


# --- statistics ---------------------------------------------------------------------------------


def test_group_stats_table_and_trl_logged_fraction():
    rewards = [1.0, 1.0, 0.0, 1.0, 2.0, 2.0]
    stats = group_stats(rewards, 2)
    np.testing.assert_allclose(stats.mean, [1.0, 0.5, 2.0])
    np.testing.assert_allclose(stats.std, [0.0, math.sqrt(0.5), 0.0])
    assert stats.frac_zero_std == pytest.approx(2 / 3)
    assert stats.frac_reward_zero_std == pytest.approx(2 / 3)  # TRL's metric for scale="group"
    assert stats.batch_std == pytest.approx(np.std(rewards, ddof=1))
    assert group_stats(rewards, 2, scale="batch").frac_reward_zero_std == 0.0  # batch std is not zero
    assert "zero-variance" in stats.table() and stats.table().count("yes") == 2
    assert group_stats(rewards, 2, std="population").std[1] == pytest.approx(0.5)


def test_matches_trl_formula_with_trls_own_nanstd():
    nanstd = pytest.importorskip("trl.trainer.utils").nanstd
    rewards = torch.tensor([0.2, 0.9, 0.4, 0.4, 1.0, 0.0, 0.0, 0.0, 0.3, 0.1, 0.5, 0.7])
    G = 4
    mean = torch.nanmean(rewards.view(-1, G), dim=1).repeat_interleave(G)
    group_std = nanstd(rewards.view(-1, G), dim=1).repeat_interleave(G)
    assert torch.equal(group_advantages(rewards, G), (rewards - mean) / (group_std + 1e-4))
    assert torch.equal(group_advantages(rewards, G, scale="batch"), (rewards - mean) / (nanstd(rewards) + 1e-4))
    assert torch.equal(group_advantages(rewards, G, scale="none"), rewards - mean)


# --- properties (hypothesis) ------------------------------------------------------------------------

moderate = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False)
any_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def grouped_rewards(draw, elements=moderate):
    G = draw(st.integers(min_value=2, max_value=8))
    n_groups = draw(st.integers(min_value=1, max_value=5))
    r = draw(arrays(np.float64, n_groups * G, elements=elements))
    return r, G


@settings(max_examples=80, deadline=None)
@given(grouped_rewards(), st.sampled_from(["group", "batch", "none"]))
def test_advantages_have_zero_mean_in_every_group(data, scale):
    r, G = data
    a = group_advantages(r, G, scale=scale)
    spread = max(1.0, np.abs(r).max())
    np.testing.assert_allclose(a.reshape(-1, G).mean(axis=1), 0.0, atol=1e-9 * spread)


@settings(max_examples=80, deadline=None)
@given(grouped_rewards(), st.floats(min_value=-100, max_value=100), st.sampled_from(["group", "batch", "none"]))
def test_adding_a_constant_changes_nothing(data, c, scale):
    r, G = data
    a0 = group_advantages(r, G, scale=scale)
    a1 = group_advantages(r + c, G, scale=scale)
    # unscaled advantages are differences of rewards; scaled ones are O(sqrt(G)), so atol covers rounding
    np.testing.assert_allclose(a1, a0, atol=1e-7 * max(1.0, np.abs(r).max(), abs(c)))


@settings(max_examples=80, deadline=None)
@given(grouped_rewards(), st.floats(min_value=0.01, max_value=100))
def test_scaling_rewards(data, k):
    r, G = data
    # mean-only advantages scale with the rewards ...
    np.testing.assert_allclose(group_advantages(k * r, G, scale="none"), k * group_advantages(r, G, scale="none"),
                               atol=1e-9 * k * max(1.0, np.abs(r).max()))
    # ... std-scaled ones do not (exactly so with eps=0, wherever the spread is above rounding noise)
    size = 1.0 + np.abs(r).max()
    has_spread = np.repeat(r.reshape(-1, G).std(axis=1) > 1e-6 * size, G)
    a0 = group_advantages(r, G, scale="group", eps=0.0)
    a1 = group_advantages(k * r, G, scale="group", eps=0.0)
    np.testing.assert_allclose(a1[has_spread], a0[has_spread], atol=1e-6)
    if r.std() > 1e-6 * size:
        a0 = group_advantages(r, G, scale="batch", eps=0.0)
        np.testing.assert_allclose(group_advantages(k * r, G, scale="batch", eps=0.0), a0, atol=1e-6)
    # and each std-scaled group has sample std ~1 when its spread dwarfs eps
    a = group_advantages(r, G, scale="group").reshape(-1, G)
    for row, grp in zip(a, r.reshape(-1, G)):
        if grp.std(ddof=1) > 1.0:
            assert row.std(ddof=1) == pytest.approx(1.0, rel=1e-3)


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 8), st.integers(1, 4), moderate, st.sampled_from(["group", "batch", "none"]))
def test_zero_variance_groups_give_zero(G, n_groups, value, scale):
    r = np.full(n_groups * G, value)
    a, stats = group_advantages(r, G, scale=scale, return_stats=True)
    # zero up to the rounding of the group mean (exactly zero for 0/1 rewards, see the test above)
    assert np.abs(a).max() < 1e-6
    assert stats.frac_zero_std == 1.0 and stats.zero_std.all()


@settings(max_examples=100, deadline=None)
@given(grouped_rewards(elements=any_finite), st.sampled_from(["group", "batch", "none"]),
       st.sampled_from(["sample", "population"]))
def test_never_nan_for_finite_input(data, scale, std):
    r, G = data
    with np.errstate(all="ignore"):
        a = group_advantages(r, G, scale=scale, std=std)
    assert not np.isnan(a).any()


@settings(max_examples=50, deadline=None)
@given(grouped_rewards())
def test_order_within_a_group_does_not_matter(data):
    r, G = data
    perm = np.concatenate([np.random.default_rng(0).permutation(G) + g * G for g in range(len(r) // G)])
    np.testing.assert_allclose(group_advantages(r[perm], G), group_advantages(r, G)[perm], atol=1e-9)


# --- the notebook's inline code equals the package ----------------------------------------------------


def test_notebook_inline_advantages_equal_the_package():
    nb = notebook_functions("01_advantage_math.ipynb", ["advantages_by_hand"])
    rng = np.random.default_rng(3)
    cases = [np.array([1.0, 0.0, 1.0, 0.0]), np.array([1.0] + [0.0] * 7), np.ones(4), rng.random(12)]
    for r in cases:
        for G in (2, 4):
            if len(r) % G:
                continue
            for scale_by_std in (True, False):
                ours = group_advantages(r, G, scale="group" if scale_by_std else "none")
                np.testing.assert_allclose(nb["advantages_by_hand"](r, G, scale_by_std), ours, rtol=1e-12)
