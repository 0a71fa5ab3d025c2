"""Stage 03: LoRA settings, exact adapter parameter counts, and a GPU memory planner.

- :mod:`.settings`: :class:`LoraSettings`, the per-profile table (:func:`lora_settings`),
  :func:`to_peft_config`.
- :mod:`.counts`: architecture facts (``data/architectures.json``) and :func:`lora_param_count`.
- :mod:`.memory`: :func:`plan_memory` and the comparison with published Unsloth figures.

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

__all__ = [
    "Architecture", "LoraCount", "architectures", "get_architecture", "lora_param_count", "module_table",
    "GPUS", "MemoryPlan", "Term", "plan_memory", "plot_plan",
    "ALL_LINEAR", "ATTENTION", "MLP", "PROFILE_LORA", "SEED_SETTINGS", "TARGET_SETS",
    "LoraSettings", "lora_settings", "parse_targets", "settings_table", "to_peft_config",
]
