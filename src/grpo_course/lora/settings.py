"""One table of LoRA settings per hardware profile, and the seeds' settings beside it.

``lora_settings("l4")`` gives the :class:`LoraSettings` a profile trains with;
``to_peft_config(settings)`` turns it into a ``peft.LoraConfig`` (CPU path), and
``settings.get_peft_model_kwargs()`` gives the keywords for Unsloth's
``FastLanguageModel.get_peft_model`` (GPU path, in ``grpo_course.gpu``).

peft is imported only inside :func:`to_peft_config`, so importing this module
stays instant and torch-free.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")
ALL_LINEAR = ATTENTION + MLP  # the seven projections of a Llama/Qwen/Mistral decoder layer

# Names a learner may type for a set of targets (CLI ``--targets``, the notebook's widget).
TARGET_SETS: dict[str, tuple[str, ...]] = {
    "all-linear": ALL_LINEAR,
    "attention": ATTENTION,
    "qkvo": ATTENTION,
    "mlp": MLP,
    "qkvo+gate+up": ATTENTION + ("gate_proj", "up_proj"),
}


def parse_targets(targets: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"all-linear"`` / ``"attention"`` / ``"q_proj,v_proj"`` / a list -> a tuple of module names."""
    if isinstance(targets, str):
        key = targets.strip()
        if key in TARGET_SETS:
            return TARGET_SETS[key]
        names = [t.strip() for t in key.split(",") if t.strip()]
    else:
        names = [str(t).strip() for t in targets]
    unknown = [n for n in names if n not in ALL_LINEAR]
    if unknown or not names:
        raise ValueError(
            f"Unknown LoRA target(s) {unknown or names!r}: use some of {', '.join(ALL_LINEAR)} "
            f"or one of the sets {', '.join(TARGET_SETS)}."
        )
    # keep the canonical order, drop duplicates
    return tuple(n for n in ALL_LINEAR if n in names)


@dataclass(frozen=True)
class LoraSettings:
    """Everything that decides a LoRA adapter's shape and scale.

    The update to a weight ``W`` is ``W + (lora_alpha / r) * B @ A`` (or
    ``lora_alpha / sqrt(r)`` with ``use_rslora``), on every module in ``target_modules``.
    """

    r: int
    lora_alpha: float
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ALL_LINEAR
    use_rslora: bool = False
    bias: str = "none"
    note: str = ""  # where the setting comes from

    def __post_init__(self):
        if int(self.r) != self.r or self.r < 1:
            raise ValueError(f"LoRA rank r must be a positive integer, got {self.r!r}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
        object.__setattr__(self, "target_modules", parse_targets(self.target_modules))

    @property
    def scaling(self) -> float:
        """The factor in front of ``B @ A``: alpha/r, or alpha/sqrt(r) with rsLoRA."""
        return self.lora_alpha / (self.r**0.5 if self.use_rslora else self.r)

    def with_overrides(self, **changes) -> LoraSettings:
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)

    def get_peft_model_kwargs(self) -> dict:
        """Keywords for ``peft.LoraConfig`` and Unsloth's ``FastLanguageModel.get_peft_model``."""
        return {
            "r": int(self.r),
            "lora_alpha": self.lora_alpha,
            "lora_dropout": self.lora_dropout,
            "target_modules": list(self.target_modules),
            "use_rslora": self.use_rslora,
            "bias": self.bias,
        }


# The seeds' and Unsloth's settings, kept verbatim so a profile can say where it comes from.
SEED_SETTINGS: dict[str, LoraSettings] = {
    "seed-3b": LoraSettings(
        r=64, lora_alpha=128, lora_dropout=0.05, target_modules=ATTENTION,
        note="seed 000 (Llama-3.2-3B GGK/GLR): r=64, alpha=128, dropout 0.05 on q,k,v,o; '~37M, ~1.2%'",
    ),
    "seed-fp8-1b": LoraSettings(
        r=16, lora_alpha=16, lora_dropout=0.0, target_modules=ATTENTION + ("gate_proj", "up_proj"),
        note="seed 003 (Llama-3.2-1B FP8 GRPO sketch): r=16, alpha=16 on q,k,v,o,gate,up",
    ),
    "unsloth-fp8-1b": LoraSettings(
        r=32, lora_alpha=64, lora_dropout=0.0, target_modules=ALL_LINEAR,
        note="Unsloth's Llama_FP8_GRPO notebook: r=32, alpha=64 on all seven projections",
    ),
}

# The one table: profile -> settings. Each row names the setting it follows.
PROFILE_LORA: dict[str, LoraSettings] = {
    "cpu-tiny": LoraSettings(
        r=8, lora_alpha=16, lora_dropout=0.0, target_modules=ALL_LINEAR,
        note="the course's tiny model on CPU: r=8 on all seven projections (on a model this small the adapter "
             "is about a tenth of its size; notebook 03 prints the exact share)",
    ),
    "t4": LoraSettings(
        r=32, lora_alpha=64, lora_dropout=0.0, target_modules=ALL_LINEAR,
        note="as unsloth-fp8-1b, on 16-bit fp16 Llama-3.2-1B weights (a T4 has no FP8 and no bf16)",
    ),
    "l4": LoraSettings(
        r=32, lora_alpha=64, lora_dropout=0.0, target_modules=ALL_LINEAR,
        note="unsloth-fp8-1b exactly: Llama-3.2-1B in block FP8 (load_in_fp8) on an L4",
    ),
    "large": LoraSettings(
        r=64, lora_alpha=128, lora_dropout=0.05, target_modules=ATTENTION,
        note="seed-3b exactly: Llama-3.2-3B, r=64/alpha=128/dropout 0.05 on q,k,v,o",
    ),
}


def lora_settings(name: str) -> LoraSettings:
    """The LoRA settings for a profile (``cpu-tiny``, ``t4``, ``l4``, ``large``) or a named seed setting."""
    if name in PROFILE_LORA:
        return PROFILE_LORA[name]
    if name in SEED_SETTINGS:
        return SEED_SETTINGS[name]
    raise ValueError(
        f"No LoRA settings named {name!r}. Profiles: {', '.join(PROFILE_LORA)}; "
        f"seed settings: {', '.join(SEED_SETTINGS)}."
    )


def to_peft_config(settings: LoraSettings, **extra):
    """A ``peft.LoraConfig`` for a causal LM with these settings (``extra`` goes to LoraConfig)."""
    from peft import LoraConfig

    kwargs = settings.get_peft_model_kwargs()
    kwargs.update(extra)
    kwargs.setdefault("task_type", "CAUSAL_LM")
    return LoraConfig(**kwargs)


def settings_table() -> list[dict]:
    """Rows for printing the table: every profile and every seed setting."""
    rows = []
    for kind, table in (("profile", PROFILE_LORA), ("seed", SEED_SETTINGS)):
        for name, s in table.items():
            rows.append({
                "name": name, "kind": kind, "r": s.r, "lora_alpha": s.lora_alpha, "scaling": s.scaling,
                "lora_dropout": s.lora_dropout, "targets": ",".join(s.target_modules),
                "use_rslora": s.use_rslora, "note": s.note,
            })
    return rows
