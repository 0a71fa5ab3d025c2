"""Per-token log-probabilities of completions under a causal language model.

GRPO's loss needs ``log pi(o_t | q, o_<t)`` for every completion token ``o_t``. The batch layout is
TRL's:

* ``prompt_ids`` ``(B, P)``: prompts **left**-padded, so every prompt ends at column ``P - 1``;
* ``completion_ids`` ``(B, C)``: completions **right**-padded, so every completion starts at column ``P``;
* masks are 1 on real tokens and 0 on padding. A completion's mask covers its tokens up to and
  including its end-of-sequence token.

The logit that predicts completion token ``t`` sits at position ``P + t - 1`` of the concatenated
sequence. Logits are divided by the sampling ``temperature`` before the softmax, exactly as TRL does for
the policy, the old policy and the reference model: the probabilities must be those of the distribution
the completions were sampled from.
"""

from __future__ import annotations

import inspect

import torch


def pad_batch(prompts: list[list[int]], completions: list[list[int]], pad_token_id: int,
              device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """Pad token-id lists into TRL's layout: prompts left-padded, completions right-padded.

    Returns a dict with ``prompt_ids``, ``prompt_mask``, ``completion_ids``, ``completion_mask`` (long).
    """
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    if not prompts:
        raise ValueError("empty batch")
    P = max(len(p) for p in prompts)
    C = max(len(c) for c in completions)
    B = len(prompts)
    prompt_ids = torch.full((B, P), pad_token_id, dtype=torch.long)
    prompt_mask = torch.zeros((B, P), dtype=torch.long)
    completion_ids = torch.full((B, C), pad_token_id, dtype=torch.long)
    completion_mask = torch.zeros((B, C), dtype=torch.long)
    for i, (p, c) in enumerate(zip(prompts, completions)):
        if p:
            prompt_ids[i, P - len(p):] = torch.tensor(p)
            prompt_mask[i, P - len(p):] = 1
        if c:
            completion_ids[i, : len(c)] = torch.tensor(c)
            completion_mask[i, : len(c)] = 1
    out = {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask,
           "completion_ids": completion_ids, "completion_mask": completion_mask}
    return {k: v.to(device) for k, v in out.items()} if device is not None else out


def token_logprobs_from_logits(logits: torch.Tensor, token_ids: torch.Tensor,
                               temperature: float = 1.0) -> torch.Tensor:
    """``log softmax(logits / temperature)`` at ``token_ids``.

    Args:
        logits: ``(..., V)``; row ``t`` is the distribution of token ``token_ids[..., t]``.
        token_ids: ``(...)`` integer ids.
    Returns:
        ``(...)`` log-probabilities (float, differentiable with respect to ``logits``).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if temperature != 1.0:
        logits = logits / temperature
    log_z = torch.logsumexp(logits, dim=-1)
    chosen = torch.gather(logits, dim=-1, index=token_ids.unsqueeze(-1)).squeeze(-1)
    return chosen - log_z


def _accepts_logits_to_keep(model) -> bool:
    try:
        return "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def completion_logprobs(model, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                        completion_ids: torch.Tensor, completion_mask: torch.Tensor,
                        temperature: float = 1.0) -> torch.Tensor:
    """Per-token log-probabilities of the completions, shape ``(B, C)``; 0 where ``completion_mask`` is 0.

    Gradients flow to the model's parameters unless you call this under ``torch.no_grad()``
    (do that for the old policy and the reference model).
    """
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
    C = completion_ids.size(1)
    kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "use_cache": False}
    if _accepts_logits_to_keep(model):
        kwargs["logits_to_keep"] = C + 1  # the last logit predicts past the end; it is dropped below
    logits = model(**kwargs).logits
    logits = logits[:, :-1, :][:, -C:, :]  # (B, C, V): row t predicts completion token t
    logp = token_logprobs_from_logits(logits, completion_ids, temperature)
    return logp.masked_fill(completion_mask == 0, 0.0)


def sequence_logprob(token_logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``log pi(o | q)`` of whole completions: the sum of their token log-probabilities, shape ``(B,)``."""
    return (token_logp * mask).sum(-1)
