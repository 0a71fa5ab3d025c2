"""Stage 05 evaluation: pass@k, maj@k, intervals, the audit, the loop, before/after, checkpoints, CLI.

Metric tests are exact (hand-computed values, binomial expectations). Model tests use a random
two-layer Llama with a word-level tokenizer built here (a second or two), never the network.
"""

from __future__ import annotations

import json
import math
import socket
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grpo_course import metrics
from grpo_course.evaluate.audit import (
    FLAGS,
    audit_completion,
    audit_counts,
    audit_examples,
    audit_table,
    is_hedged,
    repetition_score,
)
from grpo_course.metrics import (
    bootstrap_interval,
    maj_at_k,
    mcnemar,
    naive_pass_at_k,
    paired_bootstrap,
    pass_at_k,
    pass_at_k_curve,
    wilson_interval,
)

# ---------------------------------------------------------------------------------------------
# pass@k
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "c", "k", "expected"), [
    (10, 3, 5, 1 - Fraction(21, 252)),   # 1 - C(7,5)/C(10,5)
    (16, 4, 8, 1 - Fraction(495, 12870)),  # 1 - C(12,8)/C(16,8)
    (5, 1, 2, Fraction(2, 5)),           # 1 - C(4,2)/C(5,2) = 1 - 6/10
    (64, 1, 8, Fraction(1, 8)),          # one correct sample: k/n
    (10, 3, 1, Fraction(3, 10)),         # pass@1 = c/n
    (10, 0, 4, Fraction(0)),
    (10, 7, 4, Fraction(1)),             # n - c < k: every 4-subset holds a correct sample
    (8, 8, 8, Fraction(1)),
])
def test_pass_at_k_hand_computed(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(float(expected), abs=1e-14)


def _exact(n: int, c: int, k: int) -> Fraction:
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_equals_the_binomial_form(nck):
    n, c, k = nck
    assert pass_at_k(n, c, k) == pytest.approx(float(_exact(n, c, k)), rel=1e-12, abs=1e-15)


def test_pass_at_k_is_stable_for_large_n():
    n, c, k = 10**6, 10, 1000
    with pytest.raises(OverflowError):  # the direct formula in floats cannot even form C(n, k)
        float(math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(_exact(n, c, k)), rel=1e-10)
    # tiny probabilities keep their relative precision (log1p/expm1): one correct sample in a million
    assert pass_at_k(10**6, 1, 1) == pytest.approx(1e-6, rel=1e-12)


@pytest.mark.parametrize(("n", "k", "p"), [(10, 5, 0.3), (16, 8, 0.1), (20, 4, 0.5), (8, 8, 0.05)])
def test_unbiased_estimator_vs_naive_bias(n, k, p):
    """Average each estimator over the binomial distribution of c: the unbiased one recovers the true
    pass@k = 1 - (1-p)^k exactly; the naive 1 - (1 - c/n)^k is below it (Jensen: it is concave in c/n)."""
    probs = [math.comb(n, c) * p**c * (1 - p) ** (n - c) for c in range(n + 1)]
    truth = 1 - (1 - p) ** k
    unbiased = math.fsum(q * pass_at_k(n, c, k) for c, q in enumerate(probs))
    naive = math.fsum(q * naive_pass_at_k(n, c, k) for c, q in enumerate(probs))
    assert unbiased == pytest.approx(truth, abs=1e-12)
    assert naive < truth - 0.005  # a real, systematic under-estimate
    assert naive_pass_at_k(n, 3, 1) == pytest.approx(pass_at_k(n, 3, 1))  # k = 1: the two agree


def test_naive_bias_hand_example():
    # n=10, c=3, k=5: unbiased 0.9167 vs naive 1 - 0.7^5 = 0.8319 (reference table, evaluation.md §3.1)
    assert pass_at_k(10, 3, 5) == pytest.approx(0.916667, abs=1e-6)
    assert naive_pass_at_k(10, 3, 5) == pytest.approx(0.83193, abs=1e-6)


@pytest.mark.parametrize(("n", "c", "k"), [(5, 6, 1), (5, -1, 1), (5, 2, 6), (5, 2, 0), (0, 0, 1)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_the_tiny_lab_grades_pass_at_k_with_the_checked_estimator():
    """Issue #15: the tiny lab had its own pass_at_k, which returned 1.0 for pass_at_k(2, 0, 5) (k > n samples);
    it now uses this one, which refuses."""
    from grpo_course.tiny import evaluation

    assert evaluation.pass_at_k is pass_at_k
    with pytest.raises(ValueError, match="1 <= k <= n"):
        evaluation.pass_at_k(2, 0, 5)
    scores = evaluation.ProblemScores(greedy=(True, False), counts=(1, 0), k=2)
    assert evaluation.summarize([{"question": "q", "answer": "#### 1"}] * 2, scores)["pass@2"] == 0.5


def test_pass_at_k_curve_is_monotone_and_starts_at_mean_c_over_n():
    counts = [0, 1, 4, 8, 2]
    curve = pass_at_k_curve(counts, n=8)
    assert list(curve) == list(range(1, 9))
    assert curve[1] == pytest.approx(sum(counts) / (8 * len(counts)))
    assert all(a <= b + 1e-15 for a, b in zip(curve.values(), list(curve.values())[1:]))
    assert curve[8] == pytest.approx(4 / 5)  # the fraction of problems with any correct sample


# ---------------------------------------------------------------------------------------------
# maj@k
# ---------------------------------------------------------------------------------------------


def test_maj_at_k_hand_example():
    # six 2-subsets of [1, 2, 1, None]: {1,2} tie .5, {1,1} 1, {1,-} 1, {2,1} tie .5, {2,-} 0, {1,-} 1
    assert maj_at_k(["1", "2", "1", None], [True, False, True, False], 2) == pytest.approx(4 / 6)


def test_maj_at_k_rewards_consensus_not_luck():
    answers = ["5", "7", "7", "7", "9"]
    correct = [True, False, False, False, False]
    assert maj_at_k(answers, correct, 5) == 0.0  # the vote picks 7
    assert pass_at_k(5, 1, 5) == 1.0  # yet one sample was right
    assert maj_at_k(["5", "5", "5", "7"], [True, True, True, False], 4) == 1.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["1", "2", "3", None]), min_size=1, max_size=9))
def test_maj_at_1_is_pass_at_1(answers):
    correct = [a == "1" for a in answers]
    assert maj_at_k(answers, correct, 1) == pytest.approx(sum(correct) / len(answers))


def test_maj_at_k_sampled_subsets_match_exact():
    answers = ["1", "2", "1", "3", "2", "1", None, "1", "2", "2", "1", "3"]
    correct = [a == "1" for a in answers]
    exact = maj_at_k(answers, correct, 5)
    sampled = maj_at_k(answers, correct, 5, max_subsets=0, rounds=4000, seed=1)
    assert sampled == pytest.approx(exact, abs=0.03)
    assert maj_at_k(answers, lambda a: a == "1", 5) == pytest.approx(exact)


# ---------------------------------------------------------------------------------------------
# Intervals and paired comparisons
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("s", "n", "low", "high"), [
    (30, 100, 0.21895, 0.39585),  # by hand: centre 0.30740, half-width 0.08845 (z = 1.95996)
    (0, 10, 0.0, 0.27753),        # the normal interval would be [0, 0]
    (10, 10, 0.72247, 1.0),
    (1, 2, 0.09453, 0.90547),
])
def test_wilson_interval_hand_values(s, n, low, high):
    iv = wilson_interval(s, n)
    assert (iv.low, iv.high) == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))
    assert iv.estimate == s / n and iv.contains(s / n)


def test_wilson_narrows_with_n_and_widens_with_confidence():
    assert wilson_interval(300, 1000).high - wilson_interval(300, 1000).low < wilson_interval(30, 100).high - 0.21
    w90, w99 = wilson_interval(30, 100, 0.90), wilson_interval(30, 100, 0.99)
    assert w99.low < w90.low and w99.high > w90.high
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_bootstrap_interval_is_reproducible_and_sensible():
    vals = [0.0, 0.25, 0.5, 1.0, 0.125, 0.875, 0.5, 0.0] * 10
    a, b = bootstrap_interval(vals, seed=3), bootstrap_interval(vals, seed=3)
    assert a == b and a.low < a.estimate < a.high
    assert bootstrap_interval([0.5] * 20).low == bootstrap_interval([0.5] * 20).high == 0.5
    wide, narrow = bootstrap_interval(vals[:20]), bootstrap_interval(vals * 4)
    assert narrow.high - narrow.low < wide.high - wide.low


def test_paired_bootstrap_no_change_and_clear_change():
    same = [1.0, 0.0, 1.0, 1.0, 0.0] * 10
    d = paired_bootstrap(same, same)
    assert d.difference.estimate == 0 and d.difference.low == d.difference.high == 0 and d.p_value == 1.0
    before = [0.0] * 30 + [1.0] * 20
    after = [1.0] * 50
    d = paired_bootstrap(before, after)
    assert d.difference.estimate == pytest.approx(0.6) and d.difference.low > 0.4 and d.p_value < 0.01
    assert d.p_text == "p<0.0002" and "p<0.0002" in str(d)  # no resample crossed zero: only a bound
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [1.0, 0.0])


def test_pairing_detects_what_separate_intervals_miss():
    """Problems of mixed difficulty, after = before + a small gain on a few: the two separate
    Wilson intervals overlap widely, the paired interval excludes zero."""
    before = [1] * 40 + [0] * 60
    after = [1] * 40 + [1] * 8 + [0] * 52
    wb, wa = wilson_interval(sum(before), 100), wilson_interval(sum(after), 100)
    assert wa.low < wb.high  # separately: inconclusive
    d = paired_bootstrap(before, after)
    assert d.difference.low > 0
    assert mcnemar([bool(x) for x in before], [bool(x) for x in after]).p_value < 0.01


def test_mcnemar_exact_hand_values():
    m = mcnemar([0, 0, 1, 1, 0], [1, 1, 1, 0, 1])
    assert (m.fixed, m.broken) == (3, 1)
    assert m.p_value == pytest.approx(2 * (1 + 4) / 16)  # 2 P(X <= 1), X ~ Bin(4, 1/2)
    assert mcnemar([0] * 10, [1] * 10).p_value == pytest.approx(2 / 1024)
    assert mcnemar([1, 0], [1, 0]).p_value == 1.0


# ---------------------------------------------------------------------------------------------
# Audit
# ---------------------------------------------------------------------------------------------

Q = "Ava has 12 apples. She gives away 5. How many apples does she have now?"
GOLD = "Ava has 12 - 5 = <<12-5=7>>7 apples.\n#### 7"
GOOD = "<think>\n12 - 5 = 7\n</think>\n<answer>7</answer>"


@pytest.mark.parametrize(("text", "truncated", "expected"), [
    (GOOD, False, set()),
    ("<think>\n12 + 5 = 17\n</think>\n<answer>17</answer>", False, {"format_win_wrong"}),
    ("<think>\nI just know it.\n</think>\n<answer>7</answer>", False, {"correct_no_reasoning"}),
    ("<answer>7</answer>", False, {"correct_no_reasoning"}),
    ("<think>\n12 + 5 = 17\n</think>\n<answer>7</answer>", False, {"correct_no_reasoning"}),  # steps lead elsewhere
    ("<think>\n12 - 5 = 8\n</think>\n<answer>7</answer>", False, {"correct_no_reasoning"}),  # a false step
    ("<think>\n14 / 2 = 7\n</think>\n<answer>7</answer>", False, set()),  # result equals an operand: still derived
    ("<think>\n12 - 5 = 7\n</think>\n<answer>7 or 8</answer>", False, {"hedged"}),
    ("<think>\n12 - 5 = 7\n</think>\n<answer>6</answer><answer>7</answer>", False, {"hedged"}),
    ("<think>\n" + "12 - 5 = 7\n" * 8 + "</think>\n<answer>7</answer>", False, {"repetition"}),
    ("<think>\n12 - 5 = 7\n</think>\n<answer>7", True, {"truncated"}),
    ("<think>\n12 - 5 = 7\n12 - 5", None, {"truncated"}),  # inferred: the think block never closed
])
def test_audit_flags(text, truncated, expected):
    flags = audit_completion(text, GOLD, truncated=truncated)
    assert {f for f, v in flags.items() if v} == expected


def test_repetition_score_and_hedges():
    assert repetition_score("the cat sat on the mat and then went home to sleep all day") < 0.1
    assert repetition_score("and then " * 20) > 0.8
    assert repetition_score("= 4\n= 4\n= 4\n= 4") >= 0.5
    assert is_hedged("<answer>between 6 and 8</answer>") and not is_hedged(GOOD)


def test_audit_counts_table_and_examples():
    rows = [{"problem_id": "a", "gold": "7", "completion": "x", "answer_lenient": "7", "correct_lenient": True,
             **{f: f == "hedged" for f in FLAGS}},
            {"problem_id": "b", "gold": "7", "completion": "y", **{f: False for f in FLAGS}}]
    counts = audit_counts(rows)
    assert counts["n"] == 2 and counts["hedged"] == 1 and counts["truncated"] == 0
    table = audit_table({"before": rows, "after": rows[1:]})
    assert "hedged over several values" in table and "50.0%" in table
    assert "problem a" in audit_examples(rows, "hedged") and audit_examples(rows, "truncated").endswith("none")


# ---------------------------------------------------------------------------------------------
# Data: GSM8K's schema offline; the hub call checked without the network
# ---------------------------------------------------------------------------------------------

GSM8K_LIKE = [
    {"question": "Ava has 12 apples. She gives away 5. How many apples does she have now?",
     "answer": "She has 12 - 5 = <<12-5=7>>7 apples.\n#### 7"},
    {"question": "Ben buys 3 packs of 4 cards. How many cards does he have?",
     "answer": "He has 3 * 4 = <<3*4=12>>12 cards.\n#### 12"},
    {"question": "A farm sells 1,000 eggs and 80 more. How many eggs are sold?",
     "answer": "1000 + 80 = <<1000+80=1080>>1080\n#### 1,080"},
    {"question": "Cara has 9 shells and finds 6. How many shells does she have?",
     "answer": "9 + 6 = <<9+6=15>>15\n#### 15"},
]


@pytest.fixture()
def gsm8k_file(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in GSM8K_LIKE))
    return path


@pytest.fixture()
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_load_gsm8k_from_a_local_file(gsm8k_file, no_network):
    from grpo_course.evaluate.data import load_gsm8k, load_problems

    rows = load_gsm8k("test", path=gsm8k_file)
    assert [r["id"] for r in rows] == [f"gsm8k-test-{i}" for i in range(4)]
    assert rows[2]["answer"].endswith("#### 1,080") and set(rows[0]) == {"id", "question", "answer"}
    assert len(load_gsm8k("test", path=gsm8k_file, limit=2)) == 2
    rows2, desc = load_problems(str(gsm8k_file), limit=3)
    assert len(rows2) == 3 and "GSM8K schema" in desc


def test_load_gsm8k_from_the_hub_uses_openai_gsm8k_main(monkeypatch, no_network):
    import datasets

    from grpo_course.evaluate.data import load_gsm8k

    calls = []

    def fake_load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        return [dict(r, extra="ignored") for r in GSM8K_LIKE]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    rows = load_gsm8k("test", limit=3)
    assert calls == [(("openai/gsm8k", "main"), {"split": "test"})]
    assert len(rows) == 3 and "extra" not in rows[0]


@pytest.mark.parametrize("bad", [{"question": "q"}, {"question": "q", "answer": "no final line"},
                                 {"prompt": "q", "answer": "#### 1"}])
def test_bad_rows_are_refused_with_a_reason(tmp_path, bad):
    from grpo_course.evaluate.data import load_gsm8k

    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match="row 0"):
        load_gsm8k(path=path)


# ---------------------------------------------------------------------------------------------
# A random tiny Llama and a word-level tokenizer (built here: no downloads, no committed model)
# ---------------------------------------------------------------------------------------------

CHAT = ("{%- for m in messages -%}{%- if m['role'] == 'user' -%}{{ '<user> ' + m['content'] + '\\n' }}"
        "{%- endif -%}{%- endfor -%}{%- if add_generation_prompt -%}{{ '<assistant>\\n' }}{%- endif -%}")


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    special = ["<pad>", "<eos>", "<unk>", "<user>", "<assistant>", "<think>", "</think>", "<answer>", "</answer>"]
    words = sorted({w for r in GSM8K_LIKE for w in r["question"].replace("?", " ?").replace(".", " .").split()})
    pieces = [*special, "\n", *[f" {w}" for w in words], *words, *[str(i) for i in range(40)],
              *[f" {i}" for i in range(40)], " +", " -", " =", " ?", " ."]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(pieces))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    pattern = "|".join([*(t.replace("/", "\\/") for t in special), " ?[A-Za-z,]+", " ?[0-9]+", "\n", " ?[^\\s]", "\\s"])
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
    tok.decoder = decoders.Fuse()
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    hf.chat_template = CHAT
    return hf


def _model(tokenizer, seed=0, eos_bias: float | None = None):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).eval()
    if eos_bias is not None:  # make end-of-sequence certain (+) or impossible (-): shift its logit
        shift = torch.zeros(len(tokenizer))
        shift[tokenizer.eos_token_id] = eos_bias
        model.lm_head.register_forward_hook(lambda module, inputs, output: output + shift)
    return model


@pytest.fixture(scope="module")
def base_model(tokenizer):
    return _model(tokenizer)


def _lora(model, random_b: bool, r: int = 4, alpha: int = 8):
    import copy

    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=["q_proj", "v_proj", "down_proj"],
                     init_lora_weights=not random_b)
    return get_peft_model(copy.deepcopy(model), cfg)


PROMPTS = [[{"role": "user", "content": r["question"]}] for r in GSM8K_LIKE]


def test_batched_left_padded_generation_equals_one_by_one(tokenizer, base_model):
    from grpo_course.generation import Decoding, generate_samples

    dec = Decoding(max_new_tokens=6)
    together = generate_samples(base_model, tokenizer, PROMPTS, dec, progress=False)
    alone = [generate_samples(base_model, tokenizer, [p], dec, progress=False)[0] for p in PROMPTS]
    assert [g[0].text for g in together] == [g[0].text for g in alone]
    from grpo_course.chat_format import prompt_token_ids

    assert len({len(prompt_token_ids(tokenizer, p)) for p in PROMPTS}) > 1  # so the batch really was padded


def test_samples_per_prompt_lengths_and_truncation(tokenizer):
    from grpo_course.generation import Decoding, generate_samples

    never_stops = _model(tokenizer, eos_bias=-1e4)
    out = generate_samples(never_stops, tokenizer, PROMPTS[:3], Decoding(5, temperature=1.0, n=4, batch_size=2),
                           progress=False)
    assert [len(g) for g in out] == [4, 4, 4]
    assert all(s.truncated and s.n_tokens == 5 for g in out for s in g)
    stops_at_once = _model(tokenizer, eos_bias=1e4)
    out = generate_samples(stops_at_once, tokenizer, PROMPTS[:2], Decoding(5), progress=False)
    assert all(not g[0].truncated and g[0].n_tokens == 1 and g[0].text == "" for g in out)


def test_decoding_settings_are_checked():
    from grpo_course.generation import Decoding

    with pytest.raises(ValueError, match="greedy"):
        Decoding(10, temperature=0.0, n=4)
    assert Decoding(10, temperature=0.7, n=4).as_dict()["top_k"] == 0


def test_sampling_is_reproducible_with_a_seed(tokenizer, base_model):
    from grpo_course.generation import Decoding, generate_samples

    dec = Decoding(6, temperature=1.0, n=3, seed=7)
    a = generate_samples(base_model, tokenizer, PROMPTS, dec, progress=False)
    b = generate_samples(base_model, tokenizer, PROMPTS, dec, progress=False)
    assert [[s.text for s in g] for g in a] == [[s.text for s in g] for g in b]


# ---------------------------------------------------------------------------------------------
# Before/after by toggling the adapter; interpolation
# ---------------------------------------------------------------------------------------------


def test_adapter_off_is_exactly_the_base_model(tokenizer, base_model):
    from grpo_course.generation import Decoding, generate_samples

    peft_model = _lora(base_model, random_b=True)
    dec = Decoding(6)
    base = generate_samples(base_model, tokenizer, PROMPTS, dec, progress=False)
    off = generate_samples(peft_model, tokenizer, PROMPTS, dec, use_adapter=False, progress=False)
    on = generate_samples(peft_model, tokenizer, PROMPTS, dec, use_adapter=True, progress=False)
    assert [g[0].text for g in off] == [g[0].text for g in base]
    assert [g[0].text for g in on] != [g[0].text for g in base]
    with pytest.raises(ValueError, match="peft"):
        generate_samples(base_model, tokenizer, PROMPTS, dec, use_adapter=False, progress=False)


def _logits(model, tokenizer):
    import torch

    from grpo_course.chat_format import prompt_token_ids

    ids = torch.tensor([prompt_token_ids(tokenizer, PROMPTS[0])])
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_scaled_adapter_is_weight_interpolation(tokenizer, base_model):
    import copy

    import torch

    from grpo_course.evaluate.interpolate import interpolate_state_dicts, scaled_adapter

    peft_model = _lora(base_model, random_b=True)
    with torch.no_grad():  # a visible update: scale B up
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.mul_(20)
    rl = copy.deepcopy(peft_model).merge_and_unload()  # W_start + delta
    mixed = copy.deepcopy(base_model)
    mixed.load_state_dict(interpolate_state_dicts(base_model.state_dict(), rl.state_dict(), 0.7))
    with scaled_adapter(peft_model, 0.7):
        scaled = _logits(peft_model, tokenizer)
    assert torch.allclose(scaled, _logits(mixed, tokenizer), atol=1e-5)
    assert not torch.allclose(scaled, _logits(rl, tokenizer), atol=1e-3)
    assert torch.allclose(_logits(peft_model, tokenizer), _logits(rl, tokenizer), atol=1e-5)  # restored
    with scaled_adapter(peft_model, 0.0):
        assert torch.allclose(_logits(peft_model, tokenizer), _logits(base_model, tokenizer), atol=1e-6)
    with pytest.raises(ValueError):
        with scaled_adapter(base_model, 0.5):
            pass


def test_adapter_saved_inside_scaled_adapter_is_the_interpolated_one(tokenizer, base_model, tmp_path):
    """On vLLM profiles the adapter reaches the engine as saved files (Unsloth's save_lora: the lora_A /
    lora_B tensors of model.state_dict() plus the adapter config; tests/test_gpu_contracts.py checks
    that). The interpolation must survive that trip, or the GPU would score the plain checkpoint."""
    import copy

    import torch
    from peft import PeftModel

    from grpo_course.evaluate.interpolate import scaled_adapter

    peft_model = _lora(base_model, random_b=True)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.mul_(20)
    full = _logits(peft_model, tokenizer)
    with scaled_adapter(peft_model, 0.3):
        scaled = _logits(peft_model, tokenizer)
        lora = {k: v for k, v in peft_model.state_dict().items() if ".lora_A." in k or ".lora_B." in k}
        peft_model.save_pretrained(str(tmp_path), state_dict=lora)
    reloaded = PeftModel.from_pretrained(copy.deepcopy(base_model), str(tmp_path)).eval()
    assert torch.allclose(_logits(reloaded, tokenizer), scaled, atol=1e-5)
    assert not torch.allclose(scaled, full, atol=1e-3)
    assert torch.allclose(_logits(peft_model, tokenizer), full, atol=1e-6)  # restored after the block


# ---------------------------------------------------------------------------------------------
# The loop, the tables, saving, comparing
# ---------------------------------------------------------------------------------------------


def _problems():
    return [dict(r, id=f"p{i}") for i, r in enumerate(GSM8K_LIKE)]


def test_evaluate_model_rows_metrics_context_and_files(tokenizer, base_model, tmp_path):
    from grpo_course.evaluate.runner import ROW_FIELDS, EvalResult, evaluate_model

    peft_model = _lora(base_model, random_b=True, r=4, alpha=8)
    res = evaluate_model(peft_model, tokenizer, _problems(), name="after", n_samples=3, temperature=1.0,
                         max_new_tokens=6, dataset="local", split="test", progress=False)
    assert len(res.greedy) == 4 and [len(g) for g in res.samples] == [3, 3, 3, 3]
    assert len(res.rows()) == 4 + 12 and set(ROW_FIELDS) <= set(res.rows()[0])
    ctx = res.context
    assert (ctx["lora_r"], ctx["lora_alpha"], ctx["adapter_enabled"]) == (4, 8, True)
    assert ctx["decoding"]["n_samples"] == 3 and ctx["decoding"]["max_new_tokens"] == 6
    assert ctx["dataset"] == "local" and ctx["split"] == "test" and ctx["n_problems"] == 4
    assert ctx["started"] and ctx["seconds"] >= 0 and "torch" in ctx["versions"]
    m = res.metrics_dict()
    assert 0 <= m["pass@1_lenient"] <= m["pass@3_lenient"] <= 1
    assert m["greedy_lenient_ci95"][0] <= m["greedy_lenient"] <= m["greedy_lenient_ci95"][1]
    assert len(res.problem_table()) == 4 and res.problem_table()[0]["gold"] == "7"
    assert "greedy accuracy" in res.summary()

    paths = res.save(tmp_path)
    header = paths["csv"].read_text().splitlines()[0].split(",")
    assert header == ROW_FIELDS
    assert json.loads(paths["context"].read_text())["context"]["lora_r"] == 4
    back = EvalResult.load(tmp_path, "after")
    assert back.rows() == json.loads(json.dumps(res.rows())) and back.metrics_dict() == res.metrics_dict()


def test_graded_rows_follow_the_graders(tokenizer):
    from grpo_course.evaluate.runner import grade
    from grpo_course.generation import Generated

    row = grade(Q, GOLD, Generated("<think>\n12 - 5 = 7\n</think>\nThe answer is 7", 12, False), "p", "sample", 0, "r")
    assert row["correct_lenient"] and not row["format_ok"] and row["answer_lenient"] == "7"
    row = grade(Q, GOLD, Generated(GOOD, 10, False), "p", "sample", 0, "r")
    assert row["correct_strict"] and row["format_ok"] and row["reasoning_steps"] == 1
    assert not any(row[f] for f in FLAGS if f in row)


def test_before_after_toggles_the_adapter_and_reports_a_paired_interval(tokenizer, base_model):
    from grpo_course.compare import Comparison
    from grpo_course.evaluate import before_after

    peft_model = _lora(base_model, random_b=True)
    comp = before_after(peft_model, tokenizer, _problems(), n_samples=2, max_new_tokens=5, progress=False)
    assert comp.before.context["adapter_enabled"] is False and comp.after.context["adapter_enabled"] is True
    assert [r["completion"] for r in comp.before.greedy] != [r["completion"] for r in comp.after.greedy]
    d = comp.greedy()
    assert d.difference.low <= d.difference.estimate <= d.difference.high
    assert "paired bootstrap" in comp.table() and "McNemar" in comp.summary()
    assert len(comp.headline().splitlines()) == 2 and "[" in comp.headline()
    other = before_after(peft_model, tokenizer, _problems()[:3], n_samples=2, max_new_tokens=5, progress=False)
    with pytest.raises(ValueError, match="same problems"):
        Comparison(comp.before, other.after)
    with pytest.raises(ValueError, match="peft model"):
        before_after(base_model, tokenizer, _problems(), n_samples=0, max_new_tokens=3, progress=False)


# ---------------------------------------------------------------------------------------------
# Checkpoint choice
# ---------------------------------------------------------------------------------------------


def _fake_result(name, per_problem_correct):
    from grpo_course.evaluate.runner import EvalResult

    probs = [{"id": str(i), "question": "q", "answer": "#### 1"} for i in range(len(per_problem_correct))]
    samples = [[{"kind": "sample", "sample": j, "correct_lenient": j < c, "correct_strict": j < c,
                 "answer_lenient": "1" if j < c else "2", "format_ok": True, "n_tokens": 5, "truncated": False}
                for j in range(4)] for c in per_problem_correct]
    return EvalResult(name, {}, probs, None, samples)


def test_selection_picks_by_pass1_not_training_reward():
    from grpo_course.evaluate.checkpoints import CheckpointScore, CheckpointSelection

    scores = [CheckpointScore("start", 0, 0.4, _fake_result("s", [1, 1, 2])),
              CheckpointScore("checkpoint-10", 10, 0.8, _fake_result("a", [3, 3, 2])),
              CheckpointScore("checkpoint-20", 20, 1.2, _fake_result("b", [2, 1, 2])),  # reward up, pass@1 down
              CheckpointScore("checkpoint-30", 30, 0.9, _fake_result("c", [3, 3, 2]))]  # ties with step 10
    sel = CheckpointSelection(scores)
    assert sel.best.label == "checkpoint-10"
    assert sel.best_by_training_reward.label == "checkpoint-20"
    assert "training reward would pick: checkpoint-20" in sel.table()


def test_training_log_and_reward_window(tmp_path):
    from grpo_course.evaluate.checkpoints import reward_at, training_log

    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "reward": s / 10}) + "\n"
                                                    for s in range(1, 11)))
    log = training_log(tmp_path)
    assert len(log) == 10
    assert reward_at(log, 10, window=2) == pytest.approx(0.95)
    assert reward_at(log, 0) == pytest.approx(0.1)  # the start point: the first logged reward


def test_evaluate_checkpoints_swaps_adapters_and_restores(tokenizer, base_model, tmp_path):
    import torch

    from grpo_course.evaluate.checkpoints import evaluate_checkpoints

    run = tmp_path / "run"
    for step, seed in ((5, 1), (10, 2)):
        torch.manual_seed(seed)
        m = _lora(base_model, random_b=True)
        folder = run / f"checkpoint-{step}"
        m.save_pretrained(folder)
        (folder / "trainer_state.json").write_text(json.dumps(
            {"global_step": step, "log_history": [{"step": s, "reward": s / 10} for s in range(1, step + 1)]}))
    torch.manual_seed(3)
    model = _lora(base_model, random_b=True)
    before = {k: v.clone() for k, v in model.state_dict().items() if "lora_" in k}
    sel = evaluate_checkpoints(model, tokenizer, run, _problems(), interpolate=(0.7,), n_samples=2,
                               max_new_tokens=5, progress=False)
    assert [s.step for s in sel.scores] == [0, 5, 10]
    assert sel.scores[2].train_reward == pytest.approx(0.8)  # mean of steps 6..10 / 10
    texts = [[r["completion"] for r in s.result.greedy] for s in sel.scores]
    assert texts[1] != texts[2] and sel.scores[1].result.context["train_steps"] == 5
    assert sel.interpolations and sel.interpolations[0].result.context["interpolation_weight"] == 0.7
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    fig = sel.plot(tmp_path / "sel.png")
    assert (tmp_path / "sel.png").stat().st_size > 0 and fig is not None


# ---------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------


def test_cli_eval_reports_before_after_with_an_interval(tokenizer, base_model, gsm8k_file, tmp_path, capsys,
                                                         no_network):
    from grpo_course.cli import main

    model_dir, adapter_dir, out = tmp_path / "model", tmp_path / "adapter", tmp_path / "out"
    base_model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    _lora(base_model, random_b=True).save_pretrained(adapter_dir)
    code = main(["eval", "--profile", "cpu-tiny", "--model", str(model_dir), "--adapter", str(adapter_dir),
                 "--data", str(gsm8k_file), "--n", "2", "--max-new-tokens", "5", "--out", str(out),
                 "--no-progress"])
    text = capsys.readouterr().out
    assert code == 0
    assert "before/after difference" in text and "greedy accuracy (lenient)" in text and "paired bootstrap" in text
    assert "sampled pass@1 (lenient)" in text
    assert "reward-hacking audit" in text and "McNemar" in text
    saved = sorted(p.name for p in out.iterdir())
    assert "after__adapter_on_.samples.csv" in saved and "before__adapter_off_.context.json" in saved


def test_cli_refuses_a_folder_without_an_adapter(tmp_path, capsys):
    from grpo_course.cli import main

    assert main(["eval", "--profile", "cpu-tiny", "--adapter", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "adapter_config.json" in err and err.count("\n") == 1


def test_importing_evaluate_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, grpo_course.evaluate, grpo_course.evaluate.audit, grpo_course.evaluate.data; " \
           "print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() \
        == "False"


def test_published_figures_and_protocol_table():
    from grpo_course.evaluate.published import comparison_table, published_for

    assert published_for("unsloth/Llama-3.2-1B-Instruct").gsm8k == 44.4
    assert published_for("meta-llama/Llama-3.2-3B-Instruct").gsm8k == 77.7
    table = comparison_table("unsloth/Llama-3.2-1B-Instruct", 0.41, (0.38, 0.44), 1024, 8, 1.0, 1319)
    assert "44.4%" in table and "8-shot" in table and "0-shot" in table and "41.0%" in table


def test_metrics_module_reexports():
    from grpo_course import evaluate

    assert metrics.pass_at_k is pass_at_k is evaluate.pass_at_k


def test_vllm_path_repeats_prompts_and_never_fixes_the_sampling_seed(tokenizer, monkeypatch):
    """A model with a vLLM engine generates through grpo_course.gpu.vllm_generate: each prompt is repeated
    n times, and sampling must not pass a fixed per-request seed (the n copies would be identical)."""
    import inspect

    from grpo_course import gpu
    from grpo_course.generation import Decoding, generate_samples

    calls = []

    def fake_generate(model, ids, **kwargs):
        inspect.signature(gpu.vllm_generate).bind(model, ids, **kwargs)  # the real one accepts these
        calls.append((len(ids), kwargs))
        return [(f"<think>\n{i}\n</think>\n<answer>{i}</answer>", 20 if i == 0 else 9 + i, i == 0)
                for i in range(len(ids))]

    class EngineModel:
        vllm_engine = object()

    monkeypatch.setattr(gpu, "vllm_generate", fake_generate)
    out = generate_samples(EngineModel(), tokenizer, PROMPTS[:3], Decoding(20, temperature=1.0, n=4, batch_size=2),
                           progress=False)
    assert [len(g) for g in out] == [4, 4, 4]
    assert [n for n, _ in calls] == [8, 4]  # 2 prompts x 4, then 1 prompt x 4
    assert all(kw["seed"] is None and kw["temperature"] == 1.0 and kw["max_new_tokens"] == 20 for _, kw in calls)
    # the generator's own token count and cut are kept (vLLM: token_ids, finish_reason), not re-derived
    assert out[0][0].truncated and out[0][0].n_tokens == 20 and not out[0][1].truncated and out[0][1].n_tokens == 10
    calls.clear()
    generate_samples(EngineModel(), tokenizer, PROMPTS[:2], Decoding(20), progress=False)
    assert calls[0][1]["seed"] == 0 and calls[0][1]["temperature"] == 0.0


def test_tiny_problems_have_the_gsm8k_schema():
    from grpo_course.evaluate.data import load_problems

    rows, desc = load_problems("tiny", "test", 5)
    assert [r["id"] for r in rows] == [f"tiny-test-{i}" for i in range(5)] and "tiny" in desc
    assert all(set(r) == {"id", "question", "answer"} and "####" in r["answer"] for r in rows)
    with pytest.raises(FileNotFoundError):
        load_problems("no-such-source")


def test_cli_eval_without_an_adapter_evaluates_the_model_alone(tokenizer, base_model, gsm8k_file, tmp_path,
                                                                capsys):
    from grpo_course.cli import main

    model_dir = tmp_path / "model"
    base_model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    code = main(["eval", "--profile", "cpu-tiny", "--model", str(model_dir), "--data", str(gsm8k_file), "--n", "0",
                 "--max-new-tokens", "4", "--out", str(tmp_path / "out"), "--no-progress"])
    text = capsys.readouterr().out
    assert code == 0 and "greedy accuracy" in text and "95% Wilson" in text and "before/after" not in text
    assert (tmp_path / "out" / "model.samples.csv").is_file()
