"""Stage 05: evaluation a researcher would trust.

* :mod:`.metrics` - ``pass_at_k`` (unbiased, Chen et al. 2021), ``maj_at_k``, Wilson and bootstrap
  intervals, paired bootstrap and McNemar for before/after.
* :mod:`.generation` - batched generation (left padding on CPU, vLLM / Unsloth on GPU), ``n`` samples.
* :mod:`.runner` - ``evaluate_model``: generate, grade (lenient and strict), audit, tabulate, save.
* :mod:`.compare` - ``before_after``: the adapter off vs on, same template; ``Comparison``.
* :mod:`.audit` - reward-hacking audit flags and tables.
* :mod:`.checkpoints` - evaluate every checkpoint, pick by held-out pass@1; :mod:`.interpolate` -
  the RL adapter scaled towards its start point (the seeds' 0.7 / 0.3).
* :mod:`.data` - GSM8K from the hub or a local file with its schema; the tiny problems.
* :mod:`.published` - Meta's Llama 3.2 GSM8K figures and the protocol differences.
* :mod:`.command` - ``grpo-course eval``.

Importing this package does not import torch (the functions that generate import it when called).
"""

from .metrics import (
    Interval,
    McNemar,
    PairedDifference,
    bootstrap_interval,
    maj_at_k,
    majority_vote,
    mcnemar,
    mean_pass_at_k,
    naive_pass_at_k,
    paired_bootstrap,
    pass_at_k,
    pass_at_k_curve,
    wilson_interval,
)

_LAZY = {
    "evaluate_model": ".runner", "EvalResult": ".runner", "grade": ".runner",
    "before_after": ".compare", "Comparison": ".compare",
    "Decoding": ".generation", "generate_samples": ".generation",
    "audit_completion": ".audit", "audit_table": ".audit", "audit_counts": ".audit", "audit_examples": ".audit",
    "evaluate_checkpoints": ".checkpoints", "CheckpointSelection": ".checkpoints",
    "scaled_adapter": ".interpolate", "interpolate_state_dicts": ".interpolate",
    "load_gsm8k": ".data", "load_problems": ".data",
}

__all__ = [
    "Interval", "McNemar", "PairedDifference", "bootstrap_interval", "maj_at_k", "majority_vote", "mcnemar",
    "mean_pass_at_k", "naive_pass_at_k", "paired_bootstrap", "pass_at_k", "pass_at_k_curve", "wilson_interval",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
