"""``train(task, profile)``: one GRPO pipeline for every profile and every task.

1. **Runtime**: on a GPU profile, Unsloth is imported first (it must patch trl/transformers before
   they load); on CPU nothing GPU-related is touched.
2. **Model**: GPU: ``grpo_course.gpu.load_model_and_tokenizer`` (Unsloth, FP8 on L4, fp16 on T4) with
   the stage-03 LoRA table; CPU: the course's tiny model with a ``peft`` LoRA from the same table.
3. **Data**: the task's rows as chat prompts, prompts over the budget removed, held-out split apart.
4. **SFT format priming** (GPU default) when starting fresh.
5. **GRPO** with TRL's ``GRPOTrainer``, the config from :mod:`.config`, the task's rewards, the
   :class:`~.monitor.TrainingMonitor`, checkpoints every ``save_steps``; a re-run resumes an interrupted
   run and trains a finished one afresh (:func:`decide_start`).
6. **Save** the adapter (always), merged 16-bit / GGUF on GPU if asked, push only with a token.
7. **Before/after** on held-out prompts: the adapter off and on.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import checkpoint as ckpt
from ..distributed import is_main_process
from ..hardware import Profile
from ..models import load_model, prepare_runtime, resolve_profile  # noqa: F401  (the stage-04 API)
from ..tasks import Task, TaskData, get_task
from ..usage import UsageError, check_writable
from .config import Setting, grpo_settings, make_grpo_config
from .data import PreparedData, prepare_data
from .run import RunConfig

DEFAULT_EVAL_SIZE = {"cpu-tiny": 200, "t4": 50, "l4": 100, "large": 200}


def reward_names_for(task: Task | str, profile: Profile, reward: str | Sequence[str] | None) -> tuple[str, ...]:
    """The reward functions to train with (:meth:`grpo_course.tasks.Task.run_reward_names`)."""
    return get_task(task).run_reward_names(profile, reward)


def sft_priming_default(profile: Profile) -> bool:
    """SFT format priming runs by default on GPU profiles (the seeds' "SFT cold start": without it GRPO
    wastes samples on unparseable outputs); the tiny model was fine-tuned on the format when it was
    built, so CPU profiles skip it."""
    return profile.device != "cpu"


def reward_functions(names: Sequence[str]) -> list:
    from ..rewards import get_reward

    return [get_reward(n) for n in names]


def profile_for_task(task: Task | str, profile: Profile) -> Profile:
    """The profile a task trains with: its model, lengths and group size (:meth:`grpo_course.tasks.Task.profile_for`)."""
    return get_task(task).profile_for(profile)


# What ``train(resume=...)`` may do with a run folder that already holds a run.
RESUME_CHOICES = ("interrupted", "fresh", "reuse")


def resume_choice(resume: bool | str) -> str:
    """Normalise ``train(resume=...)``: ``True`` is ``"interrupted"``, ``False`` is ``"fresh"``."""
    if resume is True or resume is False:
        return "interrupted" if resume else "fresh"
    if resume not in RESUME_CHOICES:
        raise ValueError(f"resume={resume!r}: choose one of {', '.join(map(repr, RESUME_CHOICES))} (or True/False)")
    return resume


@dataclass(frozen=True)
class StartDecision:
    """How a call to ``train`` starts: ``"fresh"``, ``"resume"`` (an interrupted run) or ``"load"`` (a
    finished run, ``resume="reuse"`` only), the checkpoint it starts from, and why, in words; ``warnings``
    names the incomplete checkpoints it skipped."""

    action: str
    checkpoint: Path | None
    reason: str
    warnings: tuple[str, ...] = ()


def decide_start(output_dir: str | Path, max_steps: int, resume: bool | str = "interrupted") -> StartDecision:
    """Train afresh unless the run folder holds an interrupted run (its newest complete checkpoint is short
    of ``max_steps``). A finished run is trained again from scratch, unless ``resume="reuse"`` asks to load it;
    ``resume="fresh"`` always starts over.

    Only complete checkpoints count (:func:`grpo_course.checkpoint.inspect_checkpoint`): a newer incomplete one
    is skipped with a warning in favour of the previous complete one, and a damaged checkpoint with no complete
    one before it is refused in plain words (:func:`grpo_course.checkpoint.resume_point`)."""
    choice = resume_choice(resume)
    if choice == "fresh":
        return StartDecision("fresh", None, "a fresh run (resume='fresh')")
    point = ckpt.resume_point(output_dir)
    warnings = tuple(point.warnings())
    last = point.checkpoint
    if last is None:
        return StartDecision("fresh", None, "a fresh run (no complete checkpoint in the run folder)", warnings)
    step = ckpt.checkpoint_step(last)
    if step < max_steps:
        return StartDecision("resume", last, f"resuming an interrupted run from {last.name} (step {step} of "
                                             f"{max_steps})", warnings)
    if choice == "reuse":
        return StartDecision("load", last, f"loading the finished run ({step} steps) instead of training "
                                           "(resume='reuse')", warnings)
    return StartDecision("fresh", None, f"a fresh run: the run folder held a finished run ({step} steps), "
                                        "which this one replaces (resume='reuse' would load it instead)", warnings)


@dataclass
class TrainResult:
    """What a run did: where it lives, its metrics, warnings, before/after and saved files."""

    task: str
    profile: str
    output_dir: Path
    global_step: int
    max_steps: int
    interrupted: bool
    resumed_from: int | None
    reward_names: tuple[str, ...]
    history: list[dict]
    warnings: list[tuple[int, str]]
    train_seconds: float
    data_report: str
    settings: dict[str, Setting] = field(repr=False, default_factory=dict)
    comparison: Any = None  # grpo_course.compare.Comparison
    priming: Any = None  # sft.PrimingResult
    saved: dict[str, Path] = field(default_factory=dict)
    plot_path: Path | None = None
    trainer: Any = field(repr=False, default=None)
    model: Any = field(repr=False, default=None)
    tokenizer: Any = field(repr=False, default=None)
    config: RunConfig | None = None
    start: str = "fresh"  # "fresh", "resume" (an interrupted run) or "load" (a finished run, resume="reuse")
    start_reason: str = ""

    @property
    def finished(self) -> bool:
        return self.global_step >= self.max_steps and not self.interrupted

    def summary(self) -> str:
        lines = [f"task {self.task} on profile {self.profile}: step {self.global_step}/{self.max_steps}"
                 + (" (interrupted: run train() again to resume)" if self.interrupted else "")
                 + (f", resumed from step {self.resumed_from}" if self.resumed_from else ""),
                 f"  started: {self.start_reason or self.start}",
                 f"  rewards: {', '.join(self.reward_names)}; GRPO wall time {self.train_seconds:.1f} s",
                 f"  run folder: {self.output_dir}"]
        if self.history:
            first, last = self.history[: min(5, len(self.history))], self.history[-min(5, len(self.history)):]

            def mean(rows, key):
                vals = [r[key] for r in rows if r.get(key) is not None]
                return sum(vals) / len(vals) if vals else float("nan")

            lines.append(f"  reward (mean of 5 steps): first {mean(first, 'reward'):.3f} -> last "
                         f"{mean(last, 'reward'):.3f}")
        if self.priming is not None:
            lines.append("  " + self.priming.report())
        if self.comparison is not None:
            lines.extend("  " + line for line in self.comparison.summary().splitlines())
        for step, text in self.warnings:
            lines.append(f"  warning at step {step}: {text.split('. ')[0]}.")
        for kind, path in self.saved.items():
            lines.append(f"  saved {kind}: {path}")
        return "\n".join(lines)


def _identity(task: Task, profile: Profile, rewards: Sequence[str], settings: dict[str, Setting]) -> dict:
    keys = ("max_steps", "num_generations", "per_device_train_batch_size", "gradient_accumulation_steps",
            "learning_rate", "seed", "beta", "max_completion_length")
    return {"task": task.name, "profile": profile.name, "model": profile.model_id, "rewards": list(rewards),
            **{k: settings[k].value for k in keys if k in settings}}


def _hub_token(token: str | None) -> str | None:
    if token:
        return token
    if os.environ.get("HF_TOKEN"):
        return os.environ["HF_TOKEN"]
    try:  # Colab's secrets panel
        from google.colab import userdata  # type: ignore[import-not-found]

        return userdata.get("HF_TOKEN")
    except Exception:
        return None


def save_outputs(model, tokenizer, profile: Profile, out_dir: Path, merged: bool = False, gguf: bool = False,
                 push_to_hub: str | None = None, hf_token: str | None = None) -> dict[str, Path]:
    """Save the adapter (always); merged 16-bit weights and GGUF on GPU; push only with a token."""
    saved: dict[str, Path] = {}
    adapter_dir = out_dir / "adapter"
    if profile.device != "cpu":
        from .. import gpu

        gpu.save_adapter(model, tokenizer, adapter_dir)
        if merged:
            gpu.save_merged_16bit(model, tokenizer, out_dir / "merged_16bit")
            saved["merged 16-bit weights"] = out_dir / "merged_16bit"
        if gguf:
            gpu.save_gguf(model, tokenizer, out_dir / "gguf")
            saved["GGUF (llama.cpp / Ollama)"] = out_dir / "gguf"
    else:
        from ..generation import has_adapter

        if merged or gguf:
            print("Merged and GGUF exports use Unsloth's savers and run on GPU profiles only; "
                  "the CPU run saves the adapter.")
        if not has_adapter(model):  # full fine-tuning: the whole (tiny) model is the result
            adapter_dir = out_dir / "model"
        model.save_pretrained(adapter_dir)
        tokenizer.save_pretrained(adapter_dir)
        if not has_adapter(model):
            saved["model weights"] = adapter_dir
            return _push(model, tokenizer, saved, push_to_hub, hf_token)
    saved["LoRA adapter"] = adapter_dir
    return _push(model, tokenizer, saved, push_to_hub, hf_token)


def _push(model, tokenizer, saved: dict[str, Path], push_to_hub: str | None, hf_token: str | None
          ) -> dict[str, Path]:
    if push_to_hub:  # only when the learner named a repository and a token is available
        token = _hub_token(hf_token)
        if not token:
            print(f"Not pushing to {push_to_hub}: no token. Pass hf_token=, set HF_TOKEN, or add HF_TOKEN "
                  "to Colab's secrets.")
        else:
            model.push_to_hub(push_to_hub, token=token, private=True)
            tokenizer.push_to_hub(push_to_hub, token=token, private=True)
            saved["hub (private)"] = Path(push_to_hub)
    return saved


class _quiet_transformers_bars:
    """Switch transformers' own progress bars (e.g. "Writing model shards" at each checkpoint) off until close()."""

    def __init__(self):
        from transformers.utils import logging as hf_logging

        self._logging = hf_logging
        self._was = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()

    def close(self):
        if self._was:
            self._logging.enable_progress_bar()


def _load_finished(trainer, checkpoint: Path) -> None:
    from transformers import TrainerState

    trainer._load_from_checkpoint(str(checkpoint))
    trainer.state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))


def _read_rows(output_dir: Path) -> list[dict]:
    return ckpt.read_log(output_dir / "metrics.jsonl")[0]  # a line cut off mid-write is not a row


def train(task: str | Task | RunConfig = "gsm8k", profile: Profile | str | None = None, steps: int | None = None,
          *, model=None, tokenizer=None, peft_config=None, data: TaskData | None = None,
          prepared: PreparedData | None = None, callbacks: Sequence = (), **settings) -> TrainResult:
    """GRPO-train a :class:`~.run.RunConfig` (or build one from ``task``, ``profile``, ``steps`` and the
    keywords: ``train("gsm8k", steps=30, reward="composite")``). Re-running resumes the same run.

    ``model``/``tokenizer``/``peft_config`` replace the task's model for the profile; ``data`` (raw rows)
    or ``prepared`` (from :func:`~.data.prepare_data`) the task's data; ``callbacks`` go to the trainer.
    Every task trains here: a task brings its model per profile, lengths, reward weights and, if its
    reward is a judge panel, the panel with its cost plan printed first and its budget a hard cap."""
    if isinstance(task, RunConfig):
        given = {k: v for k, v in (("profile", profile), ("steps", steps)) if v is not None}
        config = task.replace(**given, **settings)
    else:
        config = RunConfig(task=task, profile=profile, steps=steps, **settings)
    return run(config, model=model, tokenizer=tokenizer, peft_config=peft_config, data=data, prepared=prepared,
               callbacks=callbacks)


def run(config: RunConfig, *, model=None, tokenizer=None, peft_config=None, data: TaskData | None = None,
        prepared: PreparedData | None = None, callbacks: Sequence = ()) -> TrainResult:
    """Run ``config``: what :func:`train` does once the config is built."""
    say = print if config.verbose else _silent
    task = get_task(config.task)
    profile = prepare_runtime(config.profile)
    say(config.describe())
    if is_main_process():  # before any model loads: a run that cannot save must not train first
        check_writable(config.output_dir or ckpt.run_dir(task.name, profile.name), "run folder")
    steps = config.steps
    tiny_path = None
    if profile.device == "cpu" and task.uses_tiny_text_model and model is None:
        from ..lora import lora_settings, to_peft_config
        from ..models import tiny_text_model

        model, tokenizer, built = tiny_text_model(task, progress=config.verbose)
        say(built.report())
        peft_config = to_peft_config(lora_settings(profile.name))
        tiny_path = built.path
        steps = steps or task.cpu_steps
    run_profile = task.profile_for(profile)
    if tiny_path is not None:
        run_profile = run_profile.with_overrides(model_id=_portable(tiny_path))
    threads = config.threads if config.threads is not None else (CPU_TINY_THREADS if profile.name == "cpu-tiny"
                                                                 else None)
    # a task rewarded by judges: its panel is active for the whole run (training and the before/after)
    with _torch_threads(threads), task.judges(run_profile, config.judges, config.judge_budget_usd) as panel:
        return _train(config, task, run_profile, steps, model=model, tokenizer=tokenizer, peft_config=peft_config,
                      data=data, prepared=prepared, callbacks=callbacks, say=say, panel=panel)


def announce_judges(panel, settings: dict[str, Setting], profile: Profile, say=print) -> None:
    """The judges' cost plan, printed once for the launch (rank 0) before any money is spent: every
    completion of every process is judged, ``per_device_train_batch_size x accumulation x processes`` a step."""
    if not is_main_process():
        return
    per_step = (settings["per_device_train_batch_size"].value * settings["gradient_accumulation_steps"].value
                * panel.processes)
    say(panel.plan(settings["max_steps"].value, per_step, prompt_tokens=profile.max_prompt_length,
                   completion_tokens=settings["max_completion_length"].value))


def _number_or_none(x: float) -> float | None:
    return None if x != x else x  # NaN (nothing graded) is not JSON


def _silent(*args, **kwargs) -> None:
    return None


def _portable(path) -> str:
    from ..paths import REPO_ROOT

    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


# The tiny model's matrices (hidden size 128) are too small for a second thread to help, and on a shared
# 2-core machine (CI runs two test workers at once) threads wait on each other: measured here, a GRPO step
# of the tiny recipe took 1.6-2.6 s with one thread and 5-20 s with two (3 steps each, same load).
CPU_TINY_THREADS = 1


class _torch_threads:
    def __init__(self, n: int | None):
        self.n = n

    def __enter__(self):
        if self.n:
            import torch

            self.old = torch.get_num_threads()
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        if self.n:
            import torch

            torch.set_num_threads(self.old)
        return False


def _train(config: RunConfig, task: Task, profile: Profile, steps: int | None, *, model, tokenizer, peft_config,
           data, prepared, callbacks, say, panel=None) -> TrainResult:
    from transformers import set_seed

    seed = config.seed
    # Seed before anything random happens here: the LoRA A matrices are initialised when the trainer wraps
    # the model, before TRL seeds; without this two runs with the same seed differ from step 1.
    set_seed(seed)
    names = task.run_reward_names(profile, config.reward)
    overrides = {**task.grpo_overrides(profile, config.reward), **(config.overrides or {})}
    if overrides.get("reward_weights"):
        say(f"task {task.name}: model {profile.model_id}; rewards " + " + ".join(
            f"{w:g} x {n}" for w, n in zip(overrides["reward_weights"], names)))
    output_dir = Path(config.output_dir) if config.output_dir else ckpt.run_dir(task.name, profile.name)
    from ..generation import has_adapter

    lora = model is None or peft_config is not None or has_adapter(model)  # the profile's model gets LoRA
    settings = grpo_settings(profile, output_dir, steps, config.save_steps, seed, overrides, lora=lora)
    # Under accelerate launch / torchrun every rank runs this function; only the main one writes files.
    main = is_main_process()
    if panel is not None:
        announce_judges(panel, settings, profile, say)
    decision = decide_start(output_dir, settings["max_steps"].value, config.resume)
    for warning in decision.warnings if main else ():  # printed even when verbose=False: never a silent skip
        print(f"warning: {warning}")
    say(f"start: {decision.reason}")
    if decision.action == "fresh" and main:
        ckpt.start_fresh(output_dir)
    if decision.action != "fresh" or main:  # a fresh run: the main rank deleted the old one; others check nothing
        ckpt.check_run_matches(output_dir, _identity(task, profile, names, settings), record=main)
    last = decision.checkpoint

    if model is None:
        model, tokenizer, default_peft = load_model(profile)
        peft_config = peft_config if peft_config is not None else default_peft
    if prepared is None:
        prepared = prepare_data(task, profile, tokenizer, train_size=config.train_size, data=data)
        say(prepared.report())
    eval_size = config.eval_size or (task.cpu_eval_size if profile.device == "cpu" and task.uses_tiny_text_model
                                     else DEFAULT_EVAL_SIZE.get(profile.name, 100))
    heldout = [prepared.heldout[i] for i in range(min(len(prepared.heldout), eval_size))]
    if config.compare and not heldout:  # before training: a before/after of nothing would read "0.0% -> 0.0%"
        raise UsageError(f"task {task.name}: no held-out problems to compare before and after on ({prepared.source}: "
                         f"{prepared.dropped_heldout} held-out prompts over {prepared.max_prompt_tokens} tokens "
                         "removed, none left). Give the task held-out rows, or train with compare=False.")

    priming = None
    sft_priming = config.sft_priming
    if sft_priming is None:
        sft_priming = sft_priming_default(profile)
    if sft_priming and last is None:
        from .sft import DEFAULT_SFT_STEPS, prime_format

        if peft_config is not None:  # the adapter must exist before priming so GRPO continues the same one
            from peft import get_peft_model

            model, peft_config = get_peft_model(model, peft_config), None
        priming = prime_format(model, tokenizer, task, prepared.train, profile, str(output_dir / "sft"),
                               steps=config.sft_steps or DEFAULT_SFT_STEPS, seed=seed)
        say(priming.report())

    from ..compare import Evaluation, before_after, evaluate_greedy

    before = None
    max_new = settings["max_completion_length"].value
    if config.compare and peft_config is None and not has_adapter(model):
        # Full fine-tuning: no adapter to switch off afterwards, so record "before" now (kept for resumes).
        before_path = output_dir / "before.json"
        if last is not None and before_path.is_file():
            before = Evaluation(**json.loads(before_path.read_text()))
        else:
            before = evaluate_greedy(model, tokenizer, heldout, task=task, max_new_tokens=max_new, profile=profile)
            if main:
                before_path.write_text(json.dumps(before.as_dict()))

    from transformers import PrinterCallback, ProgressCallback
    from trl import GRPOTrainer

    from .monitor import SimulatedInterruption, TrainingMonitor

    monitor = TrainingMonitor(output_dir, live=config.live, plot_every=config.plot_every,
                              stop_at_step=config.stop_at_step,
                              title=f"GRPO on {task.name}, profile {profile.name}")
    trainer = GRPOTrainer(model=model, reward_funcs=reward_functions(names), args=make_grpo_config(settings),
                          train_dataset=prepared.train, processing_class=tokenizer, peft_config=peft_config,
                          callbacks=[monitor, *callbacks])
    monitor.attach(trainer)
    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    model = trainer.model

    resumed_from = ckpt.checkpoint_step(last) if last is not None else None
    # Rows logged after the checkpoint (or all rows, without one) are redone: cut them so none is doubled.
    # A last line cut off mid-write (the session died while the monitor wrote it) is no row: read past it, then
    # the rewind removes it.
    rows, torn = ckpt.read_log(output_dir / "metrics.jsonl")
    logged = [r.get("step", 0) or 0 for r in rows]
    if torn:
        say(f"metrics.jsonl: {torn} line(s) cut off mid-write are removed; their steps are logged again")
    if main:
        ckpt.rewind_logs(output_dir, resumed_from or 0)
    lost = max(logged, default=0) - (resumed_from or 0)
    if decision.action == "resume" and lost > 0:
        say(f"steps {resumed_from + 1}-{resumed_from + lost} were lost with the session and are redone")
    interrupted = False
    start = time.perf_counter()
    quiet = _quiet_transformers_bars()  # one bar (ours), not one per checkpoint write
    try:
        if decision.action == "load":
            # A finished run (resume="reuse"): transformers would run one extra step, so load its final state.
            _load_finished(trainer, last)
            monitor.rows = _read_rows(output_dir)
        else:
            trainer.train(resume_from_checkpoint=str(last) if last is not None else None)
    except SimulatedInterruption as stop:
        interrupted = True
        say(f"interrupted at step {stop.step} on purpose: a simulated session death (a red progress bar above is "
            f"expected).\nRun the same train() call again to resume from the last checkpoint.")
    finally:
        monitor.close()
        quiet.close()
    seconds = time.perf_counter() - start

    saved: dict[str, Path] = {}
    comparison = None
    trainer.accelerator.wait_for_everyone()  # every rank has finished training before rank 0 saves
    if not interrupted and main:
        saved = save_outputs(model, tokenizer, profile, output_dir / "final", config.save_merged, config.save_gguf,
                             config.push_to_hub, config.hf_token)
        if config.compare:
            comparison = before_after(model, tokenizer, heldout, evaluate_greedy, before=before, task=task,
                                      max_new_tokens=max_new, profile=profile)
            b, a = comparison.before, comparison.after
            (output_dir / "comparison.json").write_text(json.dumps({
                "before_accuracy": _number_or_none(b.accuracy), "after_accuracy": _number_or_none(a.accuracy),
                "before_format_rate": b.format_rate, "after_format_rate": a.format_rate, "n": a.n,
                "before_unscored": b.unscored, "after_unscored": a.unscored}, indent=1))
    plot_path = monitor.save_plot() if monitor.rows and main else None
    result = TrainResult(
        task=task.name, profile=profile.name, output_dir=output_dir, global_step=trainer.state.global_step,
        max_steps=settings["max_steps"].value, interrupted=interrupted, resumed_from=resumed_from,
        reward_names=names, history=list(monitor.rows), warnings=list(monitor.warnings), train_seconds=seconds,
        data_report=prepared.report(), settings=settings, comparison=comparison, priming=priming, saved=saved,
        plot_path=plot_path, trainer=trainer, model=model, tokenizer=tokenizer, config=config,
        start=decision.action, start_reason=decision.reason)
    if main:
        (output_dir / "result.json").write_text(json.dumps(
            {k: getattr(result, k) for k in ("task", "profile", "global_step", "max_steps", "interrupted",
                                             "resumed_from", "train_seconds", "start")}, indent=1))
    trainer.accelerator.wait_for_everyone()  # no rank returns (and exits) while rank 0 still writes
    return result
