"""The course's tiny lab: a GSM8K-style task, a tiny Llama, a flawed demonstrator, SFT, then GRPO on CPU.

``load_tiny("sft")`` returns the committed SFT model and its tokenizer from ``data/tiny/sft`` (offline,
in a second once transformers is imported). Modules: ``problems`` (task generator), ``tokenizer``, ``model``,
``demonstrator``, ``sft``, ``evaluation``, ``recipe`` (``TINY_GRPO``), ``lab`` (``run_lab``), ``build``.
Importing this package does not import torch.
"""

from __future__ import annotations

from pathlib import Path

from ..paths import data_dir

KINDS = ("sft", "sft_always_adds")  # the committed models (grpo_course.tiny.build.VARIANTS builds each)


def tiny_dir(kind: str = "sft") -> Path:
    return data_dir() / "tiny" / kind


def build_record(kind: str = "sft") -> dict:
    """The committed build record of a tiny model (``data/tiny/BUILD.json`` for ``sft``,
    ``BUILD_<kind>.json`` for the others): the build's settings, how long the SFT took (``sft_seconds``),
    and the model's held-out scores (``sft_heldout``)."""
    import json

    if kind not in KINDS:
        raise ValueError(f"unknown tiny model kind {kind!r}; committed kinds: {', '.join(KINDS)}")
    path = data_dir() / "tiny" / ("BUILD.json" if kind == "sft" else f"BUILD_{kind}.json")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run `grpo-course build-tiny --kind {kind}` to build it")
    return json.loads(path.read_text())


def load_tiny(kind: str = "sft", path: str | Path | None = None):
    """``(model, tokenizer)`` for the committed tiny model (``kind="sft"``) or a model saved at ``path``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if path is None:
        if kind not in KINDS:
            raise ValueError(f"unknown tiny model kind {kind!r}; committed kinds: {', '.join(KINDS)}")
        path = tiny_dir(kind)
    path = Path(path)
    if not (path / "config.json").exists():
        hint = f" --kind {kind}" if kind != "sft" and path == tiny_dir(kind) else ""
        raise FileNotFoundError(f"no tiny model at {path}; run `grpo-course build-tiny{hint}` to build it")
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path, dtype="float32")
    model.eval()
    return model, tokenizer
