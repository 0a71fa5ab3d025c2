"""How much GPU memory one GRPO step needs: an estimate, term by term, with its formula.

A GRPO step has two phases that peak at different times:

* **generation**: the policy writes G completions per prompt. The KV cache holds keys and
  values for every token of every sequence being generated (vLLM reserves a pool for it up
  front, sized by ``gpu_memory_utilization``; transformers grows it as it goes).
* **training**: a forward and backward pass over the completions. Activations, the logits
  over the vocabulary, LoRA gradients.

Weights, the LoRA adapter, the optimizer state and the CUDA context stay for both.
With Unsloth's vLLM *standby* the KV pool is released while training, so the peak is
``always + max(generation, training)``; without it, vLLM's pool stays and they add up.

Every number here is an **estimate**: the formulas count the big tensors and leave out
allocator fragmentation, temporary buffers and library overheads except for two fixed
allowances (``cuda_overhead_gib``, ``vllm_overhead_gib``). :mod:`.published` compares them
with every memory figure Unsloth published. No torch import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..hardware import L4_USABLE_GB, T4_USABLE_GB
from .counts import Architecture, LoraCount, get_architecture, lora_param_count
from .settings import lora_settings, parse_targets

GIB = 1024**3

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}

# Bytes per weight of a quantized linear layer (scales included).
#   fp8-block: 1 byte + one fp32 scale per 128x128 block.
#   4bit-nf4 : 4 bits + an 8-bit absmax per 64 weights + an fp32 scale per 256 absmax (double quant).
QUANT_BYTES = {
    "fp8-block": 1 + 4 / (128 * 128),
    "4bit-nf4": 0.5 + (1 + 4 / 256) / 64,
}
QUANTIZATIONS = ("none", "fp8-block", "4bit-nf4")

# Optimizer state bytes per trainable parameter.
OPTIMIZER_BYTES = {"adamw_8bit": 2, "adamw_torch": 8, "adamw_torch_fused": 8, "sgd": 0}

CHECKPOINTING = ("none", "standard", "unsloth")


@dataclass(frozen=True)
class GPU:
    name: str
    memory_gib: float  # what a process can allocate (torch's total_memory)
    bf16: bool
    fp8: bool
    note: str = ""


# T4 and L4: the usable memory Unsloth's banner prints on Colab (saved outputs of unslothai/notebooks
# nb/Llama3.1_(8B)-GRPO.ipynb on a T4 and nb/Llama_FP8_GRPO.ipynb on an L4), the same constants
# grpo_course.hardware uses. Nominally a T4 has 15 GB usable of 16 GB and
# an L4 22.5 GB of 24 GB; the planner judges fit against what a process really gets.
GPUS: dict[str, GPU] = {
    "T4": GPU("T4", T4_USABLE_GB, bf16=False, fp8=False, note="Colab T4, 'Max memory: 14.741 GB' (Unsloth banner)"),
    "L4": GPU("L4", L4_USABLE_GB, bf16=True, fp8=True, note="Colab L4, 'Max memory: 22.161 GB' (Unsloth banner)"),
    "A100-40GB": GPU("A100-40GB", 39.4, bf16=True, fp8=False, note="approximate"),
    "A100-80GB": GPU("A100-80GB", 79.2, bf16=True, fp8=False, note="approximate"),
    "H100-80GB": GPU("H100-80GB", 79.2, bf16=True, fp8=True, note="approximate"),
    "RTX-4090": GPU("RTX-4090", 23.65, bf16=True, fp8=True, note="approximate"),
    "CPU": GPU("CPU", math.inf, bf16=True, fp8=False, note="no GPU: nothing to fit"),
}

PROFILE_GPU = {"cpu-tiny": "CPU", "t4": "T4", "l4": "L4", "large": "A100-80GB"}


@dataclass(frozen=True)
class Term:
    """One line of the memory bill."""

    name: str
    gib: float
    formula: str  # the formula with the numbers put in
    phase: str  # "always" | "generation" | "training"
    note: str = ""


@dataclass
class MemoryPlan:
    """An estimate of the GPU memory one GRPO step needs, and whether it fits."""

    model: str
    gpu: GPU
    settings: dict
    terms: list[Term]
    lora: LoraCount
    kv_bytes_per_token: float
    kv_needed_gib: float
    kv_pool_gib: float | None  # vLLM's pool, None without vLLM
    warnings: list[str] = field(default_factory=list)

    def _phase_total(self, phase: str) -> float:
        return sum(t.gib for t in self.terms if t.phase in ("always", phase))

    @property
    def generation_gib(self) -> float:
        return self._phase_total("generation")

    @property
    def training_gib(self) -> float:
        return self._phase_total("training")

    @property
    def peak_phase(self) -> str:
        return "generation" if self.generation_gib >= self.training_gib else "training"

    @property
    def peak_gib(self) -> float:
        return max(self.generation_gib, self.training_gib)

    @property
    def limit_gib(self) -> float:
        return self.gpu.memory_gib

    @property
    def fits(self) -> bool:
        return self.peak_gib <= self.limit_gib

    @property
    def headroom_gib(self) -> float:
        return self.limit_gib - self.peak_gib

    def term(self, name: str) -> Term:
        for t in self.terms:
            if t.name == name:
                return t
        raise KeyError(f"no term {name!r}; terms: {[t.name for t in self.terms]}")

    def gib(self, name: str) -> float:
        """A term's size, 0 if the plan has no such term."""
        return next((t.gib for t in self.terms if t.name == name), 0.0)

    @property
    def largest_term(self) -> Term:
        """The biggest term of the peak phase: the first thing to shrink."""
        live = [t for t in self.terms if t.phase in ("always", self.peak_phase)]
        return max(live, key=lambda t: t.gib)

    @property
    def kv_pool_tokens(self) -> int | None:
        if self.kv_pool_gib is None:
            return None
        return int(self.kv_pool_gib * GIB // self.kv_bytes_per_token)

    @property
    def suggestions(self) -> list[str]:
        return suggest(self)

    def verdict(self) -> str:
        word = "fits" if self.fits else "does NOT fit"
        return (f"ESTIMATE: peak {self.peak_gib:.2f} GiB ({self.peak_phase}) {word} on {self.gpu.name} "
                f"({self.limit_gib:.2f} GiB usable); largest term: {self.largest_term.name} "
                f"({self.largest_term.gib:.2f} GiB)")

    def table(self) -> str:
        """Every term with its phase, size and formula, then the verdict and suggestions."""
        rows = [f"{'term':<28} {'phase':<10} {'GiB':>8}  formula"]
        for t in self.terms:
            rows.append(f"{t.name:<28} {t.phase:<10} {t.gib:>8.3f}  {t.formula}")
        rows.append(f"{'generation phase total':<28} {'':<10} {self.generation_gib:>8.3f}")
        rows.append(f"{'training phase total':<28} {'':<10} {self.training_gib:>8.3f}")
        rows.append(self.verdict())
        rows += [f"warning: {w}" for w in self.warnings]
        rows += [f"suggestion: {s}" for s in self.suggestions]
        return "\n".join(rows)

    def as_rows(self) -> list[dict]:
        return [{"term": t.name, "phase": t.phase, "GiB": round(t.gib, 4), "formula": t.formula} for t in self.terms]


def _profile(profile):
    if profile is None:
        return None
    if isinstance(profile, str):
        from ..hardware import get_profile

        return get_profile(profile)
    return profile


def _pick(value, default):
    return default if value is None else value


def plan_memory(
    model,
    profile=None,
    r: int | None = None,
    targets=None,
    num_generations: int | None = None,
    max_prompt_length: int | None = None,
    max_completion_length: int | None = None,
    *,
    gpu: str | GPU | None = None,
    dtype: str | None = None,
    quantization: str | None = None,
    optimizer: str = "adamw_8bit",
    gradient_checkpointing: str | bool | None = None,
    generation_backend: str | None = None,
    gpu_memory_utilization: float | str | None = None,
    standby: bool = True,
    micro_batch: int | None = None,
    generation_batch: int | None = None,
    logit_batch: int | None = None,
    shared_weights: bool = True,
    kv_cache_dtype: str | None = None,
    cuda_overhead_gib: float | None = None,
    vllm_overhead_gib: float = 0.5,
) -> MemoryPlan:
    """Estimate GPU memory for one GRPO step of ``model`` (a key like ``"llama-3.2-1b"``).

    ``profile`` (``"t4"``, ``"l4"``, ``"large"``, ``"cpu-tiny"`` or a Profile) supplies every
    default: dtype, quantization, generation backend, G, lengths, vLLM utilisation, the LoRA
    rank and targets (from :func:`lora_settings`) and the GPU. Any argument overrides it.

    ``gradient_checkpointing``: ``"none"``, ``"standard"`` (keep each layer's input, recompute
    the rest) or ``"unsloth"`` (also offload those inputs to CPU RAM). ``micro_batch``:
    completions in one forward/backward. ``logit_batch``: completions whose full-vocabulary
    logits exist at once (Unsloth computes them one completion at a time; plain TRL all of
    the micro batch). ``gpu_memory_utilization="auto"``: size vLLM's pool to what the group
    needs (the smallest setting that works). Returns a :class:`MemoryPlan`.
    """
    prof = _profile(profile if profile is not None else "t4")
    arch: Architecture = get_architecture(model)
    lora_defaults = lora_settings(prof.name) if prof is not None else None
    r = int(_pick(r, lora_defaults.r if lora_defaults else 16))
    targets = parse_targets(_pick(targets, lora_defaults.target_modules if lora_defaults else "all-linear"))
    G = int(_pick(num_generations, prof.num_generations))
    P = int(_pick(max_prompt_length, prof.max_prompt_length))
    C = int(_pick(max_completion_length, prof.max_completion_length))
    dtype = _pick(dtype, prof.dtype)
    quant = _pick(quantization, prof.quantization)
    backend = _pick(generation_backend, prof.generation_backend)
    on_gpu = prof.device != "cpu" if gpu is None else (gpu != "CPU" and getattr(gpu, "name", "") != "CPU")
    gpu_obj = gpu if isinstance(gpu, GPU) else GPUS[_pick(gpu, PROFILE_GPU.get(prof.name, "T4"))]
    unsloth = on_gpu  # the course's GPU path is Unsloth; its CPU path plain TRL
    ckpt = gradient_checkpointing
    if ckpt is None:
        ckpt = "unsloth" if unsloth else "standard"
    elif ckpt is True:
        ckpt = "standard"
    elif ckpt is False:
        ckpt = "none"
    micro = int(_pick(micro_batch, prof.per_device_train_batch_size))
    gen_batch = int(_pick(generation_batch, max(G, micro * prof.gradient_accumulation_steps)))
    logit_b = int(_pick(logit_batch, 1 if unsloth else micro))
    util = gpu_memory_utilization
    if util is None and backend == "vllm":
        util = prof.gpu_memory_utilization or "auto"
    cuda_ovh = _pick(cuda_overhead_gib, 0.5 if on_gpu else 0.0)

    if dtype not in DTYPE_BYTES:
        raise ValueError(f"dtype must be one of {list(DTYPE_BYTES)}, got {dtype!r}")
    if quant not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quant!r}")
    if optimizer not in OPTIMIZER_BYTES:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZER_BYTES)}, got {optimizer!r}")
    if ckpt not in CHECKPOINTING:
        raise ValueError(f"gradient_checkpointing must be one of {CHECKPOINTING}, got {ckpt!r}")
    if backend not in ("vllm", "transformers"):
        raise ValueError(f"generation_backend must be 'vllm' or 'transformers', got {backend!r}")
    for name, v in (("num_generations", G), ("max_completion_length", C), ("micro_batch", micro),
                    ("logit_batch", logit_b), ("generation_batch", gen_batch)):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if P < 0:
        raise ValueError(f"max_prompt_length must be >= 0, got {P}")

    warnings: list[str] = []
    if on_gpu and dtype == "bfloat16" and not gpu_obj.bf16:
        warnings.append(f"{gpu_obj.name} has no bf16: training runs in float16 (the t4 profile)")
    if quant == "fp8-block" and not gpu_obj.fp8:
        warnings.append(f"{gpu_obj.name} cannot load FP8 weights (needs compute capability >= 8.9, e.g. an L4)")

    lc = lora_param_count(arch, r, targets)
    n_lora = lc.total
    b = DTYPE_BYTES[dtype]
    b16 = b  # activations, logits, KV in the compute dtype
    L, h, i, V = arch.num_hidden_layers, arch.hidden_size, arch.intermediate_size, arch.vocab_size
    n_linear = L * arch.linear_params_per_layer()
    n_other = arch.base_param_count() - n_linear
    terms: list[Term] = []

    # 1. base weights
    wb = b if quant == "none" else QUANT_BYTES[quant]
    ob = b if quant == "none" else 2
    weights = (n_linear * wb + n_other * ob) / GIB
    terms.append(Term("base weights", weights,
                      f"{n_linear / 1e9:.3f}B linear x {wb:.4g} B ({quant if quant != 'none' else dtype}) + "
                      f"{n_other / 1e9:.3f}B embedding/norms x {ob} B", "always"))
    if backend == "vllm" and not shared_weights:
        terms.append(Term("vLLM's copy of the weights", weights,
                          "a second copy when vLLM does not share the training weights", "always"))

    # 2-4. adapter, its gradients, optimizer state
    terms.append(Term("LoRA weights (fp32)", n_lora * 4 / GIB, f"{n_lora:,} params x 4 B", "always"))
    terms.append(Term("LoRA gradients (fp32)", n_lora * 4 / GIB, f"{n_lora:,} params x 4 B", "training"))
    ob_opt = OPTIMIZER_BYTES[optimizer]
    terms.append(Term(f"optimizer state ({optimizer})", n_lora * ob_opt / GIB,
                      f"{n_lora:,} params x {ob_opt} B (Adam m and v)", "always"))

    # 5. activations of the training forward/backward
    tokens = micro * (P + C)
    # Values autograd keeps per token in one LoRA'd decoder layer (frozen weights keep no inputs for
    # their own gradient, but LoRA's A needs its input): the two RMSNorm inputs and outputs (4h), q and
    # the attention output (2 q_dim), k and v (2 kv_dim), gate, up, act(gate) and their product (4i),
    # and the rank-r intermediate of each LoRA module.
    per_layer = 4 * h + 2 * arch.q_dim + 2 * arch.kv_dim + 4 * i + r * len(targets)
    if ckpt == "none":
        act_elems = L * per_layer
        act_formula = f"{micro} x ({P}+{C}) tokens x {L} layers x {per_layer:,} values x {b16} B"
    elif ckpt == "standard":
        act_elems = L * h + per_layer
        act_formula = (f"{micro} x ({P}+{C}) tokens x ({L} layer inputs x {h} + one layer recomputed "
                       f"{per_layer:,}) x {b16} B")
    else:
        act_elems = 2 * h + per_layer
        act_formula = (f"{micro} x ({P}+{C}) tokens x (2 x {h} + one layer recomputed {per_layer:,}) x {b16} B; "
                       "layer inputs offloaded to CPU RAM")
    terms.append(Term(f"activations (checkpointing: {ckpt})", tokens * act_elems * b16 / GIB, act_formula,
                      "training"))

    # 6. logits over the vocabulary for the completion tokens (Unsloth's blog formula: 2 copies)
    logits = 2 * logit_b * C * V * b16 / GIB
    terms.append(Term("logits", logits, f"2 copies x {logit_b} completion(s) x {C} tokens x {V:,} vocab x {b16} B",
                      "training"))

    # 7. KV cache for generation
    kv_b = 1 if kv_cache_dtype == "fp8" else b16
    kv_tok = arch.kv_bytes_per_token(kv_b)
    kv_needed = gen_batch * (P + C) * kv_tok / GIB
    kv_pool = None
    if backend == "vllm":
        if util == "auto":
            kv_pool = kv_needed
            util_text = "sized to the group ('auto')"
        else:
            util = float(util)
            if not 0 < util <= 1:
                raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {util}")
            kv_pool = util * gpu_obj.memory_gib - weights - vllm_overhead_gib
            util_text = f"{util} x {gpu_obj.memory_gib:.2f} GiB - weights - {vllm_overhead_gib} GiB vLLM overhead"
            if kv_pool <= 0:
                warnings.append(f"gpu_memory_utilization={util} leaves vLLM no room for a KV cache: it will not start")
                kv_pool = 0.0
            elif kv_pool < kv_needed:
                warnings.append(
                    f"vLLM's pool ({kv_pool:.2f} GiB) is smaller than the {gen_batch} sequences need "
                    f"({kv_needed:.2f} GiB): it runs fewer at once (slower, not an out-of-memory error)")
        phase = "generation" if standby else "always"
        terms.append(Term("vLLM KV-cache pool", kv_pool, util_text, phase,
                          note=f"{gen_batch} sequences x ({P}+{C}) tokens need {kv_needed:.3f} GiB"))
        terms.append(Term("vLLM runtime overhead", vllm_overhead_gib, "assumed: CUDA graphs, sampler, buffers",
                          phase))
    else:
        terms.append(Term("KV cache (transformers)", kv_needed,
                          f"{gen_batch} sequences x ({P}+{C}) tokens x 2 (K,V) x {L} layers x "
                          f"{arch.kv_dim} x {kv_b} B", "generation"))

    # 8. fixed allowance
    if cuda_ovh:
        terms.append(Term("CUDA context + allocator slack", cuda_ovh, "assumed fixed allowance", "always"))

    settings = dict(model=arch.key, profile=getattr(prof, "name", None), gpu=gpu_obj.name, dtype=dtype,
                    quantization=quant, r=r, targets=list(targets), num_generations=G, max_prompt_length=P,
                    max_completion_length=C, optimizer=optimizer, gradient_checkpointing=ckpt,
                    generation_backend=backend, gpu_memory_utilization=util, standby=standby, micro_batch=micro,
                    generation_batch=gen_batch, logit_batch=logit_b, shared_weights=shared_weights)
    return MemoryPlan(arch.key, gpu_obj, settings, terms, lc, kv_tok, kv_needed, kv_pool, warnings)


def suggest(plan: MemoryPlan) -> list[str]:
    """What to lower, biggest term first; one line of headroom advice when it fits."""
    s = plan.settings
    if not math.isfinite(plan.limit_gib):
        return ["no GPU: CPU RAM is the only limit (the cpu-tiny profile trains the tiny model)"]
    if plan.fits:
        return [f"fits with {plan.headroom_gib:.2f} GiB to spare (estimate): room for a larger group or longer "
                f"completions; keep ~1 GiB spare for fragmentation"]
    tips = []
    live = sorted((t for t in plan.terms if t.phase in ("always", plan.peak_phase)), key=lambda t: -t.gib)
    for t in live[:3]:
        n = t.name
        if n == "base weights":
            tips.append("weights: load them in 4-bit NF4 (quantization='4bit-nf4') or FP8 on an L4 "
                        "('fp8-block'), or choose a smaller model")
        elif n.startswith("vLLM KV"):
            tips.append(f"vLLM pool: lower gpu_memory_utilization (now {s['gpu_memory_utilization']}); "
                        f"{s['generation_batch']} sequences need only {plan.kv_needed_gib:.2f} GiB")
        elif n.startswith("activations"):
            if s["gradient_checkpointing"] == "none":
                tips.append("activations: turn on gradient checkpointing")
            else:
                tips.append(f"activations: lower per_device_train_batch_size (now {s['micro_batch']}) or "
                            f"max_completion_length (now {s['max_completion_length']})")
        elif n == "logits":
            tips.append(f"logits: lower max_completion_length (now {s['max_completion_length']}) or compute them "
                        f"for fewer completions at once (now {s['logit_batch']})")
        elif n.startswith("KV cache"):
            tips.append(f"KV cache: lower num_generations (now {s['num_generations']}) or the lengths, "
                        "or generate with vLLM")
        elif n.startswith("optimizer") or n.startswith("LoRA"):
            tips.append(f"adapter: use optim='adamw_8bit' or a lower rank (now r={s['r']})")
    return tips or ["lower num_generations or max_completion_length"]


def max_fitting(plan_kwargs: dict, name: str, candidates) -> object | None:
    """The largest value of one setting (e.g. ``"max_completion_length"``) that still fits."""
    best = None
    for value in candidates:
        if plan_memory(**{**plan_kwargs, name: value}).fits:
            best = value
    return best


# (profile, weights format, dtype, generation backend) of each column of :func:`fit_rows`.
FIT_SETUPS = {"T4 fp16": ("t4", "none", "float16", "transformers"),
              "T4 4-bit": ("t4", "4bit-nf4", "float16", "transformers"),
              "L4 FP8": ("l4", "fp8-block", "bfloat16", "vllm"), "L4 bf16": ("l4", "none", "bfloat16", "vllm")}
LONGEST_CANDIDATES = (256, 512, 1024, 2048, 4096, 8192, 16384)


def fit_rows(models, setups: dict | None = None, **common) -> list[dict]:
    """Per model: for each setup, "yes"/"NO" and the estimated peak in GiB (vLLM pools sized to the group,
    ``gpu_memory_utilization="auto"``), and the longest completion that fits a T4 in 4-bit. ``common``:
    the shared GRPO settings (``num_generations``, ``max_prompt_length``, ``max_completion_length``, ...)."""
    rows = []
    for model in models:
        row = {"model": model}
        for label, (prof, quant, dtype, backend) in (setups or FIT_SETUPS).items():
            p = plan_memory(model, prof, quantization=quant, dtype=dtype, generation_backend=backend,
                            gpu_memory_utilization="auto" if backend == "vllm" else None, **common)
            row[label] = f"{'yes' if p.fits else 'NO'} {p.peak_gib:.1f}"
        kw = dict(model=model, profile="t4", quantization="4bit-nf4", **common)
        row["T4 4-bit longest"] = max_fitting(kw, "max_completion_length", LONGEST_CANDIDATES)
        rows.append(row)
    return rows


# One colour per kind of term, so the same term looks the same in every chart.
TERM_COLORS = (
    ("base weights", "#1f77b4"), ("vLLM's copy", "#aec7e8"), ("LoRA weights", "#ff7f0e"),
    ("LoRA gradients", "#ffbb78"), ("optimizer", "#8c564b"), ("activations", "#2ca02c"), ("logits", "#98df8a"),
    ("KV cache", "#d62728"), ("vLLM KV", "#d62728"), ("vLLM runtime", "#ff9896"), ("CUDA context", "#9467bd"),
)


def _term_color(name: str) -> str:
    return next((c for prefix, c in TERM_COLORS if name.startswith(prefix)), "#7f7f7f")


def plot_plan(plan: MemoryPlan, ax=None, title: str | None = None):
    """A stacked bar per phase (generation, training) with the GPU's limit line. Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    phases = ("generation", "training")
    bottoms = [0.0, 0.0]
    for t in plan.terms:
        heights = [t.gib if t.phase in ("always", ph) else 0.0 for ph in phases]
        ax.bar(phases, heights, bottom=bottoms, color=_term_color(t.name), label=f"{t.name} ({t.gib:.2f})",
               edgecolor="white", linewidth=0.5)
        bottoms = [b + hgt for b, hgt in zip(bottoms, heights)]
    if math.isfinite(plan.limit_gib):
        ax.axhline(plan.limit_gib, color="crimson", ls="--", lw=2)
        ax.text(1.45, plan.limit_gib, f"{plan.gpu.name}: {plan.limit_gib:.2f} GiB", color="crimson",
                va="bottom", ha="right")
        ax.set_ylim(0, max(max(bottoms), plan.limit_gib) * 1.12)
    ax.set_ylabel("GiB (estimate)")
    ax.set_title(title or f"{plan.model} on {plan.gpu.name}: {'fits' if plan.fits else 'does not fit'} "
                          f"(peak {plan.peak_gib:.1f} GiB)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax
