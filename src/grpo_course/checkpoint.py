"""Checkpoints and resume: a run that dies (Colab sessions do) continues where it stopped.

- :func:`run_dir` picks where a run lives: Google Drive when it is mounted on Colab (it survives the
  session), else ``runs/`` in the repository (``GRPO_COURSE_RUNS`` overrides).
- The trainer saves ``checkpoint-<step>/`` every ``save_steps`` with the weights (the adapter for
  LoRA), optimizer, scheduler, RNG states and ``trainer_state.json`` (the log history).
- :func:`inspect_checkpoint` says whether a checkpoint is **complete**: ``trainer_state.json`` parses, and
  the weights, optimizer, scheduler and RNG files are present and not cut short (a safetensors file holds
  every byte its header promises; a ``torch.save`` file opens as the zip archive it is). Anything else is
  named in plain words. Colab writes checkpoints to Google Drive, where partial writes are real.
- :func:`last_checkpoint` finds the newest complete checkpoint; :func:`resume_point` also lists the newer
  ones it skipped and why (``train`` prints them, falls back to the previous complete checkpoint, and
  refuses in plain words when a damaged checkpoint has none before it).
- :func:`rewind_logs` cuts our JSONL logs back to the checkpoint's step before resuming: the steps
  after it are trained again and logged again, so no row is lost and none is doubled. A last line cut off
  mid-write is dropped too; :func:`read_log` reads a log without tripping over it.
- :func:`check_run_matches` refuses to resume a run made with different settings (the scheduler and
  step count would silently disagree), and says what to do.

Nothing here imports torch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .paths import runs_dir
from .usage import UsageError

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


TRAINER_STATE = "trainer_state.json"
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "pytorch_model.bin")
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")  # sharded full weights
OPTIMIZER_FILES = ("optimizer.pt", "optimizer.bin")
SCHEDULER_FILE = "scheduler.pt"
_RNG_FILE = re.compile(r"^rng_state(?:_(\d+))?\.pth$")  # rng_state.pth, or one per process: rng_state_<rank>.pth


@dataclass(frozen=True)
class CheckpointStatus:
    """One ``checkpoint-<step>`` folder: its step (``None`` when ``trainer_state.json`` does not parse) and,
    in plain words, what is missing or damaged (nothing: the checkpoint is complete)."""

    path: Path
    step: int | None
    problems: tuple[str, ...] = field(default=())
    weights_ok: bool = True  # the weights (and trainer_state.json) are whole: enough to evaluate, not to resume

    @property
    def complete(self) -> bool:
        return not self.problems

    @property
    def torn(self) -> bool:
        """The save itself was cut off: the trainer writes ``trainer_state.json`` last, and it is missing or
        unreadable. Nothing in the folder can be trusted; it is not a checkpoint."""
        return self.step is None

    def describe(self) -> str:
        return f"{self.path.name}: " + ("complete" if self.complete else "; ".join(self.problems))


def _state_step(path: Path) -> tuple[int | None, str | None]:
    state = path / TRAINER_STATE
    if not state.is_file():
        return None, f"{TRAINER_STATE} is missing (the save was cut off before it finished)"
    try:
        step = json.loads(state.read_text(encoding="utf-8"))["global_step"]
        if isinstance(step, bool) or not isinstance(step, int):
            raise TypeError
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        return None, f"{TRAINER_STATE} is cut off or damaged (it does not parse)"
    return step, None


def _torch_file_problem(path: Path, what: str) -> str | None:
    """``torch.save`` writes a zip archive whose directory sits at the end: a cut-off file does not open."""
    if not path.is_file():
        return f"{path.name} ({what}) is missing"
    try:
        with zipfile.ZipFile(path) as archive:
            if not archive.namelist():
                raise zipfile.BadZipFile
    except (OSError, zipfile.BadZipFile, ValueError):
        return f"{path.name} ({what}) is cut off or damaged ({path.stat().st_size} bytes, not a whole archive)"
    return None


def _safetensors_problem(path: Path) -> str | None:
    """A safetensors file is an 8-byte header length, a JSON header, then exactly the bytes it lists."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if n < 2 or n > size - 8:
                raise ValueError
            header = json.loads(f.read(n))
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
        return f"{path.name} (the model weights) is cut off or damaged (its header does not parse)"
    if 8 + n + end != size:
        return f"{path.name} (the model weights) is cut off ({size:,} of {8 + n + end:,} bytes)"
    return None


def _weights_problem(path: Path) -> str | None:
    for name in WEIGHT_FILES:
        if (path / name).is_file():
            if name.endswith(".safetensors"):
                return _safetensors_problem(path / name)
            return _torch_file_problem(path / name, "the model weights")
    for name in WEIGHT_INDEXES:
        if (path / name).is_file():
            try:
                shards = sorted(set(json.loads((path / name).read_text())["weight_map"].values()))
            except (OSError, ValueError, KeyError, AttributeError):
                return f"{name} (the list of weight shards) is cut off or damaged"
            for shard in shards:
                problem = (_safetensors_problem(path / shard) if shard.endswith(".safetensors")
                           else _torch_file_problem(path / shard, "a weight shard"))
                if not (path / shard).is_file():
                    problem = f"{shard} (a weight shard) is missing"
                if problem:
                    return problem
            return None
    return f"no model weights ({' or '.join(WEIGHT_FILES[:3])}) are in it"


def _rng_problem(path: Path) -> str | None:
    found = {m.group(1): child for child in path.iterdir() if (m := _RNG_FILE.match(child.name))}
    if not found:
        return "rng_state.pth (the random number generators' state) is missing"
    if None not in found:  # one file per process: ranks 0..N-1, none missing
        ranks = sorted(int(r) for r in found)
        missing = sorted(set(range(ranks[-1] + 1)) - set(ranks))
        if missing:
            return f"rng_state_{missing[0]}.pth (process {missing[0]}'s random number generators) is missing"
    for child in found.values():
        problem = _torch_file_problem(child, "the random number generators' state")
        if problem:
            return problem
    return None


def inspect_checkpoint(path: str | Path) -> CheckpointStatus:
    """Is ``checkpoint-<step>/`` complete? Its step and, in plain words, every missing or damaged part.

    Complete means: ``trainer_state.json`` parses; the weights are there and not cut short; the optimizer,
    scheduler and RNG states are there and open. DeepSpeed keeps the weights, optimizer and scheduler in its
    own ``global_step<N>/`` folder: there every ``.pt`` file must open. Nothing is loaded into memory."""
    path = Path(path)
    step, problem = _state_step(path)
    problems = [problem] if problem else []
    deepspeed = [d for d in path.glob("global_step*") if d.is_dir()]
    if deepspeed:
        files = sorted(f for d in deepspeed for f in d.glob("*.pt"))
        if not any(f.name.endswith("optim_states.pt") for f in files):
            problems.append(f"{deepspeed[0].name}/ holds no optimizer state (*optim_states.pt)")
        problems.extend(p for f in files if (p := _torch_file_problem(f, "DeepSpeed state")))
        weights = None if problems else "damaged DeepSpeed state"
    else:
        weights = _weights_problem(path)
        problems.extend(p for p in (
            weights,
            next((_torch_file_problem(path / n, "the optimizer's state") for n in OPTIMIZER_FILES
                  if (path / n).is_file()), f"{OPTIMIZER_FILES[0]} (the optimizer's state) is missing"),
            _torch_file_problem(path / SCHEDULER_FILE, "the learning-rate schedule's state"),
        ) if p)
    rng = _rng_problem(path)
    if rng:
        problems.append(rng)
    return CheckpointStatus(path, step, tuple(problems), weights_ok=step is not None and weights is None)


def checkpoint_statuses(output_dir: str | Path) -> list[CheckpointStatus]:
    """Every ``checkpoint-<N>`` folder of a run, inspected, in the order of ``N``."""
    d = Path(output_dir)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), child) for child in d.iterdir()
             if (m := _CHECKPOINT.match(child.name)) and child.is_dir()]
    return [inspect_checkpoint(child) for _, child in sorted(found)]


def checkpoints(output_dir: str | Path, need: str = "resume") -> list[tuple[int, Path]]:
    """Complete checkpoints (:func:`inspect_checkpoint`), oldest first. ``need="weights"``: every checkpoint
    whose weights and ``trainer_state.json`` are whole (enough to evaluate it; resuming needs the rest too)."""
    if need not in ("resume", "weights"):
        raise ValueError(f"need must be 'resume' or 'weights', got {need!r}")
    return [(s.step, s.path) for s in checkpoint_statuses(output_dir)
            if (s.complete if need == "resume" else s.weights_ok)]


def last_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint, or ``None``."""
    found = checkpoints(output_dir)
    return found[-1][1] if found else None


class DamagedCheckpointError(UsageError):
    """A run's checkpoint lost files after it was saved and no complete checkpoint comes before it."""


@dataclass(frozen=True)
class ResumePoint:
    """Where a run can continue: its newest complete checkpoint (``None``: none), and the newer checkpoints
    skipped on the way, each with what is wrong with it."""

    checkpoint: Path | None
    skipped: tuple[CheckpointStatus, ...] = ()

    def warnings(self) -> list[str]:
        fallback = self.checkpoint.name if self.checkpoint is not None else "a fresh start"
        return [f"{s.path.name} is incomplete and is skipped in favour of {fallback}: {'; '.join(s.problems)}"
                for s in self.skipped]


def resume_point(output_dir: str | Path) -> ResumePoint:
    """The newest complete checkpoint and the incomplete ones after it.

    Refuses (:class:`DamagedCheckpointError`, in plain words) when no complete checkpoint exists but one was
    damaged after it was saved (its ``trainer_state.json`` parses, other files are missing or cut short):
    starting afresh would delete it, so the user decides. Checkpoints whose save was cut off (no readable
    ``trainer_state.json``) never were checkpoints; with nothing before them the run starts afresh."""
    statuses = checkpoint_statuses(output_dir)
    complete = [s for s in statuses if s.complete]
    last = complete[-1] if complete else None
    after = _number(last.path) if last is not None else -1
    skipped = tuple(s for s in statuses if not s.complete and _number(s.path) > after)
    damaged = [s for s in skipped if not s.torn]
    if last is None and damaged:
        s = damaged[-1]
        raise DamagedCheckpointError(
            f"{s.path} cannot be resumed: {'; '.join(s.problems)}. There is no earlier complete checkpoint to "
            "fall back on. Put the missing file(s) back, or start over with resume='fresh' (grpo-course train "
            "--fresh), which deletes this run's checkpoints.")
    return ResumePoint(last.path if last else None, skipped)


def _number(path: Path) -> int:
    m = _CHECKPOINT.match(path.name)
    return int(m.group(1)) if m else -1


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
        except (json.JSONDecodeError, AttributeError):  # a line cut off by the crash
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


def read_log(path: str | Path) -> tuple[list[dict], int]:
    """The rows of a run's JSONL log and how many lines were not JSON (a line cut off when the session died
    mid-write). A missing file has no rows. :func:`rewind_logs` removes such lines before a run resumes."""
    path = Path(path)
    if not path.is_file():
        return [], 0
    rows, torn = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            torn += 1
            continue
        if isinstance(row, dict):
            rows.append(row)
        else:
            torn += 1
    return rows, torn


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
