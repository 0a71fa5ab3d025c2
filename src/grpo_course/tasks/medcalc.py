"""Task ``medcalc``: compute a clinical score or value from a patient note (MedCalc-Bench).

**Data.** ``ncbi/MedCalc-Bench-v1.0`` (Khandekar et al. 2024, arXiv:2406.12036; CC BY-SA 4.0):
train 10,053 rows, test 1,047 rows, 55 calculators. Columns: ``Row Number``, ``Calculator ID``,
``Calculator Name``, ``Category``, ``Output Type``, ``Note ID``, ``Note Type``, ``Patient Note``,
``Question``, ``Relevant Entities``, ``Ground Truth Answer``, ``Lower Limit``, ``Upper Limit``,
``Ground Truth Explanation`` (github.com/ncbi-nlp/MedCalc-Bench README). CPU runs read
``data/tasks/medcalc/{train,test}.jsonl``: short template notes written for the course in those columns.

**Answer types** (``Output Type``): ``decimal`` (equation-based calculators: BMI, MAP, creatinine
clearance...), ``integer`` (rule-based scores: CHA2DS2-VASc, Wells...), ``date`` (due date, date of
conception: ``MM/DD/YYYY``) and gestational age as ``(weeks, days)``. Gold answers carry no units.

**Tolerance.** The dataset's own limits: for decimal answers ``Lower Limit`` = 95% and ``Upper Limit``
= 105% of the gold value; for every other type both equal the gold answer (exact match). The training
reward is stage 02's ``numeric_tolerance`` with a per-row ``atol`` column = the half-width of that band
(0 for integers); it cannot read dates, so rows with date or (weeks, days) answers are kept out of
training (they stay in the held-out set, graded exactly). Reward set ``"tolerance"`` = 1.0 x
``numeric_tolerance`` + 0.2 x ``format``.

**Pitfalls.** Units: "22.9 kg/m^2" inside the answer tags still parses, but "53%" is 53 (MedCalc's
own scorer divides a percentage by 100), and a value in other units (mg/dL vs mmol/L, lb vs kg) is a
wrong number, not a format error. The 5% band is wide for a BMI of 22.86 (21.71-24.00) but a score of
4 must be exactly 4.

**Metric.** Tolerance accuracy: the share of completions whose answer lies in ``[Lower Limit, Upper
Limit]`` (or equals the date / weeks-days), with a Wilson interval and a breakdown per answer type.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction

from ..chat_format import ANSWER_END, ANSWER_START, REASONING_END, REASONING_START, format_response
from ..hardware import Profile
from .base import (
    HubSource,
    Scored,
    Task,
    TaskData,
    answer_block_format_followed,
    check_columns,
    local_or_hub,
    register_task,
)

COLUMNS = ("Row Number", "Calculator ID", "Calculator Name", "Category", "Output Type", "Note ID", "Note Type",
           "Patient Note", "Question", "Relevant Entities", "Ground Truth Answer", "Lower Limit", "Upper Limit",
           "Ground Truth Explanation")
HUB_ID = "ncbi/MedCalc-Bench-v1.0"
SOURCES = {
    "train": HubSource(HUB_ID, "train", "CC BY-SA 4.0", "10,053 rows", "train.jsonl",
                       url="https://huggingface.co/datasets/ncbi/MedCalc-Bench-v1.0"),
    "heldout": HubSource(HUB_ID, "test", "CC BY-SA 4.0", "1,047 rows", "test.jsonl",
                         url="https://huggingface.co/datasets/ncbi/MedCalc-Bench-v1.0"),
}
SYSTEM_PROMPT = (
    f"You are a clinical calculator. Reason step by step between {REASONING_START} and {REASONING_END}, "
    f"then give only the final value between {ANSWER_START} and {ANSWER_END}: a number without units, "
    "a date as MM/DD/YYYY, or a gestational age as (weeks, days)."
)

_ANSWER_RE = re.compile(re.escape(ANSWER_START) + r"(.*?)" + re.escape(ANSWER_END), re.DOTALL)
_DATE_RE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
_WEEKS_DAYS_RE = re.compile(r"\(?\s*['\"]?(\d+)\s*(?:weeks?)?['\"]?\s*,\s*['\"]?(\d+)\s*(?:days?)?['\"]?\s*\)?")


def answer_kind(gold: str) -> str:
    """``"date"``, ``"weeks_days"`` or ``"number"``, from the shape of the gold answer."""
    gold = str(gold).strip()
    if _DATE_RE.fullmatch(gold):
        return "date"
    if ("week" in gold.lower() or gold.startswith("(")) and _WEEKS_DAYS_RE.fullmatch(gold):  # not "1,080"
        return "weeks_days"
    return "number"


def _number(text) -> Fraction | None:
    from ..rewards.normalize import parse_number

    if isinstance(text, (int, float)):
        return Fraction(str(text))
    n = parse_number(str(text), "strict")
    return None if n is None else n.value


def _date(text: str) -> tuple[int, int, int] | None:
    m = _DATE_RE.search(text)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def _weeks_days(text: str) -> tuple[int, int] | None:
    m = _WEEKS_DAYS_RE.search(text)
    return (int(m.group(1)), int(m.group(2))) if m and "," in text else None


def tolerance_atol(row: dict) -> float:
    """Half-width of the row's ``[Lower Limit, Upper Limit]`` band around the gold answer (0 if exact)."""
    gold, lo, hi = _number(row["Ground Truth Answer"]), _number(row["Lower Limit"]), _number(row["Upper Limit"])
    if gold is None or lo is None or hi is None:
        return 0.0
    return float(max(gold - lo, hi - gold, Fraction(0)))


def final_answer(completion: str) -> str | None:
    """The text inside the last ``<answer>...</answer>`` block (``None`` without one)."""
    blocks = _ANSWER_RE.findall(completion or "")
    return blocks[-1].strip() if blocks else None


def within_limits(completion: str, row: dict) -> bool:
    """MedCalc-Bench's grading: a number inside ``[Lower Limit, Upper Limit]``; a date or a
    (weeks, days) pair equal to the gold answer."""
    answer = final_answer(completion)
    if answer is None:
        return False
    gold = str(row["Ground Truth Answer"]).strip()
    kind = answer_kind(gold)
    if kind == "date":
        return _date(answer) is not None and _date(answer) == _date(gold)
    if kind == "weeks_days":
        return _weeks_days(answer) is not None and _weeks_days(answer) == _weeks_days(gold)
    value, lo, hi = _number(answer), _number(row["Lower Limit"]), _number(row["Upper Limit"])
    if value is None or lo is None or hi is None:
        return False
    return lo <= value <= hi


def medcalc_row(raw: dict) -> dict:
    """A hub row plus ``answer`` (the gold, as text), ``answer_kind`` and the reward's ``atol``."""
    gold = str(raw["Ground Truth Answer"]).strip()
    return {**raw, "answer": gold, "answer_kind": answer_kind(gold), "atol": tolerance_atol(raw)}


def to_prompt(row: dict) -> list[dict]:
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Patient note:\n{row['Patient Note']}\n\nQuestion: {row['Question']}"}]


def demonstration(row: dict) -> str:
    return format_response(str(row["Ground Truth Explanation"]), row["answer"])


def load(profile: Profile) -> TaskData:
    """Train split (numeric answers only: the tolerance reward cannot grade dates) and the test split."""
    train_raw, train_src = local_or_hub(TASK, "train", profile)
    held_raw, held_src = local_or_hub(TASK, "heldout", profile)
    check_columns(train_raw, COLUMNS, train_src)
    check_columns(held_raw, COLUMNS, held_src)
    train = [medcalc_row(r) for r in train_raw]
    numeric = [r for r in train if r["answer_kind"] == "number"]
    dropped = len(train) - len(numeric)
    return TaskData(numeric, [medcalc_row(r) for r in held_raw],
                    f"train: {train_src} ({dropped} date/weeks-days rows kept out of training); "
                    f"held-out: {held_src}")


def is_correct(completion: str, row: dict) -> bool:
    return within_limits(completion, row)


def score(task: Task, rows: list[dict], completions: list[list[str]], profile=None, **kw) -> Scored:
    """Tolerance accuracy over all completions, with a Wilson interval and accuracy per answer type."""
    from ..metrics import wilson_interval

    per_sample = [[1.0 if within_limits(c, r) else 0.0 for c in group] for r, group in zip(rows, completions)]
    right = int(sum(sum(g) for g in per_sample))
    total = sum(len(g) for g in per_sample)
    interval = wilson_interval(right, total) if total else None
    details: dict = {"answered": sum(final_answer(c) is not None for g in completions for c in g) / max(1, total)}
    kinds: dict[str, list[float]] = {}
    for r, g in zip(rows, per_sample):
        kinds.setdefault(f"{r.get('Output Type', r['answer_kind'])}", []).extend(g)
    for kind, vals in sorted(kinds.items()):
        details[f"accuracy[{kind}]"] = sum(vals) / len(vals)
    return Scored("tolerance accuracy", right / total if total else 0.0,
                  interval.low if interval else None, interval.high if interval else None,
                  len(rows), min((len(g) for g in completions), default=0), details, per_sample)


TASK = register_task(Task(
    name="medcalc",
    description="compute a clinical value from a patient note; reward = within MedCalc-Bench's tolerance",
    load=load,
    to_prompt=to_prompt,
    reward_sets={"tolerance": ("numeric_tolerance", "format")},
    default_reward="tolerance",
    is_correct=is_correct,
    demonstration=demonstration,
    notes={"heldout": "MedCalc-Bench's test split",
           "pitfall": "units and percentages; decimals within 5%, scores and dates exact"},
    sources=SOURCES,
    models={"cpu-tiny": "data/tasks/medcalc/tiny", "t4": "unsloth/Qwen2.5-1.5B-Instruct",
            "l4": "unsloth/Qwen2.5-1.5B-Instruct", "large": "unsloth/Qwen2.5-1.5B-Instruct"},
    reward_weights={"tolerance": (1.0, 0.2)},
    lengths={"cpu-tiny": (400, 96), "t4": (1024, 512), "l4": (1536, 768), "large": (2048, 1024)},
    metric="tolerance accuracy: answer within [Lower Limit, Upper Limit] (dates and weeks/days exact)",
    colab="a T4 runs Qwen2.5-1.5B in fp16; patient notes are long, so prompts get 1024+ tokens",
    scorer=score,
    follows_format=answer_block_format_followed,
))


def agreement_with_reward(rows: Sequence[dict], completions: Sequence[str]) -> list[tuple[float | None, bool]]:
    """(numeric_tolerance reward, MedCalc grading) per completion: the two agree on numeric rows
    because ``atol`` is the half-width of the symmetric 95%-105% band. Used by the tests and notebook."""
    from ..rewards import numeric_tolerance_reward

    rewards = numeric_tolerance_reward(list(completions), answer=[r["answer"] for r in rows],
                                       atol=[r["atol"] for r in rows])
    return [(rw, within_limits(c, r)) for rw, c, r in zip(rewards, completions, rows)]
