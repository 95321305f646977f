"""torchvision's ResNets as Re-ID backbones, with BoT's last-stride-1 option."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet as TorchvisionResNet

from diffreid.reid.backbones import register_backbone


class ResNet(TorchvisionResNet):
    """torchvision's ResNet without the ImageNet classifier.

    Subclassing rather than wrapping keeps torchvision's key names, so
    `torchvision.models.resnet50().load_state_dict(sd, strict=False)` takes an exported
    backbone (only `fc.*` missing) and torchvision checkpoints load here.
    """

    def __init__(self, block: type[BasicBlock | Bottleneck], layers: list[int], last_stride: int = 2):
        super().__init__(block, layers)
        del self.fc
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, not {last_stride}")
        # The first block of layer4 strides in its 3×3 conv (conv1 in BasicBlock, conv2 in
        # Bottleneck) and its downsample shortcut.
        for module in self.layer4[0].modules():
            if isinstance(module, nn.Conv2d) and module.stride == (2, 2):
                module.stride = (last_stride, last_stride)
        self.feature_dim = 512 * block.expansion

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.forward_features(x)), 1)


@register_backbone("resnet18")
def resnet18(last_stride: int = 2) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], last_stride)


@register_backbone("resnet50")
def resnet50(last_stride: int = 2) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], last_stride)
