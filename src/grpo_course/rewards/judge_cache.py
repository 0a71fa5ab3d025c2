"""An on-disk cache of LLM-judge verdicts that several processes can share.

One JSON file per entry, named by the SHA-256 of the entry's key. A write goes to a
temporary file in the same directory and is moved into place with ``os.replace``,
which POSIX and Windows both perform atomically: a reader sees the old file, the
new file, or no file, never half a file. Two processes writing the same key both
write a complete verdict and the last one wins, so no lock is needed.

The key is built by :func:`cache_key` from the judge's name and model, the rubric's
name, version and fingerprint, and the exact messages sent (which hold the prompt,
the completion and any reference answer). API keys are never part of it.

Only successful verdicts are stored: a failed call is retried on the next step.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

CACHE_FORMAT = 1


def cache_key(
    *,
    judge: str,
    provider: str,
    model: str,
    rubric: str,
    rubric_version: str,
    rubric_fingerprint: str,
    system: str,
    user: str,
) -> str:
    """The hex SHA-256 naming one verdict: same inputs, same key, in every process."""
    payload = json.dumps(
        {
            "format": CACHE_FORMAT,
            "judge": judge,
            "provider": provider,
            "model": model,
            "rubric": rubric,
            "rubric_version": rubric_version,
            "rubric_fingerprint": rubric_fingerprint,
            "system": system,
            "user": user,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class JudgeCache:
    """Verdicts on disk under ``root/ab/abcdef....json`` (two-level fan-out keeps directories small)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()
        self.hits = 0
        self.misses = 0
        self.writes = 0

    def _path(self, key: str) -> Path:
        if len(key) < 8 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError("cache keys are lowercase hex digests")
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry, or None when absent or unreadable (a corrupt file counts as a miss)."""
        path = self._path(key)
        try:
            with open(path, encoding="utf-8") as fh:
                entry = json.load(fh)
        except (OSError, ValueError):
            self.misses += 1
            return None
        if not isinstance(entry, dict) or entry.get("key") != key:
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Store ``entry`` atomically (temporary file in the same directory, fsync, ``os.replace``)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = dict(entry, key=key)
        data = json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8")
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:12]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        self.writes += 1

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("??/*.json")) if self.root.exists() else 0

    def __repr__(self) -> str:
        return f"JudgeCache({str(self.root)!r}, hits={self.hits}, misses={self.misses}, writes={self.writes})"
