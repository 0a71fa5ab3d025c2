"""The naive rewards really have the flaws the notebook shows, the guarded rewards do not, and the
template policy reproduces format hacking (and its cure) under GRPO advantages."""

import pytest

from grpo_course.chat_format import format_response
from grpo_course.rewards import composite_math_reward, tag_answer_reward, tag_format_reward, tag_reward
from grpo_course.rewards.hacking import (
    BEHAVIOURS,
    make_problems,
    naive_any_tag_reward,
    naive_contains_reward,
    naive_count_steps,
    naive_steps_reward,
    naive_string_equal_reward,
    no_dotall_format_reward,
    policy_summary,
    simulate_policy,
)
from grpo_course.rewards.tables import pass_fail_rows, pass_fail_table, texts_of

MULTI_LINE = format_response("48 / 2 = 24\n48 + 24 = 72", "72")
ONE_LINE = "<think>48 + 24 = 72</think><answer>72</answer>"


def test_no_dotall_regex_rejects_multi_line_reasoning_only():
    assert no_dotall_format_reward([MULTI_LINE, ONE_LINE]) == [0.0, 0.5]
    assert tag_format_reward([MULTI_LINE, ONE_LINE]) == [0.5, 0.5]


@pytest.mark.parametrize(
    "answer_text,naive,guarded",
    [
        ("", 1.0, 0.0),  # the empty answer is "contained" in every gold (Visual-RFT #176)
        ("17 or 18", 1.0, 0.0),
        ("118", 1.0, 0.0),
        ("18", 1.0, 1.0),
    ],
)
def test_contains_reward_is_hacked_by_empty_and_hedged_answers(answer_text, naive, guarded):
    text = f"<think>x</think><answer>{answer_text}</answer>"
    assert naive_contains_reward([text], answer=["18"]) == [naive]
    assert tag_answer_reward([text], answer=["18"]) == [guarded]


def test_any_tag_reward_is_hacked_by_several_answer_tags():
    text = "<think>x</think>" + "".join(f"<answer>{n}</answer>" for n in range(15, 21))
    assert naive_any_tag_reward([text], answer=["18"]) == [1.0]
    assert tag_answer_reward([text], answer=["18"]) == [0.0]


def test_string_equality_misses_commas_and_decimals():
    texts = [format_response("3 * 360 = 1080", "1080"), format_response("9 * 2 = 18", "18.0")]
    golds = ["#### 1,080", "#### 18"]
    assert naive_string_equal_reward(texts, answer=golds) == [0.0, 0.0]
    assert tag_answer_reward(texts, answer=golds) == [1.0, 1.0]


def test_naive_steps_count_padding_and_false_arithmetic():
    padded = format_response("1 + 1 = 2\n1 + 1 = 2\n2 + 2 = 5", "7")
    assert naive_count_steps(padded) == 3 and naive_steps_reward([padded]) == [0.2]
    prompt = [{"role": "user", "content": "Sam has 12 apples and buys 7. How many?"}]
    assert composite_math_reward([padded], answer=["19"], prompts=[prompt]) == [pytest.approx(0.2)]


def test_behaviours_score_as_labelled():
    p = make_problems(1)[0]
    texts = [BEHAVIOURS[n](p) for n in BEHAVIOURS]
    assert tag_reward(texts, answer=[p.answer] * 4) == [1.5, 0.5, 0.0, 0.0]


def test_format_only_reward_is_hacked_and_correctness_cures_it():
    hacked = policy_summary(simulate_policy(tag_format_reward, steps=30, seed=0))
    assert hacked["format rate"][1] > 0.9 > hacked["format rate"][0]
    assert hacked["accuracy"][1] < hacked["accuracy"][0] - 0.3  # format up, accuracy down
    cured = policy_summary(simulate_policy(tag_reward, steps=30, seed=0))
    assert cured["accuracy"][1] > 0.9 and cured["format rate"][1] > 0.9


def test_pass_fail_table():
    rows = [("right", "<answer>1</answer>", 1.0), ("none", "x", None), ("wrong", "<answer>2</answer>", 1.0)]
    scores = [1.0, None, 0.0]
    assert pass_fail_rows(rows, scores) == [True, True, False]
    table = pass_fail_table(rows, scores, title="t")
    assert table.splitlines()[0] == "t" and table.endswith("2/3 PASS") and "FAIL" in table
    assert texts_of(rows) == ["<answer>1</answer>", "x", "<answer>2</answer>"]
