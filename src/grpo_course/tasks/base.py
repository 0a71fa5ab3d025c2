"""The one :class:`Task` type: what to train on and how to grade it. Every task (GSM8K, code, MedCalc,
legal QA, yours) is one ``Task`` registered with :func:`register_task`; the pipeline is shared.

A task is data + a prompt + rewards + a grader, plus the facts a learner needs to run it anywhere:

* ``load``: training and held-out rows for a profile (the hub dataset on a GPU, local files on CPU),
  and ``sources``: the hub datasets (id, config, split, licence, size) and the local files with their
  columns (``data/tasks/<task>/``);
* ``to_prompt``: a row as chat messages (TRL's conversational ``prompt`` column);
* ``reward_sets`` and ``reward_weights``: named sets of registry rewards (``grpo_course.rewards``) and
  their weights (TRL's ``reward_weights``); ``cpu_reward``: the set used on ``cpu-tiny`` by default;
* ``is_correct`` (held-out accuracy of the before/after comparison; ``None`` for a completion that cannot
  be graded, which is then excluded, not counted as wrong), ``follows_format`` (its format column: the
  format the task rewards, e.g. a numeric answer for GSM8K, any non-empty answer block for code) and
  ``scorer`` / :meth:`Task.score`: the task's own metric (pass@k, tolerance, judge score); a task with
  ``math_answers`` (GSM8K) is graded by stage 05's math evaluation instead;
* ``models`` and ``lengths``: the model and prompt/completion budgets per hardware profile (on
  ``cpu-tiny`` a task may name a tiny character model, :mod:`.tiny_text`);
* ``judging``: for a task rewarded by LLM judges, the judge panel of a run (its cost plan printed first,
  its budget a hard cap).

Every row the pipeline sees has a ``prompt`` column and the task's gold column (``answer``); TRL passes
the other columns to the reward functions as keyword lists. Nothing here imports torch, transformers or
datasets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..hardware import Profile
from ..jsonl import read_jsonl
from ..paths import data_dir
from ..usage import UsageError

Row = dict
GPU_PROFILES = ("t4", "l4", "large")


@dataclass(frozen=True)
class TaskData:
    """Rows for training and for the held-out evaluation (never trained on), and where they came from."""

    train: list[Row]
    heldout: list[Row]
    source: str


@dataclass(frozen=True)
class HubSource:
    """One dataset split on the Hugging Face hub, and the local file with its columns."""

    hub_id: str
    split: str
    licence: str
    size: str
    local_file: str  # under data/tasks/<task>/
    config: str | None = None
    url: str = ""

    def describe(self) -> str:
        cfg = f" ({self.config})" if self.config else ""
        return f"{self.hub_id}{cfg}, split {self.split}: {self.size}; licence {self.licence}"


@dataclass(frozen=True)
class Scored:
    """Held-out completions graded with a task's own metric."""

    metric: str  # e.g. "pass@1", "tolerance accuracy", "judge score"
    value: float
    low: float | None
    high: float | None
    n_problems: int
    n_samples: int  # completions per problem
    details: dict = field(default_factory=dict)  # more numbers (pass@k, per answer type, agreement, cost)
    per_sample: list = field(default_factory=list)  # one list per problem: each completion's score

    def summary(self) -> str:
        interval = f" [{self.low:.1%}, {self.high:.1%}]" if self.low is not None and self.high is not None else ""
        extra = "; ".join(f"{k} {_fmt(v)}" for k, v in self.details.items() if not isinstance(v, (dict, list)))
        value = "none could be scored" if self.value != self.value else f"{self.value:.1%}"  # NaN: nothing scored
        return (f"{self.metric}: {value}{interval} on {self.n_problems} held-out problems x "
                f"{self.n_samples} samples" + (f"; {extra}" if extra else ""))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def tag_format_followed(completion: str) -> bool:
    """Does the completion use the course's reasoning and answer tags with a number inside? (stage 02's
    ``tag_format`` reward; the default format check of a task, right for tasks whose answer is one number)"""
    from ..rewards import get_reward

    return bool(get_reward("tag_format")([completion])[0])


def answer_block_format_followed(completion: str) -> bool:
    """Does the completion reason in a think block, then answer in a non-empty answer block, whatever the
    answer is (code, a date, prose)? (stage 02's ``format`` reward, the format part of the code, medcalc and
    legal-qa rewards)"""
    from ..rewards import get_reward

    return bool(get_reward("format")([completion])[0])


@dataclass(frozen=True)
class Task:
    """One training task: data, prompt, rewards and grader, with its sources, models and metric."""

    name: str
    description: str
    load: Callable[[Profile], TaskData]  # the profile picks the source (hub dataset on GPU, local on CPU)
    to_prompt: Callable[[Row], list[dict]]  # row -> chat messages (TRL's conversational `prompt`)
    reward_sets: dict[str, tuple[str, ...]]  # name -> reward names in grpo_course.rewards' registry
    default_reward: str
    is_correct: Callable[[str, Row], bool | None]  # completion, row -> correct? (None: could not be graded)
    demonstration: Callable[[Row], str] | None = None  # row -> a well-formed completion, for SFT priming
    gold_column: str = "answer"
    notes: dict[str, str] = field(default_factory=dict)
    sources: dict[str, HubSource] = field(default_factory=dict)  # "train" / "heldout"
    models: dict[str, str] = field(default_factory=dict)  # profile name -> model id (cpu-tiny: folder)
    reward_weights: dict[str, tuple[float, ...]] = field(default_factory=dict)  # reward set -> weights
    lengths: dict[str, tuple[int, int]] = field(default_factory=dict)  # profile -> (prompt, completion)
    metric: str = ""
    colab: str = ""  # what the task needs on Colab, in one sentence (README's task table)
    scorer: Callable[..., Scored] | None = None  # (task, rows, completions per row, profile) -> Scored
    # the before/after table's format column: the format this task rewards (a numeric answer by default)
    follows_format: Callable[[str], bool] = tag_format_followed
    cpu_reward: str | Sequence[str] | None = None  # the reward on cpu-tiny when none is asked for
    cpu_steps: int = 20  # GRPO steps on cpu-tiny with the tiny character model, when none are asked for
    cpu_generations: int = 4
    cpu_eval_size: int = 16  # held-out problems for the before/after with the tiny character model
    tiny_demonstration: Callable[[dict], str] | None = None  # the CPU model's warm start (default: demonstration)
    # (profile, judges, budget_usd) -> a context manager that makes the task's judge panel active for a run
    judging: Callable[..., contextlib.AbstractContextManager] | None = None
    judge_budget_usd: float | None = None  # the default hard cap of `judging`
    math_answers: bool = False  # held-out answers are numbers graded by stage 05's math evaluation (GSM8K)

    def reward_names(self, reward: str | Sequence[str] | None = None) -> tuple[str, ...]:
        """Resolve ``reward``: a set name of this task, one registry name, or a list of registry names."""
        if reward is None:
            reward = self.default_reward
        if isinstance(reward, str):
            return self.reward_sets.get(reward, (reward,))
        return tuple(reward)

    @property
    def uses_tiny_text_model(self) -> bool:
        """On cpu-tiny, does this task run the tiny character model of :mod:`.tiny_text` (not the math one)?"""
        return "cpu-tiny" in self.models

    # ---- data -----------------------------------------------------------------------------------
    @property
    def data_folder(self) -> Path:
        return data_dir() / "tasks" / self.name

    def local_path(self, which: str) -> Path:
        return self.data_folder / self.sources[which].local_file

    # ---- rewards --------------------------------------------------------------------------------
    def run_reward_names(self, profile: Profile, reward: str | Sequence[str] | None = None) -> tuple[str, ...]:
        """The reward functions a run trains with: the caller's choice (a set name, a registry name, or a
        list of either), else ``cpu_reward`` on cpu-tiny, else the task's default set."""
        if reward is None and profile.name == "cpu-tiny" and self.cpu_reward is not None:
            reward = self.cpu_reward
        if isinstance(reward, (list, tuple)):  # each entry may itself be a set name ("tag" -> its two parts)
            return tuple(n for entry in reward for n in self.reward_names(entry))
        return self.reward_names(reward)

    def weights_for(self, reward: str | Sequence[str] | None = None) -> tuple[float, ...]:
        """Weights for ``reward`` (a set name of this task; registry names get weight 1 each)."""
        names = self.reward_names(reward)
        key = reward if isinstance(reward, str) else (self.default_reward if reward is None else None)
        weights = self.reward_weights.get(key) if key is not None else None
        if weights is None or len(weights) != len(names):
            return tuple(1.0 for _ in names)
        return tuple(weights)

    # ---- models ---------------------------------------------------------------------------------
    def model_for(self, profile: Profile) -> str:
        return self.models.get(profile.name, profile.model_id)

    def profile_for(self, profile: Profile) -> Profile:
        """The profile with this task's model and lengths.

        On ``l4`` FP8 is switched off for these models: Unsloth ships pre-quantized FP8-Block weights
        for Llama-3.2-1B, and quantizing other models on the fly needs an H100 (Unsloth 2026.10.7,
        ``unsloth/models/loader_utils.py`` ``_get_fp8_mode_and_check_settings``); 0.5B-3B models fit an L4 in bf16 anyway."""
        changes: dict = {"model_id": self.model_for(profile)}
        if profile.name in self.lengths:
            changes["max_prompt_length"], changes["max_completion_length"] = self.lengths[profile.name]
        if profile.load_in_fp8 and changes["model_id"] != profile.model_id:
            changes["quantization"] = "none"
            changes["description"] = f"{profile.description}; FP8 off for {changes['model_id']} (16-bit LoRA)"
        if profile.name == "cpu-tiny" and self.uses_tiny_text_model:  # its group and batch (see grpo_overrides)
            changes.update(description=f"CPU only: the tiny character-level model of data/tasks/{self.name}/tiny "
                                       "(checks the whole path; it does not learn the skill)",
                           num_generations=self.cpu_generations, per_device_train_batch_size=2 * self.cpu_generations,
                           gradient_accumulation_steps=1, max_steps=self.cpu_steps)
        return profile.with_overrides(**changes)

    def grpo_overrides(self, profile: Profile, reward: str | Sequence[str] | None = None) -> dict:
        """GRPOConfig keywords this task sets: its reward weights (if it has any); on cpu-tiny the tiny
        character model's group size, batch and lengths (the tiny math recipe's 40 tokens fit no code)."""
        out: dict = {"reward_weights": list(self.weights_for(reward))} if self.reward_weights else {}
        if profile.name == "cpu-tiny" and self.uses_tiny_text_model:
            g = self.cpu_generations
            out.update(num_generations=g, per_device_train_batch_size=2 * g, gradient_accumulation_steps=1,
                       max_completion_length=self.lengths.get("cpu-tiny", (0, 128))[1], temperature=1.0,
                       learning_rate=3e-4, beta=0.0)
        return out

    @contextlib.contextmanager
    def judges(self, profile: Profile, judges: str = "auto", budget_usd: float | None = None) -> Iterator:
        """The task's judge panel, active inside the block and closed after it (``None``: no judges).
        ``budget_usd`` defaults to the task's ``judge_budget_usd``."""
        if self.judging is None:
            yield None
            return
        budget = budget_usd if budget_usd is not None else self.judge_budget_usd
        with self.judging(profile, judges, budget) as panel:
            yield panel

    def tiny_pairs(self) -> list[tuple[list[dict], str]]:
        """(chat prompt, demonstration) for every local training row: the CPU model's warm start."""
        from ..hardware import get_profile

        demo = self.tiny_demonstration or self.demonstration
        if demo is None:
            raise ValueError(f"task {self.name!r} has no demonstration to warm-start a CPU model on")
        return [(self.to_prompt(r), demo(r)) for r in self.load(get_profile("cpu-tiny")).train]

    # ---- evaluation -----------------------------------------------------------------------------
    def score(self, rows: Sequence[dict], completions: Sequence[Sequence[str]], profile: Profile | None = None,
              **kwargs) -> Scored:
        """Grade ``completions[i]`` (one or more samples) for ``rows[i]`` with the task's metric."""
        if len(rows) != len(completions):
            raise ValueError(f"{len(rows)} rows but {len(completions)} lists of completions")
        if self.scorer is None:
            raise ValueError(f"task {self.name!r} has no scorer: its held-out answers are graded by the stage-05 "
                             "math evaluation (grpo_course.evaluate.evaluate_model, grpo-course eval)")
        return self.scorer(self, list(rows), [list(c) for c in completions], profile, **kwargs)

    def describe(self) -> str:
        lines = [f"task {self.name}: {self.description}"]
        for which, src in self.sources.items():
            lines.append(f"  {which}: {src.describe()}")
        lines.append("  models: " + ", ".join(f"{p} {m}" for p, m in self.models.items()))
        for set_name, names in self.reward_sets.items():
            w = self.weights_for(set_name)
            mark = " (default)" if set_name == self.default_reward else ""
            lines.append(f"  rewards '{set_name}'{mark}: " + " + ".join(f"{x:g} x {n}" for x, n in zip(w, names)))
        lines.append(f"  metric: {self.metric}")
        return "\n".join(lines)


def check_columns(rows: Sequence[dict], columns: Sequence[str], source: str) -> None:
    """Refuse rows that lack the hub dataset's columns (a clear error instead of a KeyError later)."""
    if not rows:
        raise ValueError(f"{source}: no rows")
    for i, row in enumerate(rows):
        missing = [c for c in columns if c not in row]
        if missing:
            raise ValueError(f"{source}: row {i} lacks column(s) {missing}; expected the hub dataset's "
                             f"columns {list(columns)}, got {sorted(row)}")


def hub_rows(source: HubSource) -> list[dict]:
    """All rows of a hub split (needs network and, on Colab, nothing else)."""
    from datasets import load_dataset

    ds = load_dataset(source.hub_id, source.config, split=source.split)
    return [dict(r) for r in ds]


def local_or_hub(task: Task, which: str, profile: Profile) -> tuple[list[dict], str]:
    """The split's raw rows: the local file on CPU, the hub dataset on a GPU profile."""
    src = task.sources[which]
    if profile.device == "cpu":
        path = task.local_path(which)
        return read_jsonl(path), f"data/tasks/{task.name}/{src.local_file} (hub schema of {src.hub_id})"
    return hub_rows(src), f"{src.hub_id}{f' ({src.config})' if src.config else ''} {src.split} from the hub"




def task_data(train: list[dict], heldout: list[dict], source: str) -> TaskData:
    return TaskData(train, heldout, source)


# ---- the registry --------------------------------------------------------------------------------

TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Make ``task`` available by name (``get_task``, ``grpo-course train --task NAME``)."""
    TASKS[task.name] = task
    return task


class UnknownTaskError(UsageError):
    """No task is registered under that name (a ``ValueError``; the command line prints it as one line)."""


def get_task(name: str | Task) -> Task:
    """The registered task called ``name`` (a :class:`Task` is returned as it is)."""
    if isinstance(name, Task):
        return name
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise UnknownTaskError(f"Unknown task {name!r}. Tasks: {', '.join(sorted(TASKS))}.") from None


def list_tasks() -> list[str]:
    """Registered task names, GSM8K first."""
    return sorted(TASKS, key=lambda n: (n != "gsm8k", n))
