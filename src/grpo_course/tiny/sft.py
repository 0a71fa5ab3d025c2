"""Supervised fine-tuning of the tiny model on the flawed demonstrator's solutions (a short torch loop).

The loss is next-token cross-entropy on the completion tokens only (the prompt is masked out). Every
step draws a fresh batch of problems and a fresh demonstration for each, so the model sees the flaw at
its true rate (:data:`~grpo_course.tiny.demonstrator.FLAW_RATE`) and learns it as a probability.

Other callers (another demonstrator, another task) pass ``demonstrations``: for each problem the usual
completion and an alternative one (or ``None``); the alternative is shown with probability
``settings.flaw_rate``. The default is the flawed demonstrator: the correct solution, and on problems with a
subtraction step the one that adds instead.

Speed: the loop is compute-bound (a step of 64 sequences is about 11 GFLOP, at about 35 GFLOP/s on one
core). ``bucket_steps=k`` draws ``k`` batches at once and groups them by length, so a batch pads to the
length of its own sequences instead of the longest problem's (about 20% fewer tokens on the tiny task; the
same problems and flaw draws in another grouping). ``bucket_steps=1`` is the original order, step for step.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from .demonstrator import FLAW_RATE, solve
from .evaluation import prompt_texts


@dataclass(frozen=True)
class SFTSettings:
    steps: int = 1500
    batch_size: int = 64
    learning_rate: float = 3e-3
    warmup_steps: int = 50
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.01
    pool_size: int = 20000  # distinct problems the demonstrations are drawn from
    flaw_rate: float = FLAW_RATE  # the probability of the alternative demonstration (the flaw) where one exists
    seed: int = 0
    bucket_steps: int = 1  # >1: draw that many batches at once and group them by length (see the module doc)

    def as_dict(self) -> dict:
        return asdict(self)


Demonstrations = Callable[[dict], tuple[str, str | None]]


def flawed_demonstrations(problem: dict) -> tuple[str, str | None]:
    """The flawed demonstrator's two solutions: correct, and (on a subtraction problem) adding instead."""
    return solve(problem), (solve(problem, flawed=True) if problem.get("has_subtraction") else None)


def encode_pool(tokenizer, problems: Sequence[dict], demonstrations: Demonstrations | None = None
                ) -> list[tuple[list[int], list[int], list[int] | None]]:
    """Per problem: prompt ids, the usual completion's ids, the alternative's ids or ``None`` (with EOS)."""
    eos = [tokenizer.eos_token_id]
    pairs = [(demonstrations or flawed_demonstrations)(p) for p in problems]
    prompts = tokenizer(prompt_texts(tokenizer, [p["question"] for p in problems]))["input_ids"]
    usual = tokenizer([u for u, _ in pairs])["input_ids"]
    alt = [tokenizer(a)["input_ids"] + eos if a is not None else None for _, a in pairs]
    return [(pr, u + eos, a) for pr, u, a in zip(prompts, usual, alt)]


def draw_batches(pool, settings: SFTSettings, rng: random.Random):
    """Endless batches of ``(prompt ids, completion ids)``: problems drawn with replacement, the alternative
    completion with probability ``flaw_rate``; ``bucket_steps`` batches at a time grouped by length."""
    s = settings
    while True:
        idx = [rng.randrange(len(pool)) for _ in range(s.batch_size * s.bucket_steps)]
        pairs = [(pool[i][0], pool[i][2] if pool[i][2] is not None and rng.random() < s.flaw_rate else pool[i][1])
                 for i in idx]
        if s.bucket_steps == 1:  # the original order, step for step
            yield pairs
            continue
        pairs.sort(key=lambda pc: len(pc[0]) + len(pc[1]))
        chunks = [pairs[j:j + s.batch_size] for j in range(0, len(pairs), s.batch_size)]
        rng.shuffle(chunks)
        yield from chunks


def collate(tokenizer, pairs: Sequence[tuple[list[int], list[int]]]):
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 on prompt and padding)."""
    import torch

    length = max(len(p) + len(c) for p, c in pairs)
    ids = torch.full((len(pairs), length), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((len(pairs), length), -100, dtype=torch.long)
    mask = torch.zeros((len(pairs), length), dtype=torch.long)
    for i, (p, c) in enumerate(pairs):
        seq = p + c
        ids[i, :len(seq)] = torch.tensor(seq)
        mask[i, :len(seq)] = 1
        labels[i, len(p):len(seq)] = torch.tensor(c)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def train_sft(model, tokenizer, problems: Sequence[dict], settings: SFTSettings | None = None,
              callback: Callable[[int, float], None] | None = None, callback_every: int = 250,
              progress: bool = True, demonstrations: Demonstrations | None = None) -> list[dict]:
    """Fine-tune ``model`` in place on demonstrations for ``problems``; returns the loss history.

    ``demonstrations``: ``problem -> (usual completion, alternative or None)`` (default
    :func:`flawed_demonstrations`); each step shows the alternative with probability ``settings.flaw_rate``."""
    import torch
    from tqdm.auto import tqdm

    s = settings or SFTSettings()
    torch.manual_seed(s.seed)
    rng = random.Random(s.seed)
    if s.bucket_steps < 1:
        raise ValueError(f"bucket_steps must be >= 1, got {s.bucket_steps}")
    pool = encode_pool(tokenizer, problems, demonstrations)
    batches = draw_batches(pool, s, rng)
    opt = torch.optim.AdamW(model.parameters(), lr=s.learning_rate, weight_decay=s.weight_decay,
                            betas=(0.9, 0.98))

    def lr_at(step: int) -> float:
        if step < s.warmup_steps:
            return (step + 1) / s.warmup_steps
        t = (step - s.warmup_steps) / max(1, s.steps - s.warmup_steps)
        return s.min_lr_ratio + (1 - s.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    model.train()
    history = []
    start = time.perf_counter()
    bar = tqdm(range(s.steps), desc="SFT", disable=not progress)
    for step in bar:
        loss = model(**collate(tokenizer, next(batches))).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        history.append({"step": step + 1, "loss": loss.item(), "seconds": time.perf_counter() - start})
        if step % 10 == 0:
            bar.set_postfix(loss=f"{history[-1]['loss']:.3f}")
        if callback is not None and ((step + 1) % callback_every == 0 or step + 1 == s.steps):
            callback(step + 1, history[-1]["loss"])
    model.eval()
    return history
