"""Supervised fine-tuning of the tiny model on the flawed demonstrator's solutions (a short torch loop).

The loss is next-token cross-entropy on the completion tokens only (the prompt is masked out). Every
step draws a fresh batch of problems and a fresh demonstration for each, so the model sees the flaw at
its true rate (:data:`~grpo_course.tiny.demonstrator.FLAW_RATE`) and learns it as a probability.
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
    flaw_rate: float = FLAW_RATE
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def encode_pool(tokenizer, problems: Sequence[dict],
                demonstrations: Callable[[dict], tuple[str, str]] | None = None
                ) -> list[tuple[list[int], list[int], list[int]]]:
    """Per problem: prompt ids, the correct completion's ids, the flawed completion's ids (with EOS).

    ``demonstrations(problem) -> (usual, alternative)`` replaces the demonstrator's (correct, flawed) pair.
    """
    eos = [tokenizer.eos_token_id]
    prompts = tokenizer(prompt_texts(tokenizer, [p["question"] for p in problems]))["input_ids"]
    pairs = [demonstrations(p) for p in problems] if demonstrations else None
    good = tokenizer([d[0] for d in pairs] if pairs else [solve(p) for p in problems])["input_ids"]
    bad = tokenizer([d[1] for d in pairs] if pairs else [solve(p, flawed=True) for p in problems])["input_ids"]
    return [(pr, g + eos, b + eos) for pr, g, b in zip(prompts, good, bad)]


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
              progress: bool = True, demonstrations: Callable[[dict], tuple[str, str]] | None = None
              ) -> list[dict]:
    """Fine-tune ``model`` in place on demonstrations for ``problems``; returns the loss history.

    With ``demonstrations`` (see :func:`encode_pool`) every problem shows the alternative at ``flaw_rate``.
    """
    import torch
    from tqdm.auto import tqdm

    s = settings or SFTSettings()
    torch.manual_seed(s.seed)
    rng = random.Random(s.seed)
    pool = encode_pool(tokenizer, problems, demonstrations)
    flawable = [bool(demonstrations) or bool(p.get("has_subtraction")) for p in problems]
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
        idx = [rng.randrange(len(pool)) for _ in range(s.batch_size)]
        pairs = [(pool[i][0], pool[i][2] if flawable[i] and rng.random() < s.flaw_rate else pool[i][1])
                 for i in idx]
        loss = model(**collate(tokenizer, pairs)).loss
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
