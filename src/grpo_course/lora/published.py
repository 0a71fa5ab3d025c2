"""Every memory figure Unsloth published beside the planner's estimate.

The figures come from the saved outputs of Unsloth's notebooks (github.com/unslothai/notebooks, folder
``nb/``), its docs and blog (docs.unsloth.ai, unsloth.ai/blog), unsloth_zoo's ``vllm_utils.py`` and
unslothai/unsloth issues; each row names its own source. Each row says what was measured or claimed, where,
and how the planner was set up to
estimate the same quantity (its assumptions), then the error ``(estimate - published) /
published``. Rows whose setting the source does not give, or whose model the planner does
not model, are listed with the reason instead of an invented number.

"GB" in Unsloth's and vLLM's logs is computed with 1024**3, so published values are read
as GiB. All planner numbers are estimates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .counts import lora_param_count
from .memory import GPU, GPUS, plan_memory


@dataclass(frozen=True)
class DataPoint:
    key: str
    source: str  # where it was published (notebooks: github.com/unslothai/notebooks, folder nb/)
    quote: str  # the published figure, in the source's words
    quantity: str  # what the number measures
    published: float
    unit: str
    kind: str  # "measured" | "claim: fits in" (an upper bound)
    estimate: Callable[[], float] | None
    assumptions: str
    not_estimated: str = ""  # why there is no estimate


@dataclass(frozen=True)
class Comparison:
    point: DataPoint
    estimate: float | None

    @property
    def error_pct(self) -> float | None:
        if self.estimate is None:
            return None
        return 100.0 * (self.estimate - self.point.published) / self.point.published

    @property
    def consistent(self) -> bool | None:
        """For "fits in" claims: is the estimate at or under the claimed budget?"""
        if self.estimate is None or not self.point.kind.startswith("claim"):
            return None
        return self.estimate <= self.point.published


# Settings of Unsloth's Llama_FP8_GRPO notebook (reference §2): 4 generations, prompts up to
# 199 tokens, completions up to 1849, r=32 on all seven projections.
FP8_NB = dict(num_generations=4, max_prompt_length=199, max_completion_length=1849, r=32, targets="all-linear",
              micro_batch=4, quantization="fp8-block", dtype="bfloat16", generation_backend="vllm",
              gpu_memory_utilization="auto")
# The blog's 20K-context table: Llama 3.1 8B QLoRA, 8 generations of 20K tokens (reference §7).
BLOG = dict(num_generations=8, max_prompt_length=0, max_completion_length=20480, micro_batch=8, r=32,
            targets="all-linear", quantization="4bit-nf4", dtype="bfloat16", gpu="H100-80GB")


def _vllm_run(model, gpu, util, quantization, dtype, **kw):
    return plan_memory(model, "l4", gpu=gpu, generation_backend="vllm", gpu_memory_utilization=util,
                       quantization=quantization, dtype=dtype, **kw)


def _largest_util_that_fits(profile: str, model: str, **kw) -> float:
    """The largest vLLM ``gpu_memory_utilization`` (0.50 .. 0.99) whose plan still fits; 0 if none does.

    Always plans with vLLM: a profile that generates with transformers (t4) would otherwise ignore
    the utilisation and every value would "fit"."""
    best = 0.0
    for k in range(50, 100):
        u = k / 100
        if plan_memory(model, profile, generation_backend="vllm", gpu_memory_utilization=u, **kw).fits:
            best = u
    return best


def _blog_plan(**kw):
    return plan_memory("llama-3.1-8b", "l4", **{**BLOG, **kw})


def _blog_training(plan) -> float:
    names = ("base weights", "LoRA weights (fp32)", "LoRA gradients (fp32)")
    act = next(t.gib for t in plan.terms if t.name.startswith("activations"))
    opt = next(t.gib for t in plan.terms if t.name.startswith("optimizer"))
    return sum(plan.gib(n) for n in names) + act + opt


def _blog_total(unsloth: bool) -> float:
    if unsloth:
        p = _blog_plan(gradient_checkpointing="unsloth", logit_batch=1, generation_backend="transformers",
                       generation_batch=1)
        return _blog_training(p) + p.gib("logits") + p.gib("KV cache (transformers)")
    p = _blog_plan(gradient_checkpointing="standard", logit_batch=8, generation_backend="transformers",
                   generation_batch=1)
    inference_copy = plan_memory("llama-3.1-8b", "l4", quantization="none", dtype="bfloat16").gib("base weights")
    return _blog_training(p) + p.gib("logits") + p.gib("KV cache (transformers)") + inference_copy


def _fits_claim(model, **kw):
    return lambda: plan_memory(model, "l4", **{**FP8_NB, **kw}).peak_gib


DATA_POINTS: list[DataPoint] = [
    # --- Llama_FP8_GRPO on an L4 (saved run, reference §2.2) ---
    DataPoint("l4-1b-weights", "Llama_FP8_GRPO.ipynb saved L4 run", "Model loading took 1.4721 GiB memory",
              "base weights, Llama-3.2-1B FP8 block", 1.4721, "GiB", "measured",
              lambda: _vllm_run("llama-3.2-1b", "L4", 0.8662, "fp8-block", "bfloat16").gib("base weights"),
              "embedding kept in bf16, linear layers 1 byte + block scales"),
    DataPoint("l4-1b-kv", "Llama_FP8_GRPO.ipynb saved L4 run",
              "vLLM's KV Cache can use up to 17.53 GB (utilization 86.62%)", "vLLM KV pool", 17.53, "GiB",
              "measured",
              lambda: _vllm_run("llama-3.2-1b", "L4", 0.8662, "fp8-block", "bfloat16").kv_pool_gib,
              "pool = 0.8662 x 22.16 GiB - weights - 0.5 GiB assumed vLLM overhead"),
    DataPoint("l4-1b-kv-tokens", "Llama_FP8_GRPO.ipynb saved L4 run", "GPU KV cache size: 563,744 tokens",
              "tokens the KV pool holds", 563744, "tokens", "measured",
              lambda: _vllm_run("llama-3.2-1b", "L4", 0.8662, "fp8-block", "bfloat16").kv_pool_tokens,
              "pool / (2 x 16 layers x 8 kv heads x 64 x 2 B = 32 KiB per token)"),
    DataPoint("l4-1b-concurrency", "Llama_FP8_GRPO.ipynb saved L4 run",
              "Maximum concurrency for 2,048 tokens per request: 275.27x", "2048-token sequences at once",
              275.27, "x", "measured",
              lambda: _vllm_run("llama-3.2-1b", "L4", 0.8662, "fp8-block", "bfloat16").kv_pool_tokens / 2048,
              "pool tokens / 2048"),
    DataPoint("l4-util-limit", "unsloth_zoo vllm_utils.py, standby code comment", "L4 with ~22GB seems to work at 0.89 but not 0.9",
              "largest gpu_memory_utilization that works on an L4", 0.89, "fraction", "measured",
              lambda: _largest_util_that_fits("l4", "llama-3.2-1b"),
              "the course's l4 profile (Llama-3.2-1B FP8, G=8, 256+1024 tokens); the comment's model is not stated"),
    DataPoint("t4-util-limit", "unsloth_zoo vllm_utils.py, standby code comment",
              "If T4 ie 15GB, we use 0.85 since it'll rarely OOM",
              "largest gpu_memory_utilization that works on a T4", 0.85, "fraction", "measured",
              lambda: _largest_util_that_fits("t4", "llama-3.2-1b", quantization="none", dtype="float16"),
              "the course's t4 model (Llama-3.2-1B, fp16, G=8, 256+1024 tokens) generating with vLLM under standby; "
              "the comment's model is not stated and 0.85 is a safe choice, not a measured maximum"),
    # --- Llama3.1_(8B)-GRPO on a T4 (saved run, §3) ---
    DataPoint("t4-8b-weights", "Llama3.1_(8B)-GRPO.ipynb saved T4 run", "Loading model weights took 5.5976 GB",
              "base weights, Llama-3.1-8B 4-bit", 5.5976, "GiB", "measured",
              lambda: _vllm_run("llama-3.1-8b", "T4", 0.5943, "4bit-nf4", "float16").gib("base weights"),
              "NF4 linear layers (0.516 B/weight), embedding and LM head in 16-bit"),
    DataPoint("t4-8b-kv", "Llama3.1_(8B)-GRPO.ipynb saved T4 run",
              "KV Cache can use up to 2.59 GB (utilization 59.43%)", "vLLM KV pool", 2.59, "GiB", "measured",
              lambda: _vllm_run("llama-3.1-8b", "T4", 0.5943, "4bit-nf4", "float16").kv_pool_gib,
              "pool = 0.5943 x 14.74 GiB - weights - 0.5 GiB"),
    # --- Qwen3_(4B)-GRPO on a T4 ---
    DataPoint("t4-qwen3-4b-weights", "Qwen3_(4B)-GRPO.ipynb saved T4 run", "Model loading took 7.6334 GiB",
              "base weights, Qwen3-4B-Base 16-bit", 7.6334, "GiB", "measured",
              lambda: _vllm_run("qwen3-4b", "T4", 0.6934, "none", "float16").gib("base weights"),
              "Qwen3-4B-Base has Qwen3-4B's shape; fp16 on a T4"),
    DataPoint("t4-qwen3-4b-kv", "Qwen3_(4B)-GRPO.ipynb saved T4 run", "KV cache 3.27 GB (utilization 69.34%)",
              "vLLM KV pool", 3.27, "GiB", "measured",
              lambda: _vllm_run("qwen3-4b", "T4", 0.6934, "none", "float16").kv_pool_gib,
              "pool = 0.6934 x 14.74 GiB - weights - 0.5 GiB"),
    # --- Advanced_Llama3_2_(3B)_GRPO_LoRA on a T4 ---
    DataPoint("t4-3b-weights", "Advanced_Llama3_2_(3B)_GRPO_LoRA saved T4 run", "weights 6.25 GiB",
              "base weights, Llama-3.2-3B 16-bit", 6.25, "GiB", "measured",
              lambda: _vllm_run("llama-3.2-3b", "T4", 0.5943, "none", "float16").gib("base weights"),
              "fp16 on a T4, tied embedding counted once"),
    DataPoint("t4-3b-kv", "Advanced_Llama3_2_(3B)_GRPO_LoRA saved T4 run", "KV 1.74 GiB (utilization 59.43%)",
              "vLLM KV pool", 1.74, "GiB", "measured",
              lambda: _vllm_run("llama-3.2-3b", "T4", 0.5943, "none", "float16").kv_pool_gib,
              "pool = 0.5943 x 14.74 GiB - weights - 0.5 GiB"),
    DataPoint("t4-phi4-kv", "Phi_4_(14B)-GRPO saved T4 run", "vLLM KV cache only 0.28 GB",
              "vLLM KV pool", 0.28, "GiB", "measured", None, "",
              not_estimated="Phi-4 is not among the shipped architectures and the run's utilisation is not recorded"),
    # --- issue #3542 (RTX 4090) ---
    DataPoint("4090-qwen3-4b-kv", "unslothai/unsloth issue #3542", "desired util 0.864 and KV cache 17.29 GB (Qwen3-4B 4-bit)",
              "vLLM KV pool", 17.29, "GiB", "measured",
              lambda: plan_memory("qwen3-4b", "l4", gpu=GPUS["RTX-4090"], quantization="4bit-nf4", dtype="bfloat16",
                                  generation_backend="vllm", gpu_memory_utilization=0.864).kv_pool_gib,
              "RTX 4090 taken as 23.65 GiB usable; pool = 0.864 x 23.65 - weights - 0.5"),
    # --- GRPO blog, Feb 2025: Llama 3.1 8B, 20K context, 8 generations ---
    DataPoint("blog-trl-logits", "unsloth.ai/blog/grpo table", "GRPO (logits) 78.3GB for TRL + FA2",
              "logits of 8 completions x 20K tokens", 78.3, "GiB", "measured",
              lambda: _blog_plan(logit_batch=8).gib("logits"),
              "the blog's own formula 2 x 2 B x 8 x 20K x 128,256 with 20K = 20,480"),
    DataPoint("blog-unsloth-logits", "unsloth.ai/blog/grpo table", "GRPO (logits) 9.8GB for Unsloth",
              "logits, one completion at a time", 9.8, "GiB", "measured",
              lambda: _blog_plan(logit_batch=1).gib("logits"),
              "Unsloth's 9.8 = 78.3 / 8: read as the logits of one completion at a time"),
    DataPoint("blog-kv", "unsloth.ai/blog/grpo table", "KV cache 2.5GB (both)",
              "KV cache of the 20K context", 2.5, "GiB", "measured",
              lambda: _blog_plan(generation_backend="transformers", generation_batch=1).gib("KV cache (transformers)"),
              "the figure equals ONE 20,480-token sequence x 128 KiB/token; 8 sequences would need 8x"),
    DataPoint("blog-trl-inference", "unsloth.ai/blog/grpo table", "inference 16GB for TRL (0GB for Unsloth)",
              "a second, 16-bit copy of the weights for vLLM", 16.0, "GiB", "measured",
              lambda: plan_memory("llama-3.1-8b", "l4", quantization="none", dtype="bfloat16").gib("base weights"),
              "8.03B parameters x 2 B (the blog's 16 looks like decimal GB: 16.06e9 bytes)"),
    DataPoint("blog-unsloth-training", "unsloth.ai/blog/grpo table; issue #2281", "training 42GB (Unsloth)",
              "weights + adapter + optimizer + activations", 42.0, "GiB", "measured",
              lambda: _blog_training(_blog_plan(gradient_checkpointing="unsloth")),
              "4-bit weights, 8 completions x 20,480 tokens in one micro-batch, offloaded checkpointing; "
              "the blog does not say what 'training' contains"),
    DataPoint("blog-trl-training", "unsloth.ai/blog/grpo table", "training 414GB (TRL + FA2)",
              "weights + adapter + optimizer + activations", 414.0, "GiB", "measured",
              lambda: _blog_training(_blog_plan(gradient_checkpointing="standard")),
              "as above with standard checkpointing; the blog does not say whether TRL ran with checkpointing"),
    DataPoint("blog-unsloth-total", "unsloth.ai/blog/grpo table", "total 54.3GB (Unsloth)",
              "sum of the table's columns", 54.3, "GiB", "measured", lambda: _blog_total(True),
              "training + logits + KV, each as in the rows above"),
    DataPoint("blog-trl-total", "unsloth.ai/blog/grpo table", "total 510.8GB (TRL + FA2)",
              "sum of the table's columns", 510.8, "GiB", "measured", lambda: _blog_total(False),
              "training + logits + KV + a 16-bit inference copy"),
    # --- "fits in" claims (upper bounds) ---
    DataPoint("fp8-qwen3-1.7b-5gb", "docs.unsloth.ai/new/fp8-reinforcement-learning", "Qwen3-1.7B FP8 GRPO now works on just 5GB",
              "peak of a GRPO step", 5.0, "GiB", "claim: fits in", _fits_claim("qwen3-1.7b"),
              "FP8 notebook settings (G=4, 199+1849 tokens, r=32 all seven), vLLM pool sized to the group"),
    DataPoint("fp8-qwen3-4b-6gb", "third-party summary of the FP8 docs", "Qwen3-4B FP8 GRPO now runs on just 6GB",
              "peak of a GRPO step", 6.0, "GiB", "claim: fits in", _fits_claim("qwen3-4b"),
              "as above"),
    DataPoint("fp8-qwen3-8b-16gb", "docs.unsloth.ai/new/fp8-reinforcement-learning", "Qwen3-8B fits in 16GB VRAM",
              "peak of a GRPO step", 16.0, "GiB", "claim: fits in", _fits_claim("qwen3-8b"),
              "as above"),
    DataPoint("fp8-qwen3-14b-l4", "docs.unsloth.ai/new/fp8-reinforcement-learning", "24GB L4 GPUs ... fits Qwen3-14B",
              "peak of a GRPO step", 22.16, "GiB", "claim: fits in", None, "",
              not_estimated="Qwen3-14B is not among the shipped architectures"),
    DataPoint("blog-qwen2.5-1.5b-5gb", "unsloth.ai/blog/grpo",
              "train your own reasoning model with just 5GB VRAM for Qwen2.5 (1.5B)", "peak of a GRPO step", 5.0,
              "GiB", "claim: fits in",
              lambda: plan_memory("qwen2.5-1.5b", "t4", quantization="4bit-nf4", generation_backend="vllm",
                                  gpu_memory_utilization="auto", num_generations=6, max_prompt_length=256,
                                  max_completion_length=200, micro_batch=6, r=16, targets="all-linear").peak_gib,
              "Feb-2025 notebook settings: 4-bit, G=6, 256+200 tokens, r=16, vLLM pool sized to the group"),
    DataPoint("r1-blog-8b-15gb", "unsloth.ai blog, R1 reasoning (6 Feb 2025)", "With 15GB VRAM ... Llama 3.1 (8B)",
              "peak of a GRPO step", 14.74, "GiB", "claim: fits in",
              lambda: plan_memory("llama-3.1-8b", "t4", quantization="4bit-nf4", generation_backend="vllm",
                                  gpu_memory_utilization=0.6, num_generations=6, max_prompt_length=256,
                                  max_completion_length=200, micro_batch=6, r=16, targets="all-linear").peak_gib,
              "the Feb-2025 Llama 8B notebook: 4-bit, utilisation 0.6, G=6, 256+200 tokens; limit = T4's 14.74 GiB"),
    DataPoint("r1-blog-15b-15gb", "unsloth.ai blog, R1 reasoning (6 Feb 2025)",
              "With 15GB VRAM ... any model up to 15B parameters like ... Phi-4 (14B), Mistral (7B) or Qwen2.5 (7B)",
              "peak of a GRPO step", 14.74, "GiB", "claim: fits in", None, "",
              not_estimated="Phi-4, Mistral 7B and Qwen2.5-7B are not among the shipped architectures "
                            "(the Llama 3.1 8B of the same sentence is the r1-blog-8b-15gb row)"),
    DataPoint("gpt-oss-20b-t4", "third-party summary of the gpt-oss RL docs",
              "gpt-oss-20b GRPO on 15GB VRAM (T4)", "peak of a GRPO step", 14.74, "GiB", "claim: fits in", None, "",
              not_estimated="gpt-oss is a mixture of experts, which the planner does not model"),
    DataPoint("tutorial-params-vram", "Unsloth tutorial page",
              "model parameters = amount of VRAM you will need ... free 16GB ... any model up to 16B",
              "peak of a GRPO step", 14.74, "GiB", "claim: fits in", None, "",
              not_estimated="a rule of thumb with no model, quantization or lengths given"),
    DataPoint("r1-blog-7gb-minimum", "unsloth.ai blog, R1 reasoning (6 Feb 2025)", "Minimum requirement: Just 7GB VRAM",
              "peak of a GRPO step", 7.0, "GiB", "claim: fits in", None, "",
              not_estimated="no model or settings given"),
    # --- issue #1840: peak allocated on a 0.6B model ---
    DataPoint("i1840-4bit", "unslothai/unsloth issue #1840", "0.6B model: peak allocated 0.92 GiB at 4bit",
              "torch.cuda.max_memory_allocated", 0.92, "GiB", "measured",
              lambda: plan_memory("qwen3-0.6b", "l4", quantization="4bit-nf4", generation_backend="transformers",
                                  num_generations=4, max_prompt_length=256, max_completion_length=256, micro_batch=4,
                                  cuda_overhead_gib=0).peak_gib,
              "Qwen3-0.6B (the issue says only 'a 0.6B model'), G=4, 256+256 tokens, no vLLM pool, no CUDA context (not counted by "
              "max_memory_allocated); the issue gives none of these"),
    DataPoint("i1840-16bit", "unslothai/unsloth issue #1840", "... against 1.81 GiB at 16bit",
              "torch.cuda.max_memory_allocated", 1.81, "GiB", "measured",
              lambda: plan_memory("qwen3-0.6b", "l4", quantization="none", generation_backend="transformers",
                                  num_generations=4, max_prompt_length=256, max_completion_length=256, micro_batch=4,
                                  cuda_overhead_gib=0).peak_gib,
              "as above, bf16 weights"),
    DataPoint("i1840-16bit-g8", "unslothai/unsloth issue #1840", "going from 4 to 8 generations takes it to 2.07 GiB",
              "torch.cuda.max_memory_allocated", 2.07, "GiB", "measured",
              lambda: plan_memory("qwen3-0.6b", "l4", quantization="none", generation_backend="transformers",
                                  num_generations=8, max_prompt_length=256, max_completion_length=256, micro_batch=8,
                                  cuda_overhead_gib=0).peak_gib,
              "as above with G=8"),
    # --- context-length claims whose group size / GPU are not given ---
    DataPoint("standby-qwen3-32b", "docs.unsloth.ai/basics/memory-efficient-rl", "Qwen3-32B LoRA 16-bit 6,144 context on 1xH100",
              "longest context", 6144, "tokens", "measured", None, "",
              not_estimated="Qwen3-32B is not among the shipped architectures"),
    DataPoint("standby-llama-8b", "docs.unsloth.ai/basics/memory-efficient-rl", "Llama-3.1-8B QLoRA 4bit can attain 47,500 lengths",
              "longest context", 47500, "tokens", "measured", None, "",
              not_estimated="the number of generations and the batch are not given"),
    DataPoint("long-qwen3-8b", "docs.unsloth.ai, GRPO long-context page", "Qwen3-8B GRPO reaches 110K context on an 80GB H100",
              "longest context", 110000, "tokens", "measured", None, "",
              not_estimated="the number of generations and the batch are not given"),
    DataPoint("long-gpt-oss", "docs.unsloth.ai, GRPO long-context page", "On 24GB VRAM, gpt-oss reaches 20K context",
              "longest context", 20000, "tokens", "measured", None, "",
              not_estimated="gpt-oss (mixture of experts) and Qwen3-VL are not modelled"),
]

# Trainable-parameter counts Unsloth printed (not memory, but the same config.json facts).
PUBLISHED_COUNTS = [
    ("Llama3.1_(8B)-GRPO saved T4 run", "Trainable parameters = 83,886,080", 83_886_080,
     lambda: lora_param_count("llama-3.1-8b", 32, "all-linear").total, "r=32 on all seven projections"),
    ("Qwen3_(4B)-GRPO saved T4 run", "Trainable parameters = 66,060,288", 66_060_288,
     lambda: lora_param_count("qwen3-4b", 32, "all-linear").total, "r=32 on all seven projections"),
]


def compare_published(points: list[DataPoint] | None = None) -> list[Comparison]:
    out = []
    for p in points or DATA_POINTS:
        out.append(Comparison(p, None if p.estimate is None else float(p.estimate())))
    return out


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit in ("tokens",):
        return f"{value:,.0f}"
    if unit in ("x", "fraction"):
        return f"{value:.2f}"
    return f"{value:.2f}"


def comparison_table(comparisons: list[Comparison] | None = None) -> str:
    """Published figure, the planner's ESTIMATE and the error, one line each (+ assumptions)."""
    comparisons = comparisons or compare_published()
    rows = [f"{'data point':<24} {'published':>12} {'ESTIMATE':>12} {'error':>8}  unit      quantity / source"]
    for c in comparisons:
        p = c.point
        err = "n/a" if c.error_pct is None else f"{c.error_pct:+.0f}%"
        flag = ""
        if c.consistent is not None:
            flag = " (claim holds)" if c.consistent else " (estimate above the claim)"
        rows.append(f"{p.key:<24} {_fmt(p.published, p.unit):>12} {_fmt(c.estimate, p.unit):>12} {err:>8}  "
                    f"{p.unit:<9} {p.quantity}{flag}; {p.source}")
        rows.append(f"{'':<24} quote: \"{p.quote}\"; " + (f"assumed: {p.assumptions}" if p.estimate else
                                                          f"not estimated: {p.not_estimated}"))
    return "\n".join(rows)


def comparison_rows(comparisons: list[Comparison] | None = None) -> list[dict]:
    """The same comparison as rows (one dict per published figure) for a DataFrame or an HTML table."""
    rows = []
    for c in comparisons or compare_published():
        p = c.point
        claim = "" if c.consistent is None else ("claim holds" if c.consistent else "estimate above the claim")
        rows.append({"data point": p.key, "published": _fmt(p.published, p.unit), "ESTIMATE": _fmt(c.estimate, p.unit),
                     "error": "n/a" if c.error_pct is None else f"{c.error_pct:+.0f}%", "unit": p.unit,
                     "quantity": p.quantity + (f" ({claim})" if claim else ""), "source": p.source,
                     "quote": p.quote, "how estimated": (f"assumed: {p.assumptions}" if p.estimate else
                                                          f"not estimated: {p.not_estimated}")})
    return rows


__all__ = ["DATA_POINTS", "PUBLISHED_COUNTS", "Comparison", "DataPoint", "GPU", "compare_published",
           "comparison_rows", "comparison_table"]
