"""Tasks: what to train on. A task is data + a prompt + rewards + a grader; the pipeline is shared.

Adding a task (code, MedCalc, legal QA arrive later) means writing one :class:`Task` and calling
:func:`register_task`: a loader that returns training and held-out rows, a function that turns a row
into the chat prompt, named sets of reward functions (names from ``grpo_course.rewards``), a grader
for held-out accuracy and, optionally, a demonstration for SFT format priming. Nothing else changes.

Every row the pipeline sees has a ``prompt`` column (chat messages, TRL's conversational format) and
the task's gold column (``answer`` for GSM8K); TRL passes the other columns to the reward functions
as keyword lists.

Nothing here imports torch; ``datasets`` is imported when data is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..chat_format import build_messages, format_response
from ..hardware import Profile

Row = dict


@dataclass(frozen=True)
class TaskData:
    """Rows for training and for the held-out evaluation (never trained on), and where they came from."""

    train: list[Row]
    heldout: list[Row]
    source: str


@dataclass(frozen=True)
class Task:
    """One training task: data, prompt, rewards and grader."""

    name: str
    description: str
    load: Callable[[Profile], TaskData]  # the profile picks the source (hub dataset on GPU, local on CPU)
    to_prompt: Callable[[Row], list[dict]]  # row -> chat messages (TRL's conversational `prompt`)
    reward_sets: dict[str, tuple[str, ...]]  # name -> reward names in grpo_course.rewards' registry
    default_reward: str
    is_correct: Callable[[str, Row], bool]  # completion text, row -> correct? (held-out accuracy)
    demonstration: Callable[[Row], str] | None = None  # row -> a well-formed completion, for SFT priming
    gold_column: str = "answer"
    notes: dict[str, str] = field(default_factory=dict)

    def reward_names(self, reward: str | Sequence[str] | None = None) -> tuple[str, ...]:
        """Resolve ``reward``: a set name of this task, one registry name, or a list of registry names."""
        if reward is None:
            reward = self.default_reward
        if isinstance(reward, str):
            return self.reward_sets.get(reward, (reward,))
        return tuple(reward)


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    TASKS[task.name] = task
    return task


def get_task(name: str | Task) -> Task:
    if isinstance(name, Task):
        return name
    if name not in TASKS:
        import importlib

        importlib.import_module("grpo_course.tasks")  # registers code, medcalc and legal-qa (light import)
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"Unknown task {name!r}. Tasks: {', '.join(sorted(TASKS))}.") from None


# ---- GSM8K ----------------------------------------------------------------------------------------

GSM8K_HUB_ID = "openai/gsm8k"
GSM8K_CONFIG = "main"
_ANNOTATION = re.compile(r"<<[^<>]*>>")


def gsm8k_reasoning_and_answer(answer_text: str) -> tuple[str, str]:
    """Split a GSM8K gold answer into its reasoning (calculator annotations removed) and final answer."""
    reasoning, _, final = answer_text.rpartition("####")
    if not _:
        return "", answer_text.strip()
    return _ANNOTATION.sub("", reasoning).strip(), final.strip().replace(",", "")


def gsm8k_demonstration(row: Row) -> str:
    """A completion in the course's format built from the gold solution (for SFT format priming)."""
    reasoning, answer = gsm8k_reasoning_and_answer(row["answer"])
    return format_response(reasoning or "The answer follows.", answer)


def gsm8k_prompt(row: Row) -> list[dict]:
    return build_messages(row["question"])


def gsm8k_is_correct(completion: str, row: Row) -> bool:
    """Lenient grading (the evaluation mode of ``grpo_course.rewards.is_correct``)."""
    from ..rewards import is_correct

    return bool(is_correct(completion, row["answer"], mode="lenient"))


def _keep_gsm8k_columns(rows) -> list[Row]:
    return [{"question": r["question"], "answer": r["answer"]} for r in rows]


def load_gsm8k(profile: Profile) -> TaskData:
    """GSM8K from the hub on GPU profiles; the project's generated GSM8K-style problems on CPU.

    Both have GSM8K's ``question``/``answer`` columns and a test split that is never trained on.
    """
    if profile.device == "cpu":
        from ..tiny.problems import load_split

        return TaskData(_keep_gsm8k_columns(load_split("train")), _keep_gsm8k_columns(load_split("test")),
                        "data/tiny/problems (the project's generated GSM8K-style problems)")
    from datasets import load_dataset

    ds = load_dataset(GSM8K_HUB_ID, GSM8K_CONFIG)
    return TaskData(_keep_gsm8k_columns(ds["train"]), _keep_gsm8k_columns(ds["test"]),
                    f"{GSM8K_HUB_ID} ({GSM8K_CONFIG}) from the Hugging Face hub")


GSM8K = register_task(Task(
    name="gsm8k",
    description="grade-school math word problems; the answer is one number",
    load=load_gsm8k,
    to_prompt=gsm8k_prompt,
    # "tag" is logged as its two parts, so the panel shows format and correctness separately;
    # TRL sums them, which is exactly tag_reward (0..1.5).
    reward_sets={
        "tag": ("tag_format", "tag_answer"),
        "composite": ("composite_math",),
        "composite_math": ("composite_math",),
        "answer": ("tag_answer",),
    },
    default_reward="tag",
    is_correct=gsm8k_is_correct,
    demonstration=gsm8k_demonstration,
    notes={"heldout": "GSM8K's test split (1,319 problems) on GPU; data/tiny/problems/test.jsonl on CPU"},
))


# ---- turning rows into TRL datasets --------------------------------------------------------------


def prompt_token_ids(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of a chat prompt exactly as GRPOTrainer builds them (chat template + generation prompt)."""
    out = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    ids = out["input_ids"]
    return list(ids[0] if ids and isinstance(ids[0], list) else ids)


@dataclass
class PreparedData:
    """TRL-ready datasets plus what the length filter removed."""

    train: object  # datasets.Dataset
    heldout: object  # datasets.Dataset
    source: str
    max_prompt_tokens: int
    dropped_train: int
    dropped_heldout: int
    dropped_overlap: int = 0

    def report(self) -> str:
        return (f"data: {self.source}\n"
                f"  train {len(self.train)} prompts, held-out {len(self.heldout)} (never trained on)\n"
                f"  prompts over {self.max_prompt_tokens} tokens removed: {self.dropped_train} train, "
                f"{self.dropped_heldout} held-out; training prompts equal to a held-out one removed: "
                f"{self.dropped_overlap}")


def _with_prompts(task: Task, rows: list[Row], tokenizer, max_prompt_tokens: int) -> tuple[list[Row], int]:
    kept, dropped = [], 0
    for row in rows:
        messages = task.to_prompt(row)
        if tokenizer is not None and len(prompt_token_ids(tokenizer, messages)) > max_prompt_tokens:
            dropped += 1
            continue
        kept.append({**row, "prompt": messages})
    return kept, dropped


def prepare_data(task: Task | str, profile: Profile, tokenizer, max_prompt_tokens: int | None = None,
                 train_size: int | None = None, heldout_size: int | None = None,
                 data: TaskData | None = None) -> PreparedData:
    """Load the task's rows, add the ``prompt`` column, drop prompts longer than the budget.

    TRL removed ``max_prompt_length`` (0.28): prompts are no longer truncated, so a long prompt would
    silently eat the completion budget. We filter instead, with the exact tokenization TRL uses.
    """
    from datasets import Dataset

    task = get_task(task)
    data = data or task.load(profile)
    budget = max_prompt_tokens or profile.max_prompt_length
    train_rows = data.train[:train_size] if train_size else data.train
    held_rows = data.heldout[:heldout_size] if heldout_size else data.heldout
    heldout, dropped_held = _with_prompts(task, held_rows, tokenizer, budget)
    # Keep the held-out split pure: a training prompt identical to a held-out one is dropped.
    held_prompts = {_prompt_key(r["prompt"]) for r in heldout}
    train, dropped_train = _with_prompts(task, train_rows, tokenizer, budget)
    overlap = sum(_prompt_key(r["prompt"]) in held_prompts for r in train)
    train = [r for r in train if _prompt_key(r["prompt"]) not in held_prompts]
    if not train:
        raise ValueError(f"No training prompt fits in {budget} tokens: raise max_prompt_length.")
    return PreparedData(Dataset.from_list(train), Dataset.from_list(heldout), data.source, budget,
                        dropped_train, dropped_held, overlap)


def _prompt_key(messages: list[dict]) -> str:
    return "\n".join(m["content"] for m in messages)


# ---- more tasks ----------------------------------------------------------------------------------
# code, medcalc and legal-qa live in grpo_course.tasks (one module each) and register themselves here,
# so get_task("code") works wherever the pipeline looks tasks up. Importing them is light (no torch).
from .. import tasks as _more_tasks  # noqa: E402,F401
