"""BNNeck (Luo et al. 2019, "Bag of Tricks"): a batch norm between the feature and the classifier.

Cross-entropy wants features separable by hyperplanes, the triplet loss wants them
compact in Euclidean space; one feature serving both fights itself. BNNeck gives the
triplet loss the feature before the BN and the classifier the one after it; at test
time the normalised feature after the BN ranks best (cosine distance).
"""

from __future__ import annotations

import torch
from torch import nn


class BNNeckHead(nn.Module):
    """BN (shift frozen at 0, as BoT has it) then a bias-free linear classifier.

    `neck=False` drops the BN: the plain baseline, classifier straight on the feature.
    """

    def __init__(self, dim: int, num_classes: int, neck: bool = True):
        super().__init__()
        self.bottleneck = nn.BatchNorm1d(dim) if neck else nn.Identity()
        if neck:
            self.bottleneck.bias.requires_grad_(False)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The neck feature (what ranks at test time) and the class logits."""
        neck = self.bottleneck(features)
        return neck, self.classifier(neck)
