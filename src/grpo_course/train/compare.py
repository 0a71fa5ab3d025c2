"""Before and after: the same held-out prompts, the same chat template, the adapter off and on.

:func:`generate` decodes greedily by default (temperature 0: the model's single best answer, so the
two columns differ only because the weights did). On CPU it calls ``transformers``' ``generate`` with
the prompt tokenized exactly as GRPOTrainer tokenizes it; on a GPU profile it calls
``grpo_course.gpu.generate`` (vLLM with and without the LoRA request, or HF generate on a T4).

"Before" is the adapter switched off (``PeftModel.disable_adapter``), "after" switched on: one model,
no second copy. A model trained without an adapter (full fine-tuning) is compared with a ``base_model``
copy instead, or with completions recorded before training.
"""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..hardware import Profile
from .tasks import Task, get_task, prompt_token_ids


def has_adapter(model) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


def _hf_generate(model, tokenizer, prompts: Sequence[list[dict]], max_new_tokens: int, temperature: float,
                 batch_size: int) -> list[str]:
    import torch

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    was_training = model.training
    model.eval()
    out: list[str] = []
    try:
        for start in range(0, len(prompts), batch_size):
            ids = [prompt_token_ids(tokenizer, p) for p in prompts[start:start + batch_size]]
            width = max(len(x) for x in ids)
            input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=device)
            mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=device)
            kwargs = {"do_sample": False} if temperature <= 0 else {"do_sample": True, "temperature": temperature}
            with torch.no_grad():
                gen = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                     pad_token_id=pad, **kwargs)
            out.extend(tokenizer.batch_decode(gen[:, width:], skip_special_tokens=True))
    finally:
        model.train(was_training)
    return out


def generate(model, tokenizer, prompts: Sequence[list[dict]], max_new_tokens: int, profile: Profile | None = None,
             temperature: float = 0.0, use_adapter: bool = True, batch_size: int = 64) -> list[str]:
    """Completions for chat prompts; ``use_adapter=False`` switches a LoRA adapter off for the call."""
    if profile is not None and profile.device != "cpu":
        from .. import gpu

        return gpu.generate(model, tokenizer, list(prompts), max_new_tokens=max_new_tokens,
                            temperature=temperature, use_adapter=use_adapter)
    ctx = model.disable_adapter() if (not use_adapter and has_adapter(model)) else contextlib.nullcontext()
    with ctx:
        return _hf_generate(model, tokenizer, prompts, max_new_tokens, temperature, batch_size)


def follows_format(completion: str) -> bool:
    """Does the completion use the course's reasoning and answer tags? (stage 02's tag_format reward)"""
    from ..rewards import get_reward

    return bool(get_reward("tag_format")([completion])[0])


@dataclass
class Evaluation:
    """Greedy completions on held-out rows and what fraction are correct and well-formed."""

    completions: list[str]
    correct: list[bool]
    formatted: list[bool]

    @property
    def n(self) -> int:
        return len(self.completions)

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / self.n if self.n else 0.0

    @property
    def format_rate(self) -> float:
        return sum(self.formatted) / self.n if self.n else 0.0


def score(task: Task | str, rows: Sequence[dict], completions: Sequence[str]) -> Evaluation:
    task = get_task(task)
    return Evaluation(list(completions), [task.is_correct(c, r) for c, r in zip(completions, rows)],
                      [follows_format(c) for c in completions])


def evaluate(model, tokenizer, task: Task | str, rows: Sequence[dict], max_new_tokens: int,
             profile: Profile | None = None, use_adapter: bool = True) -> Evaluation:
    task = get_task(task)
    prompts = [r["prompt"] if "prompt" in r else task.to_prompt(r) for r in rows]
    return score(task, rows, generate(model, tokenizer, prompts, max_new_tokens, profile, use_adapter=use_adapter))


@dataclass
class Comparison:
    """Held-out results before and after training, prompt by prompt."""

    rows: list[dict]
    before: Evaluation
    after: Evaluation
    gold_column: str = "answer"
    labels: tuple[str, str] = ("before (adapter off)", "after (adapter on)")
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        b, a = self.before, self.after
        fixed = sum((not x) and y for x, y in zip(b.correct, a.correct))
        broken = sum(x and (not y) for x, y in zip(b.correct, a.correct))
        return (f"held-out accuracy (greedy, {a.n} problems never trained on): "
                f"{b.accuracy:.1%} -> {a.accuracy:.1%}  ({a.accuracy - b.accuracy:+.1%})\n"
                f"format followed: {b.format_rate:.1%} -> {a.format_rate:.1%}; "
                f"problems fixed {fixed}, broken {broken}")

    def side_by_side(self, n: int = 3, width: int = 48, only_changed: bool = True) -> str:
        """A few prompts with both completions next to each other (changed verdicts first)."""
        idx = list(range(len(self.rows)))
        if only_changed:
            changed = [i for i in idx if self.before.correct[i] != self.after.correct[i]]
            idx = changed + [i for i in idx if i not in changed]
        blocks = []
        for i in idx[:n]:
            row = self.rows[i]
            question = row["prompt"][-1]["content"] if "prompt" in row else row.get("question", "")
            gold = str(row.get(self.gold_column, "")).split("####")[-1].strip()
            left = textwrap.wrap(self.before.completions[i], width, replace_whitespace=False) or [""]
            right = textwrap.wrap(self.after.completions[i], width, replace_whitespace=False) or [""]
            left = [piece for line in left for piece in line.split("\n")]
            right = [piece for line in right for piece in line.split("\n")]
            mark = {True: "correct", False: "wrong"}
            lines = [f"Q: {question}", f"gold answer: {gold}",
                     f"{self.labels[0] + ': ' + mark[self.before.correct[i]]:<{width}} | "
                     f"{self.labels[1]}: {mark[self.after.correct[i]]}"]
            for j in range(max(len(left), len(right))):
                lines.append(f"{(left[j] if j < len(left) else ''):<{width}} | {right[j] if j < len(right) else ''}")
            blocks.append("\n".join(lines))
        return ("\n" + "-" * (2 * width + 3) + "\n").join(blocks)


def before_after(model, tokenizer, task: Task | str, rows: Sequence[dict], max_new_tokens: int,
                 profile: Profile | None = None, base_model=None, before: Evaluation | None = None) -> Comparison:
    """Compare on the same prompts: adapter off vs on, or ``base_model`` / recorded ``before`` vs ``model``."""
    task = get_task(task)
    rows = list(rows)
    if before is None:
        if has_adapter(model):
            before = evaluate(model, tokenizer, task, rows, max_new_tokens, profile, use_adapter=False)
            labels = ("before (adapter off)", "after (adapter on)")
        elif base_model is not None:
            before = evaluate(base_model, tokenizer, task, rows, max_new_tokens, profile)
            labels = ("before (starting weights)", "after (trained weights)")
        else:
            raise ValueError("A model without a LoRA adapter needs base_model= or before= to compare with.")
    else:
        labels = ("before training", "after training")
    after = evaluate(model, tokenizer, task, rows, max_new_tokens, profile, use_adapter=True)
    return Comparison(rows, before, after, task.gold_column, labels)
