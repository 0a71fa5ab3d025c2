"""Group-relative advantages: how GRPO turns a group's rewards into learning signals.

For each prompt the trainer samples a *group* of ``G`` completions and scores them.
The advantage of completion ``i`` says how much better it did than its siblings:

    A_i = (r_i - mean(r_group)) / (std + eps)        scale="group"  (TRL's default)
    A_i = (r_i - mean(r_group)) / (std_batch + eps)  scale="batch"
    A_i =  r_i - mean(r_group)                       scale="none"   (Dr. GRPO; plain REINFORCE baseline)

Conventions, chosen to equal TRL 1.14's ``GRPOTrainer`` bit for bit:

* Rewards are grouped **contiguously**: ``rewards[0:G]`` is the first prompt's group,
  ``rewards[G:2G]`` the second's, and so on (TRL's sampler repeats each prompt G times in a row).
* ``std`` is the **sample** standard deviation (Bessel's correction, divide by ``n - 1``), as TRL's
  ``nanstd`` computes it. Many write-ups (and ``numpy.std``) use the **population** std (divide by
  ``n``): for ``[1, 0, 1, 0]`` the population std is 0.5 and gives ``[1, -1, 1, -1]``, while TRL's
  sample std is 0.577 and gives ``±0.866``. Pass ``std="population"`` to get the former.
* ``eps`` (TRL: ``1e-4``) is added **outside** the square root, to the std, not to the variance.
  A group whose rewards are all equal therefore gets advantage 0 (0 / 1e-4), never a division by zero.
  (Exactly 0 when the mean is exact, as for 0/1 rewards; otherwise within rounding of the mean,
  e.g. 1e-13 for three rewards of 0.1, in TRL as here.)
* ``NaN`` rewards mean "not scored" (TRL turns a reward function's ``None`` into NaN): they are left
  out of the group's mean and std and their advantage is 0.

Inputs may be a list, a numpy array or a torch tensor; the advantages come back in the same kind
(a list comes back as a numpy array).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

Scale = Literal["group", "batch", "none"]
StdKind = Literal["sample", "population"]

TRL_EPS = 1e-4
"""The epsilon TRL adds to the std before dividing (``GRPOTrainer``, all 1.x releases)."""

SCALES = ("group", "batch", "none")


@dataclass(frozen=True)
class GroupStats:
    """What a learner wants to see about a batch of groups (numpy arrays, one entry per group).

    Attributes:
        mean: each group's mean reward, shape ``(n_groups,)``.
        std: each group's std (sample or population, as requested), shape ``(n_groups,)``.
        zero_std: True where a group's rewards are all equal: its advantages are 0, so it teaches nothing.
        frac_zero_std: the fraction of groups with ``zero_std`` (0 .. 1).
        batch_std: the std of all rewards in the batch (the divisor for ``scale="batch"``).
        frac_reward_zero_std: what TRL logs as ``frac_reward_zero_std``: the fraction of *completions*
            whose divisor is zero. It equals ``frac_zero_std`` for ``scale="group"``/``"none"``; for
            ``scale="batch"`` it is 1.0 if the whole batch has one reward value and 0.0 otherwise.
    """

    mean: np.ndarray
    std: np.ndarray
    zero_std: np.ndarray
    frac_zero_std: float
    batch_std: float
    frac_reward_zero_std: float

    def table(self) -> str:
        """A small text table, one row per group."""
        lines = ["group   mean      std       zero-variance"]
        for g, (m, s, z) in enumerate(zip(self.mean, self.std, self.zero_std)):
            lines.append(f"{g:<7} {m:<9.4f} {s:<9.4f} {'yes' if z else 'no'}")
        lines.append(f"fraction of zero-variance groups: {self.frac_zero_std:.3f}")
        return "\n".join(lines)


def _nan_std(x: torch.Tensor, dim: int | None, std: StdKind) -> torch.Tensor:
    """Std ignoring NaNs, keeping the reduced dim. Sample std is NaN for fewer than 2 values.

    The operations (mean, mean of squared deviations, times n/(n-1), sqrt) are done in the order TRL's
    ``nanstd`` does them so the floats come out identical, not merely close.
    """
    if dim is None:
        x = x.reshape(1, -1)
        dim = 1
    centre = torch.nanmean(x, dim=dim, keepdim=True)
    variance = torch.nanmean((x - centre) ** 2, dim=dim, keepdim=True)
    if std == "sample":
        count = torch.sum(~torch.isnan(x), dim=dim, keepdim=True).to(x.dtype)
        bessel = count / (count - 1)  # in x's dtype: TRL's int/int gives float32, the same for float32 rewards
        bessel = torch.where(count > 1, bessel, torch.full_like(bessel, float("nan")))
        variance = variance * bessel
    elif std != "population":
        raise ValueError(f"std must be 'sample' (TRL) or 'population' (numpy's default), got {std!r}")
    return torch.sqrt(variance)


def _as_tensor(rewards) -> tuple[torch.Tensor, str]:
    if isinstance(rewards, torch.Tensor):
        kind = "torch"
        t = rewards
    elif isinstance(rewards, np.ndarray):
        kind = "numpy"
        t = torch.from_numpy(np.ascontiguousarray(rewards))
    else:
        kind = "numpy"
        t = torch.as_tensor(np.asarray(rewards, dtype=np.float64))
    if t.ndim != 1:
        raise ValueError(f"rewards must be 1-D (one reward per completion), got shape {tuple(t.shape)}")
    if not torch.is_floating_point(t):
        t = t.to(torch.float64 if kind == "numpy" else torch.float32)
    return t, kind


def _check(n: int, group_size: int, scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if not isinstance(group_size, int | np.integer) or group_size < 1:
        raise ValueError(f"group_size must be a positive integer, got {group_size!r}")
    if n == 0 or n % group_size:
        raise ValueError(f"{n} rewards cannot be split into groups of {group_size} "
                         "(rewards are grouped contiguously, G per prompt)")


def group_advantages(rewards, group_size: int, scale: Scale = "group", eps: float = TRL_EPS,
                     std: StdKind = "sample", return_stats: bool = False):
    """Group-relative advantages, equal to TRL's ``GRPOTrainer`` for the same rewards and settings.

    Args:
        rewards: shape ``(n_groups * group_size,)``, grouped contiguously (list, numpy or torch).
        group_size: ``G``, completions per prompt (TRL's ``num_generations``).
        scale: ``"group"`` divides by each group's std (TRL default), ``"batch"`` keeps the group mean but
            divides by the std of the whole batch, ``"none"`` only subtracts the group mean (Dr. GRPO).
            These are TRL's ``scale_rewards`` values.
        eps: added to the std before dividing (TRL: 1e-4). Ignored for ``scale="none"``.
        std: ``"sample"`` (n - 1, TRL) or ``"population"`` (n, ``numpy.std``'s default).
        return_stats: also return a :class:`GroupStats`.

    Returns:
        The advantages, same shape and kind as ``rewards`` (a list gives a numpy array); with
        ``return_stats=True`` a tuple ``(advantages, stats)``.
    """
    r, kind = _as_tensor(rewards)
    _check(r.numel(), group_size, scale)
    grouped = r.view(-1, group_size)
    group_mean = torch.nanmean(grouped, dim=1).repeat_interleave(group_size, dim=0)
    if group_size > 1:
        group_std = _nan_std(grouped, dim=1, std=std).squeeze(1).repeat_interleave(group_size, dim=0)
    else:  # one completion per prompt: no spread to measure (TRL does the same)
        group_std = torch.zeros_like(r)
    if r.numel() > 1:
        batch_std = _nan_std(r, dim=None, std=std).squeeze().expand_as(r)
    else:
        batch_std = torch.zeros_like(r)

    advantages = r - group_mean
    divisor = batch_std if scale == "batch" else group_std
    if scale != "none":
        advantages = advantages / (divisor + eps)
    advantages = torch.nan_to_num(advantages, nan=0.0)  # unscored completions teach nothing

    out = advantages.numpy() if kind == "numpy" else advantages
    if not return_stats:
        return out
    per_group_std = group_std.view(-1, group_size)[:, 0]
    zero = torch.isclose(per_group_std, torch.zeros_like(per_group_std))
    stats = GroupStats(
        mean=group_mean.view(-1, group_size)[:, 0].detach().cpu().numpy(),
        std=per_group_std.detach().cpu().numpy(),
        zero_std=zero.cpu().numpy(),
        frac_zero_std=float(zero.float().mean()),
        batch_std=float(batch_std.reshape(-1)[0]) if r.numel() > 1 else 0.0,
        frac_reward_zero_std=float(torch.isclose(divisor, torch.zeros_like(divisor)).float().mean()),
    )
    return out, stats


def group_stats(rewards, group_size: int, scale: Scale = "group", std: StdKind = "sample") -> GroupStats:
    """Only the :class:`GroupStats` of :func:`group_advantages`."""
    return group_advantages(rewards, group_size, scale=scale, std=std, return_stats=True)[1]


def weight_of_lone_success(group_size: int, scale: Scale = "group", eps: float = TRL_EPS,
                           std: StdKind = "sample") -> tuple[float, float]:
    """Advantages in a group of ``G`` binary rewards where exactly one completion succeeded.

    Returns ``(A_success, A_failure)``. With ``scale="none"``: ``(1 - 1/G, -1/G)``, e.g. 0.875 and
    -0.125 for G=8. With std scaling (sample std ``1/sqrt(G)``): ``((G - 1)/sqrt(G), -1/sqrt(G))``, so the
    lone success's weight grows like ``sqrt(G)`` (2.47 for G=8) while each failure's shrinks.
    """
    rewards = np.zeros(group_size)
    rewards[0] = 1.0
    a = group_advantages(rewards, group_size, scale=scale, eps=eps, std=std)
    return float(a[0]), float(a[1])
