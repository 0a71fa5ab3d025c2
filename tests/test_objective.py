"""grpo_course.objective and grpo_course.logprobs: the clipped surrogate, KL estimators, aggregations, log-probs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from notebook_code import notebook_functions

from grpo_course.logprobs import (
    completion_logprobs,
    pad_batch,
    sequence_logprob,
    token_logprobs_from_logits,
)
from grpo_course.objective import (
    LOSS_TYPES,
    aggregate,
    clipped_surrogate,
    grpo_loss,
    grpo_loss_terms,
    kl_k1,
    kl_k2,
    kl_k3,
)


def batch(B=4, T=6, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    logp = (-torch.rand(B, T, generator=g, dtype=dtype) * 3).requires_grad_()
    old = (logp.detach() + 0.3 * torch.randn(B, T, generator=g, dtype=dtype)).clamp(max=0)
    ref = (logp.detach() + 0.3 * torch.randn(B, T, generator=g, dtype=dtype)).clamp(max=0)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).long()
    adv = torch.randn(B, generator=g, dtype=dtype)
    return logp, old, ref, mask, adv


# --- the clipped surrogate -----------------------------------------------------------------------


@pytest.mark.parametrize("A", [1.0, -1.0, 0.5])
def test_clipped_surrogate_values_and_where_the_gradient_is_cut(A):
    ratios = torch.tensor([0.5, 0.79, 0.9, 1.0, 1.1, 1.21, 2.0], dtype=torch.float64, requires_grad=True)
    obj = clipped_surrogate(ratios, torch.tensor(A, dtype=torch.float64), epsilon=0.2)
    expected = np.minimum(ratios.detach().numpy() * A, np.clip(ratios.detach().numpy(), 0.8, 1.2) * A)
    np.testing.assert_allclose(obj.detach().numpy(), expected)
    obj.sum().backward()
    grad = ratios.grad.numpy()
    for r, gr in zip(ratios.detach().numpy(), grad):
        cut = (A > 0 and r > 1.2) or (A < 0 and r < 0.8)
        assert gr == (0.0 if cut else A), (r, gr)


def test_epsilon_high_moves_only_the_upper_clip():
    r = torch.tensor([0.7, 1.25, 1.3], dtype=torch.float64)
    pos = clipped_surrogate(r, torch.tensor(1.0, dtype=torch.float64), epsilon=0.2, epsilon_high=0.28)
    neg = clipped_surrogate(r, torch.tensor(-1.0, dtype=torch.float64), epsilon=0.2, epsilon_high=0.28)
    assert pos.tolist() == pytest.approx([0.7, 1.25, 1.28])
    assert neg.tolist() == pytest.approx([-0.8, -1.25, -1.3])


def test_delta_caps_the_unclipped_ratio():
    r = torch.tensor([3.0], dtype=torch.float64)
    assert clipped_surrogate(r, torch.tensor(-1.0, dtype=torch.float64), delta=2.0).item() == -2.0


# --- KL estimators -------------------------------------------------------------------------------


def test_kl_estimators_on_samples_from_the_policy():
    g = torch.Generator().manual_seed(0)
    pi = torch.softmax(torch.randn(12, generator=g, dtype=torch.float64), -1)
    ref = torch.softmax(torch.randn(12, generator=g, dtype=torch.float64), -1)
    true_kl = float((pi * (pi.log() - ref.log())).sum())
    x = torch.multinomial(pi, 200_000, replacement=True, generator=g)
    logp, ref_logp = pi.log()[x], ref.log()[x]
    k1, k2, k3 = kl_k1(logp, ref_logp), kl_k2(logp, ref_logp), kl_k3(logp, ref_logp)
    assert float(k1.mean()) == pytest.approx(true_kl, rel=0.05)  # unbiased
    assert float(k3.mean()) == pytest.approx(true_kl, rel=0.05)  # unbiased
    assert (k1 < 0).any() and (k3 >= 0).all() and (k2 >= 0).all()
    assert float(k3.std()) < float(k1.std())  # lower variance: why GRPO uses k3


@settings(max_examples=100, deadline=None)
@given(st.floats(-20, 0), st.floats(-20, 0))
def test_k3_is_never_negative_and_zero_only_at_equality(a, b):
    k = float(kl_k3(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)))
    assert k >= 0
    if a == b:
        assert k == 0


# --- aggregation ---------------------------------------------------------------------------------


def test_aggregations_by_hand():
    ptl = torch.tensor([[1.0, 2.0, 3.0, 0.0], [4.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    assert aggregate(ptl, mask, "grpo").item() == pytest.approx((2.0 + 4.0) / 2)
    assert aggregate(ptl, mask, "bnpo").item() == pytest.approx(10 / 4)
    assert aggregate(ptl, mask, "dr_grpo", max_completion_length=8).item() == pytest.approx(10 / (2 * 8))
    assert aggregate(ptl, mask, "dr_grpo").item() == pytest.approx(10 / (2 * 4))  # default L: padded width
    assert aggregate(ptl, mask, "dapo").item() == pytest.approx(10 / 4)
    assert aggregate(ptl, mask, "dapo", num_items_in_batch=20).item() == pytest.approx(10 / 20)
    assert aggregate(ptl, mask, "dapo", num_items_in_batch=20, num_processes=2).item() == pytest.approx(1.0)
    for lt in ("grpo", "bnpo", "dr_grpo"):
        assert aggregate(ptl, mask, lt, gradient_accumulation_steps=2).item() == pytest.approx(
            aggregate(ptl, mask, lt).item() / 2)
    with pytest.raises(ValueError, match="loss_type"):
        aggregate(ptl, mask, "sapo")


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_gradient_accumulation_sums_to_the_whole_batch(loss_type):
    """TRL scales each micro-batch so the summed micro-batch losses equal the whole batch's loss."""
    logp, old, ref, mask, adv = batch(B=8, T=7, seed=3)
    kw = dict(old_logp=old, ref_logp=ref, beta=0.04, loss_type=loss_type, max_completion_length=7)
    whole = grpo_loss(logp, adv, mask, **kw).item()
    n_items = mask.sum()
    parts = sum(
        grpo_loss(logp[i:i + 2], adv[i:i + 2], mask[i:i + 2], old_logp=old[i:i + 2], ref_logp=ref[i:i + 2],
                  beta=0.04, loss_type=loss_type, max_completion_length=7, num_items_in_batch=n_items,
                  gradient_accumulation_steps=4).item()
        for i in range(0, 8, 2))
    assert parts == pytest.approx(whole, rel=1e-12)


def test_bnpo_accumulates_per_micro_batch_token_means():
    logp, old, _, mask, adv = batch(B=4, T=5, seed=4)
    micro = [grpo_loss(logp[i:i + 2], adv[i:i + 2], mask[i:i + 2], old_logp=old[i:i + 2], loss_type="bnpo",
                       gradient_accumulation_steps=2).item() for i in (0, 2)]
    halves = [grpo_loss(logp[i:i + 2], adv[i:i + 2], mask[i:i + 2], old_logp=old[i:i + 2],
                        loss_type="bnpo").item() for i in (0, 2)]
    assert sum(micro) == pytest.approx(sum(halves) / 2)


def test_steps_per_generation_rescales_dapo():
    logp, old, _, mask, adv = batch(seed=5)
    a = grpo_loss(logp, adv, mask, old_logp=old, num_items_in_batch=40, gradient_accumulation_steps=2,
                  steps_per_generation=4).item()
    b = grpo_loss(logp, adv, mask, old_logp=old, num_items_in_batch=20).item()
    assert a == pytest.approx(b)


# --- the full loss -------------------------------------------------------------------------------


def test_loss_formula_token_by_token():
    logp, old, ref, mask, adv = batch(seed=1)
    eps_lo, eps_hi, beta = 0.2, 0.28, 0.04
    terms = grpo_loss_terms(logp, adv, mask, old_logp=old, ref_logp=ref, beta=beta, epsilon=eps_lo,
                            epsilon_high=eps_hi, loss_type="bnpo")
    L = 0.0
    n = 0
    B, T = logp.shape
    for i in range(B):
        for t in range(T):
            if not mask[i, t]:
                continue
            r = math.exp(logp[i, t].item() - old[i, t].item())
            A = adv[i].item()
            surrogate = min(r * A, min(max(r, 1 - eps_lo), 1 + eps_hi) * A)
            d = ref[i, t].item() - logp[i, t].item()
            k3 = math.exp(d) - d - 1
            L += -surrogate + beta * k3 * r
            n += 1
    assert terms.loss.item() == pytest.approx(L / n, rel=1e-12)
    assert terms.mean_kl > 0 and terms.kl.shape == (B, T)


def test_on_policy_loss_values():
    """ratio == 1: per-token loss is -A_i. grpo gives -mean(A); dapo gives -sum(A_i |o_i|) / sum |o_i|."""
    logp, _, _, mask, _ = batch(B=4, T=6, seed=2)
    adv = torch.tensor([1.5, -0.5, -0.5, -0.5], dtype=torch.float64)  # group-centred
    lengths = mask.sum(1).double()
    assert grpo_loss(logp, adv, mask, loss_type="grpo").item() == pytest.approx(0.0, abs=1e-15)
    dapo = grpo_loss(logp, adv, mask, loss_type="dapo").item()
    assert dapo == pytest.approx(float(-(adv * lengths).sum() / lengths.sum()))


def test_on_policy_gradient_is_the_policy_gradient():
    logp, _, _, mask, adv = batch(seed=6)
    loss = grpo_loss(logp, adv, mask, loss_type="dapo")
    (g,) = torch.autograd.grad(loss, logp)
    expected = -(adv.unsqueeze(1) * mask) / mask.sum()
    assert torch.allclose(g, expected)


def test_bias_correction_changes_the_kl_gradient_not_the_on_policy_value():
    logp, _, ref, mask, adv = batch(seed=7)
    a = grpo_loss(logp, adv, mask, ref_logp=ref, beta=0.1, use_bias_correction_kl=True)
    b = grpo_loss(logp, adv, mask, ref_logp=ref, beta=0.1, use_bias_correction_kl=False)
    assert a.item() == pytest.approx(b.item(), rel=1e-12)
    (ga,) = torch.autograd.grad(a, logp)
    (gb,) = torch.autograd.grad(b, logp)
    assert not torch.allclose(ga, gb)


def test_sequence_level_ratio_is_one_per_completion():
    logp, old, _, mask, adv = batch(seed=8)
    terms = grpo_loss_terms(logp, adv, mask, old_logp=old, importance_sampling_level="sequence", loss_type="grpo")
    assert terms.ratio.shape == (logp.shape[0], 1)
    expected = torch.exp(((logp - old) * mask).sum(-1) / mask.sum(-1))
    assert torch.allclose(terms.ratio.squeeze(1), expected)


def test_clip_fractions():
    logp = torch.zeros(2, 2, dtype=torch.float64)
    old = torch.tensor([[0.0, -0.5], [0.0, 0.5]], dtype=torch.float64)  # ratios [1, e^.5], [1, e^-.5]
    mask = torch.ones(2, 2)
    terms = grpo_loss_terms(logp, torch.tensor([1.0, -1.0], dtype=torch.float64), mask, old_logp=old)
    assert terms.clip_high == 0.25 and terms.clip_low == 0.25 and terms.clip_region == 0.5


def test_bad_arguments():
    logp, old, _, mask, adv = batch()
    with pytest.raises(ValueError, match="ref_logp"):
        grpo_loss(logp, adv, mask, beta=0.1)
    with pytest.raises(ValueError, match="same shape"):
        grpo_loss(logp, adv, mask[:, :-1])
    with pytest.raises(ValueError, match="importance_sampling_level"):
        grpo_loss(logp, adv, mask, importance_sampling_level="token-ish")


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_float32_and_float64_agree(loss_type):
    logp, old, ref, mask, adv = batch(seed=9)
    kw = dict(ref_logp=ref, beta=0.04, loss_type=loss_type)
    hi = grpo_loss(logp, adv, mask, old_logp=old, **kw).item()
    lo = grpo_loss(logp.float(), adv.float(), mask, old_logp=old.float(), ref_logp=ref.float(), beta=0.04,
                   loss_type=loss_type).item()
    assert lo == pytest.approx(hi, rel=1e-5, abs=1e-6)


# --- log-probabilities ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, pad_token_id=0)
    return LlamaForCausalLM(cfg).eval()


def test_pad_batch_layout():
    b = pad_batch([[5, 6, 7], [8]], [[1, 2], [3, 4, 9]], pad_token_id=0)
    assert b["prompt_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert b["prompt_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert b["completion_ids"].tolist() == [[1, 2, 0], [3, 4, 9]]
    assert b["completion_mask"].tolist() == [[1, 1, 0], [1, 1, 1]]
    with pytest.raises(ValueError):
        pad_batch([[1]], [], 0)


def test_logprobs_equal_a_plain_forward_pass_and_ignore_padding(tiny_llama):
    prompts, completions = [[5, 6, 7, 8], [9, 10]], [[11, 12], [13, 14, 15]]
    padded = completion_logprobs(tiny_llama, **pad_batch(prompts, completions, 0), temperature=0.7)
    for i, (p, c) in enumerate(zip(prompts, completions)):
        ids = torch.tensor([p + c])
        logits = tiny_llama(input_ids=ids).logits[0, len(p) - 1:-1] / 0.7
        expected = torch.log_softmax(logits, -1)[torch.arange(len(c)), torch.tensor(c)]
        assert torch.allclose(padded[i, :len(c)], expected, atol=1e-5)
        assert (padded[i, len(c):] == 0).all()


def test_temperature_scales_logits():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    ids = torch.tensor([0])
    assert token_logprobs_from_logits(logits, ids, 0.5).item() == pytest.approx(
        torch.log_softmax(logits / 0.5, -1)[0, 0].item(), abs=1e-6)
    with pytest.raises(ValueError):
        token_logprobs_from_logits(logits, ids, 0.0)


def test_sequence_logprob_sums_unmasked_tokens():
    assert sequence_logprob(torch.tensor([[-1.0, -2.0, -5.0]]), torch.tensor([[1, 1, 0]])).item() == -3.0


# --- the notebook's inline code equals the package ------------------------------------------------


def test_notebook_inline_objective_code_equals_the_package():
    nb = notebook_functions("01_advantage_math.ipynb",
                            ["clipped_objective_by_hand", "k3_by_hand", "grpo_loss_by_hand"])
    r = np.linspace(0.3, 2.0, 41)
    for A in (1.0, -1.0, 0.37):
        np.testing.assert_allclose(nb["clipped_objective_by_hand"](r, A),
                                   clipped_surrogate(torch.tensor(r), torch.tensor(A, dtype=torch.float64)).numpy(),
                                   rtol=1e-12)
    lp, rp = -np.random.default_rng(0).random(20) * 4, -np.random.default_rng(1).random(20) * 4
    np.testing.assert_allclose(nb["k3_by_hand"](lp, rp), kl_k3(torch.tensor(lp), torch.tensor(rp)).numpy(),
                               rtol=1e-12)
    logp, old, _, mask, adv = batch(seed=11)
    by_hand = nb["grpo_loss_by_hand"](logp, old, adv, mask)
    ours = grpo_loss(logp, adv, mask, old_logp=old, loss_type="dapo")
    assert by_hand.item() == pytest.approx(ours.item(), rel=1e-12)
    g1 = torch.autograd.grad(by_hand, logp)[0]
    g2 = torch.autograd.grad(ours, logp)[0]
    assert torch.allclose(g1, g2)
