"""The LoRA update itself, on plain matrices: ``W' = W + s * B @ A`` with ``s = alpha / r``
(or ``alpha / sqrt(r)`` with rsLoRA). Works on numpy arrays and torch tensors alike; the
notebook writes the same lines inline and checks them against this and against peft."""

from __future__ import annotations

import math


def lora_scaling(lora_alpha: float, r: int, use_rslora: bool = False) -> float:
    """alpha / r, or alpha / sqrt(r) for rank-stabilised LoRA (rsLoRA)."""
    return lora_alpha / (math.sqrt(r) if use_rslora else r)


def lora_delta(A, B, lora_alpha: float, use_rslora: bool = False):
    """The low-rank change ``s * B @ A`` (``A``: r x d_in, ``B``: d_out x r)."""
    r = A.shape[0]
    if B.shape[1] != r:
        raise ValueError(f"A is {tuple(A.shape)} and B is {tuple(B.shape)}: B needs {r} columns")
    return lora_scaling(lora_alpha, r, use_rslora) * (B @ A)


def merged_weight(W, A, B, lora_alpha: float, use_rslora: bool = False):
    """The weight the adapted layer computes with: ``W + s * B @ A``."""
    return W + lora_delta(A, B, lora_alpha, use_rslora)
