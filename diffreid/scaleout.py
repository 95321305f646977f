"""Scale-out by identity: under `torchrun` or `accelerate launch` every rank takes its shard.

The per-identity stages (caption, generate, filter) already split their work with
`--shard K/N`; launched on several processes (RANK / WORLD_SIZE in the environment, as
both launchers set them, across machines too) without `--shard`, rank r takes shard r+1 of
WORLD_SIZE, all ranks meet at a barrier, and rank 0 alone merges. The units each rank
writes are atomic files on a shared folder, so the merged result is the one a single
process writes.
"""

from __future__ import annotations

import os
from datetime import timedelta

from diffreid.artifacts import parse_shard


def launched() -> tuple[int, int]:
    """(rank, world size) set by torchrun / accelerate launch; (0, 1) for a plain process."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def stage_shard(text: str | None) -> tuple[int, int]:
    """`--shard K/N` when given, else this rank's shard of a launched job (1/1 alone)."""
    if text is not None:
        return parse_shard(text)
    rank, world = launched()
    return rank + 1, world


def merges_here(text: str | None) -> bool:
    """Wait for every rank of a launched job, then say whether this process merges (rank 0).

    An explicit `--shard` or a single process needs no barrier: the run that finds every
    unit done merges, as before.
    """
    rank, world = launched()
    if text is not None or world == 1:
        return True
    import torch.distributed as dist

    if not dist.is_initialized():  # stages of hours: the barrier waits for the slowest shard
        dist.init_process_group("gloo", timeout=timedelta(hours=48))
    dist.barrier()
    return rank == 0


def local_device() -> str:
    """This rank's GPU under a launcher (LOCAL_RANK), else the first one, else the CPU."""
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count()}"
