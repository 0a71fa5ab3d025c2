"""Where this process sits in a launch, and its fair share of the machine and of an LLM judge's limits.

A launcher (``accelerate launch``, ``torchrun``) starts one process per device and tells each its place
in environment variables. :func:`dist_info` reads them; :func:`is_main_process` is true on global rank 0
(and in any plain ``python`` process); :func:`cores_per_process` and :func:`judge_share` split the CPU
cores and a judge's concurrency and budget so N processes do not take N times the machine;
:func:`finish_distributed` tears the process group down before the interpreter exits.

The bottom layer of the package: the rewards' sandbox, the tasks' judge panels and the training pipeline
use it; stage 06 (:mod:`grpo_course.scale_out`) teaches it. Importing it does not import torch.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def _int_env(env: Mapping[str, str], names: Sequence[str], default: int) -> int:
    for n in names:
        value = env.get(n)
        if value not in (None, ""):
            try:
                return int(value)
            except ValueError:
                continue
    return default


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a launch, from the launcher's environment variables."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    node_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def num_nodes(self) -> int:
        return max(1, self.world_size // max(1, self.local_world_size))


def dist_info(env: Mapping[str, str] | None = None) -> DistInfo:
    """Read torchrun/accelerate (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``,
    ``GROUP_RANK``) or MPI variables; a plain ``python`` process is rank 0 of 1."""
    env = os.environ if env is None else env
    world = _int_env(env, ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"), 1)
    rank = _int_env(env, ("RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK"), 0)
    local_rank = _int_env(env, ("LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID"), 0)
    local_world = _int_env(env, ("LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"),
                           world if "LOCAL_RANK" in env or world == 1 else 1)
    node = _int_env(env, ("GROUP_RANK", "NODE_RANK"), rank // max(1, local_world))
    return DistInfo(rank, local_rank, max(1, world), max(1, min(local_world, world)), node)


def is_main_process(env: Mapping[str, str] | None = None) -> bool:
    """True on global rank 0 (and in any non-distributed process)."""
    return dist_info(env).is_main


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, which containers and ``taskset`` narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cores_per_process(env: Mapping[str, str] | None = None, cores: int | None = None) -> int:
    """This process's fair share of the machine: usable cores / processes launched on this node (>= 1).

    A worker pool sized with ``os.cpu_count()`` in each of N ranks would start N times too many workers."""
    cores = usable_cores() if cores is None else int(cores)
    return max(1, cores // dist_info(env).local_world_size)


@dataclass(frozen=True)
class JudgeShare:
    """One process's part of an LLM judge's limits (the API's rate limit and your budget are global)."""

    max_concurrency: int
    budget_usd: float | None

    def as_kwargs(self) -> dict[str, Any]:
        return {"max_concurrency": self.max_concurrency, "budget_usd": self.budget_usd}


def judge_share(total_concurrency: int = 8, total_budget_usd: float | None = 5.0,
                env: Mapping[str, str] | None = None) -> JudgeShare:
    """Split a judge reward's limits across all processes of the launch (every rank scores its own
    completions, so each rank's ``JudgeReward`` holds ``1/world_size`` of them). Pass the result to
    ``make_judge_reward(**share.as_kwargs())``."""
    if total_concurrency < 1:
        raise ValueError("total_concurrency must be >= 1")
    n = dist_info(env).world_size
    if total_concurrency < n:
        raise ValueError(f"total_concurrency={total_concurrency} is below the {n} processes: each needs at least 1")
    budget = None if total_budget_usd is None else float(total_budget_usd) / n
    return JudgeShare(total_concurrency // n, budget)


def finish_distributed() -> bool:
    """Wait for every rank, then destroy the default process group (if this process started one).

    Exiting with a live gloo/NCCL group lets rank threads race the interpreter's teardown; a clean
    ``destroy_process_group`` is what torch asks for. Returns True if a group was torn down."""
    if "torch" not in sys.modules:
        return False
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return False
    try:
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return True
