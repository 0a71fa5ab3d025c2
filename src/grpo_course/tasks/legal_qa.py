"""Task ``legal-qa``: answer legal questions; reward = two LLM judges on a four-dimension rubric.

**Data.** Law Stack Exchange questions with their answers, ``ymoslem/Law-StackExchange`` (one split,
``train``, about 24.4k questions; CC BY-SA 4.0, the licence of Stack Exchange content, given per row
in its ``license`` column). Columns: ``question_id``, ``tags``, ``score``, ``license``, ``link``,
``question_title``, ``question_body`` (HTML), ``answers`` (a list of ``{answer_id, body, score}``,
bodies in HTML, possibly empty). The reference answer is the highest-scored one; questions without an
answer are dropped; every fifth question (``question_id % 5 == 0``) is held out. CPU runs read
``data/tasks/legal-qa/law_stackexchange.jsonl``: questions and answers written for the course, in
those columns. (Open Australian Legal QA was the other candidate; its licence is per source document,
not one clear licence.)

**Reward** (the seeds' legal model: Claude and Gemini judge accuracy, completeness, legal soundness
and clarity; stage 02's :mod:`grpo_course.rewards.judges`, the panel in :mod:`grpo_course.rewards.judge_panel`): reward set ``"judges"`` = 1.0 x
``legal_qa_judges`` (the mean over two judges of the rubric's normalised score, 0..1) + 0.2 x
``legal_qa_format`` (stage 02's ``format``). Before training starts, the planned cost per step and for the
run is printed; the judge reward holds a hard budget cap (``budget_usd``; a call that could cross it is not
made and its completions get ``None``, never a silent 0). A completion the judges cannot score gets ``None``
from both reward functions, so TRL drops it (advantage 0) instead of training it on its format alone.

**Judges.** On a GPU profile: Claude (``ANTHROPIC_API_KEY``) and Gemini (``GEMINI_API_KEY``), from the
environment or Colab's secrets. On CPU, and whenever ``judges="offline"``: local fake servers that speak
the Anthropic and Gemini wire formats (:mod:`grpo_course.rewards.fake_judges`) and score with a
word-overlap heuristic. That heuristic is **not** a model of legal quality: the CPU run proves the
plumbing (HTTP, parsing, caching, cost, agreement, None on failure), not that answers got better.

**Pitfalls.** Judges disagree (inter-judge agreement is reported with every score), judges can be
gamed by length or legal vocabulary (the fake judge rewards both, on purpose easy to see), and every
step costs money: ``G x batch`` completions x 2 judges per step.

**Metric.** Mean judge score on held-out questions, with a bootstrap interval, each judge's mean and
inter-judge agreement (mean absolute difference, share within one point, Pearson correlation).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from ..chat_format import ANSWER_END, ANSWER_START, REASONING_END, REASONING_START, format_response
from ..hardware import Profile
from ..rewards.judge_panel import (  # noqa: F401  (the panel a run makes active, re-exported for the lessons)
    DEFAULT_BUDGET_USD,
    JudgePanel,
    active_panel,
    api_panel,
    judging,
    legal_qa_format,
    legal_qa_judges,
    offline_panel,
    panel_for,
    use_panel,
)
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

COLUMNS = ("question_id", "tags", "score", "license", "link", "question_title", "question_body", "answers")
SOURCES = {
    "train": HubSource("ymoslem/Law-StackExchange", "train", "CC BY-SA 4.0",
                       "about 24.4k questions (4 in 5 for training)", "law_stackexchange.jsonl",
                       url="https://huggingface.co/datasets/ymoslem/Law-StackExchange"),
    "heldout": HubSource("ymoslem/Law-StackExchange", "train", "CC BY-SA 4.0",
                         "the same split: questions with question_id % 5 == 0", "law_stackexchange.jsonl",
                         url="https://huggingface.co/datasets/ymoslem/Law-StackExchange"),
}
HELDOUT_EVERY = 5
MAX_QUESTION_CHARS = 2000
ACCEPTABLE = 0.6  # mean normalised judge score counted as an acceptable answer (held-out "accuracy")
SYSTEM_PROMPT = (
    f"You answer legal questions for a general audience. Think between {REASONING_START} and "
    f"{REASONING_END}, then give a clear, accurate answer in plain prose between {ANSWER_START} and "
    f"{ANSWER_END}. Say when the answer depends on the jurisdiction."
)

_TAG_RE = re.compile(r"<[^>]+>")
_BLOCK_RE = re.compile(r"</?(p|br|li|ul|ol|blockquote|h\d|pre)[^>]*>", re.IGNORECASE)


def clean_html(text: str) -> str:
    """Stack Exchange HTML to plain text (paragraphs kept as blank lines, entities unescaped)."""
    text = _BLOCK_RE.sub("\n", text or "")
    text = html.unescape(_TAG_RE.sub("", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def legal_row(raw: dict) -> dict | None:
    """A hub row plus ``question`` (title + body as text), ``reference`` and ``answer`` (the top-scored
    answer as text); ``None`` for a question without answers."""
    answers = sorted(raw.get("answers") or [], key=lambda a: a.get("score", 0), reverse=True)
    if not answers:
        return None
    body = clean_html(raw["question_body"])
    question = f"{raw['question_title'].strip()}\n\n{body}".strip()[:MAX_QUESTION_CHARS]
    reference = clean_html(answers[0]["body"])
    return {**raw, "question": question, "reference": reference, "answer": reference}


def is_heldout(row: dict) -> bool:
    return int(row["question_id"]) % HELDOUT_EVERY == 0


def to_prompt(row: dict) -> list[dict]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": row["question"]}]


def short_answer(text: str, max_chars: int) -> str:
    """Whole sentences from the start of ``text``, at most ``max_chars`` characters (at least one)."""
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    out = sentences[0]
    for s in sentences[1:]:
        if len(out) + 1 + len(s) > max_chars:
            break
        out += " " + s
    return out[:max_chars]


def _topic(row: dict) -> str:
    tags = row.get("tags") or ["law"]
    return str(tags[0]).replace("-", " ")


def demonstration(row: dict) -> str:
    """The reference answer (up to ~800 characters, whole sentences) in the course's format."""
    return format_response(f"The question is about {_topic(row)}.", short_answer(row["reference"], 800))


def tiny_demonstration(row: dict) -> str:
    """The CPU model's warm start: the reference's first sentences, at most 180 characters."""
    return format_response(f"It is about {_topic(row)}.", short_answer(row["reference"], 180))


def load(profile: Profile) -> TaskData:
    raw, src = local_or_hub(TASK, "train", profile)
    check_columns(raw, COLUMNS, src)
    rows = [r for r in (legal_row(x) for x in raw) if r is not None]
    dropped = len(raw) - len(rows)
    return TaskData([r for r in rows if not is_heldout(r)], [r for r in rows if is_heldout(r)],
                    f"{src}; {dropped} questions without answers dropped; question_id % {HELDOUT_EVERY} == 0 "
                    "held out")


# ---- the judges: grpo_course.rewards.judge_panel (re-exported: a run makes one panel active) ---------

def judge_batch(rows: Sequence[dict], completions: Sequence[str], panel: JudgePanel | None = None):
    """One judged batch: ``BatchResult`` (rewards, verdicts, metrics, agreement)."""
    panel = panel or active_panel()
    return panel.reward.score([r["question"] for r in rows], list(completions), [r["reference"] for r in rows])


def is_correct(completion: str, row: dict) -> bool | None:
    """An acceptable answer: mean normalised judge score >= 0.6. ``None`` when the judges could not score it:
    the before/after excludes it (and reports how many), it never counts as a wrong answer."""
    reward = judge_batch([row], [completion]).rewards[0]
    return None if reward is None else reward >= ACCEPTABLE


def score(task: Task, rows: list[dict], completions: list[list[str]], profile=None, panel=None,
          **kw) -> Scored:
    """Mean judge score with a bootstrap interval; each judge's mean; inter-judge agreement; cost."""
    from ..metrics import bootstrap_interval

    panel = panel or active_panel()
    flat_rows = [r for r, group in zip(rows, completions) for _ in group]
    flat = [c for group in completions for c in group]
    spent_before = panel.reward.spent_usd
    result = judge_batch(flat_rows, flat, panel)
    per_sample, i = [], 0
    for group in completions:
        per_sample.append(result.rewards[i:i + len(group)])
        i += len(group)
    scored = [x for x in result.rewards if x is not None]
    per_problem = [sum(x for x in g if x is not None) / max(1, sum(x is not None for x in g))
                   for g in per_sample if any(x is not None for x in g)]
    interval = bootstrap_interval(per_problem) if len(per_problem) > 1 else None
    details: dict = {"scored": len(scored) / max(1, len(flat)),
                     "acceptable (>= 0.6)": sum(x >= ACCEPTABLE for x in scored) / max(1, len(scored))}
    for j in panel.judges:
        if f"{j.name}/mean" in result.metrics:
            details[f"judge {j.name}"] = result.metrics[f"{j.name}/mean"]
    agree = result.agreement or {}
    for key, label in (("mad", "agreement: mean |difference|"), ("within_tol", "agreement: within 1 point"),
                       ("pearson", "agreement: Pearson r")):
        if agree.get(key) is not None:
            details[label] = agree[key]
    details["judge cost USD"] = panel.reward.spent_usd - spent_before
    details["agreement"] = agree
    return Scored("judge score", sum(scored) / len(scored) if scored else float("nan"),  # none scored: no score
                  interval.low if interval else None, interval.high if interval else None,
                  len(rows), min((len(g) for g in completions), default=0), details, per_sample)


TASK = register_task(Task(
    name="legal-qa",
    description="answer a legal question in prose; reward = two LLM judges on a four-dimension rubric",
    load=load,
    to_prompt=to_prompt,
    reward_sets={"judges": ("legal_qa_judges", "legal_qa_format")},
    default_reward="judges",
    is_correct=is_correct,
    demonstration=demonstration,
    notes={"heldout": "Law Stack Exchange questions with question_id % 5 == 0",
           "pitfall": "judge disagreement, judges rewarding length, and the cost of every step"},
    sources=SOURCES,
    models={"cpu-tiny": "data/tasks/legal-qa/tiny", "t4": "unsloth/Llama-3.2-3B-Instruct",
            "l4": "unsloth/Llama-3.2-3B-Instruct", "large": "unsloth/Llama-3.2-3B-Instruct"},
    reward_weights={"judges": (1.0, 0.2)},
    lengths={"cpu-tiny": (400, 200), "t4": (512, 512), "l4": (512, 768), "large": (768, 1024)},
    metric="mean judge score (0..1) on held-out questions, with inter-judge agreement",
    colab="Llama-3.2-3B (T4: fp16 LoRA); ANTHROPIC_API_KEY and GEMINI_API_KEY in Colab secrets; judge cost "
          "is printed before training and capped (budget_usd)",
    scorer=score,
    follows_format=answer_block_format_followed,
    tiny_demonstration=tiny_demonstration,
    judging=judging,
    judge_budget_usd=DEFAULT_BUDGET_USD,
))
