"""Where and how work runs: the default device, the precision a device supports."""

from __future__ import annotations

import torch


def resolve_precision(requested: str) -> str:
    """accelerate's mixed-precision mode for "auto": bf16 where CUDA has it, fp16 on older GPUs, none on a CPU."""
    if requested != "auto":
        return requested
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def training_accelerator(mixed_precision: str):
    """The Re-ID trainers' accelerate state: their device (and world) and precision, decided here once.

    cpu=True on a machine without CUDA is what lets accelerate see a torchrun / accelerate launch
    world on CPU (gloo) instead of one process per rank training alone. Schedulers step once per
    call, in the trainer's own unit (an epoch or a step), whatever the number of processes."""
    from accelerate import Accelerator

    return Accelerator(mixed_precision=resolve_precision(mixed_precision), cpu=not torch.cuda.is_available(),
                       step_scheduler_with_optimizer=False)


def default_device() -> torch.device:
    """Where work runs when its caller names no device: the GPU when there is one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
