"""Where the course's files live, relative to the repository (never absolute)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent.parent


def data_dir() -> Path:
    """The repository's ``data/`` folder (override with ``GRPO_COURSE_DATA``)."""
    override = os.environ.get("GRPO_COURSE_DATA")
    return Path(override) if override else REPO_ROOT / "data"


def runs_dir() -> Path:
    """Where training runs write checkpoints and logs (override with ``GRPO_COURSE_RUNS``)."""
    override = os.environ.get("GRPO_COURSE_RUNS")
    return Path(override) if override else REPO_ROOT / "runs"
