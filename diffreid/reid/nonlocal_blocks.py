"""Non-local blocks (Wang et al., CVPR 2018) as AGW inserts them into a ResNet.

A convolution sees a neighbourhood; a non-local block lets every position of the map
attend to every other, so a person's distant parts (shoes and shirt) inform each other.
AGW puts two after the last two blocks of layer2 and three after the last three of
layer3. They are attached with forward hooks rather than spliced into the layers, so the
backbone keeps torchvision's key names and exports unchanged; the blocks live in the
Re-ID model beside it.
"""

from __future__ import annotations

import torch
from torch import nn

from diffreid.errors import DiffreidError

# (layer, how many of its last blocks get a non-local block after them): AGW's ResNet-50 placement
AGW_PLACEMENT = (("layer2", 2), ("layer3", 3))


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block with a zero-initialised output BN, so at the
    start of training it is the identity and the pretrained backbone is undisturbed."""

    def __init__(self, channels: int, reduction: int = 2):
        super().__init__()
        inner = max(1, channels // reduction)
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.g = nn.Conv2d(channels, inner, 1)
        self.out = nn.Sequential(nn.Conv2d(inner, channels, 1), nn.BatchNorm2d(channels))
        nn.init.zeros_(self.out[1].weight)
        nn.init.zeros_(self.out[1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        theta = self.theta(x).flatten(2).transpose(1, 2)  # N×HW×C'
        phi = self.phi(x).flatten(2)  # N×C'×HW
        g = self.g(x).flatten(2).transpose(1, 2)  # N×HW×C'
        attention = torch.softmax(theta @ phi, dim=-1)  # N×HW×HW
        y = (attention @ g).transpose(1, 2).reshape(n, -1, h, w)
        return x + self.out(y)


def attach_nonlocal_blocks(backbone: nn.Module, placement=AGW_PLACEMENT) -> nn.ModuleList:
    """Hook non-local blocks after the last blocks of the named layers; return them to register."""
    blocks = nn.ModuleList()
    for layer_name, count in placement:
        layer = getattr(backbone, layer_name, None)
        if not isinstance(layer, nn.Sequential) or len(layer) < count:
            raise DiffreidError(f"non-local blocks need a ResNet-style backbone with {layer_name}; "
                                f"{type(backbone).__name__} has none: set nonlocal_blocks: false")
        for block in list(layer)[-count:]:
            channels = _out_channels(block)
            nonlocal_block = NonLocalBlock(channels)
            blocks.append(nonlocal_block)
            block.register_forward_hook(lambda _module, _inputs, output, nl=nonlocal_block: nl(output))
    return blocks


def _out_channels(block: nn.Module) -> int:
    """The block's output width: that of the residual branch's last conv (not the shortcut's)."""
    return [m for name, m in block.named_modules()
            if isinstance(m, nn.Conv2d) and "downsample" not in name][-1].out_channels
