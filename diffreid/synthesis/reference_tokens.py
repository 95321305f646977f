"""The image-level IIR's second way in: a reference image as tokens the UNet's cross-attention reads.

Reference latents concatenated to the UNet's input are aligned with what it draws, pixel for
pixel, and a small model learns to keep the reference's pose and outline and paint over it
(docs/results.md, the from-scratch reference model's grid). Here the reference is pooled
into K tokens (learned queries attending over its latent, as IP-Adapter-Plus's resampler
does over image features) that join the text's tokens: the UNet reads what the person looks
like, not where each part of the photograph stood. A dropped reference is zero latents, as
for the channel route, so guidance has a reference-free branch.
"""

from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn


class ReferenceTokens(ModelMixin, ConfigMixin):
    """Reference latents (N, C, h, w) -> (N, tokens, cross_attention_dim)."""

    @register_to_config
    def __init__(self, latent_channels: int = 32, latent_size: tuple[int, int] = (16, 8), tokens: int = 8,
                 cross_attention_dim: int = 96, width: int = 128, heads: int = 4):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(latent_channels, width, 3, padding=1), nn.SiLU(),
                                  nn.Conv2d(width, width, 3, stride=2, padding=1))
        positions = (-(-latent_size[0] // 2)) * (-(-latent_size[1] // 2))
        self.position = nn.Parameter(torch.randn(1, positions, width) * 0.02)
        self.queries = nn.Parameter(torch.randn(1, tokens, width) * 0.02)
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm = nn.LayerNorm(width)
        self.project = nn.Linear(width, cross_attention_dim)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        where = self.stem(latents).flatten(2).transpose(1, 2) + self.position
        queries = self.queries.expand(len(latents), -1, -1)
        pooled, _ = self.attention(queries, where, where, need_weights=False)
        return self.project(self.norm(pooled + queries))


def reference_context(tokens: ReferenceTokens, context: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """The text's tokens followed by the reference's: what the UNet's cross-attention reads."""
    return torch.cat([context, tokens(reference.to(context)).to(context.dtype)], dim=1)
