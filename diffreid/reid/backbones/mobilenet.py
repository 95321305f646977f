"""torchvision's MobileNetV2: the one ImageNet-pretrained backbone these machines have."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.mobilenetv2 import MobileNetV2 as TorchvisionMobileNetV2

from diffreid.reid.backbones import register_backbone

# features[14] is the first block of the last stride-2 stage (160 channels); its
# depthwise 3×3 conv carries the stride.
_LAST_STRIDED_BLOCK = 14


class MobileNetV2(TorchvisionMobileNetV2):
    """MobileNetV2 without the classifier, keeping torchvision's `features.*` keys."""

    def __init__(self, last_stride: int = 2):
        super().__init__()
        del self.classifier
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, not {last_stride}")
        depthwise = self.features[_LAST_STRIDED_BLOCK].conv[1][0]
        depthwise.stride = (last_stride, last_stride)
        self.feature_dim = self.last_channel

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1)


@register_backbone("mobilenet_v2")
def mobilenet_v2(last_stride: int = 2) -> MobileNetV2:
    return MobileNetV2(last_stride)
