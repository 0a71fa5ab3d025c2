"""Any task's held-out problems graded with the task's own metric, with the adapter off and on.

:func:`evaluate_task` samples ``n`` completions per held-out problem with the adapter off ("before") and
on ("after"), same prompts, same sampling seed, and grades them with :meth:`grpo_course.tasks.Task.score`
(pass@k with hidden tests, tolerance accuracy, judge score); a task rewarded by judges gets its judge
panel, whose planned cost is printed first. ``grpo-course eval --task T`` calls it. GSM8K (a task with
``math_answers``) has stage 05's richer math evaluation instead (:mod:`.runner`).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..hardware import Profile
from ..tasks import Scored, Task
from ..usage import UsageError
from .checkpoints import load_for_eval


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
            left_out = (f"; {p['excluded']} problem(s) left out: unscored before or after (excluded, not counted "
                        "as 0)" if p.get("excluded") else "")
            if p.get("difference") is None:
                lines.append(f"  after - before: no problem was scored both before and after{left_out}")
            else:
                lines.append(f"  after - before (paired over {p['compared']} problems): {p['difference']:+.1%} "
                             f"[{p['low']:+.1%}, {p['high']:+.1%}]{left_out}")
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


def paired_problem_scores(before: Scored, after: Scored) -> tuple[list[float], list[float], int]:
    """Per problem, the mean of its scored samples before and after, over the problems with a scored sample on
    both sides; and how many problems were left out. An unscored sample (``None``: the judges could not score
    it) is excluded, never counted as 0: "before" spends a shared judge budget first, so zeros would bias the
    difference downward."""
    b, a = [], []
    for xs, ys in zip(before.per_sample, after.per_sample):
        xs, ys = [x for x in xs if x is not None], [y for y in ys if y is not None]
        if xs and ys:
            b.append(sum(xs) / len(xs))
            a.append(sum(ys) / len(ys))
    return b, a, len(before.per_sample) - len(b)


def default_adapter(task: Task, profile: Profile) -> Path | None:
    """The adapter ``train`` saved for this task and profile, if any."""
    from ..checkpoint import run_dir

    path = run_dir(task.name, profile.name) / "final" / "adapter"
    return path if (path / "adapter_config.json").is_file() else None


def evaluate_task(task, profile: Profile | str | None = None, *, model=None, tokenizer=None,
                  adapter: str | Path | None = "auto", n: int = 4, temperature: float = 1.0, limit: int | None = None,
                  max_new_tokens: int | None = None, seed: int = 0, judges: str = "auto",
                  judge_budget_usd: float | None = None, progress: bool = True, verbose: bool = True
                  ) -> TaskEvaluation:
    """Sample ``n`` completions per held-out problem and grade them with the task's metric.

    With a LoRA adapter (``adapter="auto"``: the one ``train`` saved for this task and profile, if any),
    the same problems are run with the adapter off ("before") and on ("after"), same prompts, same
    sampling seed, and the paired difference is reported."""
    from ..generation import Decoding, generate_samples, has_adapter
    from ..metrics import paired_bootstrap
    from ..models import prepare_runtime
    from ..tasks import get_task

    say = print if verbose else (lambda *a, **k: None)
    task, profile = get_task(task), prepare_runtime(profile)
    if task.math_answers:
        raise ValueError(f"task {task.name!r} is graded by stage 05's math evaluation: use "
                         "grpo_course.evaluate.evaluate_model (grpo-course eval)")
    data = task.load(profile)
    rows = data.heldout[:limit] if limit else data.heldout
    if not rows:
        raise UsageError(f"task {task.name}: no held-out problems to evaluate ({data.source})")
    if model is None:
        if adapter == "auto":
            adapter = default_adapter(task, profile)
        model, tokenizer = load_for_eval(profile, None, adapter, task=task, progress=progress)
    rp = task.profile_for(profile)
    decoding = Decoding(max_new_tokens=max_new_tokens or rp.max_completion_length, temperature=temperature,
                        n=n if temperature > 0 else 1, seed=seed, batch_size=16)
    prompts = [task.to_prompt(r) for r in rows]
    labels = {"before (adapter off)": False, "after (adapter on)": True} if has_adapter(model) else {"model": True}
    results, completions = {}, {}
    with contextlib.ExitStack() as stack:
        if profile.device == "cpu":
            from ..tasks.tiny_text import torch_threads

            stack.enter_context(torch_threads(1))
        panel = stack.enter_context(task.judges(profile, judges, judge_budget_usd))
        if panel is not None:
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
        b, a, excluded = paired_problem_scores(*(results[k] for k in labels))
        paired = {"difference": None, "low": None, "high": None, "p_value": None, "compared": len(b),
                  "excluded": excluded}
        if b:
            d = paired_bootstrap(b, a, seed=seed)
            paired.update(difference=d.difference.estimate, low=d.difference.low, high=d.difference.high,
                          p_value=d.p_value)
    return TaskEvaluation(task.name, profile.name, data.source, results, completions, list(rows), paired)
