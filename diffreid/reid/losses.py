"""Re-ID losses: BoT's label-smoothed cross-entropy, batch-hard triplet and center loss,
and AGW's weighted-regularisation triplet.

Identity classification teaches what each training identity looks like; the triplet
losses pull an identity's images together and push others away in the feature space
that ranking uses; center loss keeps each identity's features near a learned centre.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def label_smoothed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, epsilon: float = 0.1) -> torch.Tensor:
    """Cross-entropy against (1 − ε)·one-hot + ε/K (Szegedy et al. 2016), as BoT uses, so
    the classifier does not over-fit the few training identities."""
    return F.cross_entropy(logits.float(), labels, label_smoothing=epsilon)


def _distances(features: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between every pair of rows (clamped for a stable gradient at 0)."""
    features = features.float()
    squared = features.pow(2).sum(1, keepdim=True)
    d2 = squared + squared.t() - 2.0 * features @ features.t()
    return d2.clamp(min=1e-12).sqrt()


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    return same, ~same


def batch_hard_triplet_loss(features: torch.Tensor, labels: torch.Tensor, margin: float | None = 0.3) -> torch.Tensor:
    """Hermans et al. 2017: for each anchor its farthest positive and nearest negative in the
    batch; hinge with `margin`, or soft margin (log(1 + e^x)) when margin is None."""
    dist = _distances(features)
    same, different = _masks(labels)
    hardest_positive = dist.masked_fill(~same, float("-inf")).amax(1)
    hardest_negative = dist.masked_fill(~different, float("inf")).amin(1)
    valid = torch.isfinite(hardest_negative)  # an anchor whose batch holds no other identity has no triplet
    gap = (hardest_positive - hardest_negative)[valid]
    if gap.numel() == 0:
        return features.sum() * 0.0
    return F.softplus(gap).mean() if margin is None else F.relu(gap + margin).mean()


def weighted_regularized_triplet_loss(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """AGW (Ye et al. 2021): every positive and negative counts, weighted by a softmax over
    its distance (far positives and near negatives weigh most), with a soft margin and no
    margin to tune."""
    dist = _distances(features)
    same, different = _masks(labels)
    same, different = same.float(), different.float()
    positive_dist, negative_dist = dist * same, dist * different

    def softmax_weights(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        peak = (values * mask).amax(1, keepdim=True)
        exp = torch.exp(values - peak) * mask
        return exp / (exp.sum(1, keepdim=True) + 1e-6)

    furthest_positive = (positive_dist * softmax_weights(positive_dist, same)).sum(1)
    closest_negative = (negative_dist * softmax_weights(-negative_dist, different)).sum(1)
    return F.softplus(furthest_positive - closest_negative).mean()


class CenterLoss(nn.Module):
    """Wen et al. 2016: half the squared distance of each feature to its identity's centre,
    the centres learned beside the model (BoT trains them with their own SGD)."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.centers = nn.Parameter(torch.randn(num_classes, dim))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return (features.float() - self.centers[labels]).pow(2).sum(1).mean() / 2


TRIPLETS = ("batch_hard", "weighted", "none")


def reid_loss(outputs: dict[str, torch.Tensor], labels: torch.Tensor, *, label_smoothing: float, triplet: str,
              triplet_margin: float | None, center_loss: CenterLoss | None = None,
              center_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """The loss terms for one batch and their sum under `total`.

    Classification reads the logits (after the BNNeck); the metric losses read the
    feature before it, as BoT's BNNeck prescribes.
    """
    terms = {"id": label_smoothed_cross_entropy(outputs["logits"], labels, label_smoothing)}
    if triplet == "batch_hard":
        terms["triplet"] = batch_hard_triplet_loss(outputs["features"], labels, triplet_margin)
    elif triplet == "weighted":
        terms["triplet"] = weighted_regularized_triplet_loss(outputs["features"], labels)
    if center_loss is not None and center_weight > 0:
        terms["center"] = center_weight * center_loss(outputs["features"], labels)
    terms["total"] = sum(terms.values())
    return terms
