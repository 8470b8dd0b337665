"""One process on a CPU or GPU, or many under `torchrun`: the same code path for all.

`torchrun` sets RANK / WORLD_SIZE / LOCAL_RANK; without them this is a single process. The
backend is nccl on CUDA and gloo on CPU. `wrap_model` picks DDP for several processes and FSDP
(`fully_shard` on every transformer block, then the root) when asked for, for the large sizes.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn

STRATEGIES = ("auto", "none", "ddp", "fsdp")


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def pick_device(requested: str = "auto", local_rank: int = 0) -> torch.device:
    """cuda:<local_rank> when available (or asked for), else mps, else cpu."""
    if requested != "auto":
        device = torch.device(requested)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", local_rank)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {requested!r} asked for, but CUDA is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def setup(device: str = "auto", timeout_minutes: float = 30.0) -> DistEnv:
    """Join the process group when launched by torchrun; pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    target = pick_device(device, local_rank)
    if target.type == "cuda":
        torch.cuda.set_device(target)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if target.type == "cuda" else "gloo"
        dist.init_process_group(
            backend, timeout=datetime.timedelta(minutes=timeout_minutes),
            device_id=target if target.type == "cuda" else None,
        )
    return DistEnv(rank=rank, world_size=world_size, local_rank=local_rank, device=target)


def teardown(env: DistEnv) -> None:
    if env.is_distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.is_distributed:
        dist.barrier()


def mean_over_ranks(values: dict[str, float], env: DistEnv) -> dict[str, float]:
    """Average scalar metrics over all processes (every rank must pass the same keys)."""
    if not env.is_distributed or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=env.device)
    dist.all_reduce(tensor)
    return {k: v / env.world_size for k, v in zip(keys, tensor.tolist(), strict=True)}


def any_rank(flag: bool, env: DistEnv) -> bool:
    """True on every rank if `flag` is true on any (e.g. 'a stop signal arrived')."""
    if not env.is_distributed:
        return flag
    tensor = torch.tensor([float(flag)], device=env.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def broadcast_int(value: int, env: DistEnv) -> int:
    """Rank 0's `value` on every rank."""
    if not env.is_distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.int64, device=env.device)
    dist.broadcast(tensor, src=0)
    return int(tensor.item())


def resolve_strategy(strategy: str, env: DistEnv) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    if strategy == "auto":
        return "ddp" if env.is_distributed else "none"
    if strategy != "none" and not env.is_distributed:
        return "none"  # one process: nothing to shard or synchronise
    return strategy


def wrap_model(module: nn.Module, strategy: str, env: DistEnv) -> nn.Module:
    """The module to call for training: plain, DDP-wrapped, or sharded in place with FSDP2.

    For FSDP every child in a `blocks` ModuleList is sharded as a unit, then the root.
    """
    if strategy == "none":
        return module
    if strategy == "ddp":
        ids = [env.device.index] if env.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for block in getattr(module, "blocks", ()):
            fully_shard(block)
        fully_shard(module)
        return module
    raise ValueError(f"unknown strategy {strategy!r}")
