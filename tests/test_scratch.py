"""GRPO from scratch (grpo_course.scratch): notebook 01's inline copy trains exactly like the package's, and
each of its pieces equals the course's TRL-checked functions on the same batch."""

from __future__ import annotations

import copy

import pytest
import torch
from notebook_code import notebook_functions

NOTEBOOK = "01_advantage_math.ipynb"
NAMES = ("left_pad_groups", "sample_groups", "token_logprobs", "grpo_from_scratch")


@pytest.fixture(scope="module")
def tiny():
    from grpo_course.tiny import load_tiny

    return load_tiny("sft")


@pytest.fixture(scope="module")
def task(tiny):
    from grpo_course.chat_format import build_messages, prompt_token_ids
    from grpo_course.tiny.problems import load_split

    _, tok = tiny
    rows = load_split("train")[:40]
    messages = [build_messages(p["question"]) for p in rows]
    prompts = [prompt_token_ids(tok, m) for m in messages]
    columns = {"answer": [p["answer"] for p in rows], "prompts": messages}
    return prompts, columns


def summed_reward(completions, **kwargs):
    from grpo_course.tiny.lab import reward_functions

    scores = [f(completions, **kwargs) for f in reward_functions()]
    return [sum(s) for s in zip(*scores)]


def weights(model):
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("beta, num_iterations", [(0.0, 1), (0.04, 2)])
def test_the_notebook_copy_trains_exactly_like_the_package(tiny, task, beta, num_iterations):
    from grpo_course import scratch

    model, tok = tiny
    prompts, columns = task
    nb = notebook_functions(NOTEBOOK, NAMES)
    kw = dict(steps=3, prompts_per_step=4, G=4, max_new_tokens=30, seed=3, beta=beta, num_iterations=num_iterations,
              lr=1e-3)
    ours, theirs = copy.deepcopy(model), copy.deepcopy(model)
    log_pkg = scratch.grpo_from_scratch(ours, tok, prompts, summed_reward, columns, **kw)
    log_nb = nb["grpo_from_scratch"](theirs, tok, prompts, summed_reward, columns, **kw)
    assert log_nb == log_pkg and len(log_pkg) == 3
    assert all(torch.equal(a, b) for a, b in zip(weights(ours), weights(theirs)))
    assert not all(torch.equal(a, b) for a, b in zip(weights(ours), weights(model)))  # it did train


def test_each_piece_equals_the_course_functions(tiny, task, monkeypatch):
    """One generation batch, two optimiser steps on it, beta 0.04: the loop's log-probabilities, advantages
    and loss (ratio, clipping and k3 KL included) equal grpo_course.logprobs/advantages/objective's."""
    from grpo_course import scratch
    from grpo_course.advantages import group_advantages
    from grpo_course.logprobs import completion_logprobs
    from grpo_course.objective import grpo_loss_terms

    model, tok = tiny
    prompts, columns = task
    policy, start = copy.deepcopy(model), copy.deepcopy(model)
    batches, rewards, after_first = [], [], []
    real_sample = scratch.sample_groups

    def recording_sample(*args):
        out = real_sample(*args)
        batches.append(out)
        return out

    def recording_reward(completions, **kwargs):
        rewards.append(summed_reward(completions, **kwargs))
        return rewards[-1]

    monkeypatch.setattr(scratch, "sample_groups", recording_sample)
    log = scratch.grpo_from_scratch(policy, tok, prompts, recording_reward, columns, steps=2, prompts_per_step=4,
                                    G=4, max_new_tokens=30, seed=5, beta=0.04, num_iterations=2, lr=3e-3,
                                    on_step=lambda row: after_first.append(copy.deepcopy(policy)))
    assert len(batches) == 1  # two optimiser steps on one generation batch
    ids, mask, P = batches[0]
    layout = {"prompt_ids": ids[:, :P], "prompt_mask": mask[:, :P], "completion_ids": ids[:, P:],
              "completion_mask": mask[:, P:]}
    cmask = layout["completion_mask"]
    with torch.no_grad():
        old = completion_logprobs(start, **layout)
        ours_old = scratch.token_logprobs(start, ids, mask, P, 1.0)
        now = completion_logprobs(after_first[0], **layout)
    assert torch.allclose(ours_old * cmask, old, atol=1e-5)
    A = group_advantages(torch.tensor(rewards[0]), 4)
    assert (A != 0).any(), "pick a seed whose batch has a group with different rewards"
    for step, logp in ((0, old), (1, now)):
        terms = grpo_loss_terms(logp, A, cmask, old_logp=old, ref_logp=old, beta=0.04, epsilon=0.2, loss_type="dapo")
        assert log[step]["loss"] == pytest.approx(terms.loss.item(), abs=1e-5)
        assert log[step]["clip_ratio"] == pytest.approx(terms.clip_low + terms.clip_high, abs=1e-6)
        assert log[step]["kl"] == pytest.approx(terms.mean_kl, abs=1e-6)
    assert log[0]["kl"] == 0.0 and log[1]["kl"] > 0  # the policy moved away from its reference
    assert log[0]["clip_ratio"] == 0.0  # on-policy the ratio is exactly 1


def test_left_padding_repeats_each_prompt_g_times_and_aligns_the_ends():
    """Rows are prompt 0 G times, then prompt 1 G times; pads go on the left and are masked out; the
    notebook's copy pads the same."""
    from grpo_course.scratch import left_pad_groups

    ids, mask, P = left_pad_groups([[5, 6, 7], [8]], 2, pad_id=0)
    assert P == 3
    assert ids.tolist() == [[5, 6, 7], [5, 6, 7], [0, 0, 8], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [1, 1, 1], [0, 0, 1], [0, 0, 1]]
    nb_ids, nb_mask, nb_P = notebook_functions(NOTEBOOK, NAMES)["left_pad_groups"]([[5, 6, 7], [8]], 2, 0)
    assert torch.equal(nb_ids, ids) and torch.equal(nb_mask, mask) and nb_P == P


def test_sampling_is_the_softmax_at_the_temperature(tiny):
    """Low temperature samples agree with greedy decoding; each row stops after its end token."""
    from grpo_course.chat_format import build_messages, prompt_token_ids
    from grpo_course.scratch import sample_groups
    from grpo_course.tiny.evaluation import generate
    from grpo_course.tiny.problems import load_split

    model, tok = tiny
    questions = [p["question"] for p in load_split("test")[:6]]
    prompts = [prompt_token_ids(tok, build_messages(q)) for q in questions]
    torch.manual_seed(0)
    ids, mask, P = sample_groups(model, prompts, 2, 48, 1e-3, tok.pad_token_id, tok.eos_token_id)
    texts = tok.batch_decode(ids[:, P:], skip_special_tokens=True)
    greedy = generate(model, tok, questions)
    assert texts == [g for g in greedy for _ in range(2)]
    for row, m in zip(ids[:, P:].tolist(), mask[:, P:].tolist()):
        n = sum(m)
        assert m == [1] * n + [0] * (len(m) - n) and row[n - 1] == tok.eos_token_id


@pytest.mark.slow
def test_scratch_grpo_lifts_heldout_accuracy_like_trl():
    """The same bar as test_tiny's TRL run: 12 steps lift held-out greedy accuracy by 30 points or more."""
    from grpo_course.tiny.counterfactuals import run_scratch

    r = run_scratch(seed=0, steps=12, n_test=200, threads=1)
    assert r["before"] < 0.45 and r["after"] - r["before"] >= 0.30, r
