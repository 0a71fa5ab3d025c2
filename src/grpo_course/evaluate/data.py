"""Held-out problems to evaluate on: GSM8K from the hub (Colab), a local file with GSM8K's schema
(offline, CI), or the course's tiny problems.

GSM8K (Cobbe et al. 2021, "Training Verifiers to Solve Math Word Problems", arXiv 2110.14168; data in
github.com/openai/grade-school-math, ``grade_school_math/data/test.jsonl``: 1,319 problems; hub mirror
``openai/gsm8k``, config ``main``) has two columns: ``question`` and ``answer``, the worked solution with
``<<48/2=24>>`` calculator annotations ending in ``#### 72`` (that repository's README). Every loader here
returns rows with exactly that schema plus an ``id``, so one evaluation loop serves them all.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..jsonl import read_jsonl  # noqa: F401  (re-exported: the evaluation data readers use it)
from ..tasks.gsm8k import CONFIG as GSM8K_CONFIG  # one place for the hub id: the task
from ..tasks.gsm8k import HUB_ID as GSM8K_HUB_ID

GSM8K_TEST_SIZE = 1319


def check_rows(rows: Iterable[dict], source: str = "data") -> list[dict]:
    """Keep ``question``/``answer`` (and an ``id``), refusing rows that are not GSM8K-shaped."""
    out = []
    for i, row in enumerate(rows):
        missing = [k for k in ("question", "answer") if not isinstance(row.get(k), str) or not row.get(k).strip()]
        if missing:
            raise ValueError(f"{source}: row {i} has no usable {', '.join(missing)} (GSM8K's columns are "
                             f"'question' and 'answer'); got keys {sorted(row)}")
        if "####" not in row["answer"]:
            raise ValueError(f"{source}: row {i}'s answer has no '#### <final answer>' line: {row['answer'][-80:]!r}")
        out.append({"id": str(row.get("id", i)), "question": row["question"], "answer": row["answer"]})
    if not out:
        raise ValueError(f"{source}: no rows")
    return out


def load_gsm8k(split: str = "test", path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """GSM8K's ``split`` from the Hugging Face hub, or from ``path`` (a JSONL file in GSM8K's schema,
    e.g. ``grade_school_math/data/test.jsonl`` from openai/grade-school-math). ``limit`` keeps the first rows.

    The hub path needs network access (Colab); tests use a local file with the identical schema."""
    if path is not None:
        rows = read_jsonl(path)
        source = str(path)
    else:
        from datasets import load_dataset

        ds = load_dataset(GSM8K_HUB_ID, GSM8K_CONFIG, split=split)
        rows = [{"question": r["question"], "answer": r["answer"]} for r in ds]
        source = f"{GSM8K_HUB_ID} ({GSM8K_CONFIG}, {split})"
    rows = rows[:limit] if limit else rows
    return [{**r, "id": f"gsm8k-{split}-{i}"} for i, r in enumerate(check_rows(rows, source))]


def load_problems(source: str = "tiny", split: str = "test", limit: int | None = None) -> tuple[list[dict], str]:
    """``(rows, description)`` for ``source``: ``"tiny"`` (the course's generated problems, offline),
    ``"gsm8k"`` (the hub) or a path to a JSONL file with GSM8K's columns."""
    if source == "tiny":
        from ..tiny.problems import load_split

        rows = load_split(split)
        rows = rows[:limit] if limit else rows
        return ([{**r, "id": f"tiny-{split}-{i}"} for i, r in enumerate(check_rows(rows, "tiny problems"))],
                f"data/tiny/problems/{split}.jsonl (the course's GSM8K-style problems)")
    if source == "gsm8k":
        return load_gsm8k(split, limit=limit), f"{GSM8K_HUB_ID} ({GSM8K_CONFIG}), split {split}"
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{source!r} is neither 'tiny', 'gsm8k' nor a JSONL file")
    return load_gsm8k(split, path=path, limit=limit), f"{path.name} (local file, GSM8K schema)"
