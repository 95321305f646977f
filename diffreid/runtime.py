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


def default_device() -> torch.device:
    """Where work runs when its caller names no device: the GPU when there is one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
