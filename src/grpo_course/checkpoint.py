"""Checkpoints and resume: a run that dies (Colab sessions do) continues where it stopped.

- :func:`run_dir` picks where a run lives: Google Drive when it is mounted on Colab (it survives the
  session), else ``runs/`` in the repository (``GRPO_COURSE_RUNS`` overrides).
- The trainer saves ``checkpoint-<step>/`` every ``save_steps`` with the weights (the adapter for
  LoRA), optimizer, scheduler, RNG states and ``trainer_state.json`` (the log history).
- :func:`last_checkpoint` finds the newest *complete* checkpoint (a checkpoint cut off mid-save has no
  ``trainer_state.json`` and is skipped).
- :func:`rewind_logs` cuts our JSONL logs back to the checkpoint's step before resuming: the steps
  after it are trained again and logged again, so no row is lost and none is doubled.
- :func:`check_run_matches` refuses to resume a run made with different settings (the scheduler and
  step count would silently disagree), and says what to do.

Nothing here imports torch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from .paths import runs_dir

DRIVE_ROOT = Path("/content/drive/MyDrive")
DRIVE_FOLDER = "grpo-course-runs"
RUN_FILE = "run.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def in_colab() -> bool:
    import sys

    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def mount_drive(mountpoint: str = "/content/drive") -> bool:
    """On Colab, mount Google Drive (Colab asks for permission); False anywhere else or if refused."""
    if not in_colab():
        return False
    if DRIVE_ROOT.is_dir():
        return True
    try:
        from google.colab import drive  # type: ignore[import-not-found]

        drive.mount(mountpoint)
    except Exception as exc:  # refused, timed out, or no Drive: train locally and say so
        print(f"Google Drive not mounted ({type(exc).__name__}: {exc}); checkpoints stay in this session.")
        return False
    return DRIVE_ROOT.is_dir()


def runs_root() -> Path:
    """Google Drive on Colab when mounted, else the repository's ``runs/`` (or ``GRPO_COURSE_RUNS``)."""
    if os.environ.get("GRPO_COURSE_RUNS"):
        return runs_dir()
    if in_colab() and DRIVE_ROOT.is_dir():
        return DRIVE_ROOT / DRIVE_FOLDER
    return runs_dir()


def run_dir(task: str, profile_name: str, reward: str | None = None, root: str | Path | None = None) -> Path:
    """Where one run lives: ``<root>/<task>-<profile>[-<reward>]``. Re-running the same run resumes it."""
    name = f"{task}-{profile_name}" + (f"-{reward}" if reward else "")
    return Path(root or runs_root()) / name


def checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints (those with ``trainer_state.json``), oldest first."""
    out = []
    d = Path(output_dir)
    if not d.is_dir():
        return out
    for child in d.iterdir():
        m = _CHECKPOINT.match(child.name)
        if m and child.is_dir() and (child / "trainer_state.json").is_file():
            out.append((int(m.group(1)), child))
    return sorted(out)


def last_checkpoint(output_dir: str | Path) -> Path | None:
    found = checkpoints(output_dir)
    return found[-1][1] if found else None


def checkpoint_step(path: str | Path) -> int:
    state = json.loads((Path(path) / "trainer_state.json").read_text())
    return int(state["global_step"])


def rewind_jsonl(path: str | Path, step: int) -> int:
    """Keep only rows with ``step <= step`` (rows after the checkpoint will be logged again); returns how
    many were removed. Writes a temporary file and renames it, so a crash here loses nothing."""
    path = Path(path)
    if not path.is_file():
        return 0
    kept, removed = [], 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            row_step = json.loads(line).get("step", 0)
        except json.JSONDecodeError:  # a line cut off by the crash
            removed += 1
            continue
        if row_step is not None and row_step > step:
            removed += 1
        else:
            kept.append(line)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)
    return removed


def rewind_logs(output_dir: str | Path, step: int, names: tuple[str, ...] = ("metrics.jsonl", "samples.jsonl")
                ) -> int:
    return sum(rewind_jsonl(Path(output_dir) / n, step) for n in names)


def check_run_matches(output_dir: str | Path, identity: dict, record: bool = True) -> None:
    """Record the run's identity on first use; refuse to resume with different settings.
    ``record=False`` only checks (the non-main ranks of a multi-process run)."""
    path = Path(output_dir) / RUN_FILE
    if path.is_file():
        old = json.loads(path.read_text())
        diff = {k: (old.get(k), v) for k, v in identity.items() if old.get(k) != v}
        if diff and last_checkpoint(output_dir) is not None:
            changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
            raise ValueError(
                f"{output_dir} holds a run with different settings ({changes}). Resuming would mix them. "
                f"Use resume=False to start over (it deletes the old checkpoints) or another output_dir.")
    if record:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")  # atomic: a reader never sees half a file
        tmp.write_text(json.dumps(identity, indent=1, sort_keys=True, default=str))
        os.replace(tmp, path)


def start_fresh(output_dir: str | Path) -> None:
    """Delete old checkpoints and logs of this run (``resume=False``)."""
    d = Path(output_dir)
    for _, ckpt in checkpoints(d):
        shutil.rmtree(ckpt)
    for child in d.glob("checkpoint-*"):  # incomplete ones too
        shutil.rmtree(child, ignore_errors=True)
    for name in ("metrics.jsonl", "samples.jsonl", RUN_FILE):
        (d / name).unlink(missing_ok=True)
