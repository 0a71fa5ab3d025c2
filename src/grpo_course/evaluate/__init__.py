"""Stage 05: evaluation a researcher would trust.

* :mod:`grpo_course.metrics` (re-exported here) - ``pass_at_k`` (unbiased, Chen et al. 2021), ``maj_at_k``, Wilson and bootstrap
  intervals, paired bootstrap and McNemar for before/after.
* :mod:`grpo_course.generation` - the course's one generation loop (left padding on CPU, vLLM on GPU).
* :mod:`.runner` - ``evaluate_model``: generate, grade (lenient and strict), audit, tabulate, save;
  ``before_after``: the adapter off vs on, same template (:mod:`grpo_course.compare`'s ``Comparison``).
* :mod:`.task_score` - ``evaluate_task``: any task's held-out problems graded with its own metric
  (pass@k, tolerance accuracy, judge score), adapter off and on.
* :mod:`.audit` - reward-hacking audit flags and tables.
* :mod:`.checkpoints` - evaluate every checkpoint, pick by held-out pass@1; :mod:`.interpolate` -
  the RL adapter scaled towards its start point (the seeds' 0.7 / 0.3).
* :mod:`.data` - GSM8K from the hub or a local file with its schema; the tiny problems.
* :mod:`.published` - Meta's Llama 3.2 GSM8K figures and the protocol differences.
* :mod:`.command` - ``grpo-course eval``.

Importing this package does not import torch (the functions that generate import it when called).
"""

from ..metrics import (
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
    "before_after": ".runner", "Comparison": "..compare",
    "Decoding": "..generation", "generate_samples": "..generation",
    "evaluate_task": ".task_score", "TaskEvaluation": ".task_score",
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
