"""Stage 03: LoRA settings, exact adapter parameter counts, and a GPU memory planner.

- :mod:`.settings`: :class:`LoraSettings`, the per-profile table (:func:`lora_settings`),
  :func:`to_peft_config`.
- :mod:`.counts`: architecture facts (``data/architectures.json``) and :func:`lora_param_count`.
- :mod:`.memory`: :func:`plan_memory`; :mod:`.published`: the comparison with Unsloth's figures.
- :mod:`.update`: the update ``W + (alpha/r) B A`` on plain matrices.

Nothing here imports torch or peft at import time.
"""

from .counts import Architecture, LoraCount, architectures, get_architecture, lora_param_count, module_table
from .memory import GPUS, MemoryPlan, Term, plan_memory, plot_plan
from .settings import (
    ALL_LINEAR,
    ATTENTION,
    MLP,
    PROFILE_LORA,
    SEED_SETTINGS,
    TARGET_SETS,
    LoraSettings,
    lora_settings,
    parse_targets,
    settings_table,
    to_peft_config,
)
from .update import lora_delta, lora_scaling, merged_weight

__all__ = [
    "Architecture", "LoraCount", "architectures", "get_architecture", "lora_param_count", "module_table",
    "GPUS", "MemoryPlan", "Term", "plan_memory", "plot_plan", "lora_delta", "lora_scaling", "merged_weight",
    "ALL_LINEAR", "ATTENTION", "MLP", "PROFILE_LORA", "SEED_SETTINGS", "TARGET_SETS",
    "LoraSettings", "lora_settings", "parse_targets", "settings_table", "to_peft_config",
]
