"""R1-Zero on a laptop: the task, the reward set, the measurements, the starting model, and GRPO that makes
step-writing emerge from an answer-only reward (with a coin-flip control that must not)."""

from __future__ import annotations

import json
import random
import re

import pytest

from grpo_course.chat_format import format_response
from grpo_course.emergence import task as T
from grpo_course.rewards import is_correct, parse_gsm8k_gold
from grpo_course.tiny.problems import OPS, run_program

ANNOTATION = re.compile(r"(\d+)([-+])(\d+)=<<(\d+)([-+])(\d+)=(\d+)>>(\d+)")


@pytest.fixture(scope="module")
def tokenizer():
    from grpo_course.tiny.tokenizer import build_tokenizer

    return build_tokenizer()


# ---- the task -------------------------------------------------------------------------------------------

def test_generation_is_deterministic_distinct_and_seed_dependent():
    a = T.generate_problems(300, seed=3)
    assert a == T.generate_problems(300, seed=3)
    assert len({p["question"] for p in a}) == 300
    assert [p["question"] for p in a] != [p["question"] for p in T.generate_problems(300, seed=4)]


def test_gold_is_gsm8k_format_and_every_number_is_a_tiny_token():
    problems = T.generate_problems(400, seed=11)
    assert {p["level"] for p in problems} == set(T.OPERATIONS)
    for p in problems:
        body, final = p["answer"].rsplit("\n#### ", 1)
        annotations = ANNOTATION.findall(body)
        assert len(annotations) == len(p["program"]) == p["level"]
        for a, op, b, a2, op2, b2, r, shown in annotations:
            assert (a, op, b) == (a2, op2, b2) and r == shown and OPS[op](int(a), int(b)) == int(r)
        assert parse_gsm8k_gold(p["answer"]) == final == str(run_program(p["program"])[-1][3])
        start = int(p["program"][0][0])
        assert T.START[0] <= start <= T.START[1]  # a two-digit count ...
        assert all(T.CHANGE[0] <= int(step[2]) <= T.CHANGE[1] for step in p["program"])  # ... one-digit changes
        assert all(0 <= int(x) <= 255 for x in re.findall(r"\d+", p["question"] + p["answer"]))


def test_splits_are_disjoint_and_reproducible():
    splits = T.make_splits()
    assert {k: len(v) for k, v in splits.items()} == T.SPLIT_SIZES
    assert not {p["question"] for p in splits["train"]} & {p["question"] for p in splits["test"]}
    assert T.load_split("test", 7) == splits["test"][:7]
    with pytest.raises(ValueError, match="unknown split"):
        T.load_split("dev")
    with pytest.raises(ValueError, match="has 500 problems"):
        T.load_split("test", 501)
    with pytest.raises(ValueError, match="at least one operation"):
        T.make_problem(random.Random(0), 0)


def test_both_demonstrations_are_right_and_only_one_writes_steps(tokenizer):
    for p in T.generate_problems(200, seed=5):
        steps, bare = T.steps_demonstration(p), T.bare_demonstration(p)
        assert is_correct(steps, p["answer"], mode="strict") and is_correct(bare, p["answer"], mode="strict")
        assert T.step_lines(steps) == p["level"] and T.writes_steps(steps)
        assert T.step_lines(bare) == 0 and not T.writes_steps(bare)
        ids = tokenizer(p["question"] + steps + bare)["input_ids"]
        assert tokenizer.unk_token_id not in ids[1:]  # (a question's first word has no leading space)


@pytest.mark.parametrize("completion, lines", [
    ("<think>\n47 + 8 = 55\n55 - 3 = 52\n</think>\n<answer>52</answer>", 2),
    ("<think>\n47 + 8 = 54\n</think>\n<answer>54</answer>", 1),  # a wrong step is still a written step
    ("<think>\n\n</think>\n<answer>52</answer>", 0),
    ("<think>\n\n</think>\n<answer>47+5=52</answer>", 0),  # inside the answer it is not an intermediate step
    ("<think>\nAva has 52 apples.\n</think>\n<answer>52</answer>", 0),  # words, no calculation
    ("47 + 8 = 55 so 52", 1),  # no tags at all
    ("", 0),
])
def test_step_lines_table(completion, lines):
    assert T.step_lines(completion) == lines
    assert T.writes_steps(completion) == (lines > 0)


# ---- the reward set: the answer, and nothing else -----------------------------------------------------------

def test_the_reward_set_is_the_answer_alone():
    from grpo_course.emergence.lab import reward_functions
    from grpo_course.rewards.math import tag_answer_reward

    assert T.REWARD_NAMES == ("tag_answer",)
    assert reward_functions("answer") == [tag_answer_reward]
    assert tag_answer_reward.reward_range == (0.0, 1.0)
    with pytest.raises(ValueError, match="unknown reward"):
        reward_functions("format")


def test_reward_ignores_steps_format_and_length():
    """Same final answer, any reasoning (none, right steps, wrong steps, long junk): the same reward."""
    from grpo_course.emergence.lab import reward_functions

    rng = random.Random(0)
    for p in T.generate_problems(100, seed=21):
        gold = p["answer"]
        right, wrong = str(run_program(p["program"])[-1][3]), str(run_program(p["program"])[-1][3] + 1)
        for answer, expected in ((right, 1.0), (wrong, 0.0)):
            reasonings = ["", T.steps_demonstration(p).split("</think>")[0].removeprefix("<think>"),
                          "1 + 1 = 3\n" * rng.randint(1, 6), " ".join(["apples"] * rng.randint(1, 40))]
            texts = [format_response(r, answer) for r in reasonings]
            for fn in reward_functions("answer"):
                assert fn(texts, answer=[gold] * len(texts)) == [expected] * len(texts)


def test_coin_reward_is_pure_bounded_and_blind_to_the_answer():
    from grpo_course.emergence.lab import coin_reward, reward_functions

    assert reward_functions("coin") == [coin_reward] and coin_reward.reward_range == (0.0, 1.0)
    problems = T.load_split("train", 400)
    right = [T.steps_demonstration(p) for p in problems]
    wrong = [format_response("", str(run_program(p["program"])[-1][3] + 1)) for p in problems]
    r_right, r_wrong = coin_reward(right), coin_reward(wrong)
    assert r_right == coin_reward(right)  # deterministic
    assert set(r_right) | set(r_wrong) <= {0.0, 1.0}
    # a fair coin for right and wrong answers alike (400 draws each: 0.5 +- 0.1 is 4 standard errors)
    assert abs(sum(r_right) / 400 - 0.5) < 0.1 and abs(sum(r_wrong) / 400 - 0.5) < 0.1
    assert coin_reward([None, {"content": "x"}, [{"role": "assistant", "content": "7"}], 42]) == \
        coin_reward(["", "x", "7", ""])
    assert coin_reward([]) == []


# ---- measurements ---------------------------------------------------------------------------------------

def test_describe_counts_steps_length_and_accuracy(tokenizer):
    from grpo_course.emergence.measure import describe

    p = T.generate_problems(1, seed=8, operations=[3])[0]
    steps, bare = T.steps_demonstration(p), T.bare_demonstration(p)
    d = describe([steps, bare, bare, bare], [True, False, True, False], tokenizer)
    assert d["steps"] == 0.25 and d["accuracy"] == 0.5 and d["n"] == 4
    assert d["accuracy_steps"] == 1.0 and d["accuracy_bare"] == pytest.approx(1 / 3)
    # bare: <think> \n \n </think> \n <answer> N </answer> (8 tokens); steps: one "\n" fewer, plus
    # three lines of 6 tokens ("47", " +", " 8", " =", " 55", "\n")
    assert d["length"] == pytest.approx((7 + 3 * 6 + 8 * 3) / 4)


# ---- the committed starting model -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def starting_model():
    from grpo_course.emergence.build import load_emergence

    return load_emergence()


def test_build_record_matches_the_committed_files_and_the_generator():
    from grpo_course.emergence.build import emergence_dir, read_build_record
    from grpo_course.tiny.build import sha256_file

    record = read_build_record()
    assert record["sha256"]
    for rel, digest in record["sha256"].items():
        assert sha256_file(emergence_dir() / rel) == digest, f"{rel} differs from the build BUILD.json records"
    # the held-out problems are generated on the fly: the generator must still make the ones measured
    assert record["heldout_problems"]["sha256"] == T.problems_sha256(T.load_split("test"))


def test_starting_model_rarely_writes_steps_but_is_right_when_it_does(starting_model):
    from grpo_course.emergence.measure import measure

    model, tok = starting_model
    assert sum(p.numel() for p in model.parameters()) < 3_000_000
    m = measure(model, tok, T.load_split("test", 150), k=8, seed=0)
    greedy, sampled = m["greedy"], m["sampled"]
    assert greedy["steps"] <= 0.2 and greedy["accuracy"] <= 0.4  # it prefers the bare answer, often wrong
    assert 0.05 <= sampled["steps"] <= 0.4  # ... yet samples steps now and then
    assert sampled["accuracy_steps"] - sampled["accuracy_bare"] >= 0.4  # and steps pay


def test_steps_get_the_positive_advantages_within_groups(starting_model):
    """The mechanism: no reward term mentions steps, yet the step-writing samples get positive advantages."""
    from grpo_course.emergence.measure import advantages_by_behaviour

    model, tok = starting_model
    g = advantages_by_behaviour(model, tok, T.load_split("train", 64), group_size=8, seed=0)
    assert g["n_steps"] >= 20 and g["n_bare"] >= 200
    assert g["advantage_steps"] > 0.5 > 0 > g["advantage_bare"]
    for i in range(0, len(g["advantages"]), 8):  # group-relative: each group's advantages sum to zero
        assert abs(sum(g["advantages"][i:i + 8])) < 1e-4
    with pytest.raises(ValueError, match="groups of two"):
        advantages_by_behaviour(model, tok, T.load_split("train", 2), group_size=1)


def test_step_probability_agrees_with_sampling(starting_model):
    from grpo_course.emergence.measure import measure, step_probability

    model, tok = starting_model
    problems = T.load_split("test", 150)
    p = step_probability(model, tok, problems, batch_size=64)  # several batches: left padding must not matter
    assert len(p) == 150 and all(0.0 <= x <= 1.0 for x in p)
    assert p[:10] == pytest.approx(step_probability(model, tok, problems[:10]), abs=1e-5)
    sampled = measure(model, tok, problems, k=8, seed=1)["sampled"]["steps"]  # 1200 samples: SE about 1.2 points
    assert abs(sum(p) / len(p) - sampled) < 0.06


def test_importing_the_lab_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, grpo_course.emergence.lab, grpo_course.emergence.command; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- GRPO: step-writing emerges from the answer-only reward, and not from a coin ------------------------
# Shortened runs from the committed model (EMERGENCE_GRPO, CI_STEPS steps) on 100 held-out problems,
# greedy decoding (deterministic: a change means the weights changed). Measured 2026-12-04 with
# run_emergence(seed=s, steps=12, reward=R, n_test=100, k=0, measure_every=0), seeds 0-2, load average ~3:
#   answer reward: step-writing 0% -> 100% (all seeds), accuracy 16% -> 98%, 97%, 93%, length 8.0 -> 28.2 tokens
#   coin control:  step-writing 0% -> 0%, 5%, 2%, accuracy 16% -> 1%, 3%, 3% (random updates only do damage)
# A binomial proportion on 100 problems has a standard error of at most 5 points, so CI_MARGIN (40 points)
# is 8 of them, and the control's largest move up (5 points) stays under CONTROL_MAX.
CI_STEPS = 12
CI_MARGIN = 0.40
CONTROL_MAX = 0.10


@pytest.mark.slow
@pytest.mark.parametrize("reward", ["answer", "coin"])
def test_grpo_with_the_answer_reward_makes_steps_emerge_and_a_coin_does_not(reward):
    from grpo_course.emergence.lab import run_emergence

    r = run_emergence(seed=0, steps=CI_STEPS, reward=reward, n_test=100, k=0, measure_every=0,
                      progress=False, threads=1)
    before, after = r.before["greedy"], r.after["greedy"]
    assert before["steps"] <= 0.2, r.summary()
    assert len(r.history) == CI_STEPS and all(0 <= h["frac_reward_zero_std"] <= 1 for h in r.history)
    if reward == "answer":
        assert r.settings["rewards"] == ["tag_answer_reward"]
        assert after["steps"] - before["steps"] >= CI_MARGIN, r.summary()
        assert after["accuracy"] - before["accuracy"] >= CI_MARGIN, r.summary()
        assert after["length"] >= 2 * before["length"], r.summary()
    else:
        assert r.settings["rewards"] == ["coin_reward"]
        assert after["steps"] - before["steps"] <= CONTROL_MAX, r.summary()
        assert after["accuracy"] - before["accuracy"] <= CONTROL_MAX, r.summary()


# ---- the build ------------------------------------------------------------------------------------------

def test_sft_demonstrations_hook_trains_on_the_given_pair(tokenizer):
    from grpo_course.tiny.sft import encode_pool

    problems = T.generate_problems(3, seed=1)
    pool = encode_pool(tokenizer, problems, lambda p: (T.steps_demonstration(p), T.bare_demonstration(p)))
    for p, (_, usual, alternative) in zip(problems, pool):
        assert tokenizer.decode(usual) == T.steps_demonstration(p) + tokenizer.eos_token
        assert tokenizer.decode(alternative) == T.bare_demonstration(p) + tokenizer.eos_token


def test_quick_build_is_deterministic_and_loads(tmp_path):
    from grpo_course.emergence.build import QUICK, build_emergence, load_emergence, read_build_record

    first = build_emergence(tmp_path / "a", QUICK, progress=False, n_eval=8)
    second = build_emergence(tmp_path / "b", QUICK, progress=False, n_eval=8)
    assert first["sha256"] == second["sha256"]
    assert read_build_record(tmp_path / "a") == json.loads(json.dumps(first))
    assert set(first["sft_seconds"]) == {"pretrain", "finetune"}
    assert first["sft_final_loss"]["pretrain"] < 6.0  # started near ln(vocab) = 6.5
    model, tok = load_emergence(tmp_path / "a" / "sft")
    assert len(tok) == first["vocab_size"]


def test_cli_rejects_a_bad_step_count(capsys):
    from grpo_course.cli import main

    assert main(["emergence-lab", "--steps", "0"]) == 2  # a usage error: one plain line, no traceback
    err = capsys.readouterr().err
    assert "error:" in err and "--steps" in err and len(err.strip().splitlines()) == 1
