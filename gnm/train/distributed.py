"""Process group and device for one training process: alone, or one rank under torchrun.

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK; then the group uses NCCL on CUDA and gloo
on CPU, and each rank takes the GPU numbered by its LOCAL_RANK.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from scenegen.errors import UserError


def resolve_device(request: str, local_rank: int = 0) -> torch.device:
    """'auto' (CUDA when present, else CPU), 'cpu' or 'cuda' as this rank's device."""
    if request not in ("auto", "cpu", "cuda"):
        raise UserError(f"unknown device {request!r}; use auto, cpu or cuda")
    if request == "cuda" and not torch.cuda.is_available():
        raise UserError("device cuda requested but no CUDA GPU is available here; use --device cpu")
    if request == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


@dataclass(frozen=True)
class DistContext:
    """This process's place in the group (world_size 1 when alone) and its device."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_true(self, flag: torch.Tensor) -> bool:
        """True iff the boolean scalar `flag` is true on every rank."""
        if self.world_size > 1:
            flag = flag.to(torch.int32)
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise mean of a tensor over ranks."""
        if self.world_size > 1:
            values = values.clone()
            dist.all_reduce(values)
            values /= self.world_size
        return values

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def gather(self, obj: Any) -> list[Any]:
        """One picklable object from each rank, in rank order, on every rank."""
        if self.world_size == 1:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def from_main(self, obj: Any) -> Any:
        """Rank 0's object on every rank."""
        if self.world_size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


@contextmanager
def distributed(device_request: str) -> Iterator[DistContext]:
    """Join the torchrun group if there is one (and leave it afterwards)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = resolve_device(device_request, int(os.environ.get("LOCAL_RANK", "0")))
    if world == 1:
        yield DistContext(0, 1, device)
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    # Generous timeout: the other ranks wait while rank 0 fits the rule checker's recogniser once.
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world,
                            timeout=timedelta(minutes=60))
    try:
        yield DistContext(rank, world, device)
    finally:
        dist.destroy_process_group()
