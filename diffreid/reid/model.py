"""`ReidNet`: backbone → (non-local blocks) → pooling → BNNeck → identity classifier.

The one model behind every training preset. In training mode `forward` returns the
pooled feature (for metric losses) and the logits (for cross-entropy); in eval mode it
returns the feature after the BNNeck, which is what ranks. Its `backbone.*` keys are the
backbone's home library's (torchvision, timm, torchreid), so `export_backbone` is a
prefix strip.
"""

from __future__ import annotations

import torch
from torch import nn

from diffreid.errors import DiffreidError
from diffreid.reid.backbones import create_backbone
from diffreid.reid.heads import BNNeckHead
from diffreid.reid.nonlocal_blocks import attach_nonlocal_blocks
from diffreid.reid.pooling import create_pooling

# Backbones whose own forward pools (OSNet's fc embedding, timm's token pooling): no
# separate pooling module; GeM needs a feature map and is refused for them.
SELF_POOLING = ("osnet", "swin", "vit")


class ReidNet(nn.Module):
    def __init__(self, backbone: str, num_classes: int, pooling: str = "avg", neck: bool = True,
                 nonlocal_blocks: bool = False, last_stride: int | None = None, pretrained=None):
        super().__init__()
        if num_classes < 2:
            raise DiffreidError(f"training needs at least 2 identities, got {num_classes}")
        self.backbone = create_backbone(backbone, pretrained=pretrained, last_stride=last_stride)
        self.nonlocal_blocks = attach_nonlocal_blocks(self.backbone) if nonlocal_blocks else None
        self_pooling = backbone.startswith(SELF_POOLING)
        if self_pooling and pooling != "avg":
            raise DiffreidError(f"backbone {backbone!r} pools its own output; use pooling: avg")
        self.pool = None if self_pooling else create_pooling(pooling)
        self.head = BNNeckHead(self.backbone.feature_dim, num_classes, neck)
        self.num_classes = num_classes

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """One global feature per image, before the neck."""
        if self.pool is None:
            return self.backbone(x)
        return self.pool(self.backbone.forward_features(x))

    def forward(self, x: torch.Tensor):
        features = self.pooled(x)
        neck, logits = self.head(features)
        if self.training:
            return {"features": features, "logits": logits}
        return neck

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (eval mode: BN running statistics)."""
        return self.head(self.pooled(x))[1]

    def backbone_state_dict(self) -> dict[str, torch.Tensor]:
        """The backbone's weights under its home library's key names (non-local blocks and head excluded)."""
        return {k: v.detach().contiguous() for k, v in self.backbone.state_dict().items()}
