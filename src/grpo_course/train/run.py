"""One object says what a training run is: :class:`RunConfig`, printed at the start of every run.

``grpo_course.train.train(RunConfig(task="medcalc", steps=50))`` and ``train("medcalc", steps=50)`` run
the same thing: the keywords build the config. What the config does not hold are objects that replace
the run's defaults (a model, a tokenizer, prepared data, callbacks): :func:`~.pipeline.train` takes them
as keywords beside it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..hardware import Profile
from ..tasks import Task


@dataclass(frozen=True)
class RunConfig:
    """A GRPO run: the task, the hardware profile, and every choice the pipeline does not make itself.

    ``None`` means "the pipeline's default for this task and profile", and :meth:`describe` says so."""

    task: str | Task = "gsm8k"
    profile: Profile | str | None = None  # default: this runtime's (GRPO_COURSE_PROFILE overrides)
    steps: int | None = None  # GRPO steps (default: the profile's, the tiny recipe's, or the task's CPU steps)
    reward: str | Sequence[str] | None = None  # a reward set of the task, or registry names
    output_dir: str | Path | None = None  # default: runs/<task>-<profile>
    # "interrupted" (or True): continue a run that stopped short, else train afresh; "fresh" (or False): always
    # start over; "reuse": also load a finished run instead of training it again (pipeline.decide_start)
    resume: bool | str = "interrupted"
    seed: int = 0
    save_steps: int | None = None  # checkpoint every N steps (default 10)
    eval_size: int | None = None  # held-out problems for before/after (default: per profile and task)
    train_size: int | None = None  # first N training rows (default: all)
    sft_priming: bool | None = None  # SFT format priming before GRPO (default: on for GPU profiles)
    sft_steps: int | None = None
    compare: bool = True  # before/after on held-out problems at the end
    overrides: dict = field(default_factory=dict)  # GRPOConfig keywords that win over every other choice
    judges: str = "auto"  # a task rewarded by judges: "auto" (offline on CPU, the APIs on a GPU), "offline", "api"
    judge_budget_usd: float | None = None  # the judges' hard cap (default: the task's)
    live: bool | None = None  # the live training panel (default: in a notebook)
    plot_every: int = 5
    stop_at_step: int | None = None  # simulate a session dying at this step
    threads: int | None = None  # torch CPU threads during the run (default: 1 on cpu-tiny)
    save_merged: bool = False  # GPU: also save merged 16-bit weights
    save_gguf: bool = False  # GPU: also export GGUF
    push_to_hub: str | None = None  # push the adapter (private) to this repository; needs a token
    hf_token: str | None = field(default=None, repr=False)
    verbose: bool = True

    def __post_init__(self):
        for name in ("steps", "save_steps", "eval_size", "train_size", "sft_steps", "plot_every", "threads"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"RunConfig.{name} must be a positive whole number or None, got {value!r}")
        if self.resume not in (True, False, "interrupted", "fresh", "reuse"):
            raise ValueError(f"RunConfig.resume must be 'interrupted', 'fresh' or 'reuse' (or True/False), "
                             f"got {self.resume!r}")
        if self.judges not in ("auto", "offline", "api"):
            raise ValueError(f"RunConfig.judges must be 'auto', 'offline' or 'api', got {self.judges!r}")

    def replace(self, **changes) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """The run in one block: every field, defaults marked (printed at the start of every run)."""
        defaults = {f.name: f.default for f in dataclasses.fields(self) if f.default is not dataclasses.MISSING}
        lines = ["run:"]
        for f in dataclasses.fields(self):
            if not f.repr:
                continue
            value = getattr(self, f.name)
            if isinstance(value, Task):
                value = value.name
            elif isinstance(value, Profile):
                value = value.name
            shown = "(default)" if value is None else repr(value)
            mark = "" if f.name in defaults and value == defaults[f.name] else "  *"
            lines.append(f"  {f.name:<17} {shown}{mark}")
        lines.append("  (* set for this run; (default): the pipeline chooses for the task and profile)")
        return "\n".join(lines)
