"""math-verify calls, executed inside the timeout worker (see :mod:`grpo_course.rewards.timeout`).

Importing this module imports math-verify and SymPy, so only the worker child imports it.
math-verify's signal-based timeouts are disabled (``None``): the parent kills the child instead.
"""

from __future__ import annotations

import logging

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

logging.getLogger("math_verify").setLevel(logging.CRITICAL)

_CONFIGS = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]


def _wrap(text: str) -> str:
    text = text.strip()
    if "$" in text or "\\boxed" in text or "\\(" in text or "\\[" in text:
        return text
    return f"${text}$"


def parse_answer(text: str) -> list:
    return parse(_wrap(text), extraction_config=_CONFIGS, parsing_timeout=None)


def equal(gold: str, pred: str) -> bool:
    """math-verify's verdict on two answer strings (gold first: verify is asymmetric)."""
    g = parse_answer(gold)
    p = parse_answer(pred)
    if not g or not p:
        return False
    return bool(verify(g, p, timeout_seconds=None))


# Warm up at import (before the worker reports "ready"): the first LaTeX parse builds the ANTLR
# parser and SymPy caches, which can take longer than a call's time limit on a busy machine.
for _gold, _pred in [
    ("\\frac{1}{2}", "0.5"),
    ("\\frac{\\sqrt{3}}{2}", "9"),
    ("18", "9 * 2"),
    ("72", "x = 72"),
]:
    equal(_gold, _pred)
