"""PASS/FAIL tables: score hand-written completions and compare with the verdict we want.

    rows = [("correct, tags", "<think>..</think><answer>72</answer>", 1.5), ...]
    print(pass_fail_table(rows, tag_reward(texts_of(rows), answer=["72"] * len(rows))))

A row passes when the reward equals what the lesson says it should be (``None`` must be
``None``; floats compare to 1e-9). The notebooks use it to show a reward's behaviour and, for the
naive rewards in :mod:`grpo_course.rewards.hacking`, where it goes wrong.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def texts_of(rows: Sequence[tuple]) -> list:
    """The completions (second field) of table rows."""
    return [row[1] for row in rows]


def _same(got, want) -> bool:
    if got is None or want is None:
        return got is None and want is None
    if isinstance(want, bool) or isinstance(got, bool):
        return bool(got) == bool(want)
    try:
        return math.isclose(float(got), float(want), abs_tol=1e-9)
    except (TypeError, ValueError):
        return got == want


def _show(value) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _preview(completion, width: int) -> str:
    if isinstance(completion, (list, tuple)) and completion and isinstance(completion[0], dict):
        completion = "[chat] " + "".join(str(m.get("content", "")) for m in completion)
    text = repr(completion)[1:-1] if isinstance(completion, str) else repr(completion)
    return text if len(text) <= width else text[: width - 3] + "..."


def pass_fail_rows(rows: Sequence[tuple], scores: Sequence) -> list[bool]:
    """Whether each row's score equals its expected value (third field)."""
    return [_same(got, row[2]) for row, got in zip(rows, scores)]


def pass_fail_table(rows: Sequence[tuple], scores: Sequence, title: str = "", width: int = 58) -> str:
    """A fixed-width table: case, completion (escaped, cut to ``width``), reward, expected, PASS/FAIL,
    and a last line counting the passes."""
    ok = pass_fail_rows(rows, scores)
    label_w = max([len("case")] + [len(str(r[0])) for r in rows])
    lines = [title] if title else []
    lines.append(f"{'case':<{label_w}}  {'completion':<{width}}  {'reward':>7}  {'want':>7}  verdict")
    for row, got, good in zip(rows, scores, ok):
        label, completion, want = row[0], row[1], row[2]
        lines.append(
            f"{label:<{label_w}}  {_preview(completion, width):<{width}}  {_show(got):>7}  {_show(want):>7}  "
            f"{'PASS' if good else 'FAIL'}"
        )
    lines.append(f"{sum(ok)}/{len(ok)} PASS")
    return "\n".join(lines)
