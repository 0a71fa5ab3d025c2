"""Turn the text of a final answer into an exact number, and compare two numbers.

``parse_number("$1,000.00")`` gives ``Number(value=Fraction(1000), ...)``; ``18.00``, ``18`` and
``$18`` are the same value; ``50%`` keeps a percent flag; ``3/4``, ``\\frac{3}{4}`` and ``0.75``
are equal; ``1 1/2`` is a mixed number (3/2). Values are :class:`fractions.Fraction`, so there is
no float rounding anywhere in a verdict.

Two modes, used by :mod:`grpo_course.rewards.math`:

* **strict** (training rewards): the answer must be exactly one number, optionally dressed with
  a currency sign, a unit, a percent sign, LaTeX wrappers or trailing punctuation. ``17 or 18``,
  ``18 (9 * 2)``, ``not 17``, ``18 ± 1`` or ``at least 18`` are not one number, so they parse to ``None``
  (scored as wrong).
* **lenient** (evaluation): if the whole text is not one number, take the first number in it.

Everything here is pure Python, bounded in time (inputs are capped, no exponentiation is ever
evaluated) and never raises on text; ``None`` means "no number here".
"""

from __future__ import annotations

import re
import unicodedata
from collections import deque
from dataclasses import dataclass
from fractions import Fraction

# An answer span longer than this is not "a final answer"; it is scanned only partly.
MAX_SPAN_CHARS = 400
# Numbers with more digits than this are refused (no giant integers, no slow arithmetic).
MAX_DIGITS = 40
MAX_EXPONENT = 30


@dataclass(frozen=True)
class Number:
    """A parsed answer: its exact value, whether it was written as a percentage, and how many
    decimal places it was written with (``18.50`` has 2; used for rounding tolerance)."""

    value: Fraction
    percent: bool = False
    decimals: int = 0
    text: str = ""

    def canonical(self) -> str:
        """A canonical string: ``"1000"``, ``"0.75"``, ``"-7"``, ``"2/3"``, ``"50%"``."""
        return format_fraction(self.value) + ("%" if self.percent else "")


def format_fraction(value: Fraction) -> str:
    """``Fraction(3, 4)`` -> ``"0.75"``; ``Fraction(2, 3)`` -> ``"2/3"``; integers without a point."""
    if value.denominator == 1:
        return str(value.numerator)
    d = value.denominator
    twos = fives = 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    scaled = value * 10**places
    sign = "-" if scaled < 0 else ""
    digits = str(abs(scaled.numerator)).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


# ---------------------------------------------------------------------------------------------
# Cleaning: LaTeX and markdown wrappers, currency, spaces used as thousands separators.
# ---------------------------------------------------------------------------------------------

_WRAPPER_COMMANDS = ("boxed", "fbox", "text", "textbf", "mathrm", "mathbf", "textrm", "mbox", "operatorname")
_WRAPPER_RE = re.compile(r"\\(?:" + "|".join(_WRAPPER_COMMANDS) + r")\s*\{([^{}]*)\}")
_LATEX_REPLACEMENTS = [
    (re.compile(r"\\[dt]frac"), r"\\frac"),
    (re.compile(r"\\left|\\right|\\displaystyle|\\!|\\;|\\:"), ""),
    (re.compile(r"\{,\}"), ","),  # 1{,}000 in LaTeX
    (re.compile(r"(?<=\d)\\,(?=\d{3})"), ","),  # 1\,000 thin-space thousands
    (re.compile(r"\\,|\\ |~"), " "),
    (re.compile(r"\\%"), "%"),
    (re.compile(r"\\\$"), "$"),
    (re.compile(r"\^\s*\{?\\circ\}?|°"), " degrees"),
    (re.compile(r"\\(?:times|cdot)"), "*"),
    (re.compile(r"\\div"), "/"),
]
# Unit exponents (cm^2, m²) would otherwise look like a second number.
_UNIT_EXPONENT = re.compile(r"(?<=[A-Za-z])\s*(?:\^\s*\{?\s*[23]\s*\}?|[²³])")
_MINUS_SIGNS = str.maketrans({"\u2212": "-", "\ufe63": "-", "\uff0d": "-"})
# "1 000 000" (space-separated groups of three) in an answer span is one number.
_SPACE_THOUSANDS = re.compile(r"(?<![\d.,/])\d{1,3}(?: \d{3})+(?![\d/])")
_THIN_SPACES = re.compile(r"(?<=\d)[\u202f\u2009\u00a0'](?=\d{3}(?!\d))")


def clean_span(span: str) -> str:
    """Remove the dressing around an answer: ``$...$``, ``\\boxed{}``, ``**bold**``, ``\\text{}``,
    LaTeX spacing, unicode minus signs and fullwidth digits. Keeps the words (units) and numbers."""
    s = span[:MAX_SPAN_CHARS]
    s = _UNIT_EXPONENT.sub("", s)
    s = s.translate(_MINUS_SIGNS)
    s = _THIN_SPACES.sub(",", s)
    s = unicodedata.normalize("NFKC", s)
    s = _SPACE_THOUSANDS.sub(lambda m: m.group(0).replace(" ", ","), s)
    for pattern, repl in _LATEX_REPLACEMENTS:
        s = pattern.sub(repl, s)
    for _ in range(4):  # unwrap nested \boxed{\text{...}} from the inside out
        new = _WRAPPER_RE.sub(r" \1 ", s)
        if new == s:
            break
        s = new
    s = s.replace("\\(", " ").replace("\\)", " ").replace("\\[", " ").replace("\\]", " ")
    s = s.replace("**", " ").replace("__", " ").replace("`", " ")
    return " ".join(s.split())


# ---------------------------------------------------------------------------------------------
# Number tokens. One regex finds every number-like token; a token is one value.
# ---------------------------------------------------------------------------------------------

_INT = r"(?:\d{1,3}(?:,\d{3})+|\d+)"
_DEC = rf"(?:{_INT}(?:\.\d+)?|\.\d+)"
_NUMBER_RE = re.compile(
    r"(?P<sign>(?<![\w.])-\s?)?"
    r"(?P<cur>[$€£¥₹]\s?)?"
    r"(?:"
    # \frac{a}{b} or \frac ab, optionally after a whole part (mixed number 2\frac{1}{3})
    r"(?:(?P<fwhole>\d+)\s*)?\\frac\s*(?:\{\s*(?P<fnum>-?\d+)\s*\}|(?P<fnum1>\d))"
    r"\s*(?:\{\s*(?P<fden>\d+)\s*\}|(?P<fden1>\d))"
    r"|"
    # mixed number "1 1/2" (whole, space, proper fraction)
    r"(?P<mwhole>\d+)\s+(?P<mnum>\d+)\s*/\s*(?P<mden>\d+)(?![\d.])"
    r"|"
    # plain fraction "3/4"
    rf"(?P<num>{_INT})\s*/\s*(?P<den>\d+)(?![\d.])"
    r"|"
    # decimal with optional scientific exponent
    rf"(?P<dec>{_DEC})(?:[eE](?P<exp>[-+]?\d{{1,3}}))?(?![\d])"
    r")"
    r"(?P<pct>\s*(?:%|percent\b|per\s?cent\b|pct\b))?"
)
_DIGIT_RE = re.compile(r"\d")
_NEGATION_RE = re.compile(r"\b(?:not|no|isn't|never|except)\b", re.IGNORECASE)
_LATEX_LEFT_RE = re.compile(r"\\[A-Za-z]|[{}^_]")  # \sqrt{2} is not the number 2
_HEDGE_RE = re.compile(r"\?|\b(?:or|either|maybe|perhaps|between)\b", re.IGNORECASE)
# A range ("18 ± 1", "18 +/- 1", "18 \\pm 1") or an inequality ("at least 18", ">= 18", "\\geq 18", "18 or more")
# names no single value. A sign or phrase counts only next to a number, and "<", ">" not inside an arrow ("->").
_RANGE_RE = re.compile(r"[±∓]|\+\s*/\s*-|\+-(?=\s*[\d.])|\\[mp]m(?![A-Za-z])")
_INEQUALITY_RE = re.compile(
    r"(?:(?<![-=<>])[<>]=?|[≤≥≦≧⩽⩾]|\\(?:[lg]eq?(?:slant)?|[lg]t|n[lg]eq)(?![A-Za-z])"
    r"|\b(?:at\s+(?:least|most)|(?:no\s+)?(?:more|less|fewer|greater)\s+than)\b)\s*[-−$€£¥₹]?\s*\.?\d"
    r"|\d\s*%?\s+or\s+(?:more|less|fewer|greater|higher|lower|above|below)\b",
    re.IGNORECASE,
)
_RANGE_OR_INEQUALITY_HINTS = ("±", "∓", "<", ">", "≤", "≥", "≦", "≧", "⩽", "⩾", "\\", "+", "least", "most", "than", " or ")


def _range_or_inequality(s: str) -> bool:
    """``s`` (cleaned) states a range or an inequality; a substring test first keeps the common case fast."""
    low = s.lower()
    if not any(h in low for h in _RANGE_OR_INEQUALITY_HINTS):
        return False
    return bool(_RANGE_RE.search(s) or _INEQUALITY_RE.search(s))


_TAG_LIKE_RE = re.compile(r"</?[A-Za-z|][\w|-]{0,30}>")  # <think>, </answer>, <|im_end|>: markup, not signs


def _token_value(m: re.Match) -> Number | None:
    """The exact value of one regex match, or None if it is degenerate (x/0, too many digits)."""
    g = m.groupdict()
    text = m.group(0)
    if sum(c.isdigit() for c in text) > MAX_DIGITS:
        return None
    sign = -1 if g["sign"] else 1
    decimals = 0
    try:
        if g["fden"] is not None or g["fden1"] is not None:
            num = int(g["fnum"] if g["fnum"] is not None else g["fnum1"])
            den = int(g["fden"] if g["fden"] is not None else g["fden1"])
            if den == 0:
                return None
            value = Fraction(num, den)
            if g["fwhole"]:
                value = int(g["fwhole"]) + value
        elif g["mden"] is not None:
            num, den = int(g["mnum"]), int(g["mden"])
            if den == 0 or num >= den:  # "3 4/2" is not a mixed number
                return None
            value = int(g["mwhole"]) + Fraction(num, den)
        elif g["den"] is not None:
            den = int(g["den"])
            if den == 0:
                return None
            value = Fraction(int(g["num"].replace(",", "")), den)
        else:
            dec = g["dec"].replace(",", "")
            if "." in dec:
                decimals = len(dec.split(".", 1)[1])
            value = Fraction(dec)
            if g["exp"]:
                exp = int(g["exp"])
                if abs(exp) > MAX_EXPONENT:
                    return None
                value *= Fraction(10) ** exp
                decimals = max(0, decimals - exp)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return Number(value=sign * value, percent=bool(g["pct"]), decimals=decimals, text=text.strip())


def find_numbers(text: str, limit: int = 200) -> list[Number]:
    """Every number in ``text`` in order of appearance (at most ``limit``), after :func:`clean_span`
    style normalisation of thousands separators and minus signs. Degenerate tokens are skipped."""
    s = text.translate(_MINUS_SIGNS)
    out: list[Number] = []
    for m in _NUMBER_RE.finditer(s):
        n = _token_value(m)
        if n is not None:
            out.append(n)
            if len(out) >= limit:
                break
    return out


def is_hedge(span: str) -> bool:
    """The text commits to no single value: several different numbers joined by a hedge word ("17 or 18",
    "between 17 and 18", "maybe 17, maybe 18", "either 17, 18 or 19", "Is it 17 or 18?"), a range
    ("18 ± 1") or an inequality ("at least 18", ">= 18", "18 or more")."""
    s = _TAG_LIKE_RE.sub(" ", clean_span(span))
    if not _DIGIT_RE.search(s):
        return False
    if _range_or_inequality(s):
        return True
    return bool(_HEDGE_RE.search(s)) and len({n.value for n in find_numbers(s, limit=50)}) > 1


def last_number(text: str) -> Number | None:
    """The last valid number in ``text`` (only the last few matches are converted)."""
    s = text.translate(_MINUS_SIGNS)
    for m in reversed(deque(_NUMBER_RE.finditer(s), maxlen=5)):
        n = _token_value(m)
        if n is not None:
            return n
    return None


def parse_number(span: str | None, mode: str = "strict") -> Number | None:
    """The one number an answer span holds, or ``None``.

    strict: the cleaned span must hold exactly one number token and nothing else with a digit in
    it; words around it are allowed (units, "dollars", "x ="), but not hedges ("or", "maybe",
    "between", "?"), negations ("not 17"), ranges ("18 ± 1") or inequalities ("at least 18", ">= 18").
    lenient: the first number in the span (whether the span hedges is :func:`is_hedge`'s question).
    """
    if not span or not isinstance(span, str):
        return None
    s = clean_span(span)
    if not _DIGIT_RE.search(s):
        return None
    matches = list(_NUMBER_RE.finditer(s))
    if not matches:
        return None
    if mode == "lenient":
        for m in matches:
            n = _token_value(m)
            if n is not None:
                return n
        return None
    if len(matches) != 1:
        return None
    m = matches[0]
    if _range_or_inequality(s):  # "18 ± 1", "at least 18", ">= 18": not one value
        return None
    rest = s[: m.start()] + " " + s[m.end() :]
    if (
        _DIGIT_RE.search(rest)
        or _NEGATION_RE.search(rest)
        or _HEDGE_RE.search(rest)
        or _LATEX_LEFT_RE.search(rest)
    ):
        return None
    # A leading "x =" or "Answer:" is fine; an operator right before the number is an expression.
    before = s[: m.start()].rstrip()
    if before.endswith(("+", "*", "/", "^", "-")):
        return None
    after = s[m.end() :].lstrip()
    if after.startswith(("+", "*", "/", "^", "-", "=")):
        return None
    return _token_value(m)


def numbers_match(pred: Number, gold: Number, mode: str = "strict") -> bool:
    """Whether two parsed answers are the same value.

    Both modes: exact equality; a percentage equals its number or its fraction (``50%`` matches
    gold ``50`` and gold ``0.5``). lenient also accepts rounding: when either side was written with
    two or more decimals, a difference below half a unit in its last place is equal
    (``0.33`` for ``1/3``; never ``33`` for ``33.3``).
    """
    candidates = [pred.value]
    if pred.percent and not gold.percent:
        candidates.append(pred.value / 100)
    if gold.percent and not pred.percent:
        candidates.append(pred.value * 100)
    if gold.value in candidates:
        return True
    if mode == "lenient":
        places = max(pred.decimals, gold.decimals)
        if places >= 2:
            tol = Fraction(1, 2 * 10**places)
            return any(abs(c - gold.value) <= tol for c in candidates)
    return False
