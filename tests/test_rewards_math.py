"""Table-driven tests of grpo_course.rewards: extraction, normalisation, strict vs lenient verdicts,
GSM8K gold parsing, reasoning steps, every math reward, the hacking guards, and the registry.

Each table row is a real-looking completion and the verdict we want; the rows that encode a
decision (how a hedge or two answer tags score) say so in a comment.
"""

import math
import subprocess
import sys
import threading

import pytest

from grpo_course.chat_format import format_response
from grpo_course.rewards import (
    REWARDS,
    completion_text,
    composite_math_reward,
    count_reasoning_steps,
    exact_answer_reward,
    extract_answer,
    format_reward,
    get_reward,
    has_boxed_format,
    has_tag_format,
    is_correct,
    list_rewards,
    numeric_tolerance_reward,
    parse_gsm8k_gold,
    reasoning_steps,
    tag_answer_reward,
    tag_format_reward,
    tag_reward,
)
from grpo_course.rewards.math import find_answer, find_equations
from grpo_course.rewards.normalize import find_numbers, format_fraction, numbers_match, parse_number

NATALIA_Q = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?"
)
NATALIA_GOLD = (
    "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
    "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"
)
GOOD = format_response("In May she sold 48 / 2 = 24 clips.\nAltogether 48 + 24 = 72 clips.", "72")

# ---------------------------------------------------------------------------------------------
# GSM8K gold answers
# ---------------------------------------------------------------------------------------------

GOLD_TABLE = [
    (NATALIA_GOLD, "72"),
    ("He pays 3*360 = <<3*360=1080>>1080.\n#### 1,080", "1080"),
    ("The loss is 3-10 = <<3-10=-7>>-7\n#### -7", "-7"),
    ("#### 1,450,000", "1450000"),
    ("18", "18"),
    ("  0.75 ", "0.75"),
    (r"\frac{3}{4}", r"\frac{3}{4}"),
    ("Total <<2+2=4>>4 apples", "Total 4 apples"),
    (72, "72"),
    (None, ""),
    ("a #### 1 #### 2", "2"),
]


@pytest.mark.parametrize("answer_text,expected", GOLD_TABLE)
def test_parse_gsm8k_gold(answer_text, expected):
    assert parse_gsm8k_gold(answer_text) == expected


# ---------------------------------------------------------------------------------------------
# Number normalisation
# ---------------------------------------------------------------------------------------------

NUMBER_TABLE = [  # span, strict canonical value (None = not one number)
    ("1,000", "1000"),
    ("$18", "18"),
    ("18.00", "18"),
    ("$1,234.50", "1234.5"),
    ("50%", "50%"),
    ("50 percent", "50%"),
    (r"50\%", "50%"),
    ("3/4", "0.75"),
    (r"\frac{3}{4}", "0.75"),
    (r"\dfrac{2}{3}", "2/3"),
    (r"\frac12", "0.5"),
    ("1 1/2", "1.5"),
    (r"2\frac{1}{3}", "7/3"),
    ("-7", "-7"),
    ("\u22127", "-7"),
    ("18.", "18"),
    ("18!", "18"),
    ("18 dollars", "18"),
    ("18 cm^2", "18"),
    ("18 m\u00b2", "18"),
    ("18 km/h", "18"),
    ("x = 18", "18"),
    (r"\boxed{\text{18 apples}}", "18"),
    ("**18**", "18"),
    ("$18$", "18"),
    ("1 000 000", "1000000"),
    ("1{,}000", "1000"),
    ("1.5e3", "1500"),
    ("\uff11\uff18", "18"),  # fullwidth digits
    (".5", "0.5"),
    ("0", "0"),
    ("17 or 18", None),  # a hedge
    ("17, 18", None),
    ("between 17 and 18", None),
    ("18?", None),
    ("not 17", None),
    ("9 * 2", None),  # an expression is not a final value
    ("2^10", None),
    (r"\sqrt{2}", None),
    ("5/0", None),
    ("eighteen", None),
    ("", None),
    ("9" * 500, None),  # too many digits
    ("1e999", None),  # exponent refused
]


@pytest.mark.parametrize("span,expected", NUMBER_TABLE)
def test_parse_number_strict(span, expected):
    n = parse_number(span, "strict")
    assert (n.canonical() if n else None) == expected


def test_parse_number_lenient_takes_the_first_number():
    assert parse_number("17 or 18", "lenient").canonical() == "17"
    assert parse_number("about 18 dollars per day for 7 days", "lenient").canonical() == "18"
    assert parse_number("eighteen", "lenient") is None


@pytest.mark.parametrize(
    "value,text", [((3, 4), "0.75"), ((2, 3), "2/3"), ((-1, 8), "-0.125"), ((5, 1), "5"), ((1, 20), "0.05")]
)
def test_format_fraction(value, text):
    from fractions import Fraction

    assert format_fraction(Fraction(*value)) == text


def test_numbers_match_percent_and_rounding():
    p = lambda s: parse_number(s, "strict")  # noqa: E731
    assert numbers_match(p("50%"), p("50")) and numbers_match(p("50%"), p("0.5"))
    assert numbers_match(p("0.5"), p("50%"))
    assert not numbers_match(p("0.33"), p("1/3"), "strict")
    assert numbers_match(p("0.33"), p("1/3"), "lenient")
    assert not numbers_match(p("33"), p("33.3"), "lenient")  # integers never round
    assert not numbers_match(p("0.3"), p("1/3"), "lenient")  # one decimal place is not enough


def test_find_numbers_thousands_and_signs():
    assert [n.canonical() for n in find_numbers("Paid $1,080 then -7 and 3/4, total 12,50")] == [
        "1080",
        "-7",
        "0.75",
        "12",
        "50",
    ]


# ---------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------

EXTRACT_TABLE = [  # completion, strict, lenient
    (GOOD, "72", "72"),
    (NATALIA_GOLD, "72", "72"),
    (r"So the total is \boxed{72}.", "72", "72"),
    (r"\boxed{\frac{3}{4}}", "0.75", "0.75"),
    (r"nested \boxed{\text{\textbf{1,000}}}", "1000", "1000"),
    (r"\fbox{42}", "42", "42"),
    ("The final answer is 72", "72", "72"),
    ("The final answer is $18.", "18", "18"),
    ("The final answer is 18. I hope it is correct.", "18", "18"),
    ("**Final Answer:** **5**", "5", "5"),
    ("Answer: 42", "42", "42"),
    ("<answer>\n72\n</answer>", "72", "72"),
    ("<answer>$1,080.00</answer>", "1080", "1080"),
    # lenient-only: the last number, a truncated answer tag, the first number of a hedge
    ("She makes $18.00 every day.", None, "18"),
    ("I think 72. Actually no, it is 70.", None, "70"),
    ("<think>48 + 24 = 72</think><answer>72", None, "72"),
    ("<answer>17 or 18</answer>", None, "17 or 18"),  # a hedge has no number, even in lenient mode
    ("<answer>18 dollars per day for 7 days</answer>", None, "18"),
    # the word "answer" does not anchor on its own (math-verify's pitfall, evaluation.md 1.9)
    ("Let me find the answer. 5+4=9, 9*2=18. So she makes 18 dollars.", None, "18"),
    # several answers of the winning kind must agree, in both modes: two different ones name no single answer
    # (issue #15: lenient used to take the last one, which credited "\boxed{17} or \boxed{18}")
    ("<answer>17</answer> <answer>18</answer>", None, None),
    ("<answer>18</answer> <answer>18.0</answer>", "18", "18"),
    (r"\boxed{17}, \boxed{18}", None, None),
    ("The answer is 17. Actually, the answer is 18.", None, None),
    # answer tags beat a boxed answer elsewhere
    (r"<think>maybe \boxed{17}</think><answer>18</answer>", "18", "18"),
    # markdown headers are not GSM8K answers
    ("#### Step 1\nWe add 2 and 3.\nThe answer is 5.", "5", "5"),
    (r"<answer>\sqrt{2}</answer>", r"\sqrt{2}", r"\sqrt{2}"),
    ("<answer>B</answer>", "B", "B"),
    ("", None, None),
    ("no numbers at all", None, None),
    ("<answer></answer>", None, None),
]


@pytest.mark.parametrize("text,strict,lenient", EXTRACT_TABLE)
def test_extract_answer(text, strict, lenient):
    assert extract_answer(text, mode="strict") == strict
    assert extract_answer(text, mode="lenient") == lenient


def test_extract_answer_default_mode_is_lenient_and_bad_mode_raises():
    assert extract_answer("total 5") == "5"
    with pytest.raises(ValueError):
        extract_answer("5", mode="loose")
    with pytest.raises(ValueError):
        is_correct("5", "5", mode="loose")


def test_find_answer_reports_the_anchor_kind():
    assert find_answer(GOOD, "strict").kind == "tag"
    assert find_answer(r"\boxed{3}", "strict").kind == "boxed"
    assert find_answer("#### 3", "strict").kind == "####"
    assert find_answer("The answer is 3", "strict").kind == "final answer is"
    assert find_answer("we got 3 apples", "lenient").kind == "last number"


def test_boxed_with_deeply_nested_braces():
    text = r"\boxed{\frac{\frac{1}{2}}{\left(3\right)}} and more"
    assert find_answer(text, "strict").span == r"\frac{\frac{1}{2}}{\left(3\right)}"


# ---------------------------------------------------------------------------------------------
# is_correct: strict (reward) vs lenient (evaluation)
# ---------------------------------------------------------------------------------------------

CORRECT_TABLE = [  # completion, gold, strict verdict, lenient verdict
    (GOOD, NATALIA_GOLD, True, True),
    (GOOD, "72", True, True),
    (GOOD, 72, True, True),
    (format_response("3 * 360 = 1080", "1,080"), "#### 1,080", True, True),
    (format_response("3 * 360 = 1080", "1080"), "#### 1,080", True, True),
    (format_response("...", "$18.00"), "18", True, True),
    (format_response("...", "18.0"), "18", True, True),
    (format_response("...", "-7"), "#### -7", True, True),
    (format_response("...", "\u22127"), "-7", True, True),
    (format_response("...", "50%"), "50", True, True),
    (format_response("...", "50%"), "0.5", True, True),
    (format_response("...", "3/4"), "0.75", True, True),
    (format_response("...", "0.75"), r"\frac{3}{4}", True, True),
    (format_response("...", "1 1/2"), "1.5", True, True),
    (format_response("...", "18 apples."), "18", True, True),
    (format_response("...", "0.67"), r"\frac{2}{3}", False, True),  # rounding: lenient only
    (format_response("...", "72.5"), "72", False, False),
    (format_response("...", "17 or 18"), "18", False, False),  # hedges score 0 in both modes
    (format_response("...", "18 or 17"), "18", False, False),
    (format_response("...", "maybe 18, 17?"), "18", False, False),
    (format_response("...", "9 * 2"), "18", False, True),  # an expression: lenient asks math-verify
    ("<answer>17</answer><answer>18</answer>", "18", False, False),  # two different answers: none given
    ("She makes $18.00 every day.", "18", False, True),  # no anchor: lenient only
    ("The final answer is 18", "18", True, True),
    (r"\boxed{\frac{\sqrt{12}}{4}}", r"\frac{\sqrt{3}}{2}", True, True),  # LaTeX gold: math-verify
    (r"\boxed{\frac{\sqrt{3}}{3}}", r"\frac{\sqrt{3}}{2}", False, False),
    (r"\boxed{9^{9^{9^{9}}}}", "18", False, False),  # power tower: refused before SymPy
    ("The answer is 9^9^9^9", r"\frac{1}{2}", False, False),
    ("", "18", False, False),
    (GOOD, "", False, False),
    (GOOD, None, False, False),
    ([{"role": "assistant", "content": GOOD}], "72", True, True),
]


@pytest.mark.parametrize("completion,gold,strict,lenient", CORRECT_TABLE)
def test_is_correct(completion, gold, strict, lenient):
    assert is_correct(completion, gold, mode="strict") is strict
    assert is_correct(completion, gold, mode="lenient") is lenient


# Issue #15: hedges the lenient grader credited (and two the strict grader accepted). A completion that
# commits to no single answer, or states an inequality, is wrong in both modes.
HEDGE_TABLE = [  # completion, gold
    (r"\boxed{17} or \boxed{18}", "18"),  # two different boxed answers
    ("It is 17 or 18", "18"),
    ("maybe 17, maybe 18", "18"),
    ("#### 17\n#### 18", "18"),  # two #### lines
    ("either 17, 18 or 19", "19"),
    ("<answer>18 ± 1</answer>", "18"),
    ("A question asked me something. (Is it 17 or 18?)", "18"),  # only echoes the question
    ("(Is it 17 or 18?)", "18"),
    ("<answer>at least 18</answer>", "18"),  # strict accepted these two
    ("<answer>>= 18</answer>", "18"),
    (">= 18", "18"),
    ("The answer is >= 18", "18"),
    (r"<answer>\geq 18</answer>", "18"),
    ("<answer>18 or more</answer>", "18"),
    (r"\boxed{18 \pm 1}", "18"),
    ("<answer>18 +/- 1</answer>", "18"),
    ("<think>9 * 2 = 18</think><answer>17 or 18</answer>", "18"),
    ("The answer is 17. Actually, the answer is 18.", "18"),  # two different final answers
    ("<answer>17</answer><answer>18</answer>", "18"),
]


@pytest.mark.parametrize("completion,gold", HEDGE_TABLE)
def test_hedges_are_wrong_in_both_modes(completion, gold):
    assert is_correct(completion, gold, mode="strict") is False
    assert is_correct(completion, gold, mode="lenient") is False


COMMITTED_TABLE = [  # completion, gold: one answer, stated once, next to words that look like hedges
    ("Is it 17 or 18? 9 * 2 = 18, so 18.", "18"),  # the question echoed, then answered
    ("The answer is 18. The final answer is 18.", "18"),  # the same answer twice
    (r"\boxed{18} or, written out, \boxed{18.0}", "18"),
    ("<think>17 or 18? 9 * 2 = 18</think><answer>18</answer>", "18"),  # hedging while thinking is fine
    ("She has 2 more apples, 5 -> 18 in total.", "18"),  # an arrow is not an inequality
    ("</think>\n18", "18"),  # markup is not a sign
]


@pytest.mark.parametrize("completion,gold", COMMITTED_TABLE)
def test_a_committed_answer_is_still_credited_by_the_lenient_grader(completion, gold):
    assert is_correct(completion, gold, mode="lenient") is True


def test_a_math_verify_timeout_is_not_cached_as_a_wrong_answer(monkeypatch):
    """Issue #15: one slow math-verify call (a busy machine) returned False and lru_cache kept it for the life of
    the process; and MATH_VERIFY_TIMEOUT was frozen as a default argument, so changing it did nothing. Here a real
    call first runs out of a tiny time limit, then the same question with the normal limit gets its verdict."""
    import grpo_course.rewards.math as math_rewards

    completion, gold = r"\boxed{\frac{\sqrt{50}}{5}}", r"\sqrt{2}"  # only math-verify can tell
    math_rewards._math_verify_equal.cache_clear()
    normal = math_rewards.MATH_VERIFY_TIMEOUT
    monkeypatch.setattr(math_rewards, "MATH_VERIFY_TIMEOUT", 1e-6)  # read at call time: this call times out
    assert is_correct(completion, gold, mode="strict") is False
    monkeypatch.setattr(math_rewards, "MATH_VERIFY_TIMEOUT", max(normal, 30.0))  # the worker restarts first
    assert is_correct(completion, gold, mode="strict") is True  # asked again: the timeout was not remembered
    math_rewards._math_verify_equal.cache_clear()


def test_math_verify_reads_its_time_limit_at_each_call(monkeypatch):
    import grpo_course.rewards.math as math_rewards
    import grpo_course.rewards.timeout as timeout_module

    limits = []
    monkeypatch.setattr(timeout_module, "call_with_timeout", lambda path, args, timeout: limits.append(timeout))
    math_rewards._math_verify_equal.cache_clear()
    try:
        monkeypatch.setattr(math_rewards, "MATH_VERIFY_TIMEOUT", 7.5)
        is_correct(r"\boxed{\frac{\sqrt{18}}{3}}", r"\sqrt{2}", mode="strict")
        assert limits == [7.5]
    finally:
        math_rewards._math_verify_equal.cache_clear()


def test_math_verify_fallback_works_inside_a_thread():
    """math-verify's own signal.alarm timeout raises in threads; ours runs it in a worker process."""
    out = []
    t = threading.Thread(target=lambda: out.append(is_correct(r"\boxed{\sqrt{8}/2}", r"\sqrt{2}", "strict")))
    t.start()
    t.join(60)
    assert out == [True]


def _verdict_in_pool_worker(_):
    from grpo_course.rewards.math import _math_verify_equal

    _math_verify_equal.cache_clear()
    return is_correct(r"\boxed{2\sqrt{2}}", r"\sqrt{8}", "strict")


def test_math_verify_fallback_works_inside_a_daemonic_pool_worker():
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.map(_verdict_in_pool_worker, [0]) == [True]


# ---------------------------------------------------------------------------------------------
# Reasoning steps
# ---------------------------------------------------------------------------------------------

STEPS_TABLE = [  # text, steps without the question, steps grounded in NATALIA_Q
    (NATALIA_GOLD, 2, 2),  # <<48/2=24>> and "48/2 = 24" are one step
    (GOOD, 2, 2),
    ("<think>$48 \\div 2 = 24$ and $48 + 24 = 72$</think><answer>72</answer>", 2, 2),
    ("<think>48 \\times \\frac{1}{2} = 24, 48 + 24 = 72</think>", 2, 2),
    ("48 x 2 = 96 then 96 - 24 = 72", 2, 2),
    ("In total 48 + 24 = 72 = 72.", 1, 1),
    ("<think>1 + 1 = 2\n1 + 1 = 2\n1 + 1 = 2\n1 + 1 = 2</think>", 1, 0),  # repeated padding
    ("<think>1 + 1 = 2\n2 + 2 = 4\n4 + 4 = 8</think>", 3, 0),  # true but ungrounded padding
    ("<think>48 + 24 = 70\n48 / 2 = 20</think>", 0, 0),  # false equations
    ("<think>48 * 1 = 48\n48 + 0 = 48</think>", 0, 0),  # trivial
    ("x = 72 and y = 48", 0, 0),  # assignments, not calculations
    ("<think>no arithmetic here</think><answer>72</answer>", 0, 0),
    ("<answer>48 + 24 = 72</answer>", 0, 0),  # steps inside the answer do not count
    ("5 + 4 = 9 * 2 = 18", 2, 0),  # a running chain is two steps
    ("10/3 = 3.33", 1, 0),  # rounded to the places written
    ("10/3 = 3", 0, 0),
]


@pytest.mark.parametrize("text,plain,grounded", STEPS_TABLE)
def test_count_reasoning_steps(text, plain, grounded):
    assert count_reasoning_steps(text) == plain
    assert count_reasoning_steps(text, prompt=NATALIA_Q) == grounded


def test_reasoning_steps_reads_chat_prompts_and_keeps_step_details():
    prompt = [{"role": "system", "content": "Solve 1 + 1 = 2 style"}, {"role": "user", "content": NATALIA_Q}]
    steps = reasoning_steps(GOOD, prompt=prompt)
    assert [(s.lhs, s.value) for s in steps] == [("48/2", 24), ("48+24", 72)]
    assert all(s.true for s in steps)


def test_find_equations_keeps_false_ones_and_flags_them():
    eqs = find_equations("2 + 2 = 5 and 3 * 3 = 9")
    assert [(e.lhs, e.rhs, e.true) for e in eqs] == [("2+2", "5", False), ("3*3", "9", True)]


# ---------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------

TAG_FORMAT_TABLE = [
    (GOOD, True),
    ("<think>one line</think><answer>72</answer>", True),
    ("<think>\nline one\nline two\n</think>\n\n<answer>\n72\n</answer>\n", True),  # needs DOTALL
    ("  <think>x</think> <answer>-7</answer>  ", True),
    ("<think>x</think><answer>$1,080</answer>", True),
    ("<think></think><answer>72</answer>", False),  # empty reasoning
    ("<think>x</think><answer></answer>", False),  # empty answer
    ("<think>x</think><answer>seventy-two</answer>", False),  # not a number
    ("<think>x</think><answer>17 or 18</answer>", False),  # a hedge
    ("<think>x</think><answer>72</answer><answer>72</answer>", False),  # two answer blocks
    ("<think>x</think><think>y</think><answer>72</answer>", False),
    ("<answer>72</answer><think>x</think>", False),  # wrong order
    ("Sure! <think>x</think><answer>72</answer>", False),  # text before
    ("<think>x</think><answer>72</answer> Hope this helps", False),  # text after
    ("<think>x</think> so <answer>72</answer>", False),  # text between
    ("<think>x<answer>72</answer></think>", False),
    ("<think>x</think>", False),
    ("", False),
]


@pytest.mark.parametrize("text,ok", TAG_FORMAT_TABLE)
def test_tag_format(text, ok):
    assert has_tag_format(text) is ok
    assert tag_format_reward([text]) == [0.5 if ok else 0.0]


BOXED_FORMAT_TABLE = [
    (r"48/2 = 24, 48 + 24 = 72, so \boxed{72}", True),
    (r"So the answer is $\boxed{72}$.", True),
    ("Therefore\n\\[\\boxed{72}\\]\n", True),
    (r"\boxed{72}", False),  # no reasoning before it
    (r"\boxed{72} because 48 + 24 = 72", False),  # not at the end
    (r"\boxed{70} or \boxed{72}", False),  # two boxes
    (r"so \boxed{}", False),
]


@pytest.mark.parametrize("text,ok", BOXED_FORMAT_TABLE)
def test_boxed_format(text, ok):
    assert has_boxed_format(text) is ok


FORMAT_TABLE = [
    (GOOD, 1.0),
    ("Sure! <think>\nmulti\nline\n</think> then <answer>benign</answer> done", 1.0),
    ("<think>x</think><answer> </answer>", 0.0),
    ("<think>x</think><answer>1</answer><answer>2</answer>", 0.0),
    ("<answer>1</answer>", 0.0),
]


@pytest.mark.parametrize("text,reward", FORMAT_TABLE)
def test_format_reward(text, reward):
    assert format_reward([text]) == [reward]


# ---------------------------------------------------------------------------------------------
# Rewards with a gold answer
# ---------------------------------------------------------------------------------------------

HEDGE = format_response("48 / 2 = 24 and 48 + 24 = 72", "71 or 72")
TWO_TAGS = "<think>48 / 2 = 24\n48 + 24 = 72</think><answer>71</answer><answer>72</answer>"
WRONG = format_response("48 / 2 = 24\n48 + 24 = 70", "70")
NO_TAGS_RIGHT = "48 / 2 = 24 clips in May, 48 + 24 = 72 in total. The final answer is 72."
PADDED = format_response("1 + 1 = 2\n1 + 1 = 2\n2 + 2 = 4\n3 + 3 = 6", "70")
BOXED = r"In May 48 / 2 = 24, so in total 48 + 24 = 72. \boxed{72}"

REWARD_TABLE = [  # completion, tag_format, tag_answer, tag, composite
    (GOOD, 0.5, 1.0, 1.5, 1.0),
    (BOXED, 0.0, 0.0, 0.0, 1.0),  # boxed counts as the composite's format; tag rewards need tags
    (NO_TAGS_RIGHT, 0.0, 0.0, 0.0, 0.8),
    (WRONG, 0.5, 0.0, 0.5, 0.2),  # "48 + 24 = 70" is false: only one true step
    (HEDGE, 0.0, 0.0, 0.0, 0.2),
    (TWO_TAGS, 0.0, 0.0, 0.0, 0.2),
    (PADDED, 0.5, 0.0, 0.5, 0.2),  # padding is not grounded in the question
    ("<think></think><answer></answer>", 0.0, 0.0, 0.0, 0.0),
    ("", 0.0, 0.0, 0.0, 0.0),
]


@pytest.mark.parametrize("text,fmt,ans,tag,composite", REWARD_TABLE)
def test_math_rewards_table(text, fmt, ans, tag, composite):
    kw = {"answer": [NATALIA_GOLD], "prompts": [[{"role": "user", "content": NATALIA_Q}]]}
    assert tag_format_reward([text], **kw) == [fmt]
    assert tag_answer_reward([text], **kw) == [ans]
    assert tag_reward([text], **kw) == [tag]
    assert composite_math_reward([text], **kw) == [pytest.approx(composite)]


def test_composite_without_prompts_counts_ungrounded_steps():
    assert composite_math_reward([PADDED], answer=["72"]) == [pytest.approx(0.4)]


EXACT_TABLE = [
    ("<think>x</think><answer>benign</answer>", "benign", 1.0),
    ("<think>x</think><answer> benign </answer>", "benign", 1.0),
    ("<think>x</think><answer>Benign</answer>", "benign", 0.0),
    ("<think>x</think><answer>1080</answer>", "#### 1,080", 1.0),
    ("<think>x</think><answer>1,080</answer>", "#### 1,080", 0.0),  # exact means exact: use tag_answer
    ("<think>x</think><answer>18.0</answer>", "18", 0.0),
    ("<answer>B</answer><answer>B</answer>", "B", 0.0),
    ("B", "B", 0.0),
]


@pytest.mark.parametrize("text,gold,reward", EXACT_TABLE)
def test_exact_answer_reward(text, gold, reward):
    assert exact_answer_reward([text], answer=[gold]) == [reward]


TOLERANCE_TABLE = [  # text, gold, atol, reward
    ("<answer>17.8</answer>", "18", 0.5, 1.0),
    ("<answer>17.4</answer>", "18", 0.5, 0.0),
    ("<answer>18.5</answer>", "18", 0.5, 1.0),
    ("<answer>23.4 kg/m^2</answer>", "23.37", 0.1, 1.0),
    ("The final answer is 120 mL/hr", "118", 5, 1.0),
    ("<answer>18</answer>", "18", 0, 1.0),
    ("<answer>18.01</answer>", "18", 0, 0.0),
    ("<answer>17 or 19</answer>", "18", 5, 0.0),  # hedges still score 0
    ("no answer 18", "18", 0.5, 0.0),  # no anchor
    ("<answer>18</answer>", "eighteen", 0.5, None),  # non-numeric gold: not applicable
    ("<answer>18</answer>", "18", "bad", 1.0),  # unusable atol falls back to 0.5
]


@pytest.mark.parametrize("text,gold,atol,reward", TOLERANCE_TABLE)
def test_numeric_tolerance_reward(text, gold, atol, reward):
    assert numeric_tolerance_reward([text], answer=[gold], atol=atol) == [reward]


def test_numeric_tolerance_per_row_atol_and_references_column():
    texts = ["<answer>17.8</answer>", "<answer>17.8</answer>"]
    assert numeric_tolerance_reward(texts, references=["18", "18"], atol=[0.5, 0.1]) == [1.0, 0.0]


# ---------------------------------------------------------------------------------------------
# TRL calling convention
# ---------------------------------------------------------------------------------------------

ALL_MATH = [
    "tag_format",
    "tag_answer",
    "tag",
    "composite_math",
    "format",
    "exact_answer",
    "numeric_tolerance",
]


@pytest.mark.parametrize("name", ALL_MATH)
def test_trl_calling_convention(name):
    """TRL calls reward_func(prompts=, completions=, completion_ids=, **dataset columns, trainer_state=, ...)."""
    fn = get_reward(name)
    completions = [GOOD, [{"role": "assistant", "content": GOOD}], WRONG, None]
    prompts = [[{"role": "user", "content": NATALIA_Q}]] * 4
    out = fn(
        prompts=prompts,
        completions=completions,
        completion_ids=[[1, 2]] * 4,
        answer=[NATALIA_GOLD] * 4,
        question=[NATALIA_Q] * 4,
        trainer_state=None,
        log_extra=lambda *a, **k: None,
        log_metric=lambda *a, **k: None,
    )
    assert len(out) == 4
    assert out[0] == out[1], "plain string and chat-format completions must score the same"
    assert out[0] > out[2] or name in ("tag_format", "format")
    lo, hi = fn.reward_range
    assert all(r is None or lo <= r <= hi for r in out)


@pytest.mark.parametrize("name", ["tag_answer", "tag", "composite_math", "exact_answer", "numeric_tolerance"])
def test_rows_without_gold_are_none_not_zero(name):
    out = get_reward(name)([GOOD, GOOD], answer=[None, ""])
    assert out == [None, None]


def test_completion_text_shapes():
    assert completion_text("x") == "x"
    assert (
        completion_text([{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}])
        == "ab"
    )
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "hi"}]}]) == "hi"
    assert completion_text({"role": "assistant", "content": "m"}) == "m"
    assert completion_text(None) == "" and completion_text(3) == ""


def test_empty_and_odd_batches():
    assert tag_reward([]) == []
    assert composite_math_reward(None) == []
    assert tag_answer_reward([GOOD, GOOD], answer=["72"]) == [1.0, None]  # short gold column
    assert tag_answer_reward(GOOD, answer="72") == [1.0]  # a single string


# ---------------------------------------------------------------------------------------------
# Registry and light import
# ---------------------------------------------------------------------------------------------


def test_registry_names_and_ranges():
    names = list_rewards()
    for name in ALL_MATH:
        assert name in names
        fn = REWARDS[name]
        assert callable(fn) and get_reward(name) is fn
        lo, hi = fn.reward_range
        assert lo < hi
    with pytest.raises(KeyError):
        get_reward("no_such_reward")
    with pytest.raises(TypeError):
        get_reward("tag", judges=[])


def test_every_registered_reward_documents_its_range():
    """Every course reward (and every reward a course factory builds) carries ``reward_range``, so the
    property tests and a training config can read the range instead of trusting a docstring."""
    from grpo_course.rewards import registry
    from grpo_course.rewards.code import make_code_reward
    from grpo_course.rewards.judge_clients import claude, gemini

    built = {"legal_judge": {"judges": [claude(api_key="x"), gemini(api_key="y")], "cache_dir": None}}
    for name in list_rewards():
        factory = registry.REWARDS.entry(name).factory
        fn = get_reward(name, **built[name]) if factory else get_reward(name)
        lo, hi = fn.reward_range
        assert math.isfinite(lo) and math.isfinite(hi) and lo < hi, name
    for mode in ("fraction", "all"):
        assert make_code_reward(mode).reward_range == (0.0, 1.0)


def test_register_reward_adds_a_learner_reward_without_shadowing_the_course_ones():
    from grpo_course.rewards import register_reward, registry

    def short_answer_reward(completions, **kwargs):
        """1.0 for completions under 20 characters."""
        return [float(len(completion_text(c)) < 20) for c in completions]

    try:
        register_reward("short_answer_test", short_answer_reward)
        assert "short_answer_test" in list_rewards() and get_reward("short_answer_test") is short_answer_reward
        assert registry.REWARDS.entry("short_answer_test").doc.startswith("1.0 for completions")
        assert get_reward("short_answer_test")(["ok", "x" * 30]) == [1.0, 0.0]
        with pytest.raises(ValueError, match="already registered"):
            register_reward("tag", short_answer_reward)  # a course reward is never shadowed by accident
        with pytest.raises(ValueError, match="already registered"):
            register_reward("short_answer_test", short_answer_reward)
        register_reward("short_answer_test", "grpo_course.rewards.math:tag_reward", replace=True)
        assert get_reward("short_answer_test") is get_reward("tag")
        with pytest.raises(ValueError, match="package.module:function"):
            register_reward("bad_target", "grpo_course.rewards.math.tag_reward")
        with pytest.raises(TypeError):
            register_reward("not_callable", 3)
    finally:
        registry._ENTRIES.pop("short_answer_test", None)
    assert "short_answer_test" not in list_rewards()


def _in_a_fresh_interpreter(code: str) -> None:
    subprocess.run([sys.executable, "-c", "import sys, grpo_course.rewards as r; " + code], check=True)


def test_legal_qa_judges_is_registered_before_its_task_module_is_imported():
    _in_a_fresh_interpreter(
        "assert 'legal_qa_judges' in r.list_rewards(); assert 'grpo_course.tasks.legal_qa' not in sys.modules; "
        "f = r.get_reward('legal_qa_judges'); assert f.reward_range == (0.0, 1.0)"
    )


def test_importing_rewards_is_light():
    _in_a_fresh_interpreter(
        "r.list_rewards(); heavy = [m for m in ('torch', 'sympy', 'math_verify', 'httpx', 'grpo_course.rewards.code', "
        "'grpo_course.rewards.judges', 'unsloth', 'vllm') if m in sys.modules]; print(heavy); assert not heavy"
    )


def test_code_and_judge_names_load_lazily_from_the_package():
    import importlib.util

    import grpo_course.rewards as rewards

    if importlib.util.find_spec("grpo_course.rewards.code") is None:
        pytest.skip("the code sandbox module is not in this checkout")
    assert callable(rewards.run_tests) and callable(rewards.code_pass_fraction_reward)
    with pytest.raises(AttributeError):
        rewards.no_such_name  # noqa: B018
