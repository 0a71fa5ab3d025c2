"""Math reward throughput: grpo_course.rewards vs math-verify's parse + verify, side by side.

Both graders see the same completions and golds in the same run. The completions are generated
here (seeded) in the formats a GSM8K policy writes: the course's tags, ``\\boxed{}``, "The final
answer is", GSM8K's ``####``, with thousands commas, ``$`` signs, ``18.00``, negatives, hedges,
two answer tags, wrong answers and no answer at all. Golds are GSM8K answer fields
(``... #### 1,080``) reduced to the final value the way each library expects it.

    python benchmarks/bench_math_reward.py            # 2000 completions
    python benchmarks/bench_math_reward.py --n 500

Prints completions per second for each grader, the ratio, and how often the verdicts agree on
numeric answers (overall, and on completions whose answer is anchored), with examples of the
disagreements so they can be read, not just counted.
"""

from __future__ import annotations

import argparse
import logging
import random
import time

from grpo_course.chat_format import format_response
from grpo_course.rewards import composite_math_reward, is_correct, parse_gsm8k_gold

ANCHORED_STYLES = ("tags", "tags_dollar", "boxed", "final", "hash", "tags_decimal", "tags_negative")
OTHER_STYLES = ("hedge", "two_tags", "no_anchor", "empty", "words")


def make_case(rng: random.Random) -> tuple[str, str, str]:
    """(style, completion, GSM8K-style gold answer field)."""
    a, b = rng.randint(2, 999), rng.randint(2, 999)
    op = rng.choice("+-*")
    value = {"+": a + b, "-": a - b, "*": a * b}[op]
    gold_field = f"We compute {a}{op}{b} = <<{a}{op}{b}={value}>>{value}.\n#### {value:,}"
    answer = value if rng.random() < 0.6 else value + rng.choice([-10, -1, 1, 2, 100])
    # The reasoning states the value the model believes (a wrong answer comes from a wrong step).
    reasoning = f"First, {a} {op} {b} = {answer}.\nSo the total is {answer}."
    style = rng.choice(ANCHORED_STYLES * 2 + OTHER_STYLES)
    if style == "tags":
        text = format_response(reasoning, f"{answer}")
    elif style == "tags_dollar":
        text = format_response(reasoning, f"${answer:,}")
    elif style == "tags_decimal":
        text = format_response(reasoning, f"{answer}.00")
    elif style == "tags_negative":
        text = format_response(reasoning, f"{answer}")
    elif style == "boxed":
        text = f"{reasoning}\nTherefore the answer is $\\boxed{{{answer}}}$."
    elif style == "final":
        text = f"{reasoning}\nThe final answer is {answer:,}"
    elif style == "hash":
        text = f"{reasoning}\n#### {answer}"
    elif style == "hedge":
        text = format_response(reasoning, f"{answer} or {answer + 1}")
    elif style == "two_tags":
        text = format_response(reasoning, f"{answer + 1}") + f"<answer>{answer}</answer>"
    elif style == "no_anchor":
        text = f"{a} {op} {b} gives {answer} in total."
    elif style == "words":
        text = format_response(reasoning, "I am not sure")
    else:
        text = ""
    return style, text, gold_field


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="number of completions")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    rng = random.Random(args.seed)
    cases = [make_case(rng) for _ in range(args.n)]
    golds = [parse_gsm8k_gold(g) for _, _, g in cases]  # "1,080" -> "1080" for both graders

    def run_ours(mode):
        start = time.perf_counter()
        verdicts = [is_correct(text, gold, mode=mode) for (_, text, _), gold in zip(cases, golds)]
        return verdicts, time.perf_counter() - start

    def run_math_verify():
        # math-verify's documented usage: gold as a plain expression, prediction with both configs,
        # verify(gold, pred) in that order, default (signal-based) timeouts in the main thread.
        start = time.perf_counter()
        verdicts = []
        for (_, text, _), gold in zip(cases, golds):
            g = parse(gold, extraction_config=[ExprExtractionConfig()])
            p = parse(text, extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()])
            verdicts.append(bool(verify(g, p)))
        return verdicts, time.perf_counter() - start

    # Warm both up (imports, regex compilation, SymPy caches) outside the timed runs.
    is_correct(cases[0][1], golds[0])
    verify(parse("1"), parse("$1$"))

    strict, t_strict = run_ours("strict")
    lenient, t_lenient = run_ours("lenient")
    mv, t_mv = run_math_verify()
    start = time.perf_counter()
    composite_math_reward([t for _, t, _ in cases], answer=[g for _, _, g in cases])
    t_composite = time.perf_counter() - start

    n = len(cases)
    print(f"{n} completions, seed {args.seed}; golds are GSM8K answer fields\n")
    print(f"{'grader':<44}{'seconds':>9}{'completions/s':>15}{'vs math-verify':>16}")
    rows = [
        ("math-verify 0.9 parse + verify", t_mv),
        ("grpo_course is_correct(mode='strict')", t_strict),
        ("grpo_course is_correct(mode='lenient')", t_lenient),
        ("grpo_course composite_math_reward (batch)", t_composite),
    ]
    for name, seconds in rows:
        print(f"{name:<44}{seconds:>9.3f}{n / seconds:>15.0f}{t_mv / seconds:>15.1f}x")

    anchored = [i for i, (s, _, _) in enumerate(cases) if s in ANCHORED_STYLES]

    def agree(ours, idx):
        return sum(ours[i] == mv[i] for i in idx) / max(1, len(idx))

    everything = range(n)
    print("\nagreement with math-verify's verdicts (numeric golds)")
    print(f"  lenient, all completions:           {agree(lenient, everything):.1%}")
    print(
        f"  lenient, anchored numeric answers:  {agree(lenient, anchored):.1%}  ({len(anchored)} completions)"
    )
    print(f"  strict,  anchored numeric answers:  {agree(strict, anchored):.1%}")
    print(
        f"  strict,  all completions:           {agree(strict, everything):.1%}  (strict refuses hedges, "
        "two answers and unanchored numbers by design)"
    )

    by_style: dict[str, list[int]] = {}
    for i, (style, _, _) in enumerate(cases):
        if strict[i] != mv[i] or lenient[i] != mv[i]:
            by_style.setdefault(style, []).append(i)
    if by_style:
        print("\nwhere the verdicts differ (style: count, one example)")
        for style, idx in sorted(by_style.items(), key=lambda kv: -len(kv[1])):
            i = idx[0]
            text = cases[i][1].replace("\n", " | ")
            print(
                f"  {style:<14}{len(idx):>5}  gold={golds[i]}  strict={strict[i]} lenient={lenient[i]} "
                f"math-verify={mv[i]}  {text[-70:]!r}"
            )


if __name__ == "__main__":
    main()
