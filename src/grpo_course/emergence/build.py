"""``grpo-course build-emergence``: the starting model, a tiny Llama that knows how to write steps but rarely does.

Two rounds of supervised fine-tuning with the tiny lab's own code (:func:`grpo_course.tiny.sft.train_sft`,
tokenizer and model), on problems of :mod:`.task` drawn from their own pool (never the held-out split):

1. **pretraining**: worked solutions only (every demonstration writes its steps). The model learns the
   skill, like a base model that has read worked solutions.
2. **fine-tuning**: the bare answer in ``1 - steps_rate`` of the demonstrations, the worked solution in the
   rest (default 20%). The model learns to answer directly most of the time, and still samples steps.

The result samples steps on about a fifth of held-out problems, is right most of the time when it does
and rarely when it does not, and decodes greedily to the bare answer: the situation R1-Zero's GRPO met,
made small. Deterministic on the same torch build and thread count; ``BUILD.json`` records the
settings, versions, measurements and sha256 of every file (a few MB in all).
"""

from __future__ import annotations

import json
import math
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..paths import data_dir
from ..tiny.build import hash_tree
from ..tiny.model import TinyModelSettings
from ..tiny.sft import SFTSettings

BUILD_FILE = "BUILD.json"
POOL_SEED = 97531
STEPS_RATE = 0.2  # worked solutions among the fine-tuning demonstrations


@dataclass(frozen=True)
class EmergenceBuildSettings:
    model: TinyModelSettings = field(default_factory=TinyModelSettings)
    # flaw_rate is train_sft's rate of the *alternative* demonstration: here the bare answer.
    pretrain: SFTSettings = field(default_factory=lambda: SFTSettings(steps=800, flaw_rate=0.0, pool_size=20000))
    finetune: SFTSettings = field(default_factory=lambda: SFTSettings(
        steps=300, learning_rate=1e-3, warmup_steps=20, flaw_rate=1 - STEPS_RATE, pool_size=20000, seed=1))
    init_seed: int = 0
    threads: int = 1  # one thread: deterministic, and fastest on a CPU shared with other work

    def as_dict(self) -> dict:
        return {**asdict(self), "pool_seed": POOL_SEED}


# A shortened build for CI: too short to learn the task well; it checks the plumbing and determinism.
QUICK = EmergenceBuildSettings(pretrain=SFTSettings(steps=30, batch_size=16, flaw_rate=0.0, warmup_steps=5,
                                                    pool_size=500),
                               finetune=SFTSettings(steps=10, batch_size=16, flaw_rate=0.8, warmup_steps=2,
                                                    pool_size=500, seed=1))


def emergence_dir() -> Path:
    return data_dir() / "emergence"


def load_emergence(path: str | Path | None = None):
    """``(model, tokenizer)`` of the committed starting model (or one saved at ``path``)."""
    from ..tiny import load_tiny

    return load_tiny(path=Path(path) if path is not None else emergence_dir() / "sft")


def _demonstrations(problem: dict) -> tuple[str, str]:
    from .task import bare_demonstration, steps_demonstration

    return steps_demonstration(problem), bare_demonstration(problem)


def build_emergence(out_dir: str | Path | None = None, settings: EmergenceBuildSettings | None = None,
                    progress: bool = True, n_eval: int = 500) -> dict:
    """Pretrain and fine-tune the starting model, save it under ``out_dir`` (default ``data/emergence``)
    with ``BUILD.json``; returns the record."""
    import torch
    import transformers

    from ..tiny.model import count_parameters, make_model
    from ..tiny.sft import train_sft
    from ..tiny.tokenizer import build_tokenizer
    from .measure import measure
    from .task import generate_problems, load_split, problems_sha256

    s = settings or EmergenceBuildSettings()
    out = Path(out_dir) if out_dir is not None else emergence_dir()
    torch.set_num_threads(s.threads)
    test = load_split("test")
    tokenizer = build_tokenizer()
    model = make_model(tokenizer, s.model, seed=s.init_seed)
    pool_size = max(s.pretrain.pool_size, s.finetune.pool_size)
    pool = generate_problems(pool_size, POOL_SEED, exclude={p["question"] for p in test})

    seconds = {}
    for name, sft in (("pretrain", s.pretrain), ("finetune", s.finetune)):
        start = time.perf_counter()
        history = train_sft(model, tokenizer, pool[:sft.pool_size], sft, progress=progress,
                            demonstrations=_demonstrations)
        seconds[name] = round(time.perf_counter() - start, 1)
        seconds[f"{name}_final_loss"] = round(sum(h["loss"] for h in history[-20:]) / min(20, len(history)), 4)
    scores = measure(model, tokenizer, test[:n_eval], k=8, seed=0)

    sft_dir = out / "sft"
    if sft_dir.exists():
        shutil.rmtree(sft_dir)
    model.save_pretrained(sft_dir)
    tokenizer.save_pretrained(sft_dir)
    record = {
        "settings": s.as_dict(),
        "parameters": count_parameters(model),
        "vocab_size": len(tokenizer),
        "sft_seconds": {k: v for k, v in seconds.items() if not k.endswith("loss")},
        "sft_final_loss": {k.removesuffix("_final_loss"): v for k, v in seconds.items() if k.endswith("loss")},
        "heldout": _rounded(scores),
        "heldout_problems": {"n": len(test[:n_eval]), "sha256": problems_sha256(test)},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "python": platform.python_version()},
        "sha256": hash_tree(sft_dir, out),
    }
    (out / BUILD_FILE).write_text(json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return record


def _rounded(value):
    """Floats to 4 places, NaN (no completion of a kind to score) to None: BUILD.json stays strict JSON."""
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    return value


def read_build_record(out_dir: str | Path | None = None) -> dict:
    path = (Path(out_dir) if out_dir is not None else emergence_dir()) / BUILD_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run `grpo-course build-emergence` to build the model")
    return json.loads(path.read_text())


def with_steps(settings: EmergenceBuildSettings, pretrain: int | None = None,
               finetune: int | None = None) -> EmergenceBuildSettings:
    """``settings`` with other SFT step counts (the command line's ``--pretrain-steps``/``--finetune-steps``)."""
    if pretrain:
        settings = replace(settings, pretrain=replace(settings.pretrain, steps=pretrain))
    if finetune:
        settings = replace(settings, finetune=replace(settings.finetune, steps=finetune))
    return settings
