"""Math answers: find the final answer, compare it with the gold, and score completions.

Where the final answer is looked for, in this order (the first kind present wins):

1. ``<answer>...</answer>`` tags (the course format, :mod:`grpo_course.chat_format`);
2. ``\\boxed{...}`` (nested braces are matched; ``\\fbox`` too);
3. GSM8K's ``#### 72``;
4. "The final answer is 72" / "The answer is 72" / "Answer: 72" (the sentence after the anchor);
5. lenient mode only: the last number in the text.

Two modes (the difference matters, see ``notebooks/02_reward_design.ipynb``):

* ``"strict"`` is for **rewards** (what the policy is optimised against): the answer needs an
  explicit anchor (1-4), must be exactly one number (``"17 or 18"``, ``"18 ± 1"`` and
  ``"at least 18"`` score 0), values compare exactly (``18.00 == 18``, ``$1,000 == 1000``,
  ``50% == 50``, ``3/4 == 0.75``), and an unevaluated expression (``9 * 2``) is not an answer to a
  numeric question. LaTeX golds (``\\frac{\\sqrt{3}}{2}``) go to math-verify.
* ``"lenient"`` is for **evaluation** (measuring a model, never optimised against): no anchor
  needed (last-number fallback), a longer span gives its first number (``18 dollars per day for
  7 days``), a truncated ``<answer>72`` counts, rounded decimals with two or more places are
  accepted (``0.33`` for ``1/3``), and LaTeX or expressions go to math-verify.

Lenient forgives format, never ambiguity. In **both** modes a completion that commits to no single
answer is wrong: a hedge (``17 or 18``, ``maybe 17, maybe 18``, a question echoed back: ``(Is it 17
or 18?)``), a range (``18 ± 1``), an inequality (``at least 18``, ``>= 18``), or several answer blocks
of the winning kind that disagree (``\\boxed{17} or \\boxed{18}``, ``#### 17`` then ``#### 18``,
``<answer>17</answer><answer>18</answer>``, "the answer is 17. Actually, the answer is 18").

math-verify runs in a child process with a hard timeout (:mod:`grpo_course.rewards.timeout`),
because its own ``signal.alarm`` timeout fails in threads. Inputs that would make SymPy hang
(power towers such as ``9^9^9^9``, huge exponents or factorials) are refused before the call.

Every reward below takes TRL's arguments (``completions`` as strings or chat messages, dataset
columns as keyword lists, ``**kwargs``), returns one ``float`` or ``None`` per completion (``None``
= cannot be scored: no gold answer for that row), documents its range in ``reward_range``, and
never raises.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction

from grpo_course.chat_format import ANSWER_END, ANSWER_START, REASONING_END, REASONING_START
from grpo_course.rewards.normalize import (
    MAX_SPAN_CHARS,
    Number,
    clean_span,
    find_numbers,
    is_hedge,
    last_number,
    numbers_match,
    parse_number,
)

log = logging.getLogger(__name__)

MODES = ("strict", "lenient")
# Longest completion text examined (characters). Longer texts are cut: the answer search keeps the
# last MAX_TEXT_CHARS characters, the format checks fail. 10x a 2048-token completion.
MAX_TEXT_CHARS = 60_000
MATH_VERIFY_TIMEOUT = 2.0  # seconds per math-verify call (in the worker process)
GOLD_COLUMNS = ("answer", "references", "reference", "solution", "ground_truth")

# ---------------------------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------------------------


def completion_text(completion) -> str:
    """The text of one completion, whatever TRL passed: a string, a list of chat messages
    (``[{"role": "assistant", "content": ...}]``; assistant turns are joined), one message dict,
    or content given as a list of parts (``[{"type": "text", "text": ...}]``). Anything else -> ``""``."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content_text(completion.get("content"))
    if isinstance(completion, (list, tuple)):
        messages = [m for m in completion if isinstance(m, dict)]
        if not messages:
            return "".join(x for x in completion if isinstance(x, str))
        assistant = [m for m in messages if m.get("role") in ("assistant", None)] or messages
        return "".join(_content_text(m.get("content")) for m in assistant)
    return ""


def _content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        return "".join(
            p if isinstance(p, str) else str(p.get("text", "")) if isinstance(p, dict) else ""
            for p in content
        )
    return "" if content is None else str(content)


def prompt_text(prompt) -> str:
    """The question inside a TRL prompt: the last user message of a chat prompt, or the string."""
    if isinstance(prompt, (list, tuple)):
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        return _content_text(users[-1].get("content")) if users else completion_text(prompt)
    return completion_text(prompt)


# ---------------------------------------------------------------------------------------------
# Gold answers
# ---------------------------------------------------------------------------------------------

_ANNOTATION_RE = re.compile(r"<<[^<>]{0,300}>>")
_COMMA_NUMBER_RE = re.compile(r"[-$]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def parse_gsm8k_gold(answer_text) -> str:
    """The final answer of a GSM8K ``answer`` field: the text after the last ``####``, with
    ``<<48/2=24>>`` calculator annotations removed and thousands commas dropped
    (``"...#### 1,080"`` -> ``"1080"``). A bare answer (``"18"``, ``"\\frac{3}{4}"``) comes back
    stripped. Numbers are accepted (``72`` -> ``"72"``); ``None`` gives ``""``."""
    if answer_text is None:
        return ""
    if isinstance(answer_text, float) and not math.isfinite(answer_text):
        return ""
    s = answer_text if isinstance(answer_text, str) else str(answer_text)
    s = _ANNOTATION_RE.sub("", s)
    if "####" in s:
        s = s.rsplit("####", 1)[1]
    s = s.strip()
    if _COMMA_NUMBER_RE.fullmatch(s):
        s = s.replace(",", "")
    return s


# ---------------------------------------------------------------------------------------------
# Finding the final answer
# ---------------------------------------------------------------------------------------------

TAG, BOXED, HASH, FINAL, LAST = "tag", "boxed", "####", "final answer is", "last number"
MAX_BOXED_CHARS = 1000
MAX_ANSWERS = 20  # more final answers than this in one completion is junk (strict refuses it)
_HASH_RE = re.compile(r"####[ \t]*(?=[-−$\d.\\])([^\n]{0,200})")
_FINAL_RE = re.compile(
    r"\b(?:final\s{1,5})?answer\b[ \t]{0,5}\**[ \t]{0,5}(?:is\b[ \t]{0,5}:?|:|=)[ \t]{0,5}", re.IGNORECASE
)
_SENTENCE_END_RE = re.compile(r"\.(?:\s|$)|\bI hope\b", re.IGNORECASE)
_LATEX_MATH_RE = re.compile(r"\\[A-Za-z]+|\^|sqrt|\bpi\b|\d\s*[*/+×÷]\s*[\d(]")  # LaTeX or arithmetic


@dataclass(frozen=True)
class Extraction:
    """Where the final answer came from (``kind``), its text (``span``, ``None`` when the
    strict rules refused it) and its value when it is one number (``number``)."""

    kind: str
    span: str | None
    number: Number | None = None
    spans: tuple[str, ...] = field(default=(), repr=False)
    reason: str = ""


def _tag_blocks(text: str, lenient: bool) -> list[str]:
    """Contents of ``<answer>...</answer>`` blocks, scanned in linear time. In lenient mode an
    unclosed final ``<answer>`` (a truncated completion) counts as a block."""
    blocks, pos = [], 0
    while True:
        i = text.find(ANSWER_START, pos)
        if i < 0:
            break
        start = i + len(ANSWER_START)
        j = text.find(ANSWER_END, start)
        if j < 0:
            if lenient:
                blocks.append(text[start : start + MAX_SPAN_CHARS])
            break
        content = text[start:j]
        k = content.rfind(ANSWER_START)  # "<answer>17<answer>18</answer>": the innermost one
        blocks.append(content[k + len(ANSWER_START) :] if k >= 0 else content)
        pos = j + len(ANSWER_END)
    return blocks


def _closing_braces(text: str) -> dict[int, int]:
    """Index of each ``{`` -> index of its matching ``}`` (one linear pass with a stack)."""
    stack: list[int] = []
    match: dict[int, int] = {}
    for i, c in enumerate(text):
        if c == "{":
            stack.append(i)
        elif c == "}" and stack:
            match[stack.pop()] = i
    return match


_BOXED_RE = re.compile(r"\\(?:boxed|fbox)(?: *(\{)| +([^\s$]{1,50}))")


def _boxed_spans(text: str, limit: int = MAX_ANSWERS) -> list[tuple[str, int]]:
    """Contents of the last ``limit`` ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces matched) and
    where each starts. Also ``\\boxed 5``. Linear in the length of the text."""
    hits = deque(_BOXED_RE.finditer(text), maxlen=limit)
    if not hits:
        return []
    closing = _closing_braces(text) if any(m.group(1) for m in hits) else {}
    out: list[tuple[str, int]] = []
    for m in hits:
        if m.group(1):
            j = m.start(1)
            k = closing.get(j)
            if k is not None and k - j <= MAX_BOXED_CHARS:
                out.append((text[j + 1 : k], m.start()))
        else:
            out.append((m.group(2), m.start()))
    return out


def _final_spans(text: str) -> list[str]:
    spans = []
    for m in deque(_FINAL_RE.finditer(text), maxlen=MAX_ANSWERS):
        rest = text[m.end() : m.end() + 200].split("\n", 1)[0]
        end = _SENTENCE_END_RE.search(rest)
        spans.append(rest[: end.start()] if end else rest)
    return [s for s in spans if s.strip()]


def _candidates(text: str, lenient: bool) -> tuple[str, list[str], bool]:
    """The winning kind of anchor, its last :data:`MAX_ANSWERS` spans in order, and whether
    there were more than that."""
    blocks = _tag_blocks(text, lenient)
    if blocks:
        return TAG, blocks[-MAX_ANSWERS:], len(blocks) > MAX_ANSWERS
    if "\\boxed" in text or "\\fbox" in text:
        boxed = _boxed_spans(text, MAX_ANSWERS + 1)
        if boxed:
            return BOXED, [b for b, _ in boxed][-MAX_ANSWERS:], len(boxed) > MAX_ANSWERS
    hashes = deque((m.group(1) for m in _HASH_RE.finditer(text)), maxlen=MAX_ANSWERS + 1)
    if hashes:
        return HASH, list(hashes)[-MAX_ANSWERS:], len(hashes) > MAX_ANSWERS
    finals = _final_spans(text)
    if finals:
        return FINAL, finals, False
    return "", [], False


def _span_number(span: str, mode: str) -> Number | None:
    """The number an answer span states. Lenient mode takes the first number of a longer span
    ("18 dollars per day for 7 days"), but never of a hedge ("17 or 18", "maybe 18?"): lenient
    forgives format, not ambiguity."""
    n = parse_number(span, "strict")
    if n is None and mode == "lenient" and not _LATEX_MATH_RE.search(span) and not is_hedge(span):
        n = parse_number(span, "lenient")
    return n


def find_answer(text, mode: str = "lenient") -> Extraction | None:
    """Locate the final answer in a completion (string or chat messages); ``None`` if there is
    none. See the module docstring for the order of anchors and the strict/lenient rules."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    text = completion_text(text)
    if len(text) > MAX_TEXT_CHARS:
        text = text[-MAX_TEXT_CHARS:]
    lenient = mode == "lenient"
    kind, spans, too_many = _candidates(text, lenient)
    if lenient:
        usable = [s.strip() for s in spans if s.strip()]
        if usable:
            parsed = [_span_number(s, mode) for s in usable]
            if len(usable) > 1 and len(_values(parsed, usable)) > 1:  # "\boxed{17} or \boxed{18}", "#### 17 ... #### 18"
                return Extraction(kind, None, None, tuple(spans), reason="several different answers")
            return Extraction(kind, usable[-1], parsed[-1], tuple(spans))
        return _last_number_answer(_ANNOTATION_RE.sub(" ", text[-4000:]))
    if not spans:
        return None
    if too_many:
        return Extraction(kind, None, None, tuple(spans), reason=f"more than {MAX_ANSWERS} answers")
    stripped = [s.strip() for s in spans]
    if not all(stripped):
        return Extraction(kind, None, None, tuple(spans), reason="empty answer")
    parsed = [_span_number(s, mode) for s in stripped]
    if parsed[-1] is None and not _LATEX_MATH_RE.search(stripped[-1]) and re.search(r"\d", stripped[-1]):
        return Extraction(kind, None, None, tuple(spans), reason="not one number (a hedge or an expression)")
    if len(spans) > 1 and len(_values(parsed, stripped)) > 1:
        return Extraction(kind, None, None, tuple(spans), reason="several different answers")
    return Extraction(kind, stripped[-1], parsed[-1], tuple(spans))


def _values(parsed: list[Number | None], spans: list[str]) -> set:
    """The distinct answers a completion names: numbers by value, anything else by its cleaned text."""
    return {p.value if p is not None else ("text", clean_span(s)) for p, s in zip(parsed, spans)}


_CLAUSE_END_RE = re.compile(r"[.!?](?=\s)|\n")


def _last_number_answer(text: str) -> Extraction | None:
    """Lenient mode without an anchor: the last number, unless the clause that holds it commits to no
    single value ("It is 17 or 18", "maybe 17, maybe 18", a question echoed back: "(Is it 17 or 18?)")."""
    last = last_number(text)
    if last is None:
        return None
    end = text.rfind(last.text)
    end = len(text) if end < 0 else end
    start = max((m.end() for m in _CLAUSE_END_RE.finditer(text, 0, end)), default=0)
    if is_hedge(text[start:]):
        return Extraction(LAST, None, None, (), reason="a hedge: no single answer")
    return Extraction(LAST, last.text, last, ())


def extract_answer(text, mode: str = "lenient") -> str | None:
    """The final answer of a completion, canonical when it is a number (``"$1,000.00"`` ->
    ``"1000"``, ``"\\frac{3}{4}"`` -> ``"0.75"``, ``"50%"`` -> ``"50%"``), else its cleaned text
    (``"\\sqrt{2}"``). ``None`` when there is no answer (or, in strict mode, no acceptable one).
    Handy for majority voting: equal values give equal strings."""
    try:
        ext = find_answer(text, mode)
    except ValueError:
        raise
    except Exception:  # noqa: BLE001 - extraction must not crash a caller
        log.debug("extract_answer failed", exc_info=True)
        return None
    if ext is None or ext.span is None:
        return None
    if ext.number is not None:
        return ext.number.canonical()
    cleaned = clean_span(ext.span)
    return cleaned or None


# ---------------------------------------------------------------------------------------------
# Comparing with the gold answer
# ---------------------------------------------------------------------------------------------

_TOWER_RE = re.compile(
    r"\^\s*\{[^{}]*[\^!]|\^\s*\(?[\w.]+\)?\s*\^|\*\*[^*]*\*\*|\^\s*\{?\s*\d{3,}|\d{3,}\s*!|!\s*!|\\uparrow"
)


_PROSE_WORD_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")


def _safe_for_math_verify(s: str) -> bool:
    """Refuse inputs that make SymPy slow before calling it: power towers, exponents >= 100,
    factorials of large numbers, very long text, giant numbers."""
    if len(s) > 300 or re.search(r"\d{41,}", s):
        return False
    if len(_PROSE_WORD_RE.findall(s)) > 2:  # prose, not mathematics: nothing for SymPy to do
        return False
    return not _TOWER_RE.search(s)


def _math_verify_equal(gold: str, pred: str, timeout: float | None = None) -> bool:
    """math-verify's verdict (gold first), computed in the timeout worker; False on timeout, on error,
    or when math-verify is not installed. ``timeout`` defaults to :data:`MATH_VERIFY_TIMEOUT`, read at
    each call. Only verdicts are cached: a timeout (one slow call on a busy machine) or a failed worker
    says nothing about the answer, so the next call asks again."""
    if not (_safe_for_math_verify(gold) and _safe_for_math_verify(pred)):
        return False
    from grpo_course.rewards.timeout import CallFailed, CallTimeout

    limit = MATH_VERIFY_TIMEOUT if timeout is None else timeout
    try:
        return _math_verify_verdict(gold, pred, limit)
    except CallTimeout:
        log.warning("math-verify timed out after %.1fs on %r vs %r", limit, gold[:80], pred[:80])
        return False
    except CallFailed as exc:
        log.debug("math-verify failed: %s", exc)
        return False


@functools.lru_cache(maxsize=8192)
def _math_verify_verdict(gold: str, pred: str, timeout: float) -> bool:
    """The worker's verdict; raises on a timeout or a failure, and ``lru_cache`` keeps no exception."""
    from grpo_course.rewards.timeout import call_with_timeout

    return bool(call_with_timeout("grpo_course.rewards._mathverify:equal", (gold, pred), timeout))


_math_verify_equal.cache_clear = _math_verify_verdict.cache_clear  # forget every cached verdict


def _same_text(a: str, b: str) -> bool:
    return "".join(clean_span(a).split()) == "".join(clean_span(b).split())


def _gold_string(gold) -> str:
    if isinstance(gold, Fraction):
        return f"{gold.numerator}/{gold.denominator}" if gold.denominator != 1 else str(gold.numerator)
    if isinstance(gold, bool):
        return ""
    return parse_gsm8k_gold(gold)


def is_correct(completion, gold, mode: str = "lenient", use_math_verify: bool = True) -> bool:
    """Whether a completion's final answer equals ``gold``.

    ``gold`` is a GSM8K answer text ending in ``#### N``, a bare answer (``"18"``, ``"0.75"``,
    ``"\\frac{3}{4}"``) or a number. ``mode="strict"`` for rewards, ``"lenient"`` for evaluation
    (module docstring). math-verify is consulted only where plain numbers cannot decide: a LaTeX
    gold in both modes, a LaTeX/expression prediction in lenient mode. Never raises on text
    (an invalid ``mode`` is a programming error and raises ``ValueError``)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    try:
        return _is_correct(completion, gold, mode, use_math_verify)
    except Exception:  # noqa: BLE001 - a verdict must never crash training or evaluation
        log.debug("is_correct failed", exc_info=True)
        return False


def _is_correct(completion, gold, mode: str, use_math_verify: bool) -> bool:
    gold_str = _gold_string(gold)
    if not gold_str:
        return False
    ext = find_answer(completion, mode)
    if ext is None or ext.span is None:
        return False
    return _span_equals_gold(ext, gold_str, mode, use_math_verify)


def _span_equals_gold(ext: Extraction, gold_str: str, mode: str, use_math_verify: bool) -> bool:
    if ext.number is None and is_hedge(ext.span):  # "17 or 18", "18 ± 1", "\geq 18": no single answer
        return False  # (a span that parsed to a number is never a hedge: both parsers refuse those first)
    gold_number = parse_number(gold_str, "strict")
    if gold_number is not None:
        if ext.number is not None:
            return numbers_match(ext.number, gold_number, mode)
        if mode == "strict" or not use_math_verify or not _LATEX_MATH_RE.search(ext.span):
            return False  # strict: not one number; lenient: nothing for math-verify either
        return _math_verify_equal(gold_str, ext.span)
    if _same_text(gold_str, ext.span):
        return True
    return use_math_verify and _math_verify_equal(gold_str, ext.span)


# ---------------------------------------------------------------------------------------------
# Reasoning steps: true, distinct, grounded arithmetic
# ---------------------------------------------------------------------------------------------

MAX_EQUATIONS = 300
_EXPR_CHARS = frozenset("0123456789.+-*/() ")
_EXPR_TOKEN_RE = re.compile(r"\s*(?:(\d{1,15}(?:\.\d{1,10})?|\.\d{1,10})|([-+*/()]))")


@dataclass(frozen=True)
class Step:
    """One arithmetic equation found in a completion, e.g. ``48/2 = 24``."""

    lhs: str
    rhs: str
    value: Fraction  # the value the text states (the right-hand side)
    operands: tuple[Fraction, ...]
    true: bool  # does the left side really evaluate to the right side?


def _tokens(expr: str, partial: bool = False) -> list[tuple[str, str]] | None:
    """Tokens of an arithmetic expression; with ``partial`` stop at the first character that is
    not one (a full stop after "= 72.") instead of failing."""
    out, pos = [], 0
    expr = expr.rstrip()
    while pos < len(expr):
        m = _EXPR_TOKEN_RE.match(expr, pos)
        if not m:
            return out if partial else None
        out.append(("n", m.group(1)) if m.group(1) else ("o", m.group(2)))
        pos = m.end()
        if len(out) > 40:
            return None
    return out


def _evaluate(tokens: list[tuple[str, str]]) -> tuple[Fraction, list[Fraction], int] | None:
    """Evaluate + - * / ( ) over exact fractions; returns (value, operands, n_operators)."""
    pos = 0
    operands: list[Fraction] = []
    n_ops = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else (None, None)

    def atom(depth):
        nonlocal pos
        kind, tok = peek()
        if kind == "n":
            pos += 1
            v = Fraction(tok)
            operands.append(v)
            return v
        if tok == "(" and depth < 10:
            pos += 1
            v = expr(depth + 1)
            if peek()[1] != ")":
                raise ValueError("unbalanced")
            pos += 1
            return v
        if tok == "-":
            pos += 1
            return -atom(depth)
        raise ValueError("bad atom")

    def term(depth):
        nonlocal pos, n_ops
        v = atom(depth)
        while peek()[1] in ("*", "/"):
            op = peek()[1]
            pos += 1
            n_ops += 1
            w = atom(depth)
            v = v * w if op == "*" else v / w
        return v

    def expr(depth):
        nonlocal pos, n_ops
        v = term(depth)
        while peek()[1] in ("+", "-"):
            op = peek()[1]
            pos += 1
            n_ops += 1
            w = term(depth)
            v = v + w if op == "+" else v - w
        return v

    try:
        value = expr(0)
    except (ValueError, ZeroDivisionError, IndexError):
        return None
    if pos != len(tokens):
        return None
    return value, operands, n_ops


def _longest_suffix(expr: str):
    toks = _tokens(expr.lstrip(" .*/+"))
    if not toks:
        return None
    for start in range(len(toks)):
        r = _evaluate(toks[start:])
        if r is not None:
            return "".join(t for _, t in toks[start:]), r
    return None


def _longest_prefix(expr: str):
    toks = _tokens(expr, partial=True)
    if not toks:
        return None
    for end in range(len(toks), 0, -1):
        r = _evaluate(toks[:end])
        if r is not None:
            return "".join(t for _, t in toks[:end]), r
    return None


_STEP_PREP = [
    (re.compile(r"\\[dt]?frac\s*\{([^{}]{1,40})\}\s*\{([^{}]{1,40})\}"), r"((\1)/(\2))"),
    (re.compile(r"\\times|\\cdot|[×·∗]"), "*"),
    (re.compile(r"\\div|÷"), "/"),
    (re.compile(r"\\?\$|\\[()\[\]]|[€£¥₹]"), " "),
    (re.compile(r"(?<=\d),(?=\d{3}(?!\d))"), ""),
    (re.compile(r"(?<=[\d)])[ \t]*[xX][ \t]*(?=[\d(])"), "*"),
    (re.compile(r"[−–]"), "-"),
]


def find_equations(text: str) -> list[Step]:
    """Every ``expression = value`` in the text (plain, LaTeX ``\\times``/``\\frac``, or GSM8K
    ``<<3+4=7>>``), true or not, in order. At most :data:`MAX_EQUATIONS`."""
    s = completion_text(text)[:MAX_TEXT_CHARS]
    for pattern, repl in _STEP_PREP:
        s = pattern.sub(repl, s)
    steps: list[Step] = []
    pos = 0
    for _ in range(MAX_EQUATIONS * 3):
        i = s.find("=", pos)
        if i < 0 or len(steps) >= MAX_EQUATIONS:
            break
        pos = i + 1
        if s[i + 1 : i + 2] == "=" or (i > 0 and s[i - 1] in "=<>!"):
            continue
        k = i
        while k > 0 and i - k < 80 and s[k - 1] in _EXPR_CHARS:
            k -= 1
        k2 = i + 1
        while k2 < len(s) and k2 - i < 80 and s[k2] in _EXPR_CHARS:
            k2 += 1
        left, right = _longest_suffix(s[k:i]), _longest_prefix(s[i + 1 : k2])
        if not left or not right:
            continue
        (lhs, (lv, operands, lops)), (rhs, (rv, r_operands, rops)) = left, right
        if lops and rops:  # a running chain "5 + 4 = 9 * 2 = 18": "5 + 4 = 9" is the step
            first = (
                _longest_prefix(_EXPR_TOKEN_RE.match(s, i + 1).group(0))
                if _EXPR_TOKEN_RE.match(s, i + 1)
                else None
            )
            if first and first[1][0] == lv:
                rhs, (rv, r_operands, rops) = first
        if lops == 0 and rops == 0:
            continue  # "x = 5": a statement, not a calculation
        if lops == 0:  # "24 = 48/2": read it the other way round
            lhs, lv, operands, rhs, rv, rops = rhs, rv, r_operands, lhs, lv, 0
        decimals = len(rhs.split(".", 1)[1]) if "." in rhs and rops == 0 else 0
        tol = Fraction(1, 2 * 10**decimals) if decimals else Fraction(0)
        steps.append(Step(lhs.strip(), rhs.strip(), rv, tuple(operands), abs(lv - rv) <= tol))
    return steps


def _outside_answer(text: str) -> str:
    """The completion without the contents of its answer blocks (steps belong to the reasoning)."""
    out, pos = [], 0
    while True:
        i = text.find(ANSWER_START, pos)
        if i < 0:
            out.append(text[pos:])
            break
        out.append(text[pos:i])
        j = text.find(ANSWER_END, i)
        if j < 0:
            break
        pos = j + len(ANSWER_END)
    return "".join(out)


def reasoning_steps(completion, prompt=None) -> list[Step]:
    """The reasoning steps that count: arithmetic equations that are **true**, **distinct** (the
    same equation twice counts once, so ``<<48/2=24>>`` next to ``48/2 = 24`` is one step),
    **non-trivial** (the result differs from every operand: ``5 * 1 = 5`` is padding) and, when the
    question is given, **grounded** (an operand comes from the question or from an earlier step's
    result, so ``1 + 1 = 2`` pasted ten times, or unrelated true sums, do not count)."""
    text = _outside_answer(completion_text(completion))
    known: set[Fraction] | None = None
    if prompt is not None:
        known = set()
        for n in find_numbers(prompt_text(prompt), limit=500):
            known.add(n.value)
            if n.percent:
                known.add(n.value / 100)
    seen, kept = set(), []
    for step in find_equations(text):
        if not step.true or any(step.value == op for op in step.operands):
            continue
        key = (step.lhs.replace(" ", ""), step.value)
        if key in seen:
            continue
        if known is not None:
            if not any(op in known for op in step.operands):
                continue
            known.add(step.value)
        seen.add(key)
        kept.append(step)
    return kept


def count_reasoning_steps(completion, prompt=None) -> int:
    """``len(reasoning_steps(completion, prompt))``."""
    return len(reasoning_steps(completion, prompt))


# ---------------------------------------------------------------------------------------------
# Format checks
# ---------------------------------------------------------------------------------------------


def _tag_layout(text: str) -> tuple[str, str, str, str, str] | None:
    """(before, reasoning, between, answer, after) when the text holds exactly one think block
    followed by exactly one answer block; ``None`` otherwise. Linear time, no regex."""
    tags = (REASONING_START, REASONING_END, ANSWER_START, ANSWER_END)
    if any(text.count(t) != 1 for t in tags):
        return None
    a, b, c, d = (text.find(t) for t in tags)
    if not a < b < c < d:
        return None
    return (
        text[:a],
        text[a + len(REASONING_START) : b],
        text[b + len(REASONING_END) : c],
        text[c + len(ANSWER_START) : d],
        text[d + len(ANSWER_END) :],
    )


def has_tag_format(completion, require_number: bool = True) -> bool:
    """The course format and nothing else: ``<think>reasoning</think>`` then
    ``<answer>N</answer>``, exactly one of each tag, only whitespace around them, non-empty
    reasoning, and (by default) an answer that is one number in strict mode. Multi-line reasoning
    is fine (the popular notebooks' regex without ``re.DOTALL`` rejected it)."""
    text = completion_text(completion)
    if len(text) > MAX_TEXT_CHARS:
        return False
    layout = _tag_layout(text)
    if layout is None:
        return False
    before, reasoning, between, answer, after = layout
    if before.strip() or between.strip() or after.strip() or not reasoning.strip() or not answer.strip():
        return False
    return parse_number(answer, "strict") is not None if require_number else True


def has_boxed_format(completion) -> bool:
    """Reasoning that ends in exactly one ``\\boxed{...}`` (only ``$``, ``.``, ``\\]``, ``**`` or
    whitespace may follow it), with some text before it."""
    text = completion_text(completion)
    if len(text) > MAX_TEXT_CHARS or text.count("\\boxed") != 1:
        return False
    boxed = _boxed_spans(text)
    if len(boxed) != 1 or not boxed[0][0].strip():
        return False
    content, start = boxed[0]
    end = text.find(content, start) + len(content) + 1
    return bool(text[:start].strip()) and re.fullmatch(r"[\s$.*\\\])]*", text[end:]) is not None


def has_math_format(completion) -> bool:
    """The composite reward's format: the course's tags, or reasoning ending in one ``\\boxed{}``."""
    return has_tag_format(completion) or has_boxed_format(completion)


# ---------------------------------------------------------------------------------------------
# TRL reward functions
# ---------------------------------------------------------------------------------------------


def _as_list(value, n: int) -> list:
    if value is None:
        return [None] * n
    if isinstance(value, (str, bytes, int, float, Fraction)) or not isinstance(value, Iterable):
        return [value] * n
    try:
        items = list(value)
    except Exception:  # noqa: BLE001
        return [None] * n
    return items[:n] + [None] * (n - len(items))


def _golds(kwargs: dict, n: int) -> list:
    for name in GOLD_COLUMNS:
        if kwargs.get(name) is not None:
            return _as_list(kwargs[name], n)
    return [None] * n


def _completions_list(completions) -> list:
    if completions is None:
        return []
    if isinstance(completions, (str, dict)):
        return [completions]
    try:
        return list(completions)
    except Exception:  # noqa: BLE001
        return []


def _score_all(
    completions, per_item: Callable[..., float | None], lo: float, hi: float, columns: dict[str, list]
) -> list[float | None]:
    """Apply ``per_item(text, **row)`` to each completion: exceptions become ``None`` (logged),
    results are checked to be finite and clamped into ``[lo, hi]``."""
    items = _completions_list(completions)
    out: list[float | None] = []
    for i, c in enumerate(items):
        row = {k: v[i] for k, v in columns.items()}
        try:
            r = per_item(completion_text(c), **row)
        except Exception:  # noqa: BLE001 - a reward never crashes training
            log.warning(
                "reward %s failed on completion %d; returning None", per_item.__name__, i, exc_info=True
            )
            r = None
        if r is not None:
            r = float(r)
            r = None if not math.isfinite(r) else min(hi, max(lo, r))
        out.append(r)
    return out


def _reward(lo: float, hi: float):
    """Mark a function as a reward with its documented range (``fn.reward_range``)."""

    def mark(fn):
        fn.reward_range = (lo, hi)
        return fn

    return mark


def _has_gold(gold) -> bool:
    return bool(_gold_string(gold)) if gold is not None else False


@_reward(0.0, 0.5)
def tag_format_reward(completions, **kwargs) -> list[float | None]:
    """0.5 if the completion is exactly ``<think>reasoning</think><answer>N</answer>`` (one of
    each tag, whitespace around, multi-line reasoning allowed, answer one number); else 0.0.
    Reads no dataset column. Range [0, 0.5]. Guards: several answer blocks, empty answers, text
    after ``</answer>`` and non-numeric answers get 0."""
    n = len(_completions_list(completions))
    return _score_all(completions, _tag_format, 0.0, 0.5, {"_": [None] * n})


def _tag_format(text: str, _=None) -> float:
    return 0.5 if has_tag_format(text) else 0.0


def _tag_answer(text: str, gold=None) -> float | None:
    if not _has_gold(gold):
        return None
    blocks = _tag_blocks(text[-MAX_TEXT_CHARS:], lenient=False)
    if not blocks:
        return 0.0
    return 1.0 if is_correct(text, gold, mode="strict") else 0.0


@_reward(0.0, 1.0)
def tag_answer_reward(completions, answer=None, **kwargs) -> list[float | None]:
    """1.0 if the answer inside ``<answer>...</answer>`` equals the gold (``answer`` column, GSM8K
    text or bare), compared in strict mode; 0.0 otherwise (no tags, a hedge, two different answer
    blocks); ``None`` when the row has no gold. Range [0, 1]."""
    kwargs["answer"] = answer
    n = len(_completions_list(completions))
    return _score_all(completions, _tag_answer, 0.0, 1.0, {"gold": _golds(kwargs, n)})


@_reward(0.0, 1.5)
def tag_reward(completions, answer=None, **kwargs) -> list[float | None]:
    """``tag_format_reward + tag_answer_reward``: 0, 0.5, 1.0 or 1.5. ``None`` when the row has no
    gold. Range [0, 1.5]."""
    fmt = tag_format_reward(completions, **kwargs)
    ans = tag_answer_reward(completions, answer=answer, **kwargs)
    return [None if a is None or f is None else f + a for f, a in zip(fmt, ans)]


def _composite(text: str, gold=None, prompt=None) -> float | None:
    if not _has_gold(gold):
        return None
    score = 0.2 if has_math_format(text) else 0.0
    if is_correct(text, gold, mode="strict"):
        score += 0.6
    if count_reasoning_steps(text, prompt) >= 2:
        score += 0.2
    return round(score, 10)


@_reward(0.0, 1.0)
def composite_math_reward(completions, answer=None, prompts=None, **kwargs) -> list[float | None]:
    """The seed's math reward: +0.2 format (the course's tags, or reasoning ending in one
    ``\\boxed{}``), +0.6 correct final answer (strict mode, ``answer`` column), +0.2 for at least
    two reasoning steps (:func:`reasoning_steps`: true, distinct, non-trivial equations, grounded
    in the question when TRL passes ``prompts``). ``None`` when the row has no gold.
    Range [0, 1]; possible values 0, 0.2, 0.4, 0.6, 0.8, 1.0."""
    kwargs["answer"] = answer
    n = len(_completions_list(completions))
    columns = {"gold": _golds(kwargs, n), "prompt": _as_list(prompts, n)}
    return _score_all(completions, _composite, 0.0, 1.0, columns)


def _format(text: str, _=None) -> float:
    if len(text) > MAX_TEXT_CHARS:
        return 0.0
    layout = _tag_layout(text)
    return 1.0 if layout is not None and layout[3].strip() else 0.0


@_reward(0.0, 1.0)
def format_reward(completions, **kwargs) -> list[float | None]:
    """1.0 if the completion contains one ``<think>...</think>`` block followed by one
    ``<answer>...</answer>`` block with a non-empty answer (multi-line content fine; other text
    around them allowed); else 0.0. Reads no dataset column. Range [0, 1]."""
    n = len(_completions_list(completions))
    return _score_all(completions, _format, 0.0, 1.0, {"_": [None] * n})


def _exact(text: str, gold=None) -> float | None:
    if not _has_gold(gold):
        return None
    blocks = _tag_blocks(text[-MAX_TEXT_CHARS:], lenient=False)
    if len(blocks) != 1:
        return 0.0
    pred = " ".join(blocks[0].split())
    return 1.0 if pred == " ".join(_gold_string(gold).split()) else 0.0


@_reward(0.0, 1.0)
def exact_answer_reward(completions, answer=None, **kwargs) -> list[float | None]:
    """1.0 if the text of the only ``<answer>`` block equals the gold string exactly (whitespace
    collapsed; a GSM8K gold is reduced to its ``####`` value first), else 0.0; ``None`` without a
    gold. For labels ("B", "benign"); for numbers prefer :func:`tag_answer_reward`, because
    ``1,080`` or ``18.0`` are not the string ``1080`` or ``18``. Reads ``answer`` (or
    ``references``). Range [0, 1]."""
    kwargs["answer"] = answer
    n = len(_completions_list(completions))
    return _score_all(completions, _exact, 0.0, 1.0, {"gold": _golds(kwargs, n)})


def _tolerance(text: str, gold=None, atol=None) -> float | None:
    if not _has_gold(gold):
        return None
    gold_number = parse_number(_gold_string(gold), "strict")
    if gold_number is None:
        return None
    ext = find_answer(text, "strict")
    if ext is None or ext.number is None:
        return 0.0
    try:
        tol = Fraction(str(float(0.5 if atol is None else atol)))
    except (TypeError, ValueError, OverflowError):
        tol = Fraction(1, 2)
    tol = max(tol, Fraction(0))
    return 1.0 if abs(ext.number.value - gold_number.value) <= tol else 0.0


@_reward(0.0, 1.0)
def numeric_tolerance_reward(completions, answer=None, atol=0.5, **kwargs) -> list[float | None]:
    """1.0 if the final answer (strict extraction: tags, boxed, ``####`` or "final answer is") is
    within ``atol`` (absolute, default 0.5, a scalar or one value per row) of the numeric gold
    (MedCalc-style: 17.8 for 18 scores 1 with atol 0.5); 0.0 otherwise; ``None`` when the row's gold
    is missing or not a number. Reads ``answer`` (or ``references``). Range [0, 1]."""
    kwargs["answer"] = answer
    n = len(_completions_list(completions))
    columns = {"gold": _golds(kwargs, n), "atol": _as_list(atol, n)}
    return _score_all(completions, _tolerance, 0.0, 1.0, columns)


MATH_REWARDS: dict[str, Callable] = {
    "tag_format": tag_format_reward,
    "tag_answer": tag_answer_reward,
    "tag": tag_reward,
    "composite_math": composite_math_reward,
    "format": format_reward,
    "exact_answer": exact_answer_reward,
    "numeric_tolerance": numeric_tolerance_reward,
}
