"""Learning-rate schedules: the libraries' where they have one, each a LambdaLR that accelerate
saves and restores with the run, stepped once per epoch or step of the trainer's own count."""

from __future__ import annotations

import math
from functools import partial

import torch
from torch.optim.lr_scheduler import LambdaLR


def reid_schedule(optimizer: torch.optim.Optimizer, config) -> LambdaLR:
    """The Re-ID trainer's per-epoch schedule (BoT / fast-reid's warm-up multi-step, or cosine); no
    `get_scheduler` name warms up from a fraction of the rate, so it is written here."""
    return LambdaLR(optimizer, partial(reid_lr_factor, config))


def reid_lr_factor(config, epoch: int) -> float:
    """Linear warm-up from warmup_factor, then steps of lr_gamma at lr_steps, or a cosine decay to
    min_lr_factor at the last epoch; a factor of the configured rate."""
    if epoch < config.warmup_epochs:
        return config.warmup_factor + (1 - config.warmup_factor) * epoch / config.warmup_epochs
    if config.lr_schedule == "cosine":
        progress = (epoch - config.warmup_epochs) / max(1, config.epochs - 1 - config.warmup_epochs)
        return config.min_lr_factor + (1 - config.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * progress))
    return config.lr_gamma ** sum(epoch >= step for step in config.lr_steps)


def warmup_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int | None = None,
                    min_rate: float = 0.0) -> LambdaLR:
    """Linear warm-up, then constant (diffusers' `constant_with_warmup`) or, given `total_steps`, a
    cosine decay to `min_rate` of the peak (transformers' cosine with a floor). Counted from one,
    so the first step trains at 1/warmup_steps of the rate rather than at none."""
    from diffusers.optimization import get_scheduler
    from transformers.optimization import get_cosine_with_min_lr_schedule_with_warmup

    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])  # what a scheduler that starts past step 0 reads
    if total_steps is None:
        return get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=warmup_steps, last_epoch=0)
    return get_cosine_with_min_lr_schedule_with_warmup(optimizer, warmup_steps, total_steps, last_epoch=0,
                                                       min_lr_rate=min_rate)
