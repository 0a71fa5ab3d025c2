"""The tiny lab: problem generator, tokenizer, demonstrator, the committed model, and GRPO that learns."""

from __future__ import annotations

import json
import random
import re
from math import sqrt

import pytest

from grpo_course.chat_format import ANSWER_END, ANSWER_START, REASONING_END, REASONING_START
from grpo_course.metrics import pass_at_k
from grpo_course.rewards import (
    count_reasoning_steps,
    has_tag_format,
    is_correct,
    parse_gsm8k_gold,
    tag_reward,
)
from grpo_course.tiny import problems as P
from grpo_course.tiny.demonstrator import FLAW_RATE, demonstrate, demonstrator_accuracy, solve

ANNOTATION = re.compile(r"(\d+)([-+*/])(\d+)=<<(\d+)([-+*/])(\d+)=(\d+)>>(\d+)")


# ---- generator ---------------------------------------------------------------------------------------

def test_generation_is_deterministic_and_seed_dependent():
    a = P.generate_problems(200, seed=7)
    assert a == P.generate_problems(200, seed=7)
    b = P.generate_problems(200, seed=8)
    assert [p["question"] for p in a] != [p["question"] for p in b]
    assert len({p["question"] for p in a}) == 200  # distinct


@pytest.mark.parametrize("level", P.LEVELS)
def test_gold_is_gsm8k_format_and_correct(level):
    for p in P.generate_problems(300, seed=level, levels=level):
        body, final = p["answer"].rsplit("\n#### ", 1)
        annotations = ANNOTATION.findall(body)
        assert len(annotations) == len(p["program"]) == level  # one annotation per step
        for a, op, b, a2, op2, b2, r, shown in annotations:
            assert (a, op, b) == (a2, op2, b2) and r == shown
            assert P.OPS[op](int(a), int(b)) == int(r)
            if op == "/":
                assert int(a) % int(b) == 0  # divisions are exact
        assert final == annotations[-1][-1]
        assert parse_gsm8k_gold(p["answer"]) == final  # the course's own GSM8K parser agrees
        assert P.run_program(p["program"])[-1][3] == int(final) == P.gold_number(p["answer"])
        numbers = [int(x) for x in re.findall(r"\d+", p["question"] + p["answer"])]
        assert all(0 <= x <= P.MAX_NUMBER for x in numbers)
        assert p["has_subtraction"] == ("-" in [op for _, op, _ in p["program"]])


def test_levels_and_errors():
    assert {p["level"] for p in P.generate_problems(100, 0, levels=[1, 3])} == {1, 3}
    with pytest.raises(ValueError, match="unknown difficulty"):
        P.generate_problems(5, 0, levels=4)


def test_committed_splits_are_reproducible_and_disjoint():
    splits = P.make_splits()
    for name, rows in splits.items():
        assert P.load_split(name) == json.loads(json.dumps(rows))  # the committed files match a rebuild
    train_q = {p["question"] for p in splits["train"]}
    assert not train_q & {p["question"] for p in splits["test"]}


def test_jsonl_loads_with_datasets(tmp_path):
    from datasets import load_dataset

    path = P.write_jsonl(P.generate_problems(20, 3), tmp_path / "x.jsonl")
    ds = load_dataset("json", data_files=str(path), split="train")
    assert ds.num_rows == 20 and {"question", "answer"} <= set(ds.column_names)


# ---- demonstrator --------------------------------------------------------------------------------------

def test_demonstrator_writes_the_course_format_and_is_right_when_unflawed():
    for p in P.generate_problems(200, seed=11):
        text = solve(p)
        assert text.startswith(REASONING_START + "\n") and REASONING_END in text
        assert text.endswith(f"{ANSWER_START}{P.gold_number(p['answer'])}{ANSWER_END}")
        assert has_tag_format(text) and is_correct(text, p["answer"])
        assert tag_reward([text], answer=[p["answer"]]) == [1.5]
        nontrivial = [r for a, _, b, r in P.run_program(p["program"]) if r not in (a, b)]
        assert count_reasoning_steps(text, p["question"]) == len(nontrivial)  # the composite reward's steps


def test_demonstrator_flaw_rate_only_on_subtraction():
    rng = random.Random(0)
    probs = P.generate_problems(3000, seed=12)
    sub = [p for p in probs if p["has_subtraction"]]
    other = [p for p in probs if not p["has_subtraction"]]
    assert all(demonstrate(p, rng)[1] for p in other)
    wrong = sum(not demonstrate(p, rng)[1] for p in sub)
    n = len(sub)
    assert abs(wrong / n - FLAW_RATE) < 4 * sqrt(FLAW_RATE * (1 - FLAW_RATE) / n)
    # frequent enough to be the most likely answer, not so frequent that the right one is never sampled
    assert 0.5 < FLAW_RATE < 0.8
    flawed = solve(sub[0], flawed=True)
    assert has_tag_format(flawed) and not is_correct(flawed, sub[0]["answer"])
    assert tag_reward([flawed], answer=[sub[0]["answer"]]) == [0.5]


def test_demonstrator_accuracy_matches_its_flaw():
    test = P.load_split("test")
    share = sum(p["has_subtraction"] for p in test) / len(test)
    acc = demonstrator_accuracy(test, seed=0)
    assert abs(acc - (1 - share * FLAW_RATE)) < 0.06


def test_pass_at_k():
    assert pass_at_k(8, 0, 1) == 0.0 and pass_at_k(8, 8, 8) == 1.0
    assert pass_at_k(8, 2, 1) == pytest.approx(0.25)
    assert pass_at_k(8, 1, 8) == 1.0
    with pytest.raises(ValueError):  # the tiny lab's pass@k is the checked one: k > n is refused (was 1.0)
        pass_at_k(2, 0, 5)


# ---- tokenizer and the committed model -----------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny():
    from grpo_course.tiny import load_tiny

    return load_tiny("sft")


def test_tokenizer_round_trips_prompts_and_completions(tiny):
    from grpo_course.chat_format import build_messages

    _, tok = tiny
    rng = random.Random(1)
    for p in P.load_split("test", 200):
        prompt = tok.apply_chat_template(build_messages(p["question"]), add_generation_prompt=True, tokenize=False)
        completion, _ = demonstrate(p, rng)
        text = prompt + completion
        ids = tok(text)["input_ids"]
        assert tok.unk_token_id not in ids
        assert tok.decode(ids) == text
    # numbers are single tokens, with or without a leading space
    assert len(tok(" 137")["input_ids"]) == 1 and len(tok("137")["input_ids"]) == 1


def test_committed_model_is_tiny_and_imitates_the_flaw(tiny):
    from grpo_course.tiny.evaluation import generate, grade

    model, tok = tiny
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params < 3_000_000
    test = P.load_split("test", 200)
    comps = generate(model, tok, [p["question"] for p in test])
    assert sum(has_tag_format(c) for c in comps) >= 0.95 * len(comps)  # SFT taught the course format
    ok = grade(comps, [p["answer"] for p in test])
    sub = [o for o, p in zip(ok, test) if p["has_subtraction"]]
    other = [o for o, p in zip(ok, test) if not p["has_subtraction"]]
    # it solves the problems the demonstrator gets right, and copies the flaw where it errs
    assert sum(other) / len(other) > 0.8
    assert sum(sub) / len(sub) < 1 - FLAW_RATE


@pytest.mark.parametrize("kind", ["sft", "sft_always_adds"])
def test_build_record_matches_the_committed_files(kind):
    from grpo_course.paths import data_dir
    from grpo_course.tiny import KINDS, build_record
    from grpo_course.tiny.build import VARIANTS, record_name, sha256_file

    assert set(KINDS) == set(VARIANTS)
    root = data_dir() / "tiny"
    record = json.loads((root / record_name(kind)).read_text())
    assert build_record(kind) == record and record["sft_seconds"] > 0
    assert record["settings"] == VARIANTS[kind].as_dict()  # the committed model is what the build command makes
    assert record["sha256"], "the build record lists no files"
    assert any(rel.startswith(f"{kind}/") for rel in record["sha256"])
    for rel, digest in record["sha256"].items():
        assert sha256_file(root / rel) == digest, f"{rel} differs from the build that {record_name(kind)} records"
    with pytest.raises(ValueError, match="unknown tiny model kind"):
        build_record("sft_v2")


def test_the_always_adds_model_never_answers_a_subtraction_right():
    from grpo_course.tiny import build_record

    sft, always = build_record("sft")["sft_heldout"], build_record("sft_always_adds")["sft_heldout"]
    assert always["greedy_other"] >= 0.98 and always["greedy_subtraction"] == 0.0
    assert always["pass@8"] - always["greedy"] < 0.01  # 8 samples find nothing greedy decoding does not
    assert sft["pass@8"] - sft["greedy"] > 0.5  # while the 65%-flaw model's samples often subtract


# ---- GRPO learns: the honest test ----------------------------------------------------------------------
# A shortened lab run from the committed SFT model (TINY_GRPO, the course's rewards, CI_STEPS steps)
# on 200 held-out problems. Greedy decoding is deterministic, so accuracy moves only if the weights
# learn something. Measured on 2026-11-22 (run_lab(seed=s, steps=12, n_test=200, k=0, reward_funcs=...)):
#   course rewards, 12 steps, seeds 0-4: held-out greedy 37.0% -> 100.0% every time (gain +63 points)
#   control, GRPO with random 0/1 rewards (no signal), 12 steps, seeds 0-2: 37.0% -> 37.0% (change 0)
# so a rise of CI_MARGIN = 30 points is far outside what seed noise or an update without signal gives,
# yet leaves room for a machine where the flip comes a few steps later.
CI_STEPS = 12
CI_MARGIN = 0.30
QUICK_MAX_LOSS = 1.2  # the quick build's SFT loss starts near ln(vocab) = 6.5 and measured 0.83 at its end


@pytest.mark.slow
def test_grpo_lifts_heldout_accuracy_well_beyond_noise():
    from grpo_course.tiny.lab import run_lab

    r = run_lab(seed=0, steps=CI_STEPS, n_test=200, k=0, curve_every=0, progress=False, threads=1)
    assert r.sft["greedy_subtraction"] < 0.2  # the starting point imitates the flaw ...
    assert r.gain >= CI_MARGIN, r.summary()  # ... and GRPO with the course's rewards unlearns it
    assert r.grpo["greedy"] >= r.demonstrator + 0.15, r.summary()  # better than its own teacher
    assert len(r.history) == CI_STEPS
    assert all(0.0 <= h["frac_reward_zero_std"] <= 1.0 for h in r.history)
    assert r.history[0]["frac_reward_zero_std"] < 1.0  # groups had reward variance: a learning signal


@pytest.mark.slow
def test_quick_build_learns(tmp_path):
    from grpo_course.tiny import load_tiny
    from grpo_course.tiny.build import QUICK, build_tiny

    record = build_tiny(tmp_path, QUICK, progress=False, n_eval=100)
    assert (tmp_path / "sft" / "model.safetensors").exists() and (tmp_path / "BUILD.json").exists()
    committed = json.loads((P.problems_dir().parent / "BUILD.json").read_text())["sha256"]
    for rel in ("problems/train.jsonl", "problems/test.jsonl", "sft/tokenizer.json", "sft/chat_template.jinja"):
        assert record["sha256"][rel] == committed[rel], f"{rel} is not rebuilt byte for byte"
    model, tok = load_tiny(path=tmp_path / "sft")
    from grpo_course.tiny.evaluation import generate

    comps = generate(model, tok, [p["question"] for p in P.load_split("test", 100)])
    assert sum(has_tag_format(c) for c in comps) >= 90  # the short SFT already writes the format
    assert record["sft_final_loss"] < QUICK_MAX_LOSS


def test_build_is_deterministic(tmp_path):
    from grpo_course.tiny.build import BuildSettings, build_tiny
    from grpo_course.tiny.sft import SFTSettings

    micro = BuildSettings(sft=SFTSettings(steps=3, batch_size=8, warmup_steps=1, pool_size=100))
    first = build_tiny(tmp_path / "a", micro, progress=False, n_eval=8)
    second = build_tiny(tmp_path / "b", micro, progress=False, n_eval=8)
    assert first["sha256"]["sft/model.safetensors"] == second["sha256"]["sft/model.safetensors"]
    assert first["sha256"] == second["sha256"]


# ---- the sharpening verdict -----------------------------------------------------------------------------

def _scores(greedy, counts, k=8):
    from grpo_course.tiny.evaluation import ProblemScores

    return ProblemScores(tuple(greedy), tuple(counts), k)


def _problems(n_sub, n_other):
    return ([{"question": f"s{i}", "answer": "#### 1", "has_subtraction": True} for i in range(n_sub)]
            + [{"question": f"o{i}", "answer": "#### 1", "has_subtraction": False} for i in range(n_other)])


@pytest.mark.parametrize("before_counts, after_greedy, kind", [
    ([3] * 20, [True] * 20, "sharpened"),  # every newly solved problem had a right sample before
    ([0] * 20, [True] * 20, "beyond"),  # none had: the model solves what it never sampled
    ([3] * 20, [True] * 2 + [False] * 18, "no gain"),  # 2 fixed: within noise
    ([3] * 18 + [0] * 2, [True] * 20, "sharpened"),  # 18 of 20 in reach: 90%
    ([3] * 17 + [0] * 3, [True] * 20, "beyond"),
])
def test_sharpening_verdict_follows_the_numbers(before_counts, after_greedy, kind):
    from grpo_course.tiny.verdict import sharpening

    problems = _problems(20, 10)
    before = _scores([False] * 20 + [True] * 10, before_counts + [8] * 10)
    after = _scores(after_greedy + [True] * 10, [8] * 30)
    v = sharpening(problems, before, after)
    assert v.kind == kind
    text = v.sentence()
    assert f"{v.greedy('before', 'subtraction'):.1%}" in text and f"{v.greedy('after', 'subtraction'):.1%}" in text
    assert ("sharpened" in text) == (kind == "sharpened") and ("No measurable gain" in text) == (kind == "no gain")
    assert v.greedy("before", "other") == 1.0 and v.greedy("before", "subtraction") == 0.0
    assert v.pass_at(8, "before", "subtraction") == pytest.approx(sum(c > 0 for c in before_counts) / 20)
    rows = {r["problems"]: r for r in v.rows()}
    assert rows["all"]["n"] == 30 and rows["subtraction"]["greedy after"] == sum(after_greedy) / 20
    assert len(max(v.table().splitlines(), key=len)) <= 72  # narrow: no wrapping in a notebook
    assert max(len(line) for line in v.summary().splitlines()) <= 100 and " ".join(v.summary().split()).endswith(
        " ".join(text.split()))


def test_sharpening_refuses_mismatched_scores():
    from grpo_course.tiny.verdict import sharpening

    with pytest.raises(ValueError, match="same problems"):
        sharpening(_problems(2, 0), _scores([True], [1]), _scores([True, True], [1, 1]))
    with pytest.raises(ValueError, match="samples"):
        sharpening(_problems(1, 0), _scores([True], [1], k=8), _scores([True], [1], k=4))
    with pytest.raises(ValueError, match="k <= 8"):
        sharpening(_problems(1, 0), _scores([True], [1]), _scores([True], [1])).pass_at(9, "before")


def test_the_verdict_from_stage_05s_evaluations_is_the_same_verdict():
    """Notebook 05 reads the verdict off two evaluation results (greedy_correct, correct_counts, n_samples)."""
    from types import SimpleNamespace

    from grpo_course.tiny.verdict import sharpening, sharpening_from_evaluations

    def result(problems, greedy, counts, n=8):
        return SimpleNamespace(problems=problems, n_samples=n, greedy_correct=lambda: list(greedy),
                               correct_counts=lambda: list(counts))

    problems = _problems(20, 10)
    b_greedy, b_counts = [False] * 20 + [True] * 10, [3] * 18 + [0] * 2 + [8] * 10
    a_greedy, a_counts = [True] * 30, [8] * 30
    v = sharpening_from_evaluations(result(problems, b_greedy, b_counts), result(problems, a_greedy, a_counts))
    direct = sharpening(problems, _scores(b_greedy, b_counts), _scores(a_greedy, a_counts))
    assert v.kind == direct.kind == "sharpened" and v.sentence() == direct.sentence()
    with pytest.raises(ValueError, match="different problems"):
        sharpening_from_evaluations(result(problems, b_greedy, b_counts),
                                    result(problems[::-1], a_greedy, a_counts))


def test_subtraction_is_read_from_gsm8k_annotations_when_the_column_is_missing():
    assert P.subtracts({"answer": "She has 28-5=<<28-5=23>>23 left.\n#### 23"})
    assert not P.subtracts({"answer": "48/2=<<48/2=24>>24 and 48+24=<<48+24=72>>72\n#### 72"})
    assert not P.subtracts({"answer": "It is -7 degrees.\n#### -7"})  # a negative number is not a step
    for p in P.load_split("test")[:50]:
        assert P.subtracts({"answer": p["answer"]}) == p["has_subtraction"]


def test_measuring_the_same_model_twice_shows_no_gain(tiny):
    from grpo_course.tiny.verdict import measure_sharpening

    model, tok = tiny
    problems = P.load_split("test")[:24]
    v = measure_sharpening(model, tok, problems, k=4, before_model=model)
    assert v.kind == "no gain" and not v.newly_solved and not v.newly_broken
    assert v.greedy("before", "subtraction") == v.greedy("after", "subtraction") < 0.5  # the flaw, measured
    with pytest.raises(ValueError, match="before"):
        measure_sharpening(model, tok, problems, k=4)  # no adapter to switch off and no before_model


# ---- SFT: other demonstrations, and batches grouped by length --------------------------------------------

def _pool(n=400):
    from grpo_course.tiny.sft import encode_pool
    from grpo_course.tiny.tokenizer import build_tokenizer

    tok = build_tokenizer()
    return tok, P.generate_problems(n, seed=21), encode_pool(tok, P.generate_problems(n, seed=21))


def test_sft_draws_the_flaw_at_its_rate_and_only_where_it_exists():
    from grpo_course.tiny.sft import SFTSettings, draw_batches

    tok, problems, pool = _pool()
    flawed = {tuple(pr): tuple(a) for pr, _, a in pool if a is not None}
    for rate in (0.0, 0.65, 1.0):
        batches = draw_batches(pool, SFTSettings(batch_size=50, flaw_rate=rate), random.Random(0))
        shown = [pair for _ in range(40) for pair in next(batches)]
        alt = [tuple(c) == flawed[tuple(pr)] for pr, c in shown if tuple(pr) in flawed]
        usual = {tuple(pr): tuple(u) for pr, u, _ in pool}
        assert all(tuple(c) == usual[tuple(pr)] for pr, c in shown if tuple(pr) not in flawed)  # no flaw elsewhere
        share = sum(alt) / len(alt)
        assert abs(share - rate) < 4 * sqrt(max(rate * (1 - rate), 1e-9) / len(alt)) + 1e-9


def test_sft_takes_other_demonstrations():
    """A caller's own demonstrations (here: a bare answer as the alternative on every problem)."""
    from grpo_course.tiny.sft import SFTSettings, draw_batches, encode_pool

    tok, problems, _ = _pool(50)

    def bare_or_steps(p):
        return solve(p), f"{ANSWER_START}{P.gold_number(p['answer'])}{ANSWER_END}"

    pool = encode_pool(tok, problems, bare_or_steps)
    batch = next(draw_batches(pool, SFTSettings(batch_size=64, flaw_rate=1.0), random.Random(0)))
    texts = {tok.decode(c, skip_special_tokens=True) for _, c in batch}
    assert texts and all(t.startswith(ANSWER_START) for t in texts)


def test_length_buckets_pad_less_and_show_the_same_problems():
    from grpo_course.tiny.sft import SFTSettings, collate, draw_batches

    tok, _, pool = _pool()

    def padded(bucket_steps, steps=16):
        batches = draw_batches(pool, SFTSettings(batch_size=32, bucket_steps=bucket_steps), random.Random(0))
        drawn = [next(batches) for _ in range(steps)]
        return sum(collate(tok, b)["input_ids"].numel() for b in drawn), drawn

    plain, _ = padded(1)
    grouped, drawn = padded(8)
    assert grouped < 0.9 * plain  # at least 10% fewer tokens to push through the model
    assert all(len(b) == 32 for b in drawn)
    with pytest.raises(ValueError, match="bucket_steps"):
        from grpo_course.tiny.sft import train_sft

        train_sft(None, tok, P.generate_problems(5, 0), SFTSettings(bucket_steps=0), progress=False)


def test_the_saved_tokenizer_does_not_depend_on_how_the_build_used_it(tmp_path, monkeypatch):
    """Calling a fast tokenizer with padding=True stores the padding in tokenizer.json. The build saves a
    tokenizer as built, so its bytes (in BUILD.json's sha256) do not change when evaluation changes."""
    import grpo_course.tiny.evaluation as E
    from grpo_course.tiny.build import BuildSettings, build_tiny, sha256_file
    from grpo_course.tiny.sft import SFTSettings
    from grpo_course.tiny.tokenizer import build_tokenizer

    real = E.evaluate

    def padding_evaluate(model, tokenizer, problems, **kw):
        scores = real(model, tokenizer, problems, **kw)
        tokenizer([p["question"] for p in problems], padding=True)  # the last call pads, as evaluation once did
        return scores

    monkeypatch.setattr(E, "evaluate", padding_evaluate)
    micro = BuildSettings(sft=SFTSettings(steps=2, batch_size=4, warmup_steps=1, pool_size=50))
    record = build_tiny(tmp_path / "b", micro, progress=False, n_eval=4)
    build_tokenizer().save_pretrained(tmp_path / "fresh")
    assert record["sha256"]["sft/tokenizer.json"] == sha256_file(tmp_path / "fresh" / "tokenizer.json")


@pytest.mark.parametrize("argv, message", [
    (["build-tiny", "--kind", "sft_v2", "--problems-only"], "--kind 'sft_v2': choose from sft, sft_always_adds"),
    (["build-tiny", "--threads", "0", "--problems-only"], "--threads 0: give 1 or more"),
])
def test_build_command_mistakes_are_one_error_line(argv, message, capsys, tmp_path):
    from grpo_course.cli import main

    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {message}"]
    assert not any(tmp_path.iterdir())  # nothing written


def test_the_tokenizer_is_rebuilt_byte_for_byte(tmp_path):
    """The committed tokenizer.json comes back from build_tokenizer alone, before anything has used it."""
    import hashlib

    from grpo_course.tiny.tokenizer import build_tokenizer

    build_tokenizer().save_pretrained(tmp_path)
    committed = json.loads((P.problems_dir().parent / "BUILD.json").read_text())["sha256"]["sft/tokenizer.json"]
    assert hashlib.sha256((tmp_path / "tokenizer.json").read_bytes()).hexdigest() == committed
