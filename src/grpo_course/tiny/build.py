"""``grpo-course build-tiny``: rebuild ``data/tiny/`` (problems, tokenizer, SFT model) from scratch.

Deterministic: the same settings give the same problems and tokenizer byte for byte and, on the same
torch build, thread count and CPU, the same weights (another CPU can take other kernel paths: on this project's
AMD EPYC machine the committed ``sft`` model, whose record names no CPU, rebuilt on 2026-12-04 with other weights of
the same held-out scores). New records name the CPU in ``versions``. ``BUILD.json`` records the settings, the versions, the
SFT model's held-out scores and the sha256 of every artifact file, so a rebuild can be checked.

:data:`VARIANTS` names every committed model: ``sft`` (``data/tiny/sft``, recorded in ``BUILD.json``) and the
models an experiment needs, each in ``data/tiny/<kind>`` with its record ``BUILD_<kind>.json``
(``grpo-course build-tiny --kind <kind>``). ``sft_always_adds`` is SFT on a demonstrator that adds instead
of subtracting every time (flaw rate 1.0), the starting point of notebook 09's "RL cannot find what it
never samples".
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..paths import data_dir
from .model import TinyModelSettings
from .sft import SFTSettings

SFT_POOL_SEED = 42
BUILD_FILE = "BUILD.json"


@dataclass(frozen=True)
class BuildSettings:
    model: TinyModelSettings = field(default_factory=TinyModelSettings)
    sft: SFTSettings = field(default_factory=SFTSettings)
    init_seed: int = 0
    threads: int = 1  # one thread: deterministic, and fastest on a CPU shared with other work

    def as_dict(self) -> dict:
        return {"model": self.model.as_dict(), "sft": self.sft.as_dict(), "init_seed": self.init_seed,
                "threads": self.threads, "sft_pool_seed": SFT_POOL_SEED}


# A shortened build for CI: enough SFT to learn the format and the easy arithmetic, not the full model.
QUICK = BuildSettings(sft=SFTSettings(steps=200, batch_size=32, warmup_steps=20, pool_size=3000))

# Every committed tiny model and the settings that build it (grpo_course.tiny.KINDS lists the same names).
VARIANTS: dict[str, BuildSettings] = {
    "sft": BuildSettings(),
    # the same SFT with flaw rate 1.0; batches grouped by length (about 20% less compute, same data)
    "sft_always_adds": BuildSettings(sft=SFTSettings(flaw_rate=1.0, bucket_steps=8)),
}


def record_name(kind: str = "sft") -> str:
    """The build record's file name: ``BUILD.json`` for the main model, ``BUILD_<kind>.json`` for the others."""
    if kind not in VARIANTS:
        raise ValueError(f"unknown tiny model kind {kind!r}; choose from {', '.join(VARIANTS)}")
    return BUILD_FILE if kind == "sft" else f"BUILD_{kind}.json"


def cpu_name() -> str:
    """The CPU's model name: float results (and so the weights) can differ between CPUs that take other kernel paths
    even with the same torch build and thread count."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_tree(root: Path, rel_to: Path) -> dict[str, str]:
    return {str(p.relative_to(rel_to)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def build_tiny(out_dir: str | Path | None = None, settings: BuildSettings | None = None,
               problems_only: bool = False, progress: bool = True, n_eval: int = 500, kind: str = "sft") -> dict:
    """Write problems, tokenizer and the ``kind`` model (in ``<kind>/``) under ``out_dir`` (default ``data/tiny``),
    with its record (:func:`record_name`); ``settings`` default to ``VARIANTS[kind]``. Returns the record."""
    import torch
    import transformers

    from .evaluation import evaluate
    from .model import count_parameters, make_model
    from .problems import generate_problems, make_splits, write_jsonl
    from .sft import train_sft
    from .tokenizer import build_tokenizer, build_vocab

    record_file = record_name(kind)
    s = settings or VARIANTS[kind]
    out = Path(out_dir) if out_dir is not None else data_dir() / "tiny"
    splits = make_splits()
    for name, rows in splits.items():
        write_jsonl(rows, out / "problems" / f"{name}.jsonl")
    record: dict = {"settings": s.as_dict(), "splits": {k: len(v) for k, v in splits.items()}}
    if kind != "sft":
        record["kind"] = kind
    if problems_only:
        record["sha256"] = hash_tree(out / "problems", out)
        return record

    torch.set_num_threads(s.threads)
    vocab = build_vocab()
    tokenizer = build_tokenizer(vocab)
    model = make_model(tokenizer, s.model, seed=s.init_seed)
    test_questions = {p["question"] for p in splits["test"]}
    pool = generate_problems(s.sft.pool_size, SFT_POOL_SEED, exclude=test_questions)
    start, cpu = time.perf_counter(), time.process_time()
    history = train_sft(model, tokenizer, pool, s.sft, progress=progress)
    sft_seconds, sft_cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    scores = evaluate(model, tokenizer, splits["test"][:n_eval], k=8, seed=0)

    sft_dir = out / kind
    if sft_dir.exists():
        shutil.rmtree(sft_dir)
    model.save_pretrained(sft_dir)
    # a tokenizer as built, not the one training and evaluation used: each call with or without padding changes the
    # padding stored in tokenizer.json, so the saved bytes would depend on how the last call happened to tokenize
    build_tokenizer(vocab).save_pretrained(sft_dir)
    record.update({
        "parameters": count_parameters(model),
        "vocab_size": len(tokenizer),
        "sft_seconds": round(sft_seconds, 1),
        "sft_cpu_seconds": round(sft_cpu_seconds, 1),  # CPU time: what the build costs, whatever else runs
        "sft_final_loss": round(sum(h["loss"] for h in history[-20:]) / min(20, len(history)), 4),
        "sft_heldout": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in scores.items()},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "python": platform.python_version(), "cpu": cpu_name()},
        "sha256": hash_tree(out / "problems", out) | hash_tree(sft_dir, out),
    })
    (out / record_file).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
