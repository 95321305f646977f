"""OSNet (Zhou et al., ICCV 2019, "Omni-Scale Feature Learning for Person Re-Identification").

A person is told apart by features at many scales at once (a logo, a shoe, a whole
outfit), so each OSNet block runs T=4 streams of 1..4 stacked lite 3×3 convs (receptive
fields 3, 5, 7, 9) and mixes them with one learned, input-dependent channel gate shared
by all streams. Lite convs (pointwise + depthwise) keep the network tiny: x1.0 has 2.2M
parameters. Module names follow torchreid's, so its model-zoo state dicts load strictly.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from diffreid.reid.backbones import register_backbone

CHANNELS = (64, 256, 384, 512)  # x1.0: stem, conv2, conv3, conv4 (paper Table 1)
BLOCKS = (2, 2, 2)  # OS blocks in conv2, conv3, conv4


class ConvBN(nn.Module):
    """Convolution + batch norm, followed by ReLU unless `relu=False` (the linear 1×1
    that ends a residual branch)."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, relu: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x) if self.relu else x


class LiteConv3x3(nn.Module):
    """Lite 3×3 (paper Fig. 3): pointwise conv, then depthwise 3×3, then BN + ReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False, groups=channels)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv2(self.conv1(x))))


class AggregationGate(nn.Module):
    """Unified aggregation gate: per-channel weights in (0, 1) from a small MLP (reduction
    16) on the globally pooled stream. One gate serves every stream, so scales are fused
    by the same learned rule, conditioned on each image."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(weights)


def _stream(channels: int, depth: int) -> nn.Module:
    """`depth` stacked lite 3×3 convs: receptive field 2·depth + 1."""
    if depth == 1:
        return LiteConv3x3(channels)
    return nn.Sequential(*(LiteConv3x3(channels) for _ in range(depth)))


class OSBlock(nn.Module):
    """Omni-scale residual bottleneck: 1×1 reduce (by 4), four gated streams summed, 1×1
    expand, plus the (projected when widths differ) input."""

    def __init__(self, cin: int, cout: int, reduction: int = 4):
        super().__init__()
        mid = cout // reduction
        self.conv1 = ConvBN(cin, mid)
        self.conv2a = _stream(mid, 1)
        self.conv2b = _stream(mid, 2)
        self.conv2c = _stream(mid, 3)
        self.conv2d = _stream(mid, 4)
        self.gate = AggregationGate(mid)
        self.conv3 = ConvBN(mid, cout, relu=False)
        self.downsample = ConvBN(cin, cout, relu=False) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduced = self.conv1(x)
        fused = sum(self.gate(stream(reduced)) for stream in (self.conv2a, self.conv2b, self.conv2c, self.conv2d))
        expanded = self.conv3(fused)  # before the shortcut's conv, as torchreid runs (and exports) them
        return F.relu(expanded + (x if self.downsample is None else self.downsample(x)))


def _stage(cin: int, cout: int, blocks: int, transition: bool) -> nn.Sequential:
    """OS blocks, then (in conv2 and conv3) a transition: 1×1 conv + 2×2 average pool."""
    layers = [OSBlock(cin, cout)] + [OSBlock(cout, cout) for _ in range(blocks - 1)]
    if transition:
        layers.append(nn.Sequential(ConvBN(cout, cout), nn.AvgPool2d(2, stride=2)))
    return nn.Sequential(*layers)


class OSNet(nn.Module):
    """OSNet feature extractor: 256×128 → 16×8 map (`forward_features`) → 512-d embedding.

    The embedding (global average pool, then fc + BN + ReLU) is the Re-ID feature at test
    time; a training head adds its own classifier on top.
    """

    def __init__(self, width: float = 1.0, feature_dim: int = 512):
        super().__init__()
        stem, c2, c3, c4 = (int(c * width) for c in CHANNELS)
        self.conv1 = ConvBN(3, stem, 7, stride=2)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = _stage(stem, c2, BLOCKS[0], transition=True)
        self.conv3 = _stage(c2, c3, BLOCKS[1], transition=True)
        self.conv4 = _stage(c3, c4, BLOCKS[2], transition=False)
        self.conv5 = ConvBN(c4, c4)
        self.fc = nn.Sequential(nn.Linear(c4, feature_dim), nn.BatchNorm1d(feature_dim), nn.ReLU(inplace=True))
        self.feature_dim = feature_dim
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        return self.conv5(self.conv4(self.conv3(self.conv2(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.forward_features(x), 1), 1))


for _name, _width in (("osnet_x1_0", 1.0), ("osnet_x0_75", 0.75), ("osnet_x0_5", 0.5), ("osnet_x0_25", 0.25)):
    register_backbone(_name)(partial(OSNet, width=_width))
