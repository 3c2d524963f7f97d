"""torch.distributed helpers: one process per device under ``torchrun``.

``torchrun --nproc_per_node N -m tl_bilinear.cli train ...`` sets ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``; the trainer then joins a process group (gloo on
CPU, nccl on CUDA), wraps the model in DistributedDataParallel and gives every rank
its own shard of the data. Without those variables everything is a no-op.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from tl_bilinear.rundir import writing_into


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: rank, world size and device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (which writes checkpoints and logs)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether more than one process trains."""
        return self.world_size > 1


def setup(device: str = "auto") -> DistInfo:
    """Pick the device and, under ``torchrun``, join the process group.

    Args:
        device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.

    Returns:
        This process's ``DistInfo``.

    Raises:
        ValueError: for an unknown device, or ``"cuda"`` without CUDA.
    """
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available here; use device='cpu'")
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch_device = torch.device("cuda", local_rank) if device in ("auto", "cuda") else torch.device(device)
        torch.cuda.set_device(torch_device)
    else:
        torch_device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world_size)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=torch_device)


def teardown() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def mean_across(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The mean of a tensor over all ranks (the tensor itself when not distributed).

    Args:
        value: the same-shaped tensor on every rank.
        info: this process's ``DistInfo``.

    Returns:
        The mean, on every rank.
    """
    if not info.distributed:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / info.world_size


def any_across(flag: bool, info: DistInfo) -> bool:
    """Whether ``flag`` is true on any rank (so all ranks stop together).

    Args:
        flag: this rank's flag.
        info: this process's ``DistInfo``.

    Returns:
        The same answer on every rank.
    """
    if not info.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def gather_json(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's JSON-serialisable ``obj``, in rank order (on every rank).

    Args:
        obj: this rank's value.
        info: this process's ``DistInfo``.

    Returns:
        ``[obj of rank 0, obj of rank 1, ...]``.
    """
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    """Wait for all ranks (no-op when not distributed).

    Args:
        info: this process's ``DistInfo``.
    """
    if info.distributed:
        dist.barrier()


def run_writer_lock(out_dir: str | os.PathLike, command: str) -> AbstractContextManager:
    """The writer lock of a training run's directory, taken by rank 0 (the rank that writes).

    Every function that runs a ``Trainer`` into a directory (``train``, ``finetune``,
    ``anneal_to_bilinear``, their commands) holds it for its whole duration.

    Args:
        out_dir: the run directory.
        command: what is writing, shown to a second writer (e.g. ``"tl-bilinear anneal"``).

    Returns:
        ``tl_bilinear.rundir.writing_into`` on rank 0 (decided from ``RANK``: before the
        process group exists), a no-op context on the other ranks.
    """
    main = int(os.environ.get("RANK", "0")) == 0
    return writing_into(out_dir, command) if main else nullcontext()
