"""Weight interpolation between the RL weights and their starting point (the seeds' "0.7 / 0.3").

The seeds' worked example did not deploy raw RL weights: it "merged best checkpoint 0.7 with SFT 0.3
for stability". For weights ``W_start`` (SFT) and ``W_rl`` (after GRPO) that is
``W(w) = w * W_rl + (1 - w) * W_start`` with ``w = 0.7``.

With LoRA, ``W_rl = W_start + (alpha / r) * B A``, so ``W(w) = W_start + w * (alpha / r) * B A``: the
interpolation is exactly **the adapter scaled by w**, nothing else changes. :func:`scaled_adapter` does
that in place for the duration of a ``with`` block by multiplying each LoRA ``B`` matrix by ``w``
(``w * (alpha / r) * B A = (alpha / r) * (w B) A``), so the interpolated model is evaluated with no copy
and no merge. It scales the weights, not peft's ``layer.scaling``: on vLLM profiles the adapter reaches
the engine through Unsloth's ``save_lora`` (the ``lora_A`` / ``lora_B`` tensors and the adapter config,
never ``layer.scaling``), so a scaling change would be lost there and the "interpolated" score would be
the plain checkpoint's.
For a fully fine-tuned model, :func:`interpolate_state_dicts` mixes two state dicts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping


def _lora_b_tensors(model) -> list:
    """Every LoRA ``B`` weight of ``model`` (linear layers' ``lora_B``, embeddings' ``lora_embedding_B``)."""
    out = []
    for module in model.modules():
        if not hasattr(module, "lora_A"):
            continue
        for part in ("lora_B", "lora_embedding_B"):
            for value in getattr(module, part, {}).values():
                out.append(value.weight if hasattr(value, "weight") else value)
    return out


@contextlib.contextmanager
def scaled_adapter(model, weight: float) -> Iterator:
    """Within the block, every LoRA layer's update is multiplied by ``weight``: the model computes
    ``W_start + weight * delta_W``, i.e. ``weight * W_rl + (1 - weight) * W_start``. Restored on exit.

    The ``B`` matrices themselves are scaled, so the adapter saved inside the block (by Unsloth's
    ``save_lora`` for vLLM, or ``save_pretrained``) is the interpolated one too."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"interpolation weight must be in [0, 1], got {weight}")
    tensors = _lora_b_tensors(model)
    if not tensors:
        raise ValueError("scaled_adapter needs a peft model with LoRA layers")
    import torch

    saved = [t.detach().clone() for t in tensors]
    try:
        with torch.no_grad():
            for t in tensors:
                t.mul_(weight)
        yield model
    finally:
        with torch.no_grad():
            for t, old in zip(tensors, saved):
                t.copy_(old)


def interpolate_state_dicts(start: Mapping, end: Mapping, weight: float) -> dict:
    """``weight * end + (1 - weight) * start`` for every floating-point tensor (others copied from ``end``)."""
    if set(start) != set(end):
        missing = sorted(set(start) ^ set(end))[:5]
        raise ValueError(f"state dicts differ in their keys, e.g. {missing}")
    out = {}
    for key, b in end.items():
        a = start[key]
        if getattr(b, "is_floating_point", lambda: False)():
            if a.shape != b.shape:
                raise ValueError(f"{key}: shapes differ ({tuple(a.shape)} vs {tuple(b.shape)})")
            out[key] = a * (1 - weight) + b * weight
        else:
            out[key] = b.clone() if hasattr(b, "clone") else b
    return out
