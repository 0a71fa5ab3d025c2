"""GRPO from scratch: the whole algorithm in one short PyTorch loop, without TRL.

Notebook 01 shows :func:`grpo_from_scratch` inline, once; ``tests/test_scratch.py`` checks that the
notebook's copy trains exactly like this one (same weights after the same steps) and that both agree with
the course's TRL-checked functions (:mod:`grpo_course.advantages`, :mod:`grpo_course.objective`).

One step is the four ideas of notebook 01, in order:

1. **sample** a group of ``G`` completions for each prompt from the current policy (:func:`sample_groups`:
   ``softmax(logits / temperature)``, one token at a time);
2. **score** them with a reward function (TRL's signature: ``completions`` plus dataset columns);
3. **baseline**: each completion's advantage is its reward minus its group's mean, divided by the group's
   sample std plus 1e-4 (REINFORCE with the group mean as baseline, no critic);
4. **update**: the clipped surrogate ``-min(r A, clip(r, 1-eps, 1+eps) A)`` per token, plus ``beta`` times
   the k3 estimate of KL(policy || reference) (times ``r``, as TRL does: ``use_bias_correction_kl``), averaged over all completion
   tokens of the batch (TRL's default ``loss_type="dapo"``); gradient clipping at ``max_grad_norm``; AdamW.
   With ``num_iterations > 1`` the same batch is reused for that many optimiser steps: the ratio ``r``
   then leaves 1 and clipping acts.

Defaults are the tiny recipe's (:data:`grpo_course.tiny.recipe.TINY_GRPO`): G = 8 with 8 prompts a step,
temperature 1, learning rate 1.5e-4 constant, 40 new tokens, beta 0. ``steps`` counts optimiser steps,
like TRL's ``max_steps``. Only the sampler's random draws differ from TRL's (another order of random
numbers, the same distribution), so the two runs are the same algorithm, not the same numbers.
"""

from __future__ import annotations

import copy
import random

import torch


def left_pad_groups(prompts: list[list[int]], G: int, pad_id: int):
    """Each prompt (token ids) ``G`` times in a row, left-padded to the longest: ``(ids, mask, P)``, ``P`` the
    padded length."""
    rows = [p for p in prompts for _ in range(G)]  # a prompt's group is G rows in a row, as in TRL
    P = max(map(len, rows))
    ids = torch.tensor([[pad_id] * (P - len(p)) + p for p in rows])
    mask = torch.tensor([[0] * (P - len(p)) + [1] * len(p) for p in rows])
    return ids, mask, P


@torch.no_grad()
def sample_groups(policy, prompts: list[list[int]], G: int, max_new_tokens: int, temperature: float,
                  pad_id: int, eos_id: int):
    """Each prompt (token ids) ``G`` times, left-padded (:func:`left_pad_groups`), then completed token by token.

    Returns ``(ids, mask, P)``: ``ids[:, P:]`` are the completions (``mask`` 0 after the end token)."""
    ids, mask, P = left_pad_groups(prompts, G, pad_id)
    alive = torch.ones(len(ids), dtype=torch.bool)
    out = policy(input_ids=ids, attention_mask=mask, use_cache=True)
    for _ in range(max_new_tokens):
        token = torch.multinomial(torch.softmax(out.logits[:, -1] / temperature, -1), 1).squeeze(1)
        token = torch.where(alive, token, pad_id)
        ids, mask = torch.cat([ids, token[:, None]], 1), torch.cat([mask, alive[:, None].long()], 1)
        alive &= token != eos_id
        if not alive.any():
            break
        out = policy(input_ids=token[:, None], attention_mask=mask, past_key_values=out.past_key_values,
                     use_cache=True)
    return ids, mask, P


def token_logprobs(model, ids, mask, P: int, temperature: float):
    """log softmax(logits / temperature) of every completion token, shape ``(B, ids.shape[1] - P)``."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, P - 1:-1] / temperature
    return torch.log_softmax(logits, -1).gather(-1, ids[:, P:, None]).squeeze(-1)


def grpo_from_scratch(policy, tokenizer, prompts, reward_fn, columns, *, steps=20, prompts_per_step=8, G=8,
                      temperature=1.0, lr=1.5e-4, epsilon=0.2, beta=0.0, num_iterations=1, max_new_tokens=40,
                      max_grad_norm=1.0, seed=0, on_step=None):
    """GRPO-train ``policy`` in place on chat ``prompts`` (token ids); ``columns[k][i]`` is dataset column
    ``k`` of prompt ``i``, passed to ``reward_fn`` as TRL does. Returns one log dict per optimiser step: mean
    ``reward``, ``frac_reward_zero_std`` (groups whose rewards are equal to within 1e-6), ``kl``, ``clip_ratio``
    and ``loss``."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    reference = copy.deepcopy(policy).eval() if beta else None  # frozen: the KL term's anchor
    opt = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=0.0)
    log = []
    while len(log) < steps:
        pick = rng.sample(range(len(prompts)), prompts_per_step)
        # 1. sample a group of G completions per prompt from the current policy
        ids, mask, P = sample_groups(policy, [prompts[i] for i in pick], G, max_new_tokens, temperature,
                                     tokenizer.pad_token_id, tokenizer.eos_token_id)
        cmask = mask[:, P:]
        texts = tokenizer.batch_decode(ids[:, P:], skip_special_tokens=True)  # pad after the end token
        # 2. score them; 3. advantage = (reward - group mean) / (group std + 1e-4)
        kw = {k: [v[i] for i in pick for _ in range(G)] for k, v in columns.items()}
        r = torch.tensor(reward_fn(texts, **kw), dtype=torch.float32).view(-1, G)
        A = ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)).view(-1, 1)
        with torch.no_grad():
            ref_logp = token_logprobs(reference, ids, mask, P, temperature) if beta else None
        for it in range(num_iterations):  # 4. the clipped, KL-penalised policy-gradient step(s)
            logp = token_logprobs(policy, ids, mask, P, temperature)
            if it == 0:  # the policy that sampled these completions: the ratio is 1 on the first pass
                old = logp.detach()
            ratio = torch.exp(logp - old)
            loss_t = -torch.min(ratio * A, ratio.clamp(1 - epsilon, 1 + epsilon) * A)
            d = ref_logp - logp if beta else torch.zeros_like(logp)
            kl = (torch.exp(d) - d - 1) * ratio  # k3 estimate of KL(policy || reference), weighted as TRL does
            loss = ((loss_t + beta * kl) * cmask).sum() / cmask.sum()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
            opt.step()
            clipped = ((ratio > 1 + epsilon) & (A > 0)) | ((ratio < 1 - epsilon) & (A < 0))
            equal = (r.max(1).values - r.min(1).values <= 1e-6).float().mean().item()  # groups with no signal
            log.append({"step": len(log) + 1, "reward": r.mean().item(), "frac_reward_zero_std": equal,
                        "kl": (kl * cmask).sum().item() / cmask.sum().item(),
                        "clip_ratio": (clipped * cmask).sum().item() / cmask.sum().item(), "loss": loss.item()})
            if on_step is not None:
                on_step(log[-1])
            if len(log) == steps:
                break
    return log
