"""Mistakes in what a user asked for, and the checks that catch them before any work starts.

:class:`UsageError` is a ``ValueError`` with a plain message: an unknown task or profile, a number that
must be a positive whole number, a folder that cannot be written, nothing to evaluate. In a notebook it
reads like any ``ValueError``; ``grpo-course`` prints it as one ``error: ...`` line on stderr and exits
with status 2, without a traceback. :func:`positive_int` and :func:`non_negative_int` are ``argparse``
types for the command line's numbers; :func:`check_writable` tries a folder before a model loads.

Nothing here imports more than the standard library.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

EXIT_USAGE = 2  # the exit status of a command-line mistake (argparse's own)


class UsageError(ValueError):
    """Something the user asked for cannot be done as asked; the message says what and how to fix it."""


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    """``argparse`` type: a whole number >= 1 (``--steps 0`` and ``--steps -1`` are refused)."""
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number (1 or more), got {text}")
    return value


def non_negative_int(text: str) -> int:
    """``argparse`` type: a whole number >= 0."""
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive whole number, got {text}")
    return value


def check_writable(folder: str | os.PathLike, what: str = "output folder") -> Path:
    """Create ``folder`` if needed and write a file into it (then remove it); raise :class:`UsageError` in
    plain words when that fails, so a run stops before it loads a model rather than after it trained one."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise UsageError(f"cannot write to the {what} {path} ({reason}); choose another folder") from None
    return path
