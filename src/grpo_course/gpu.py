"""Every Unsloth and vLLM call the course makes, in one place, imported lazily.

Nothing here imports torch, Unsloth, vLLM or TRL at module level: ``import grpo_course.gpu``
works on any CPU machine. The keyword arguments of every call are built by small pure functions
(:func:`from_pretrained_kwargs`, :func:`peft_kwargs`, :func:`sampling_params_kwargs`, ...), so the
course's choices can be read and unit-tested on a CPU, and ``tests/test_gpu_contracts.py`` checks
every keyword against the source of the pinned wheels (``colab_pins.txt``) without a GPU.

The course's choices on GPU profiles, and why (facts read in the pinned Unsloth 2026.10.7 /
unsloth_zoo 2026.10.7 / TRL 1.14.0 / vLLM 0.19.1 sources: github.com/unslothai/unsloth
``unsloth/models/rl.py`` (GRPO defaults, batch rounding), ``unsloth/models/loader_utils.py``, ``mapper.py`` and
``_utils.py`` (FP8 checks and the FP8-Block mapping); github.com/unslothai/unsloth-zoo
``unsloth_zoo/vllm_utils.py`` (standby memory tiers and ``UNSLOTH_VLLM_STANDBY_UTIL_OVERRIDE``); the memory-
efficient RL page of docs.unsloth.ai (standby); unslothai/notebooks PR #336 (vLLM's last release with an
attention backend for sm75 is 0.11.2: the xformers backend is deleted in 0.12.0)):

* **Import order and environment.** Unsloth patches TRL and transformers when it is imported, so
  :func:`import_unsloth` runs before anything imports them. ``UNSLOTH_VLLM_STANDBY`` is read at
  import time (unsloth_zoo sets the CUDA allocator from it), so it is set first: ``1`` on vLLM
  profiles (vLLM's KV cache sleeps while the trainer runs), ``0`` on the T4 (no vLLM; standby would
  only switch off PyTorch's expandable segments).
* **vLLM memory.** With standby on, unsloth_zoo replaces ``gpu_memory_utilization`` by its own tier
  for the GPU's size (0.825 x 0.95 = 0.78 on a 22 GB L4 with vLLM >= 0.11) and prints that it did.
  We set ``UNSLOTH_VLLM_STANDBY_UTIL_OVERRIDE=1`` so the profile's number is the one used, and keep
  the profile's numbers at or below Unsloth's tier (L4: 0.75).
* **Weights.** Unsloth's ``from_pretrained`` loads 4-bit by default (``load_in_4bit=True``); we
  always pass ``load_in_4bit`` explicitly. L4: ``load_in_fp8=True``, which the model-name mapper
  resolves to the pre-quantized ``unsloth/Llama-3.2-1B-Instruct-FP8-Block`` (on-the-fly FP8 would
  need an H100). T4: no FP8 (sm75 raises), no bf16: 16-bit weights with fp16 compute, and
  ``fast_inference=False`` because no vLLM release that resolves beside this stack runs on sm75.
* **GRPOConfig.** Unsloth's patched ``GRPOConfig`` swaps some of TRL's defaults for its own when a
  keyword is left out (:data:`UNSLOTH_GRPO_DEFAULTS`), and changes some passed values
  (:func:`unsloth_silent_changes`): an explicit ``loss_type="dapo"`` gets ``epsilon_high=0.28`` and
  ``mask_truncated_completions=True`` unless they are passed; a batch that is not a whole number
  of groups is raised to ``num_generations``. :func:`grpo_config_overrides` passes every such value
  explicitly, so the GPU run trains with the settings the lessons describe.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .hardware import Profile, current_profile, detect_device

if TYPE_CHECKING:  # pragma: no cover
    from .lora import LoraSettings


class GPUUnavailableError(RuntimeError):
    """A GPU-only step was asked for on a runtime that cannot run it."""


# Environment Unsloth reads; both are set by import_unsloth() before `import unsloth`.
STANDBY_ENV = "UNSLOTH_VLLM_STANDBY"
STANDBY_UTIL_OVERRIDE_ENV = "UNSLOTH_VLLM_STANDBY_UTIL_OVERRIDE"

# Modules Unsloth must patch: if one is imported before Unsloth, its patches come too late.
PATCHED_BY_UNSLOTH = ("trl", "transformers", "peft")

# What Unsloth 2026.10.7's patched GRPOConfig uses when a keyword is left out (unsloth/models/rl.py,
# the two `replacements` tables; tests/test_gpu_contracts.py checks this copy against the pinned
# wheel). `None` for loss_type/beta/mask_truncated_completions is a sentinel resolved later:
# loss_type -> "dapo" (TRL >= 0.22), beta -> 0.0 for dapo / dr_grpo else 0.001, mask -> False.
UNSLOTH_GRPO_DEFAULTS: dict[str, Any] = {
    "output_dir": None,
    "logging_nan_inf_filter": False,
    "per_device_train_batch_size": 4,
    "gradient_accumulation_steps": 2,
    "weight_decay": 0.001,
    "seed": 3407,
    "optim": "adamw_8bit",
    "learning_rate": 5e-05,
    "per_device_eval_batch_size": 4,
    "eval_accumulation_steps": 2,
    "torch_empty_cache_steps": 250,
    "logging_steps": 1,
    "max_seq_length": None,
    "num_generations": 8,
    "vllm_mode": "colocate",
    "generation_kwargs": {},
    "bf16": False,
    "fp16": False,
    "report_to": "none",
    "include_tokens_per_second": False,
    "include_num_input_tokens_seen": False,
    "auto_find_batch_size": False,
    "dataloader_pin_memory": True,
    "padding_free": None,
    "warmup_steps": 0.1,  # transformers >= 5 (warmup_ratio before)
    "loss_type": None,
    "beta": None,
    "vllm_importance_sampling_correction": False,
    "router_aux_loss_coef": 0.0,
    "mask_truncated_completions": None,
}

# TRL 1.14.0's defaults where Unsloth's differ and the difference changes what is learned
# (trl/trainer/grpo_config.py, base_config.py, transformers 5.17 TrainingArguments).
TRL_DEFAULTS_UNSLOTH_CHANGES: dict[str, Any] = {
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "weight_decay": 0.0,
    "seed": 42,
    "optim": "adamw_torch_fused",
    "learning_rate": 1e-06,
    "bf16": None,  # None = True unless fp16
    "fp16": False,
    "warmup_steps": 0,
    "vllm_importance_sampling_correction": True,
}

TRL_EPSILON_DEFAULT = 0.2  # TRL's lower (and, with epsilon_high=None, upper) clipping range


# --------------------------------------------------------------------------- the import


def unsloth_env(profile: Profile) -> dict[str, str]:
    """Environment variables Unsloth must see before it is imported, for this profile."""
    if profile.uses_vllm:
        return {STANDBY_ENV: "1", STANDBY_UTIL_OVERRIDE_ENV: "1"}
    return {STANDBY_ENV: "0"}


def _no_gpu_message(profile: Profile) -> str:
    return (
        f"Profile {profile.name} runs Unsloth, which needs an NVIDIA GPU, and this runtime has none "
        f"(`import unsloth` raises without one). On Colab: Runtime > Change runtime type > T4 or L4 GPU, "
        f"then run the notebook from the top. On a CPU machine, unset GRPO_COURSE_PROFILE to get the "
        f"cpu-tiny profile, which trains the course's tiny model with plain TRL."
    )


def import_unsloth(profile: Profile | None = None):
    """Import Unsloth the way the course needs it, or raise a clear error. Returns the module.

    Checks, in order: the profile is a GPU profile, a CUDA device is visible (without importing
    Unsloth), Unsloth is installed. Then sets :func:`unsloth_env` and imports ``unsloth`` before
    TRL/transformers/peft, warning if one of them was imported first.
    """
    if profile is None:
        profile = current_profile()[0]
    if profile.device != "cuda":
        raise GPUUnavailableError(
            f"Profile {profile.name} trains on the CPU with plain TRL and never imports Unsloth; "
            f"import_unsloth() is for the GPU profiles (t4, l4, large).")
    if "unsloth" not in sys.modules:
        if detect_device() is None:
            raise GPUUnavailableError(_no_gpu_message(profile))
        if importlib.util.find_spec("unsloth") is None:
            raise ImportError(
                f"Unsloth is not installed. Run the notebook's first cell (on Colab it installs the pinned "
                f"{profile.name} stack from grpo_course/colab_pins.txt), or: "
                f"python -c 'from grpo_course.bootstrap import install_gpu_stack, PROFILES; "
                f"install_gpu_stack(PROFILES[\"{profile.name}\"])'")
    wanted = unsloth_env(profile)
    if "unsloth" in sys.modules:
        wrong = {k: v for k, v in wanted.items() if os.environ.get(k) != v}
        if wrong:
            warnings.warn(f"Unsloth was imported before grpo_course set {wrong}; restart the runtime and "
                          f"let import_unsloth() import it, or the profile's memory settings do not apply.",
                          stacklevel=2)
        return sys.modules["unsloth"]
    early = [m for m in PATCHED_BY_UNSLOTH if m in sys.modules]
    if early:
        warnings.warn(f"{', '.join(early)} imported before Unsloth: Unsloth cannot patch what is already loaded. "
                      f"Restart the runtime and call grpo_course.gpu.import_unsloth() first.", stacklevel=2)
    os.environ.update(wanted)
    import unsloth

    return unsloth


# --------------------------------------------------------------------------- keyword builders (pure)


def max_seq_length(profile: Profile) -> int:
    """Prompt plus completion: the longest sequence training and vLLM must hold."""
    return profile.max_prompt_length + profile.max_completion_length


def from_pretrained_kwargs(profile: Profile, lora: LoraSettings) -> dict[str, Any]:
    """Keywords for ``FastLanguageModel.from_pretrained`` on a GPU profile.

    No ``random_state``: Unsloth 2026.10.7 accepts it but the Llama loader never reads it (the
    contract test caught that); the seed goes to ``get_peft_model`` and to TRL instead.
    """
    _require_gpu_profile(profile)
    kwargs: dict[str, Any] = {
        "model_name": profile.model_path(),
        "max_seq_length": max_seq_length(profile),
        "dtype": profile.dtype,  # Unsloth accepts "float16" / "bfloat16" and turns them into torch dtypes
        "load_in_4bit": profile.load_in_4bit,  # Unsloth's default is True (QLoRA): always say which
        "load_in_fp8": profile.load_in_fp8,  # L4: resolves to the pre-quantized FP8-Block checkpoint
        "fast_inference": profile.uses_vllm,  # vLLM engine inside the model (model.fast_generate)
    }
    if profile.uses_vllm:
        kwargs["gpu_memory_utilization"] = profile.gpu_memory_utilization
        kwargs["max_lora_rank"] = int(lora.r)  # vLLM serves adapters up to this rank
    return kwargs


def peft_kwargs(lora: LoraSettings, seed: int = 0) -> dict[str, Any]:
    """Keywords for ``FastLanguageModel.get_peft_model``: the stage-03 table plus Unsloth's checkpointing."""
    kwargs = dict(lora.get_peft_model_kwargs())
    kwargs["use_gradient_checkpointing"] = "unsloth"  # Unsloth's offloaded checkpointing: long completions fit
    kwargs["random_state"] = seed
    return kwargs


def grpo_config_overrides(profile: Profile) -> dict[str, Any]:
    """Extra ``GRPOConfig`` keywords on a GPU profile; :func:`grpo_config_reasons` says why for each."""
    _require_gpu_profile(profile)
    out: dict[str, Any] = {
        "bf16": profile.bf16,
        "fp16": profile.fp16,
        "use_vllm": profile.uses_vllm,
        "optim": "adamw_8bit",
        "weight_decay": 0.0,
        "epsilon_high": TRL_EPSILON_DEFAULT,
    }
    if profile.uses_vllm:
        out.update({
            "vllm_mode": "colocate",
            "vllm_gpu_memory_utilization": profile.gpu_memory_utilization,
            "vllm_enable_sleep_mode": True,
            "vllm_importance_sampling_correction": False,
        })
    return out


GRPO_OVERRIDE_REASONS: dict[str, str] = {
    "bf16": "bf16 autocast where the GPU has it (sm80+); a T4 has none",
    "fp16": "fp16 autocast on a T4 (no bf16); Unsloth raises if the weights' dtype and this disagree",
    "use_vllm": "vLLM generates on the L4 and larger profiles (Unsloth forces it on anyway when the model "
                "has a vLLM engine); the T4 generates with transformers",
    "optim": "8-bit AdamW states (bitsandbytes), as in Unsloth's GRPO notebooks; passed so it is a choice, "
             "not a silent default",
    "weight_decay": "TRL's default and the CPU run's value; Unsloth would silently use 0.001",
    "epsilon_high": "symmetric clipping (epsilon_high = epsilon = 0.2) as in lesson 01; with loss_type "
                    "'dapo' passed, Unsloth would silently set 0.28",
    "vllm_mode": "vLLM runs inside the training process (Unsloth's only mode)",
    "vllm_gpu_memory_utilization": "the profile's share for vLLM; Unsloth sized the engine with the same "
                                   "number at load time",
    "vllm_enable_sleep_mode": "standby: vLLM's KV cache sleeps while the trainer computes gradients",
    "vllm_importance_sampling_correction": "Unsloth's GRPO trainer switches TRL's vLLM importance-sampling "
                                           "correction off; passing False says so instead of pretending",
}


def grpo_config_reasons(profile: Profile) -> dict[str, str]:
    """Why each of :func:`grpo_config_overrides`' values is what it is."""
    return {k: GRPO_OVERRIDE_REASONS[k] for k in grpo_config_overrides(profile)}


def unsloth_silent_changes(kwargs: dict[str, Any], world_size: int = 1) -> list[str]:
    """What Unsloth's patched GRPOConfig would change in these keywords without saying so in the code.

    An empty list means the run trains with exactly the values passed (plus TRL's own defaults).
    """
    changes = []
    for key, trl_default in TRL_DEFAULTS_UNSLOTH_CHANGES.items():
        if key.startswith("vllm_") and not kwargs.get("use_vllm"):
            continue  # only matters when vLLM generates
        if key not in kwargs and UNSLOTH_GRPO_DEFAULTS[key] != trl_default:
            changes.append(f"{key}: not passed, so Unsloth uses {UNSLOTH_GRPO_DEFAULTS[key]!r} "
                           f"(TRL's default is {trl_default!r})")
    loss_type = kwargs.get("loss_type")
    if isinstance(loss_type, str) and loss_type.lower() == "dapo":
        if kwargs.get("epsilon_high") is None:
            changes.append("epsilon_high: loss_type='dapo' passed, so Unsloth sets 0.28 (TRL: = epsilon)")
        if kwargs.get("mask_truncated_completions") is None:
            changes.append("mask_truncated_completions: loss_type='dapo' passed, so Unsloth sets True "
                           "(TRL: False)")
    if isinstance(loss_type, str) and loss_type.lower() == "dr_grpo":
        if kwargs.get("scale_rewards", "group") in (True, "group"):
            changes.append("scale_rewards: loss_type='dr_grpo', so Unsloth sets False")
    if kwargs.get("steps_per_generation") is None and kwargs.get("generation_batch_size") is None:
        per_device = kwargs.get("per_device_train_batch_size", UNSLOTH_GRPO_DEFAULTS["per_device_train_batch_size"])
        accum = kwargs.get("gradient_accumulation_steps", UNSLOTH_GRPO_DEFAULTS["gradient_accumulation_steps"])
        g = kwargs.get("num_generations", UNSLOTH_GRPO_DEFAULTS["num_generations"])
        if (per_device * accum * world_size) % g:
            changes.append(f"per_device_train_batch_size: {per_device} x {accum} x {world_size} is not a multiple "
                           f"of num_generations={g}, so Unsloth raises the batch to {g}")
    temperature = kwargs.get("temperature", 1.0)
    if not 0 < temperature < 10:
        changes.append(f"temperature={temperature}: Unsloth raises a ValueError outside (0, 10)")
    return changes


def sampling_params_kwargs(max_new_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
                           seed: int | None = 0) -> dict[str, Any]:
    """Keywords for ``vllm.SamplingParams``: greedy at temperature 0, else plain sampling."""
    kwargs: dict[str, Any] = {"max_tokens": int(max_new_tokens), "temperature": float(max(temperature, 0.0)),
                              "top_p": float(top_p), "top_k": 0}  # vLLM 0.19: top_k 0 = all tokens
    if seed is not None:
        kwargs["seed"] = int(seed)
    return kwargs


def fast_generate_kwargs(sampling_params, lora_request) -> dict[str, Any]:
    """Keywords for ``model.fast_generate`` (vLLM's ``LLM.generate``)."""
    return {"sampling_params": sampling_params, "lora_request": lora_request, "use_tqdm": False}


def hf_generate_kwargs(max_new_tokens: int, temperature: float, pad_token_id: int | None) -> dict[str, Any]:
    """Generation keywords for transformers' ``model.generate`` (T4 profile; Unsloth's fast path)."""
    kwargs: dict[str, Any] = {"max_new_tokens": int(max_new_tokens), "pad_token_id": pad_token_id}
    if temperature > 0:
        kwargs.update(do_sample=True, temperature=float(temperature))
    else:
        kwargs["do_sample"] = False
    return kwargs


def merged_save_kwargs() -> dict[str, Any]:
    """Keywords for ``model.save_pretrained_merged``: LoRA merged into 16-bit weights."""
    return {"save_method": "merged_16bit"}


GGUF_QUANTIZATIONS = ("q8_0", "q4_k_m", "f16")


def gguf_save_kwargs(quantization_method: str = "q8_0") -> dict[str, Any]:
    """Keywords for ``model.save_pretrained_gguf`` (llama.cpp / Ollama files)."""
    if quantization_method not in GGUF_QUANTIZATIONS:
        raise ValueError(f"quantization_method {quantization_method!r}: the course uses one of {GGUF_QUANTIZATIONS}")
    return {"quantization_method": quantization_method}


def load_lora_kwargs() -> dict[str, Any]:
    """Keywords for ``model.load_lora`` (unsloth_zoo): read the adapter from the directory just saved."""
    return {"load_tensors": False}


def _require_gpu_profile(profile: Profile) -> None:
    if profile.device != "cuda":
        raise ValueError(f"Profile {profile.name} is a CPU profile: grpo_course.gpu builds settings for the GPU "
                         f"profiles only (the CPU path uses plain TRL and peft).")


def check_device_fits(profile: Profile, device=None) -> None:
    """Raise a clear error before loading if this GPU cannot run the profile (e.g. FP8 on a T4)."""
    device = device if device is not None else detect_device()
    if device is None:
        raise GPUUnavailableError(_no_gpu_message(profile))
    cc = "{}.{}".format(*device.compute_capability)
    if profile.load_in_fp8 and not device.supports_fp8:
        raise GPUUnavailableError(
            f"Profile {profile.name} loads FP8 weights, but {device.name} (sm{cc}) has no FP8 (Unsloth: 'FP8 "
            f"quantization is only supported on L4 and higher'). Set GRPO_COURSE_PROFILE=t4 or pick an L4.")
    if profile.bf16 and not device.supports_bf16:
        raise GPUUnavailableError(f"Profile {profile.name} computes in bf16, which {device.name} (sm{cc}) lacks; "
                                  f"use GRPO_COURSE_PROFILE=t4 (fp16).")
    if profile.uses_vllm and device.compute_capability < (8, 0):
        raise GPUUnavailableError(f"Profile {profile.name} generates with vLLM 0.19, which has no attention "
                                  f"backend for {device.name} (sm{cc}); use GRPO_COURSE_PROFILE=t4.")


# --------------------------------------------------------------------------- GPU calls


def load_model_and_tokenizer(profile: Profile, lora: LoraSettings, seed: int = 0):
    """(model, tokenizer): Unsloth's model for the profile, already wrapped with the LoRA adapter."""
    import_unsloth(profile)
    check_device_fits(profile)
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(**from_pretrained_kwargs(profile, lora))
    model = FastLanguageModel.get_peft_model(model, **peft_kwargs(lora, seed))
    return model, tokenizer


def uses_vllm_engine(model) -> bool:
    """Was the model loaded with ``fast_inference=True`` (an in-process vLLM engine)?"""
    return getattr(model, "vllm_engine", None) is not None


def vllm_generate(model, ids: list[list[int]], max_new_tokens: int, temperature: float = 0.0,
                  use_adapter: bool = True, seed: int | None = 0, adapter_dir: str | Path | None = None
                  ) -> list[tuple[str, int, bool]]:
    """``(text, tokens generated, cut by max_new_tokens)`` for each tokenized prompt, from the model's
    in-process vLLM engine (``model.fast_generate``; :func:`grpo_course.generation.generate_samples` calls
    it when :func:`uses_vllm_engine`).

    ``use_adapter=False`` sends ``lora_request=None``; on, the adapter saved to ``adapter_dir`` (a temporary
    folder if not given) is loaded with ``model.load_lora``. The token count and the cut come from vLLM's
    own output (``token_ids``, ``finish_reason == "length"``), not from re-tokenizing the text."""
    from vllm import SamplingParams

    params = SamplingParams(**sampling_params_kwargs(max_new_tokens, temperature, seed=seed))
    prompts = [{"prompt_token_ids": x} for x in ids]
    if not use_adapter:
        outputs = model.fast_generate(prompts, **fast_generate_kwargs(params, None))
        return [_vllm_detail(o) for o in outputs]
    with tempfile.TemporaryDirectory(prefix="grpo-course-lora-") as tmp:
        folder = Path(adapter_dir) if adapter_dir is not None else Path(tmp)
        if adapter_dir is None or not (folder / "adapter_config.json").exists():
            model.save_lora(str(folder))
        request = model.load_lora(str(folder), **load_lora_kwargs())
        outputs = model.fast_generate(prompts, **fast_generate_kwargs(params, request))
    return [_vllm_detail(o) for o in outputs]


def _vllm_detail(output) -> tuple[str, int, bool]:
    first = output.outputs[0]
    return first.text, len(first.token_ids), first.finish_reason == "length"


def save_adapter(model, tokenizer, out_dir: str | Path) -> Path:
    """The LoRA adapter and tokenizer (small: megabytes), loadable with peft or Unsloth."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


def save_merged_16bit(model, tokenizer, out_dir: str | Path) -> Path:
    """Base weights with the adapter merged in, as 16-bit safetensors (for vLLM / transformers)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained_merged(str(out), tokenizer, **merged_save_kwargs())
    return out


def save_gguf(model, tokenizer, out_dir: str | Path, quantization_method: str = "q8_0") -> Path:
    """A GGUF file for llama.cpp / Ollama (Unsloth builds llama.cpp on first use: minutes, needs disk)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained_gguf(str(out), tokenizer, **gguf_save_kwargs(quantization_method))
    return out
