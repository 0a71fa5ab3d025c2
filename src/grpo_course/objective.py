"""The GRPO objective, written out symbol by symbol, equal to TRL 1.14's ``GRPOTrainer`` loss.

Symbols (shapes for a micro-batch of ``B`` completions padded to ``T`` tokens):

* ``logp``      ``(B, T)``  log pi_theta(o_t | q, o_<t): the policy being trained (carries gradients)
* ``old_logp``  ``(B, T)``  log pi_theta_old: the policy that sampled the completions (no gradient).
                            ``None`` means on-policy (TRL's default): ``old_logp = logp.detach()``, so the
                            ratio is exactly 1 in value while its gradient is still ``grad log pi``.
* ``ref_logp``  ``(B, T)``  log pi_ref: the frozen reference model, only needed when ``beta > 0``
* ``advantages`` ``(B,)``   A_i, one per completion (see :mod:`grpo_course.advantages`)
* ``mask``      ``(B, T)``  1 on completion tokens, 0 on padding

Per token, with the ratio ``r = exp(logp - old_logp)``:

    loss_t = -min(r * A, clip(r, 1 - epsilon, 1 + epsilon_high) * A)  +  beta * k3_t * (r if use_bias_correction_kl)
    k3_t   = exp(ref_logp - logp) - (ref_logp - logp) - 1          (Schulman's k3 estimator of KL(pi || pi_ref))

Then the per-token losses are averaged over the batch in one of four ways (``loss_type``):

* ``"grpo"``    mean over completions of (mean over that completion's tokens); divided by the GA steps
* ``"bnpo"``    mean over all tokens of the micro-batch; divided by the GA steps
* ``"dr_grpo"`` sum over tokens / (B * max_completion_length); divided by the GA steps
* ``"dapo"``    sum over tokens / (tokens in the whole generation batch / processes * GA / steps_per_generation)
                (TRL's default since 0.22)

``importance_sampling_level="sequence"`` (GSPO) replaces the per-token ratio by one ratio per completion,
``exp(mean_t(logp - old_logp))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

LossType = Literal["grpo", "bnpo", "dr_grpo", "dapo"]
LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")


# --- KL estimators -------------------------------------------------------------------------------

def kl_k1(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k1 = log(pi / pi_ref): unbiased for KL(pi || pi_ref) on samples from pi, but can be negative."""
    return logp - ref_logp


def kl_k2(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k2 = (log(pi / pi_ref))^2 / 2: never negative, biased, low variance when pi is close to pi_ref."""
    return 0.5 * (logp - ref_logp) ** 2


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k3 = pi_ref/pi - log(pi_ref/pi) - 1: never negative and unbiased on samples from pi (GRPO, TRL)."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1


# --- the clipped surrogate -----------------------------------------------------------------------

def clipped_surrogate(ratio: torch.Tensor, advantages: torch.Tensor, epsilon: float = 0.2,
                      epsilon_high: float | None = None, delta: float | None = None) -> torch.Tensor:
    """PPO's clipped objective ``min(r * A, clip(r, 1 - epsilon, 1 + epsilon_high) * A)`` (to maximise).

    ``delta`` (TRL's two-sided clipping) additionally caps the unclipped ratio at ``delta``.
    Its gradient with respect to ``r`` is ``A`` inside the trust region and 0 where the clipped term wins.
    """
    eps_high = epsilon if epsilon_high is None else epsilon_high
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + eps_high)
    if delta is not None:
        ratio = torch.clamp(ratio, max=delta)
    return torch.min(ratio * advantages, clipped * advantages)


# --- aggregation -----------------------------------------------------------------------------------

def aggregate(per_token_loss: torch.Tensor, mask: torch.Tensor, loss_type: LossType = "dapo", *,
              max_completion_length: int | None = None, num_items_in_batch: float | torch.Tensor | None = None,
              gradient_accumulation_steps: int = 1, steps_per_generation: int | None = None,
              num_processes: int = 1) -> torch.Tensor:
    """Reduce ``(B, T)`` (or ``(B, 1)``) per-token losses to the scalar TRL backpropagates.

    Args:
        max_completion_length: ``L`` for ``dr_grpo`` (TRL uses the config value, not the padded width;
            default: ``mask.shape[1]``).
        num_items_in_batch: for ``dapo``: completion tokens in the whole *generation* batch, summed over
            processes (default: ``mask.sum()``, i.e. this micro-batch is the whole generation batch).
        gradient_accumulation_steps: micro-batches per optimizer step; each micro-batch's loss is scaled so
            that their sum is the loss of the whole step.
        steps_per_generation: micro-batches one generation batch is split into (TRL default: equal to
            ``gradient_accumulation_steps``).
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
    mask = mask.to(per_token_loss.dtype)
    masked = per_token_loss * mask
    ga = gradient_accumulation_steps
    if loss_type == "grpo":
        per_completion = masked.sum(-1) / mask.sum(-1).clamp(min=1.0)
        return per_completion.mean() / ga
    if loss_type == "bnpo":
        return masked.sum() / mask.sum().clamp(min=1.0) / ga
    if loss_type == "dr_grpo":
        L = mask.shape[1] if max_completion_length is None else max_completion_length
        return masked.sum() / (per_token_loss.size(0) * L) / ga
    # dapo
    n_items = mask.sum() if num_items_in_batch is None else torch.as_tensor(num_items_in_batch)
    spg = ga if steps_per_generation is None else steps_per_generation
    normalizer = n_items.to(masked.dtype).clamp(min=1.0) / num_processes * ga / spg
    return masked.sum() / normalizer


# --- the loss --------------------------------------------------------------------------------------

@dataclass
class LossTerms:
    """Everything :func:`grpo_loss_terms` computes. ``loss`` is what you call ``backward()`` on."""

    loss: torch.Tensor            # scalar, scaled for gradient accumulation (TRL's returned loss)
    per_token_loss: torch.Tensor  # (B, T) or (B, 1): clipped-surrogate loss (+ beta * KL) before masking
    ratio: torch.Tensor           # (B, T) or (B, 1): r = pi_theta / pi_theta_old
    kl: torch.Tensor | None       # (B, T): the (bias-corrected) k3 term, None when beta == 0
    mean_kl: float | None         # masked token mean of ``kl`` (TRL logs it as ``kl``)
    clip_low: float               # fraction of tokens clipped at 1 - epsilon with A < 0
    clip_high: float              # fraction of tokens clipped at 1 + epsilon_high with A > 0

    @property
    def clip_region(self) -> float:
        return self.clip_low + self.clip_high


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    if x.shape[1] == 1 and mask.shape[1] != 1:  # one value per completion (sequence level): plain mean
        return float(x.mean())
    return float((x * mask).sum() / mask.sum().clamp(min=1.0))


def grpo_loss_terms(logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, *,
                    old_logp: torch.Tensor | None = None, ref_logp: torch.Tensor | None = None,
                    beta: float = 0.0, epsilon: float = 0.2, epsilon_high: float | None = None,
                    delta: float | None = None, loss_type: LossType = "dapo",
                    importance_sampling_level: Literal["token", "sequence"] = "token",
                    use_bias_correction_kl: bool = True, max_completion_length: int | None = None,
                    num_items_in_batch: float | torch.Tensor | None = None,
                    gradient_accumulation_steps: int = 1, steps_per_generation: int | None = None,
                    num_processes: int = 1) -> LossTerms:
    """The GRPO loss and its parts. Defaults are TRL 1.14's (``loss_type="dapo"``, ``beta=0``, ``epsilon=0.2``).

    See the module docstring for the symbols and :func:`aggregate` for the normalizer arguments.
    """
    if logp.shape != mask.shape:
        raise ValueError(f"logp {tuple(logp.shape)} and mask {tuple(mask.shape)} must have the same shape")
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)  # (B, 1): one advantage per completion, broadcast over tokens
    mask = mask.to(logp.dtype)
    if old_logp is None:
        old_logp = logp.detach()  # on-policy: r == 1 in value, grad r == grad log pi

    log_ratio = logp - old_logp
    if importance_sampling_level == "token":
        log_w = log_ratio
    elif importance_sampling_level == "sequence":  # GSPO: one length-normalised ratio per completion
        log_w = ((log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).unsqueeze(-1)
    else:
        raise ValueError(f"importance_sampling_level must be 'token' or 'sequence', got {importance_sampling_level!r}")
    ratio = torch.exp(log_w)

    kl = None
    if beta != 0.0:
        if ref_logp is None:
            raise ValueError("beta > 0 needs ref_logp, the reference model's token log-probabilities")
        kl = kl_k3(logp, ref_logp)
        if use_bias_correction_kl:  # importance-weight the estimator to the sampling policy (TRL >= 1.10 default)
            kl = kl * ratio

    per_token_loss = -clipped_surrogate(ratio, advantages, epsilon, epsilon_high, delta)
    if kl is not None:
        per_token_loss = per_token_loss + beta * kl

    loss = aggregate(per_token_loss, mask, loss_type, max_completion_length=max_completion_length,
                     num_items_in_batch=num_items_in_batch, gradient_accumulation_steps=gradient_accumulation_steps,
                     steps_per_generation=steps_per_generation, num_processes=num_processes)

    eps_high = epsilon if epsilon_high is None else epsilon_high
    with torch.no_grad():
        low = ((ratio < 1 - epsilon) & (advantages < 0)).to(mask.dtype)
        high = ((ratio > 1 + eps_high) & (advantages > 0)).to(mask.dtype)
        clip_low, clip_high = _masked_mean(low, mask), _masked_mean(high, mask)
        mean_kl = _masked_mean(kl.detach(), mask) if kl is not None else None
    return LossTerms(loss=loss, per_token_loss=per_token_loss, ratio=ratio, kl=kl, mean_kl=mean_kl,
                     clip_low=clip_low, clip_high=clip_high)


def grpo_loss(logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, **kwargs) -> torch.Tensor:
    """The scalar GRPO loss (see :func:`grpo_loss_terms` for the arguments)."""
    return grpo_loss_terms(logp, advantages, mask, **kwargs).loss
