"""The one switch: which hardware profile this runtime gets, and what it implies.

A profile changes sizes and backends (model, dtype, quantization, generation
engine, group size, lengths, steps), never the lesson's logic. Notebooks read
``profile.device`` instead of writing ``"cuda"``.

Decision rule (first match wins):

=============================  ==========  ===============================================
condition                      profile     why
=============================  ==========  ===============================================
``GRPO_COURSE_PROFILE`` set    that one    explicit override
no CUDA device                 cpu-tiny    the project's tiny model, trained on CPU
capability >= 8.0, >= 40 GB    large       bf16, bigger model and groups
capability >= 8.9              l4          FP8 block weights + bf16 + vLLM (Ada/Hopper)
anything else (e.g. T4, 7.5)   t4          fp16 compute, 16-bit weights, no FP8/bf16/vLLM
=============================  ==========  ===============================================

Importing this module does not import torch; :func:`detect_device` does, lazily.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .paths import REPO_ROOT

PROFILE_ENV_VAR = "GRPO_COURSE_PROFILE"

# Usable memory Colab reports: the "Max memory" line of Unsloth's start-up banner in the saved outputs of
# github.com/unslothai/notebooks, nb/Llama3.1_(8B)-GRPO.ipynb (Tesla T4: 14.741 GB) and
# nb/Llama_FP8_GRPO.ipynb (L4: 22.161 GB).
T4_USABLE_GB = 14.74
L4_USABLE_GB = 22.16


@dataclass(frozen=True)
class DeviceInfo:
    """What the decision rule needs to know about one accelerator."""

    name: str
    compute_capability: tuple[int, int]
    total_memory_gb: float

    @property
    def supports_bf16(self) -> bool:
        return self.compute_capability >= (8, 0)

    @property
    def supports_fp8(self) -> bool:
        # Unsloth allows block-FP8 from sm89 (L4) on; T4/A100 raise a ValueError.
        return self.compute_capability >= (8, 9)


@dataclass(frozen=True)
class Profile:
    """Sizes and backends for one kind of runtime."""

    name: str
    description: str
    device: str  # "cpu" or "cuda": the only place a device string is decided
    model_id: str  # hub id on GPU; a path relative to the repo for cpu-tiny
    dtype: str  # "float32" | "float16" | "bfloat16"
    quantization: str  # "none" | "fp8-block" | "4bit-nf4"
    generation_backend: str  # "transformers" | "vllm"
    num_generations: int  # G: completions per prompt
    per_device_train_batch_size: int  # completions per device per micro-step
    gradient_accumulation_steps: int
    max_prompt_length: int  # prompts longer than this are filtered out
    max_completion_length: int
    max_steps: int
    gpu_memory_utilization: float = 0.0  # vLLM's share of GPU memory (0 = no vLLM)

    @property
    def uses_vllm(self) -> bool:
        return self.generation_backend == "vllm"

    @property
    def bf16(self) -> bool:
        return self.dtype == "bfloat16"

    @property
    def fp16(self) -> bool:
        return self.dtype == "float16"

    @property
    def load_in_fp8(self) -> bool:
        return self.quantization == "fp8-block"

    @property
    def load_in_4bit(self) -> bool:
        return self.quantization == "4bit-nf4"

    def model_path(self) -> str:
        """The model id to load: repo-relative paths are resolved, hub ids pass through."""
        if self.model_id.startswith("data/"):
            return str(REPO_ROOT / self.model_id)
        return self.model_id

    def with_overrides(self, **changes) -> Profile:
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "cpu-tiny": Profile(
        name="cpu-tiny",
        description="CPU only: the course's tiny Llama, SFT-built ahead of time; GRPO on it takes under a minute",
        device="cpu",
        model_id="data/tiny/sft",
        dtype="float32",
        quantization="none",
        generation_backend="transformers",
        num_generations=8,
        per_device_train_batch_size=32,
        gradient_accumulation_steps=1,
        max_prompt_length=96,
        max_completion_length=48,
        max_steps=20,  # the tiny recipe's (grpo_course.tiny.recipe.TINY_GRPO), so the printed profile is what runs
    ),
    "t4": Profile(
        name="t4",
        description="Colab T4 (sm75, 15 GB): fp16 compute, 16-bit LoRA, transformers generation",
        device="cuda",
        model_id="unsloth/Llama-3.2-1B-Instruct",
        dtype="float16",
        quantization="none",
        generation_backend="transformers",
        num_generations=4,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
        max_prompt_length=256,
        max_completion_length=512,
        max_steps=100,
    ),
    "l4": Profile(
        name="l4",
        description="Colab L4 (sm89, 22 GB): FP8 block weights, bf16, vLLM generation",
        device="cuda",
        model_id="unsloth/Llama-3.2-1B-Instruct",
        dtype="bfloat16",
        quantization="fp8-block",
        generation_backend="vllm",
        num_generations=8,
        per_device_train_batch_size=8,
        gradient_accumulation_steps=1,
        max_prompt_length=256,
        max_completion_length=1024,
        max_steps=250,
        # <= Unsloth's standby tier for a 22 GB GPU (0.825 x 0.95 = 0.78); see grpo_course.gpu
        gpu_memory_utilization=0.75,
    ),
    "large": Profile(
        name="large",
        description="A100/H100-class (>= 40 GB, bf16): Llama 3.2 3B, bigger groups, vLLM",
        device="cuda",
        model_id="unsloth/Llama-3.2-3B-Instruct",
        dtype="bfloat16",
        quantization="none",
        generation_backend="vllm",
        num_generations=16,
        per_device_train_batch_size=16,
        gradient_accumulation_steps=1,
        max_prompt_length=256,
        max_completion_length=1024,
        max_steps=500,
        gpu_memory_utilization=0.6,
    ),
}


class UnknownProfileError(ValueError):
    pass


def load_average() -> str:
    """``"load average 1.20 0.90 0.75"`` (1, 5 and 15 minutes): benchmarks print it beside wall times, which a
    busy machine stretches; ``"load average n/a"`` where the platform has none."""
    try:
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except (OSError, AttributeError):
        return "load average n/a"


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownProfileError(
            f"Unknown profile {name!r}. Choose one of: {', '.join(PROFILES)} "
            f"(or unset {PROFILE_ENV_VAR} to detect it)."
        ) from None


def choose_profile(device: DeviceInfo | None, override: str | None = None) -> tuple[Profile, str]:
    """Apply the decision rule; returns the profile and a one-line reason."""
    if override:
        return get_profile(override), f"{PROFILE_ENV_VAR}={override} overrides detection"
    if device is None:
        return PROFILES["cpu-tiny"], "no CUDA device found: training the tiny model on CPU"
    cc = "{}.{}".format(*device.compute_capability)
    if device.supports_bf16 and device.total_memory_gb >= 40:
        return PROFILES["large"], f"{device.name} (sm{cc}, {device.total_memory_gb:.0f} GB): bf16 with room for 3B"
    if device.supports_fp8:
        return PROFILES["l4"], f"{device.name} (sm{cc}) supports FP8 and bf16: FP8 Llama 3.2 1B with vLLM"
    if device.supports_bf16:
        why = "bf16 but no FP8 and < 40 GB"
    else:
        why = "no FP8 and no bf16"
    return PROFILES["t4"], f"{device.name} (sm{cc}): {why}, so the 16-bit fp16 recipe"


def _device_from_torch() -> DeviceInfo | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return DeviceInfo(props.name, (props.major, props.minor), props.total_memory / 1024**3)


def _device_from_nvidia_smi() -> DeviceInfo | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,compute_cap,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_nvidia_smi(out)


def parse_nvidia_smi(output: str) -> DeviceInfo | None:
    """Parse the first line of ``nvidia-smi --query-gpu=name,compute_cap,memory.total``."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    if not lines:
        return None
    name, cap, mem_mib = (part.strip() for part in lines[0].split(","))
    major, minor = (int(x) for x in cap.split("."))
    return DeviceInfo(name, (major, minor), float(mem_mib) / 1024)


def detect_device() -> DeviceInfo | None:
    """The first CUDA device, from torch if it is importable, else from nvidia-smi.

    nvidia-smi lets the Colab install cell pick pins before torch is imported.
    """
    import sys

    if "torch" in sys.modules or shutil.which("nvidia-smi") is None:
        return _device_from_torch()
    return _device_from_nvidia_smi() or _device_from_torch()


def current_profile() -> tuple[Profile, str]:
    """The profile for this runtime, honouring ``GRPO_COURSE_PROFILE``."""
    override = os.environ.get(PROFILE_ENV_VAR) or None
    device = None if override else detect_device()
    return choose_profile(device, override)


def describe(profile: Profile, reason: str) -> str:
    rows = [f"profile: {profile.name}  ({reason})", f"  {profile.description}"]
    for key in ("device", "model_id", "dtype", "quantization", "generation_backend", "num_generations",
                "max_prompt_length", "max_completion_length", "max_steps"):
        rows.append(f"  {key:<22} {getattr(profile, key)}")
    return "\n".join(rows)


def model_dir_exists(profile: Profile) -> bool:
    return profile.model_id.startswith("data/") and Path(profile.model_path()).is_dir()
