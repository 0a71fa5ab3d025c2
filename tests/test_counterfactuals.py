"""The experiments of notebook 09 (grpo_course.tiny.counterfactuals): their settings, the measurements they
read, the verdict sentences' logic, and (slow) that the failed ablation stalls while its fix learns."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from grpo_course.tiny import counterfactuals as cf
from grpo_course.tiny import problems as P
from grpo_course.tiny.demonstrator import solve
from grpo_course.tiny.evaluation import ProblemScores


def test_every_experiment_keeps_eight_prompts_per_step_and_changes_one_thing():
    from grpo_course.tiny import KINDS
    from grpo_course.tiny.recipe import TINY_GRPO

    for e in cf.EXPERIMENTS.values():
        settings = {**TINY_GRPO, **e.overrides}
        assert settings["per_device_train_batch_size"] // settings["num_generations"] == 8, e.name
        assert e.model in KINDS
    assert cf.EXPERIMENTS["flaw_always"].model == "sft_always_adds" and not cf.EXPERIMENTS["flaw_always"].overrides
    assert cf.EXPERIMENTS["low_diversity"].overrides["temperature"] < 0.1
    assert [cf.EXPERIMENTS[n].overrides["beta"] for n in cf.KL_RUNS] == [0.0, 0.04, 0.4]
    with pytest.raises(ValueError, match="unknown experiment"):
        cf.run_experiment("no_such_thing")


def test_decisive_prefix_stops_where_the_operator_goes():
    rows = P.generate_problems(300, seed=4)
    for p in rows:
        prefix = cf.decisive_prefix(p)
        if not p["has_subtraction"]:
            assert prefix is None
            continue
        right, wrong = solve(p), solve(p, flawed=True)
        assert right.startswith(prefix + " -") and wrong.startswith(prefix + " +")


def test_pass_curves_rise_with_k_and_start_at_pass_at_1():
    problems = [{"question": str(i), "has_subtraction": i % 2 == 0} for i in range(4)]
    before = ProblemScores((False,) * 4, (0, 1, 4, 8), 8)
    after = ProblemScores((True,) * 4, (8, 8, 0, 8), 8)
    curves = cf.pass_curves(before, after)
    assert curves["before"][1] == pytest.approx(13 / 32) and curves["before"][8] == pytest.approx(0.75)
    assert all(curves["before"][k] <= curves["before"][k + 1] for k in range(1, 8))
    sub = cf.pass_curves(before, after, problems, group="subtraction")
    assert sub["after"][8] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="problems"):
        cf.pass_curves(before, after, group="other")


def _run(gain, zero_std=0.5, G=4, temperature=1.0, kl=math.nan, beta=0.0, sub=(0.0, 0.0)):
    history = [{"frac_reward_zero_std": zero_std}]
    return SimpleNamespace(sft={"greedy": 0.3, "greedy_subtraction": sub[0]},
                           grpo={"greedy": 0.3 + gain / 100, "greedy_subtraction": sub[1]}, history=history,
                           step_log=[{"clip_ratio/region_mean": 0.02}, {"reward": 1.0, "clip_ratio/region_mean": 0.0}],
                           kl_curve=[{"step": 0, "kl": 0.0}, {"step": 20, "kl": kl}],
                           experiment=SimpleNamespace(overrides={"num_generations": G, "temperature": temperature,
                                                                 "beta": beta}))


def test_the_verdict_sentences_follow_the_numbers():
    stalled = cf.diversity_sentence(_run(0.0, zero_std=1.0, temperature=0.05), _run(60.0, zero_std=0.2, G=12))
    assert stalled.startswith("Starved of variance, GRPO stalled") and "restored learning" in stalled
    assert "100% of groups" in stalled and "+60.0 points" in stalled
    not_stalled = cf.diversity_sentence(_run(30.0), _run(3.0))
    assert not_stalled.startswith("Low diversity did not stall") and "did not restore" in not_stalled
    runs = {"no_kl": _run(-10, kl=1.0), "kl": _run(-10, kl=0.95, beta=0.04), "strong_kl": _run(0, kl=0.5, beta=0.4)}
    text = cf.kl_sentence(runs)
    assert "beta = 0.04 made no measurable difference" in text and "beta = 0.4 held the policy closer" in text
    assert "2.0% of the tokens" in text  # only the reused pass (no "reward" in its row) counts


def test_flaw_sentence_says_what_happened():
    sharp = SimpleNamespace(pass_at=lambda k, when, group: 0.0)
    r = _run(2.0, sub=(0.0, 0.0))
    r.before_scores, r.sharpening = ProblemScores((), (), 8), sharp
    r.sft["pass@8"] = 0.6
    assert cf.flaw_sentence(r).startswith("RL cannot find what it never samples")
    r.grpo["greedy"] = 0.9
    assert cf.flaw_sentence(r).startswith("GRPO still learned here")


@pytest.fixture(scope="module")
def sft():
    from grpo_course.tiny import load_tiny

    return load_tiny("sft")


def test_the_sft_model_hesitates_at_the_operator_and_the_always_adds_model_does_not(sft):
    from grpo_course.tiny import load_tiny

    model, tok = sft
    test = P.load_split("test", 120)
    probs = cf.operator_probabilities(model, tok, test)
    assert len(probs) == sum(p["has_subtraction"] for p in test)
    p_minus = sum(r["p_minus"] for r in probs) / len(probs)
    assert 0.1 < p_minus < 0.6  # it imitates a demonstrator who subtracts 35% of the time
    assert all(r["p_minus"] + r["p_plus"] <= 1 + 1e-6 and r["entropy"] >= 0 for r in probs)
    always, _ = load_tiny("sft_always_adds")
    never = cf.operator_probabilities(always, tok, test)
    assert max(r["p_minus"] for r in never) < 1e-3  # (almost) never samples a '-'
    assert sum(r["p_plus"] for r in never) / len(never) > 0.99


def test_exact_kl_is_zero_to_itself_and_positive_after_a_change(sft):
    import copy

    import torch

    from grpo_course.chat_format import build_messages, prompt_token_ids
    from grpo_course.scratch import sample_groups

    model, tok = sft
    prompts = [prompt_token_ids(tok, build_messages(p["question"])) for p in P.load_split("test", 4)]
    torch.manual_seed(0)
    ids, mask, n = sample_groups(model, prompts, 2, 30, 1.0, tok.pad_token_id, tok.eos_token_id)
    assert cf.exact_kl(model, model, ids, mask, n) == pytest.approx(0.0, abs=1e-7)
    moved = copy.deepcopy(model)
    with torch.no_grad():
        for w in moved.parameters():
            w.add_(0.3 * w.std() * torch.randn(w.shape, generator=torch.Generator().manual_seed(1)))
    forward, backward = cf.exact_kl(moved, model, ids, mask, n), cf.exact_kl(model, moved, ids, mask, n)
    assert forward > 1e-2 and backward > 1e-2 and forward != pytest.approx(backward, rel=1e-3)  # KL is asymmetric


@pytest.mark.slow
def test_no_variance_no_learning_and_raising_g_and_temperature_restores_it():
    low = cf.run_experiment("low_diversity", seed=0, steps=12, n_test=100, k=0, curve_every=0)
    assert cf.zero_std_share(low) > 0.9 and cf.gain_points(low) <= 5
    restored = cf.run_experiment("restored", seed=0, steps=12, n_test=100, k=0, curve_every=0)
    assert cf.zero_std_share(restored) < 0.6 and cf.gain_points(restored) >= 30


def test_the_recorder_counts_equal_groups_that_trls_log_counts_as_varied():
    import torch

    def fmt(completions, **kwargs):
        return [0.2] * len(completions)

    def right(completions, **kwargs):
        return [0.7 if c != "odd" else 1.7 for c in completions]

    rec = cf.GroupRecorder([fmt, right], G=4)
    wrapped = rec.wrapped()
    assert [w.__name__ for w in wrapped] == ["fmt", "right"]  # TRL names its metrics after the functions
    completions = ["a"] * 4 + ["a", "odd", "a", "a"]  # group 0: equal rewards (0.9 each); group 1: one differs
    sub = [True] * 4 + [False] * 4
    assert wrapped[0](completions, has_subtraction=sub) == [0.2] * 8
    wrapped[1](completions, has_subtraction=sub)
    assert rec.equal_share() == [0.5]
    assert rec.equal_share("subtraction") == [1.0] and rec.equal_share("other") == [0.0]
    # TRL 1.14 logs frac_reward_zero_std from isclose(std, 0) on float32: group 0 does not count as zero-std there
    std = torch.tensor([0.2 + 0.7] * 8, dtype=torch.float32).std()  # a group of 8, as the recipe samples
    assert not torch.isclose(std, torch.zeros_like(std))


def test_notebook_09s_panels_draw_what_they_are_given():
    """The sharpening and KL figures (grpo_course.tiny.plots) draw one series per input, with the data given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from grpo_course.tiny.plots import plot_kl_runs, plot_sharpening

    greedy = {("before", "subtraction"): 0.1, ("before", "other"): 0.9, ("after", "subtraction"): 0.8,
              ("after", "other"): 1.0}
    run = SimpleNamespace(sharpening=SimpleNamespace(greedy=lambda when, g: greedy[when, g]))
    curves = {"before": {1: 0.5, 2: 0.7, 16: 0.95}, "after": {1: 0.9, 2: 0.92, 16: 0.95}}
    fig = plot_sharpening(run, [{"p_minus": 0.3}] * 4, [{"p_minus": 0.9}] * 3, curves)
    bars, hist, passk = fig.axes
    assert [round(b.get_height(), 2) for b in bars.patches] == [0.1, 0.9, 0.8, 1.0]
    assert sum(p.get_height() for p in hist.patches) == 7  # 4 before + 3 after
    assert [list(line.get_ydata()) for line in passk.lines] == [[0.5, 0.7, 0.95], [0.9, 0.92, 0.95]]
    plt.close(fig)

    def result(kl):
        return SimpleNamespace(kl_curve=[{"step": 0, "kl": 0.0}, {"step": 2, "kl": kl}],
                               step_log=[{"step": 1, "reward": 1.0, "kl": kl / 2},
                                         {"step": 2, "clip_ratio/region_mean": kl / 10}],
                               curve=[{"step": 0, "heldout_greedy": 0.4}, {"step": 2, "heldout_greedy": 0.6}])

    runs = {"beta = 0": result(0.2), "beta = 0.04": result(0.1)}
    fig = plot_kl_runs(runs, k3=runs["beta = 0.04"])
    kl, clip, acc = fig.axes
    assert [line.get_label() for line in kl.lines] == ["beta = 0", "beta = 0.04", "beta = 0.04, TRL's k3 log"]
    assert list(kl.lines[-1].get_ydata()) == [0.05]  # the k3 log of the run named by k3
    assert [list(line.get_ydata()) for line in clip.lines] == [[0.02], [0.01]]  # reused batches only
    assert len(acc.lines) == 2
    plt.close(fig)
