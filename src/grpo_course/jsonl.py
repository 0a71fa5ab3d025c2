"""JSON Lines, the format of every data file and run log in the course: one JSON object per line.

``datasets.load_dataset("json", data_files=...)`` reads the same files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path


def read_jsonl(path: str | Path, missing_ok: bool = False) -> list[dict]:
    """The rows of ``path`` (blank lines skipped). A line that is not JSON raises ``ValueError`` naming
    the file and line; a missing file raises, or gives ``[]`` with ``missing_ok=True`` (a run's log
    before its first step)."""
    path = Path(path)
    if missing_ok and not path.is_file():
        return []
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{n}: not JSON ({err.msg})") from None
    return rows


def write_jsonl(rows: Iterable[dict], path: str | Path) -> Path:
    """Write ``rows`` to ``path`` (keys sorted, so a rebuild gives the same bytes); creates the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True) + "\n")
    return path
