"""Stage 06: the same GRPO training on several processes, GPUs and nodes.

Nothing in the training code changes when it runs distributed: a launcher (``accelerate launch``, which
calls torch's ``torchrun``) starts one process per device, every process runs ``grpo-course train``, and
TRL/accelerate split the batch and average the gradients. This module holds what the learner needs
around that:

* **Where a process sits**: :func:`dist_info` reads the launcher's environment (``RANK``, ``LOCAL_RANK``,
  ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``); :func:`is_main_process`; :func:`finish_distributed` tears the
  process group down before the interpreter exits.
* **CPU shares**: :func:`cores_per_process` (usable cores / processes on this machine), so the code
  reward's sandbox pool and similar workers do not oversubscribe the machine; :func:`judge_share`
  splits an LLM judge's global concurrency and budget across processes.
* **TRL's batch bookkeeping**: :func:`plan_batch` mirrors ``GRPOConfig.__post_init__`` (TRL 1.14):
  generation batch = ``per_device_train_batch_size x num_processes x steps_per_generation`` (default
  ``steps_per_generation = gradient_accumulation_steps``), which must hold whole groups of
  ``num_generations``; :meth:`BatchPlan.layout` says which process gets which completions.
* **Launch commands**: :func:`launch_command` (1 node x N GPUs, M nodes, DDP or DeepSpeed ZeRO-2/3, and
  the CPU/gloo configuration the tests run), :func:`vllm_serve_command` and :func:`server_mode_overrides`
  for TRL's ``vllm_mode="server"``; the shipped configs live in ``grpo_course/launch_configs/``.
* **Sizing**: :func:`strategy_plan` and :func:`sizing_table` apply each strategy's sharding to the
  stage-03 planner's terms (:func:`grpo_course.lora.plan_memory`): estimates, not measurements.
* **Evidence**: ``python -m grpo_course.scale_out probe --evidence DIR -- train ...`` runs the unchanged
  ``grpo-course train`` command and records, per rank, what it trained on and a hash of its weights.

Importing this module does not import torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# where this process sits: the bottom layer's grpo_course.distributed, re-exported for stage 06
from .distributed import (  # noqa: F401
    DistInfo,
    JudgeShare,
    cores_per_process,
    dist_info,
    finish_distributed,
    is_main_process,
    judge_share,
    usable_cores,
)

LAUNCH_CONFIG_DIR = Path(__file__).resolve().parent / "launch_configs"

# strategy -> accelerate config file (in LAUNCH_CONFIG_DIR)
ACCELERATE_CONFIGS: dict[str, str] = {
    "ddp-cpu": "accelerate_ddp_cpu.yaml",
    "ddp": "accelerate_ddp_gpu.yaml",
    "zero2": "accelerate_zero2.yaml",
    "zero3": "accelerate_zero3.yaml",
}
# strategy -> DeepSpeed config for TrainingArguments(deepspeed=...) or `--deepspeed_config_file`
DEEPSPEED_CONFIGS: dict[str, str] = {"zero2": "deepspeed_zero2.json", "zero3": "deepspeed_zero3.json"}
STRATEGIES = ("ddp", "zero2", "zero3")


def config_path(name: str) -> Path:
    """Path of a shipped launch config: a strategy name (``ddp-cpu``, ``ddp``, ``zero2``, ``zero3``), a
    DeepSpeed one (``ds-zero2``, ``ds-zero3``) or a file name in ``launch_configs/``."""
    if name in ACCELERATE_CONFIGS:
        name = ACCELERATE_CONFIGS[name]
    elif name.startswith("ds-") and name[3:] in DEEPSPEED_CONFIGS:
        name = DEEPSPEED_CONFIGS[name[3:]]
    path = LAUNCH_CONFIG_DIR / name
    if not path.is_file():
        known = sorted(p.name for p in LAUNCH_CONFIG_DIR.iterdir() if p.suffix in (".yaml", ".json"))
        raise FileNotFoundError(f"no launch config {name!r}; shipped: {', '.join(known)}")
    return path


# ---- TRL's batch bookkeeping -------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchPlan:
    """How TRL 1.14's GRPOTrainer cuts one generation batch across processes (see :func:`plan_batch`)."""

    per_device_train_batch_size: int
    num_processes: int
    gradient_accumulation_steps: int
    num_generations: int
    steps_per_generation: int
    generation_batch_size: int

    @property
    def prompts_per_generation(self) -> int:
        """Distinct prompts in one generation batch (each gets ``num_generations`` completions)."""
        return self.generation_batch_size // self.num_generations

    @property
    def completions_per_process(self) -> int:
        """Completions one process generates and scores per generation batch."""
        return self.per_device_train_batch_size * self.steps_per_generation

    @property
    def optimizer_steps_per_generation(self) -> float:
        return self.steps_per_generation / self.gradient_accumulation_steps

    def layout(self) -> list[list[int]]:
        """``layout()[p]`` = the prompt index (0-based within the generation batch) of each completion that
        process ``p`` generates, in order. TRL's sampler repeats each prompt ``num_generations`` times in a
        row; the dataloader hands each process a contiguous chunk of ``completions_per_process``, process
        0 first. So a group is split across processes whenever ``completions_per_process`` is not a multiple
        of ``num_generations``; TRL gathers all rewards before computing each group's mean and std."""
        stream = [i // self.num_generations for i in range(self.generation_batch_size)]
        c = self.completions_per_process
        return [stream[p * c:(p + 1) * c] for p in range(self.num_processes)]

    def processes_per_group(self) -> list[list[int]]:
        """For each prompt of the generation batch, the processes that hold some of its completions."""
        owners: list[list[int]] = [[] for _ in range(self.prompts_per_generation)]
        for p, prompts in enumerate(self.layout()):
            for q in prompts:
                if p not in owners[q]:
                    owners[q].append(p)
        return owners

    def describe(self) -> str:
        split = sum(len(o) > 1 for o in self.processes_per_group())
        return (f"{self.num_processes} process(es) x {self.per_device_train_batch_size} completions x "
                f"{self.steps_per_generation} step(s) per generation = {self.generation_batch_size} completions "
                f"= {self.prompts_per_generation} prompts x G={self.num_generations}; each process generates "
                f"{self.completions_per_process}; groups split across processes: {split}")

    def as_dict(self) -> dict:
        return {**asdict(self), "prompts_per_generation": self.prompts_per_generation,
                "completions_per_process": self.completions_per_process}


def plan_batch(per_device_train_batch_size: int, num_processes: int = 1, gradient_accumulation_steps: int = 1,
               num_generations: int = 8, steps_per_generation: int | None = None,
               generation_batch_size: int | None = None) -> BatchPlan:
    """TRL 1.14's rule (``GRPOConfig.__post_init__``), with the same errors in words.

    generation_batch_size = per_device_train_batch_size x num_processes x steps_per_generation, where
    steps_per_generation defaults to gradient_accumulation_steps; it must be divisible by num_generations
    (whole groups only). The TRL docstring says it as "the effective batch size (num_processes x
    per_device_batch_size x gradient_accumulation_steps) must be evenly divisible by num_generations"."""
    b, n, ga, g = (int(per_device_train_batch_size), int(num_processes), int(gradient_accumulation_steps),
                   int(num_generations))
    for name, v in (("per_device_train_batch_size", b), ("num_processes", n), ("gradient_accumulation_steps", ga)):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    global_batch = b * n
    if generation_batch_size is None and steps_per_generation is None:
        spg = ga
        gen = global_batch * spg
    elif generation_batch_size is not None and steps_per_generation is None:
        gen = int(generation_batch_size)
        if gen % global_batch:
            raise ValueError(f"generation_batch_size ({gen}) must be divisible by the global batch size "
                             f"({b} per device x {n} processes = {global_batch}).")
        spg = gen // global_batch
    elif generation_batch_size is None:
        spg = int(steps_per_generation)
        gen = global_batch * spg
    else:
        raise ValueError("generation_batch_size and steps_per_generation cannot both be set (TRL refuses it).")
    if g < 2:
        raise ValueError(f"num_generations={g}: GRPO needs at least 2 completions per prompt.")
    if gen % g:
        raise ValueError(
            f"generation_batch_size ({gen} = {b} per device x {n} processes x {spg} steps per generation) must be "
            f"divisible by num_generations ({g}): a generation batch holds whole groups. With {n} processes, "
            f"per_device_train_batch_size x gradient_accumulation_steps only needs to be a multiple of "
            f"{g // _gcd(g, n)}.")
    return BatchPlan(b, n, ga, g, spg, gen)


def _gcd(a: int, b: int) -> int:
    import math

    return math.gcd(a, b)


# ---- launch commands ----------------------------------------------------------------------------------


PACKAGE_STYLE = "package"  # render config paths as $(python -m grpo_course.scale_out config NAME)


def _render_config(name: str, style: str) -> str:
    if style == PACKAGE_STYLE:
        return f"$(python -m grpo_course.scale_out config {name})"
    return str(config_path(name))


@dataclass(frozen=True)
class Launch:
    """One command to run on one node (``argv``) and how to print it (``text``)."""

    argv: list[str]
    text: str
    node: int = 0
    env: dict[str, str] = field(default_factory=dict)


def launch_command(train_args: Sequence[str] = (), *, strategy: str = "ddp", gpus_per_node: int = 1,
                   nodes: int = 1, machine_rank: int = 0, main_ip: str | None = None, port: int = 29500,
                   config_style: str = "absolute", module: str = "grpo_course.cli") -> Launch:
    """``accelerate launch`` for ``grpo-course train`` (``train_args`` are its options).

    ``strategy``: ``ddp`` (one full replica per GPU), ``zero2`` (DeepSpeed: optimizer state and gradients
    sharded), ``zero3`` (parameters sharded too), or ``ddp-cpu`` (processes on CPU over gloo, what the
    course's test runs; ``gpus_per_node`` then counts processes). With ``nodes > 1`` run the same command on
    every node with its own ``machine_rank`` (0 is the node whose address is ``main_ip``).
    ``config_style="package"`` prints the config path as a shell substitution that works wherever the
    course is installed."""
    if strategy not in ACCELERATE_CONFIGS:
        raise ValueError(f"strategy must be one of {sorted(ACCELERATE_CONFIGS)}, got {strategy!r}")
    if gpus_per_node < 1 or nodes < 1:
        raise ValueError("gpus_per_node and nodes must be >= 1")
    if not 0 <= machine_rank < nodes:
        raise ValueError(f"machine_rank must be in [0, {nodes}), got {machine_rank}")
    if nodes > 1 and not main_ip:
        raise ValueError("several nodes need main_ip: the address of the machine_rank 0 node, reachable from all")
    if strategy == "ddp-cpu" and nodes > 1:
        raise ValueError("the ddp-cpu config is for one machine (the course's CPU test)")
    head = ["accelerate", "launch", "--config_file", _render_config(strategy, config_style),
            "--num_machines", str(nodes), "--num_processes", str(nodes * gpus_per_node)]
    if nodes > 1:
        head += ["--machine_rank", str(machine_rank), "--main_process_ip", str(main_ip),
                 "--main_process_port", str(port)]
    elif strategy == "ddp-cpu":
        head += ["--main_process_port", "0"]  # 0 = any free port (several runs may share a machine)
    tail = ["-m", module, "train", *map(str, train_args)]
    argv = head + tail
    subst = [a for a in argv if a.startswith("$(")]
    text = " ".join(a if a in subst else shlex.quote(a) for a in argv)
    return Launch(argv, text, machine_rank)


def multi_node_commands(train_args: Sequence[str] = (), *, nodes: int, gpus_per_node: int, main_ip: str,
                        strategy: str = "ddp", port: int = 29500, config_style: str = PACKAGE_STYLE) -> list[Launch]:
    """One :func:`launch_command` per node (same command, its own ``--machine_rank``)."""
    return [launch_command(train_args, strategy=strategy, gpus_per_node=gpus_per_node, nodes=nodes,
                           machine_rank=r, main_ip=main_ip, port=port, config_style=config_style)
            for r in range(nodes)]


# `trl vllm-serve` options used below; tests check each against the pinned TRL's ScriptArguments.
VLLM_SERVE_FLAGS = ("model", "tensor_parallel_size", "data_parallel_size", "host", "port",
                    "gpu_memory_utilization", "max_model_len")


def vllm_serve_command(model: str, *, gpus: Sequence[int] = (0,), tensor_parallel_size: int = 1,
                       data_parallel_size: int | None = None, host: str = "0.0.0.0", port: int = 8000,
                       gpu_memory_utilization: float = 0.9, max_model_len: int | None = None) -> Launch:
    """``trl vllm-serve`` on its own GPUs (TRL's server mode: the trainer's GPUs must be different ones).

    The GPUs are split as ``tensor_parallel_size x data_parallel_size`` (default: all of them in data
    parallel copies of ``tensor_parallel_size`` GPUs each)."""
    gpus = [int(g) for g in gpus]
    if not gpus or len(set(gpus)) != len(gpus):
        raise ValueError("gpus must name distinct GPU indices")
    if tensor_parallel_size < 1 or len(gpus) % tensor_parallel_size:
        raise ValueError(f"{len(gpus)} GPUs cannot be split into tensor-parallel groups of {tensor_parallel_size}")
    dp = data_parallel_size or len(gpus) // tensor_parallel_size
    if dp * tensor_parallel_size != len(gpus):
        raise ValueError(f"tensor_parallel_size x data_parallel_size = {tensor_parallel_size} x {dp} must equal "
                         f"the {len(gpus)} GPUs given")
    if not 0 < gpu_memory_utilization <= 1:
        raise ValueError("gpu_memory_utilization must be in (0, 1]")
    env = {"CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus))}
    argv = ["trl", "vllm-serve", "--model", model, "--tensor_parallel_size", str(tensor_parallel_size),
            "--data_parallel_size", str(dp), "--host", host, "--port", str(port),
            "--gpu_memory_utilization", str(gpu_memory_utilization)]
    if max_model_len:
        argv += ["--max_model_len", str(int(max_model_len))]
    text = f"CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']} " + shlex.join(argv)
    return Launch(argv, text, 0, env)


def server_mode_overrides(host: str = "127.0.0.1", port: int = 8000, timeout: float = 240.0) -> dict[str, Any]:
    """GRPOConfig keywords for generation on a ``trl vllm-serve`` server (pass as ``train(overrides=...)``).
    ``vllm_gpu_memory_utilization`` and ``vllm_tensor_parallel_size`` apply to colocate mode only: in server
    mode they are the server's own ``--gpu_memory_utilization`` / ``--tensor_parallel_size``."""
    return {"use_vllm": True, "vllm_mode": "server", "vllm_server_base_url": f"http://{host}:{port}",
            "vllm_server_timeout": float(timeout)}


def colocate_overrides(gpu_memory_utilization: float = 0.3, sleep_mode: bool = True) -> dict[str, Any]:
    """GRPOConfig keywords for vLLM inside every training process (TRL 1.14's default mode)."""
    return {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": float(gpu_memory_utilization),
            "vllm_enable_sleep_mode": bool(sleep_mode)}


# ---- the shipped DeepSpeed configs, checked by DeepSpeed's own parser -----------------------------------


def deepspeed_config_dict(strategy: str, source: str = "json") -> dict:
    """The shipped ZeRO config as DeepSpeed receives it, "auto" values still in: ``source="json"`` reads
    ``deepspeed_<strategy>.json``; ``source="accelerate"`` builds it from the accelerate YAML's inline block the
    way ``accelerate launch`` does (``DeepSpeedPlugin``)."""
    if strategy not in DEEPSPEED_CONFIGS:
        raise ValueError(f"strategy must be one of {sorted(DEEPSPEED_CONFIGS)}, got {strategy!r}")
    if source == "json":
        return json.loads(config_path(f"ds-{strategy}").read_text())
    if source == "accelerate":
        from accelerate.commands.config.config_args import load_config_from_file
        from accelerate.utils import DeepSpeedPlugin

        fields = load_config_from_file(str(config_path(strategy))).deepspeed_config
        return DeepSpeedPlugin(**fields).deepspeed_config
    raise ValueError("source must be 'json' or 'accelerate'")


def validate_deepspeed_config(config: dict, *, per_device_train_batch_size: int = 8,
                              gradient_accumulation_steps: int = 1, num_generations: int = 8,
                              hidden_size: int = 2048, max_steps: int = 100):
    """Fill the trainer's "auto" values as transformers' Trainer does (from a CPU ``GRPOConfig``), then parse
    with DeepSpeed's ``DeepSpeedConfig`` (strict: unknown keys raise). Returns the parsed config. DeepSpeed
    imports on a machine without CUDA (its accelerator falls back to "cpu"); it cannot train there."""
    import copy

    from deepspeed.runtime.config import DeepSpeedConfig
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig
    from trl import GRPOConfig

    args = GRPOConfig(output_dir="unused", use_cpu=True, bf16=False, report_to="none",
                      num_generations=num_generations, per_device_train_batch_size=per_device_train_batch_size,
                      gradient_accumulation_steps=gradient_accumulation_steps)
    hf = HfTrainerDeepSpeedConfig(copy.deepcopy(config))
    hf.trainer_config_process(args)

    class _Model:  # trainer_config_finalize only reads model.config.hidden_size
        class config:
            pass

    _Model.config.hidden_size = hidden_size
    hf.trainer_config_finalize(args, _Model, max_steps)
    return DeepSpeedConfig(hf.config)


# ---- sizing per strategy (estimates from the stage-03 planner) -----------------------------------------

SIZING_MODELS = {"llama-3.2-1b": "Llama 3.2 1B", "llama-3.2-3b": "Llama 3.2 3B", "llama-3.1-8b": "Llama 3.1 8B"}
SIZING_STRATEGIES = ("ddp", "zero2", "zero3", "ddp+server")
_VLLM_TERMS = ("vLLM KV-cache pool", "vLLM runtime overhead", "vLLM's copy of the weights")


@dataclass(frozen=True)
class StrategyPlan:
    """Per-GPU memory ESTIMATE of one training GPU under a strategy, from a stage-03 plan."""

    strategy: str
    num_gpus: int
    terms: dict[str, tuple[float, str]]  # name -> (GiB, phase)
    limit_gib: float
    base: Any  # the stage-03 MemoryPlan it was derived from

    def phase_gib(self, phase: str) -> float:
        return sum(g for g, ph in self.terms.values() if ph in ("always", phase))

    @property
    def peak_gib(self) -> float:
        return max(self.phase_gib("generation"), self.phase_gib("training"))

    @property
    def fits(self) -> bool:
        return self.peak_gib <= self.limit_gib


def strategy_plan(model: str, strategy: str, *, num_gpus: int = 8, gpu: str = "H100-80GB",
                  completions_per_gpu: int = 8, completion_length: int = 1024, prompt_length: int = 256,
                  r: int = 32, targets: str = "all-linear", gpu_memory_utilization: float | str = "auto",
                  gradient_checkpointing: str = "standard") -> StrategyPlan:
    """ESTIMATE the memory of one training GPU running plain TRL + PEFT (bf16, AdamW) with vLLM generation.

    Starts from :func:`grpo_course.lora.plan_memory` for one GPU (vLLM colocated with its own copy of the
    weights, ``completions_per_gpu`` completions generated and trained per micro-step) and applies:
    ``zero2``: LoRA gradients and optimizer state / ``num_gpus``; ``zero3``: the trainable state and the
    training copy of the base weights / ``num_gpus`` plus one gathered layer while training, but the whole
    model gathered again for TRL's weight sync to vLLM (with PEFT, TRL 1.14 gathers all parameters at once
    to merge the adapter), and vLLM keeps its own whole copy; ``ddp+server``: DDP with generation on separate
    ``trl vllm-serve`` GPUs, so no vLLM terms here."""
    from .lora import plan_memory

    if strategy not in SIZING_STRATEGIES:
        raise ValueError(f"strategy must be one of {SIZING_STRATEGIES}, got {strategy!r}")
    if num_gpus < 1:
        raise ValueError("num_gpus must be >= 1")
    base = plan_memory(model, "large", r=r, targets=targets, num_generations=max(2, completions_per_gpu),
                       max_prompt_length=prompt_length, max_completion_length=completion_length, gpu=gpu,
                       dtype="bfloat16", quantization="none", optimizer="adamw_torch",
                       gradient_checkpointing=gradient_checkpointing, generation_backend="vllm",
                       gpu_memory_utilization=gpu_memory_utilization, standby=False,
                       micro_batch=completions_per_gpu, generation_batch=completions_per_gpu,
                       logit_batch=completions_per_gpu, shared_weights=False)
    terms = {t.name: (t.gib, t.phase) for t in base.terms}
    n = num_gpus
    if strategy in ("zero2", "zero3"):
        for name in list(terms):
            if name.startswith("LoRA gradients") or name.startswith("optimizer state"):
                gib, ph = terms[name]
                terms[name] = (gib / n, ph)
    if strategy == "zero3":
        gib, ph = terms["base weights"]
        layer = gib / _layers(model)  # one decoder layer gathered at a time (embeddings ignored)
        terms["base weights"] = (gib / n, ph)
        terms["gathered layer (ZeRO-3)"] = (layer, "training")
        # TRL 1.14 (trl/generation/vllm_generation.py, _iter_named_params): with PEFT under ZeRO-3 the whole model
        # is gathered at once to merge the adapter and push the weights to vLLM, before every generation.
        terms["whole model gathered for the vLLM weight sync"] = (gib - gib / n, "generation")
        lw, lph = terms["LoRA weights (fp32)"]
        terms["LoRA weights (fp32)"] = (lw / n, lph)
    if strategy == "ddp+server":
        for name in _VLLM_TERMS:
            terms.pop(name, None)
    return StrategyPlan(strategy, n, terms, base.limit_gib, base)


def _layers(model: str) -> int:
    from .lora import get_architecture

    return get_architecture(model).num_hidden_layers


def server_gpu_gib(model: str, generation_batch: int, prompt_length: int = 256, completion_length: int = 1024,
                   tensor_parallel_size: int = 1) -> float:
    """ESTIMATE for one GPU of the vLLM server: weights / TP + the KV cache of the whole generation batch / TP
    + 0.5 GiB runtime allowance (the planner's ``vllm_overhead_gib``) + 0.5 GiB CUDA context."""
    from .lora import get_architecture
    from .lora.memory import GIB

    arch = get_architecture(model)
    weights = arch.base_param_count() * 2 / GIB
    kv = generation_batch * (prompt_length + completion_length) * arch.kv_bytes_per_token(2) / GIB
    return (weights + kv) / tensor_parallel_size + 1.0


def _largest(values: Sequence[int], fits) -> int | None:
    best = None
    for v in values:
        if fits(v):
            best = v
    return best


COMPLETIONS_GRID = (1, 2, 4, 8, 16, 32, 64, 128)
LENGTH_GRID = (256, 512, 1024, 2048, 4096, 8192, 16384)


def sizing_table(models: Sequence[str] = tuple(SIZING_MODELS), strategies: Sequence[str] = SIZING_STRATEGIES, *,
                 gpu: str = "H100-80GB", num_gpus: int = 8, completion_length: int = 1024,
                 completions_per_gpu: int = 8, prompt_length: int = 256, r: int = 32,
                 targets: str = "all-linear") -> list[dict]:
    """Rows of ESTIMATES: per model and strategy, the most completions one GPU can generate and train per
    micro-step at ``completion_length``, the longest completion at ``completions_per_gpu``, the group size
    that gives on ``num_gpus`` GPUs (whole groups: G = completions per GPU x GPUs, one micro-step per
    generation), and the peak at the reference point. ``None`` = does not fit even at the smallest value."""
    rows = []
    for model in models:
        for strategy in strategies:
            def plan(c, length, model=model, strategy=strategy):
                return strategy_plan(model, strategy, num_gpus=num_gpus, gpu=gpu, completions_per_gpu=c,
                                     completion_length=length, prompt_length=prompt_length, r=r, targets=targets)

            best_c = _largest(COMPLETIONS_GRID, lambda c: plan(c, completion_length).fits)
            best_len = _largest(LENGTH_GRID, lambda length: plan(completions_per_gpu, length).fits)
            ref = plan(completions_per_gpu, completion_length)
            rows.append({
                "model": SIZING_MODELS.get(model, model), "strategy": strategy, "gpu": gpu, "gpus": num_gpus,
                f"completions/GPU @ C={completion_length}": best_c,
                f"group size on {num_gpus} GPUs": None if best_c is None else best_c * num_gpus,
                f"max C @ {completions_per_gpu}/GPU": best_len,
                f"peak GiB @ {completions_per_gpu}/GPU, C={completion_length}": round(ref.peak_gib, 1),
                "estimate": True,
            })
    return rows


def format_table(rows: Sequence[dict]) -> str:
    """A plain-text table of :func:`sizing_table` rows."""
    if not rows:
        return ""
    cols = [c for c in rows[0] if c != "estimate"]
    cells = [[("-" if r[c] is None else str(r[c])) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


# ---- evidence: what each rank did ---------------------------------------------------------------------


def tensor_digest(tensors) -> str:
    """SHA-256 over (name, bytes) of named tensors: equal on two ranks iff their values are bit-identical."""
    h = hashlib.sha256()
    for name, t in tensors:
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _trainable(model):
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


class _Recorder:
    """Wraps a reward function: records the local completions each rank scores, then calls it unchanged."""

    def __init__(self, func, log: list):
        self.func = func
        self.log = log
        self.__name__ = getattr(func, "__name__", type(func).__name__)

    def __call__(self, *args, **kwargs):
        completions = kwargs.get("completions", args[1] if len(args) > 1 else [])
        state = kwargs.get("trainer_state")
        questions = kwargs.get("question") or [str(p) for p in kwargs.get("prompts", [])]
        self.log.append({"reward": self.__name__, "step": getattr(state, "global_step", None),
                         "n": len(completions),
                         "prompts": [hashlib.sha256(str(q).encode()).hexdigest()[:16] for q in questions]})
        return self.func(*args, **kwargs)


def _probe_callback(record: dict):
    from transformers import TrainerCallback

    class RankProbe(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            ds = getattr(args, "distributed_state", None)
            record.update({
                "distributed_type": str(getattr(ds, "distributed_type", None)),
                "backend": getattr(ds, "backend", None), "process_index": args.process_index,
                "num_processes": args.world_size, "initial_trainable": tensor_digest(_trainable(model)),
                "trainable_names": [n for n, _ in _trainable(model)],
                "config": {k: getattr(args, k) for k in ("per_device_train_batch_size", "gradient_accumulation_steps",
                                                         "num_generations", "steps_per_generation",
                                                         "generation_batch_size")},
            })

        def on_step_end(self, args, state, control, model=None, **kwargs):
            record.setdefault("step_digests", []).append(
                {"step": state.global_step, "trainable": tensor_digest(_trainable(model))})

    return RankProbe()


def read_evidence(folder: str | Path) -> list[dict]:
    """The ``rank_<r>.json`` records of a probe run, by rank."""
    found = sorted(Path(folder).glob("rank_*.json"), key=lambda p: int(p.stem.split("_")[1]))
    return [json.loads(p.read_text()) for p in found]


def summarize_evidence(ranks: Sequence[dict]) -> dict[str, Any]:
    """What a probe run proves, as plain values: the ranks that wrote evidence, their exit codes and
    backend, whether the trainable weights were bit-identical on every rank after every step and moved from
    the start (gradients averaged: different data, same update), and the per-step bookkeeping: completions
    each rank scored, completions per prompt over all ranks, prompts per step, overlap between ranks."""
    steps = sorted({c["step"] for r in ranks for c in r.get("rewards", [])})
    per_step = []
    for step in steps:
        local = []
        for r in ranks:
            calls = [c for c in r.get("rewards", []) if c["step"] == step]
            local.append(calls[0]["prompts"] if calls else [])
        everything = [q for part in local for q in part]
        shared = set(local[0]).intersection(*map(set, local[1:])) if len(local) > 1 else set()
        per_step.append({"step": step, "completions_per_rank": [len(x) for x in local],
                         "completions_per_prompt": sorted({everything.count(q) for q in set(everything)}),
                         "prompts": len(set(everything)), "prompts_on_several_ranks": len(shared)})
    digests = [[d["trainable"] for d in r.get("step_digests", [])] for r in ranks]
    return {
        "ranks": [r["rank"] for r in ranks],
        "exit_codes": [r.get("exit_code") for r in ranks],
        "distributed_type": sorted({str(r.get("distributed_type")) for r in ranks}),
        "backend": sorted({str(r.get("backend")) for r in ranks}),
        "pids_distinct": len({r.get("pid") for r in ranks}) == len(ranks),
        "steps": [d["step"] for d in ranks[0].get("step_digests", [])] if ranks else [],
        "identical_after_every_step": bool(digests and digests[0]) and all(d == digests[0] for d in digests),
        "identical_at_start": len({r.get("initial_trainable") for r in ranks}) == 1,
        "weights_moved": bool(ranks) and ranks[0].get("final_trainable") != ranks[0].get("initial_trainable"),
        "identical_at_end_all_weights": len({r.get("final_all") for r in ranks}) == 1,
        "trl_config": ranks[0].get("config") if ranks else None,
        "per_step": per_step,
    }


def probe_main(argv: Sequence[str]) -> int:
    """``probe --evidence DIR -- <grpo-course args>``: run the unchanged CLI, writing ``DIR/rank_<r>.json``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m grpo_course.scale_out probe")
    p.add_argument("--evidence", required=True, help="folder for rank_<r>.json")
    p.add_argument("--fail-rank", type=int, default=None, help="(self-test) this rank exits with code 3")
    p.add_argument("cli", nargs=argparse.REMAINDER, help="-- then the grpo-course command and its options")
    args = p.parse_args(argv)
    cli = args.cli[1:] if args.cli[:1] == ["--"] else args.cli
    info = dist_info()
    out = Path(args.evidence)
    out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"rank": info.rank, "local_rank": info.local_rank, "world_size": info.world_size,
                              "local_world_size": info.local_world_size, "pid": os.getpid(),
                              "cores_per_process": cores_per_process(), "omp_num_threads":
                              os.environ.get("OMP_NUM_THREADS"), "cli": list(cli)}
    rewards_log: list = []
    code = 0
    if args.fail_rank is not None:
        import torch.distributed as dist

        dist.init_process_group("gloo")
        dist.barrier()
        record["selftest"] = True
        if info.rank == args.fail_rank:
            code = 3
    else:
        from .cli import main as cli_main
        from .train import pipeline

        original_train, original_rewards = pipeline.train, pipeline.reward_functions
        results = []

        def recording_rewards(names):
            return [_Recorder(f, rewards_log) for f in original_rewards(names)]

        def recording_train(*a, **kw):
            kw["callbacks"] = [*kw.get("callbacks", ()), _probe_callback(record)]
            result = original_train(*a, **kw)
            results.append(result)
            return result

        pipeline.train, pipeline.reward_functions = recording_train, recording_rewards
        try:
            code = cli_main(cli)
        finally:
            pipeline.train, pipeline.reward_functions = original_train, original_rewards
        if results:
            model = results[-1].model
            record.update({"global_step": results[-1].global_step,
                           "final_trainable": tensor_digest(_trainable(model)),
                           "final_all": tensor_digest(list(model.named_parameters()))})
    record["rewards"] = rewards_log
    record["exit_code"] = code
    tmp = out / f".rank_{info.rank}.json.tmp"
    tmp.write_text(json.dumps(record, indent=1, default=str))
    os.replace(tmp, out / f"rank_{info.rank}.json")
    finish_distributed()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = ("usage: python -m grpo_course.scale_out config NAME | commands | sizing | "
             "probe --evidence DIR -- train [options]")
    if not argv:
        print(usage)
        return 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "config" and len(rest) == 1:
        print(config_path(rest[0]))
        return 0
    if cmd == "commands":
        print(launch_command(["--profile", "l4"], strategy="ddp", gpus_per_node=4, config_style=PACKAGE_STYLE).text)
        return 0
    if cmd == "sizing":
        print("ESTIMATES (stage-03 planner, not measured):")
        print(format_table(sizing_table()))
        return 0
    if cmd == "probe":
        return probe_main(rest)
    print(usage)
    return 2


if __name__ == "__main__":
    sys.exit(main())
