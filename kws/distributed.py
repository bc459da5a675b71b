"""Multi-process helpers for training under `torchrun --nproc-per-node N` (DistributedDataParallel).

gloo on CPU, nccl on GPU; every rank draws the same permutation per epoch and takes the clips order[rank::N] (each
clip once per epoch across ranks), cut into the same number of batches on every rank so the gradient all-reduces
line up. With no process group every helper degrades to the single-process case (rank 0 of 1).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
import torch.distributed as dist

from kws.errors import KwsError


def dist_info() -> tuple[int, int]:
    """(rank, world size): (0, 1) unless a process group is initialized."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed() -> tuple[int, int]:
    """Join the process group torchrun describes (WORLD_SIZE > 1): nccl on GPU, gloo on CPU. Returns dist_info()."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return dist_info()


def select_device(device: str | None = None) -> torch.device:
    """`device` when given; else this process's GPU (LOCAL_RANK under torchrun) when present, else the CPU."""
    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


CPU_WARN_CLIPS = 20_000  # a training split this large takes hours per run on a few CPU cores (bench/recipe_time.py)


def check_device(device: str | None) -> None:
    """A --device this torch cannot use is a one-line error now, not a traceback after the data has loaded."""
    if not device:
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise KwsError(f"--device {device!r} is not a torch device; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise KwsError(
                f"--device {device}: this torch {torch.__version__} has no usable CUDA GPU; leave --device out (or "
                "--device cpu) to train on the CPU"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise KwsError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here (cuda:0 ...)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise KwsError(f"--device {device}: MPS is not available here; leave --device out to train on the CPU")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise KwsError(f"--device {device}: kws trains on cpu, cuda or mps")


def cpu_fallback_warning(train_clips: int, device: torch.device) -> str | None:
    """The one-line warning for a large training split about to train on the CPU; None on a GPU or a small split."""
    if device.type == "cpu" and train_clips > CPU_WARN_CLIPS:
        return (
            f"warning: no GPU found; {train_clips:,} training clips will train on the CPU (slow: the full-dataset "
            f"recipe takes about 8 h on two cores, docs/results.md 'Full dataset')"
        )
    return None


def shard_batches(order: np.ndarray, batch_size: int, rank: int = 0, world_size: int = 1) -> list[np.ndarray]:
    """This rank's batches of one epoch, given the epoch's permutation `order` (the same on every rank).

    One process: consecutive slices of batch_size. N processes: clips order[rank::N] split into
    ceil(ceil(len/N) / batch_size) near-equal batches, the same count on every rank (DDP all-reduces per step).
    """
    if world_size == 1:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    num_batches = max(1, math.ceil(math.ceil(len(order) / world_size) / batch_size))
    if len(order) // world_size < num_batches:
        raise KwsError(f"{len(order)} training clips are too few for {world_size} processes")
    return np.array_split(order[rank::world_size], num_batches)


def average_buffers(model: torch.nn.Module) -> None:
    """Average BatchNorm running statistics over ranks: DDP syncs them only at the start of a forward, so after the
    last step of an epoch every rank holds its own; averaging leaves identical models that every rank validates.
    Every rank must call it (one all-reduce per floating-point buffer)."""
    world = dist.get_world_size()
    for buf in getattr(model, "module", model).buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf)
            buf /= world


__all__ = ["average_buffers", "check_device", "dist_info", "init_distributed", "select_device", "shard_batches"]
