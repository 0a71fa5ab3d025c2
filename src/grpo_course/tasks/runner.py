"""Train and evaluate any task with the stage-04 pipeline and the task's own metric.

:func:`train` is ``grpo_course.train.train`` plus what a task beyond GSM8K brings: the task's model
for the profile (on ``cpu-tiny`` the tiny character model of :mod:`.tiny_text`), its prompt and
completion lengths, its reward weights, and for ``legal-qa`` a judge panel whose cost per step is
printed before training starts and whose budget is a hard cap. GSM8K goes straight to the pipeline.

:func:`evaluate_task` samples ``n`` completions per held-out problem with the adapter off ("before")
and on ("after") and grades them with :meth:`CourseTask.score` (pass@k, tolerance accuracy, judge
score). ``grpo-course train --task T`` and ``grpo-course eval --task T`` call these two.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..hardware import Profile
from .base import CourseTask, Scored


def resolve(task, profile) -> tuple[object, Profile]:
    from ..train.pipeline import prepare_runtime
    from ..train.tasks import get_task

    return get_task(task), prepare_runtime(profile)


def cpu_model(task: CourseTask, progress: bool = True):
    """(model, tokenizer, TinyTextModel) of the task's tiny character model (committed, else built)."""
    from . import tiny_text

    built = tiny_text.build_or_load(task.name, task.tiny_pairs(), committed=task.data_folder / "tiny",
                                    progress=progress)
    model, tokenizer = tiny_text.load(built.path)
    return model, tokenizer, built


def run_profile(task: CourseTask, profile: Profile, tiny_path: Path | None = None) -> Profile:
    """The profile the pipeline gets: the task's model id and lengths (CPU: the tiny model's folder)."""
    p = task.profile_for(profile)
    if tiny_path is not None:
        from ..paths import REPO_ROOT

        try:
            model_id = str(Path(tiny_path).resolve().relative_to(REPO_ROOT))
        except ValueError:
            model_id = str(tiny_path)
        p = p.with_overrides(model_id=model_id)
    return p


@contextlib.contextmanager
def reward_context(task: CourseTask, profile: Profile, settings: dict, judges: str, budget_usd: float | None,
                   say=print):
    """Set up what the task's rewards need for the run (legal-qa: the judge panel, its cost plan)."""
    if task.name != "legal-qa":
        yield None
        return
    from ..scale_out import is_main_process
    from . import legal_qa

    panel = legal_qa.panel_for(profile, judges, budget_usd)  # this process's share of the budget and concurrency
    if not is_main_process():  # one plan for the launch, not one per process
        say = _silent
    try:
        per_step = (settings["per_device_train_batch_size"].value * settings["gradient_accumulation_steps"].value
                    * panel.processes)
        say(panel.plan(settings["max_steps"].value, per_step, prompt_tokens=profile.max_prompt_length,
                       completion_tokens=settings["max_completion_length"].value))
        with legal_qa.use_panel(panel):
            yield panel
    finally:
        panel.close()


def _silent(*args, **kwargs) -> None:
    return None


def train(task="gsm8k", profile: Profile | str | None = None, steps: int | None = None,
          reward: str | Sequence[str] | None = None, *, judges: str = "auto",
          judge_budget_usd: float | None = None, output_dir=None, verbose: bool = True, **kwargs):
    """GRPO-train ``task`` with the stage-04 pipeline; returns its ``TrainResult``.

    ``reward``: a reward set of the task (default: the task's) or registry names (weight 1 each).
    ``judges`` (legal-qa): ``"auto"`` (offline fake judges on CPU, Claude + Gemini on a GPU),
    ``"offline"`` or ``"api"``; ``judge_budget_usd`` is the hard cap (default $2).
    Other keywords go to :func:`grpo_course.train.train` (``resume``, ``eval_size``, ``live``...).
    """
    from ..train import checkpoint as ckpt
    from ..train.config import grpo_settings
    from ..train.pipeline import train as pipeline_train

    say = print if verbose else (lambda *a, **k: None)
    task, profile = resolve(task, profile)
    if not isinstance(task, CourseTask):
        return pipeline_train(task, profile, steps=steps, reward=reward, output_dir=output_dir, verbose=verbose,
                              **kwargs)
    reward = reward or task.default_reward
    names = task.reward_names(reward)
    overrides = {**task.grpo_overrides(profile, reward), **kwargs.pop("overrides", {})}
    tiny_path = None
    if profile.device == "cpu" and kwargs.get("model") is None:
        from ..lora import lora_settings, to_peft_config

        model, tokenizer, built = cpu_model(task, progress=verbose)
        say(built.report())
        kwargs.update(model=model, tokenizer=tokenizer, peft_config=to_peft_config(lora_settings(profile.name)))
        tiny_path = built.path
        steps = steps or task.cpu_steps
    rp = run_profile(task, profile, tiny_path)
    if profile.device == "cpu":
        kwargs.setdefault("eval_size", 16)
    out = Path(output_dir) if output_dir else ckpt.run_dir(task.name, profile.name)
    settings = grpo_settings(rp, out, steps, kwargs.get("save_steps"), kwargs.get("seed", 0), overrides)
    say(f"task {task.name}: model {rp.model_id}; rewards " + " + ".join(
        f"{w:g} x {n}" for w, n in zip(overrides["reward_weights"], names)))
    from .tiny_text import torch_threads

    with torch_threads(1 if tiny_path is not None else None), \
            reward_context(task, rp, settings, judges, judge_budget_usd if judge_budget_usd is not None else
                           _default_budget(task), say=say):
        return pipeline_train(task, rp, steps=steps, reward=list(names), output_dir=out, overrides=overrides,
                              verbose=verbose, _from_task_runner=True, **kwargs)


def _default_budget(task: CourseTask) -> float | None:
    if task.name == "legal-qa":
        from .legal_qa import DEFAULT_BUDGET_USD

        return DEFAULT_BUDGET_USD
    return None


# ---- evaluation -------------------------------------------------------------------------------------


@dataclass
class TaskEvaluation:
    """Held-out results of one task: the model alone, or before (adapter off) and after (adapter on)."""

    task: str
    profile: str
    source: str
    results: dict[str, Scored]  # label -> score ("model", or "before" and "after")
    completions: dict[str, list[list[str]]] = field(repr=False, default_factory=dict)
    rows: list[dict] = field(repr=False, default_factory=list)
    paired: dict | None = None  # the paired difference after - before (per-problem scores)

    def summary(self) -> str:
        lines = [f"task {self.task} on {self.profile}; held-out data: {self.source}"]
        for label, s in self.results.items():
            lines.append(f"  {label:<22} {s.summary()}")
        if self.paired:
            p = self.paired
            lines.append(f"  after - before (paired over problems): {p['difference']:+.1%} "
                         f"[{p['low']:+.1%}, {p['high']:+.1%}]")
        return "\n".join(lines)

    def example(self, label: str | None = None, i: int = 0, width: int = 400) -> str:
        label = label or list(self.completions)[-1]
        c = self.completions[label][i][0] if self.completions[label][i] else ""
        return f"[{label}] problem {i}: {c[:width]!r}"

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "task": self.task, "profile": self.profile, "source": self.source, "paired": self.paired,
            "results": {k: {"metric": s.metric, "value": s.value, "low": s.low, "high": s.high,
                            "n_problems": s.n_problems, "n_samples": s.n_samples,
                            "details": {d: v for d, v in s.details.items() if not isinstance(v, dict)},
                            "per_sample": s.per_sample} for k, s in self.results.items()},
            "completions": self.completions}, indent=1, default=str))
        return path


def default_adapter(task: CourseTask, profile: Profile) -> Path | None:
    from ..train.checkpoint import run_dir

    path = run_dir(task.name, profile.name) / "final" / "adapter"
    return path if (path / "adapter_config.json").is_file() else None


def load_for_task(task: CourseTask, profile: Profile, adapter: str | Path | None, model_id: str | None = None,
                  progress: bool = True):
    """(model, tokenizer) for evaluation: the task's model for the profile, with ``adapter`` if given."""
    if profile.device != "cpu":
        from ..evaluate.command import load_for_eval

        return load_for_eval(task.profile_for(profile), model_id, adapter)
    if model_id:
        from ..tasks.tiny_text import load

        model, tokenizer = load(model_id)
    else:
        model, tokenizer, _ = cpu_model(task, progress=progress)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
        model.eval()
    return model, tokenizer


def evaluate_task(task, profile: Profile | str | None = None, *, model=None, tokenizer=None,
                  adapter: str | Path | None = "auto", n: int = 4, temperature: float = 1.0, limit: int | None = None,
                  max_new_tokens: int | None = None, seed: int = 0, judges: str = "auto",
                  judge_budget_usd: float | None = None, progress: bool = True, verbose: bool = True
                  ) -> TaskEvaluation:
    """Sample ``n`` completions per held-out problem and grade them with the task's metric.

    With a LoRA adapter (``adapter="auto"``: the one ``train`` saved for this task and profile, if any),
    the same problems are run with the adapter off ("before") and on ("after"), same prompts, same
    sampling seed, and the paired difference is reported."""
    from ..evaluate.generation import Decoding, generate_samples, has_adapter
    from ..evaluate.metrics import paired_bootstrap

    say = print if verbose else (lambda *a, **k: None)
    task, profile = resolve(task, profile)
    if not isinstance(task, CourseTask):
        raise ValueError(f"evaluate_task grades the tasks of grpo_course.tasks; for {task.name!r} use "
                         "grpo_course.evaluate (grpo-course eval)")
    data = task.load(profile)
    rows = data.heldout[:limit] if limit else data.heldout
    if model is None:
        if adapter == "auto":
            adapter = default_adapter(task, profile)
        model, tokenizer = load_for_task(task, profile, adapter, progress=progress)
    rp = task.profile_for(profile)
    decoding = Decoding(max_new_tokens=max_new_tokens or rp.max_completion_length, temperature=temperature,
                        n=n if temperature > 0 else 1, seed=seed, batch_size=16)
    prompts = [task.to_prompt(r) for r in rows]
    labels = {"before (adapter off)": False, "after (adapter on)": True} if has_adapter(model) else {"model": True}
    budget = judge_budget_usd if judge_budget_usd is not None else _default_budget(task)
    results, completions = {}, {}
    with contextlib.ExitStack() as stack:
        if profile.device == "cpu":
            from .tiny_text import torch_threads

            stack.enter_context(torch_threads(1))
        panel = None
        if task.name == "legal-qa":
            from . import legal_qa

            panel = stack.enter_context(contextlib.closing(legal_qa.panel_for(profile, judges, budget)))
            stack.enter_context(legal_qa.use_panel(panel))
            say(panel.plan(1, len(rows) * decoding.n * len(labels), prompt_tokens=rp.max_prompt_length,
                           completion_tokens=decoding.max_new_tokens).replace(" x 1 steps", " (this evaluation)"))
        for label, on in labels.items():
            gens = generate_samples(model, tokenizer, prompts, decoding, profile, use_adapter=on, progress=progress,
                                    desc=f"{task.name}: {label}")
            texts = [[g.text for g in group] for group in gens]
            completions[label] = texts
            results[label] = task.score(rows, texts, profile, **({"panel": panel} if panel else {}))
    paired = None
    if len(results) == 2:
        before, after = (results[k] for k in labels)
        b = [sum(x or 0.0 for x in g) / max(1, len(g)) for g in before.per_sample]
        a = [sum(x or 0.0 for x in g) / max(1, len(g)) for g in after.per_sample]
        d = paired_bootstrap(b, a, seed=seed)
        paired = {"difference": d.difference.estimate, "low": d.difference.low, "high": d.difference.high,
                  "p_value": d.p_value}
    return TaskEvaluation(task.name, profile.name, data.source, results, completions, list(rows), paired)
