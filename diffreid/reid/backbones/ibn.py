"""ResNet-50 IBN-a (Pan et al., ECCV 2018): instance norm for appearance invariance.

Instance norm on half the channels after the first conv of every bottleneck in layers
1-3 removes style (colour, lighting) that changes between cameras, while batch norm on
the other half and everywhere else keeps what tells identities apart. Layer 4 stays
plain, as in the paper, because its features must stay discriminative.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import Bottleneck

from diffreid.reid.backbones import register_backbone
from diffreid.reid.backbones.resnet import ResNet


class IBN(nn.Module):
    """Instance norm on the first `ratio` of the channels, batch norm on the rest.

    `IN` / `BN` are IBN-Net's own attribute names, so its published weights load.
    """

    def __init__(self, channels: int, ratio: float = 0.5):
        super().__init__()
        self.half = int(channels * ratio)
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(channels - self.half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        styled, rest = torch.split(x, [self.half, x.shape[1] - self.half], dim=1)
        return torch.cat([self.IN(styled.contiguous()), self.BN(rest.contiguous())], dim=1)


@register_backbone("resnet50_ibn_a")
def resnet50_ibn_a(last_stride: int = 2) -> ResNet:
    model = ResNet(Bottleneck, [3, 4, 6, 3], last_stride)
    for layer in (model.layer1, model.layer2, model.layer3):
        for block in layer:
            block.bn1 = IBN(block.bn1.num_features)
    return model
