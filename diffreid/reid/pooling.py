"""Global pooling of a backbone's feature map into one vector per image.

Average pooling is BoT's; generalised-mean (GeM, Radenović et al. 2018) is AGW's: the
p-th root of the mean of the p-th powers, between average (p = 1) and max (p → ∞), with
p learned, so the strongest local responses (a bag, a logo) weigh more than the average
does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from diffreid.errors import DiffreidError


class GeM(nn.Module):
    """Generalised-mean pooling with a learnable exponent (AGW starts it at 3)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(x.clamp(min=self.eps).pow(self.p), 1)
        return pooled.pow(1.0 / self.p).flatten(1)


class AvgPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


POOLINGS = {"avg": AvgPool, "gem": GeM}


def create_pooling(name: str) -> nn.Module:
    if name not in POOLINGS:
        raise DiffreidError(f"unknown pooling {name!r}; expected one of {', '.join(POOLINGS)}")
    return POOLINGS[name]()
