"""A task's rows as TRL datasets: the ``prompt`` column added, prompts over the budget removed, the
held-out split kept pure (a training prompt equal to a held-out one is dropped).

Nothing here imports torch; ``datasets`` is imported when data is prepared.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..chat_format import prompt_token_ids
from ..hardware import Profile
from ..tasks import Task, TaskData, get_task
from ..tasks.base import Row


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
