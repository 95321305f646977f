"""The Identity Information Representer (IIR): identities as learned tokens in the prompt.

Words describe clothes, not a person. LPE's second half puts each identity into the
prompt at the feature level: K placeholder tokens `<id_0> … <id_{K-1}>` whose input
embeddings are replaced, per prompt, by the identity's K learned vectors. The text
encoder is untouched: a forward hook on its token-embedding layer swaps the vectors in
where the placeholders stand, so any CLIP text encoder (SD v1.x's or the miniature's)
takes identities without changing its weights.

Two representers produce the vectors:
- `IdentityTable`: a K-vector embedding per identity, learnt while fine-tuning
  (textual inversion, many identities at once);
- `IdentityEncoder`: an MLP from an identity's mean image feature (from a Re-ID model)
  to its K vectors, so an identity never seen in fine-tuning gets tokens from its images.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

PLACEHOLDER = "<id_{}>"
ANCHOR = "person"  # the word whose embedding the identity tokens start from


def placeholders(k: int) -> list[str]:
    return [PLACEHOLDER.format(i) for i in range(k)]


def identity_prompt(k: int, description: str = "") -> str:
    """'a photo of <id_0> <id_1> <id_2> <id_3> person, {description}'; K = 0 is fine-tuning
    without the IIR: the identity is in the prompt only through its description."""
    text = f"a photo of {' '.join([*placeholders(k), ANCHOR])}"
    return f"{text}, {description}" if description else text


def add_placeholders(tokenizer, text_encoder, k: int) -> list[int]:
    """Register the K placeholder tokens (idempotent) and give them rows in the embedding table."""
    tokenizer.add_tokens([t for t in placeholders(k) if t not in tokenizer.get_vocab()])
    if text_encoder.get_input_embeddings().num_embeddings < len(tokenizer):
        text_encoder.resize_token_embeddings(len(tokenizer))
    return tokenizer.convert_tokens_to_ids(placeholders(k))


def anchor_embedding(tokenizer, text_encoder) -> torch.Tensor:
    ids = tokenizer(ANCHOR, add_special_tokens=False).input_ids
    return text_encoder.get_input_embeddings().weight[ids].detach().mean(dim=0)


class IdentityTable(nn.Module):
    """One learned K×hidden block per identity, started at the embedding of 'person'."""

    def __init__(self, identities: int, k: int, anchor: torch.Tensor, noise: float = 0.01, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        start = anchor.float().expand(identities, k, -1)
        self.vectors = nn.Parameter(start + noise * anchor.float().std() * torch.randn(start.shape, generator=generator))

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return self.vectors[index]


class IdentityEncoder(nn.Module):
    """Mean Re-ID feature of an identity's images -> its K token vectors."""

    def __init__(self, features: torch.Tensor, k: int, anchor: torch.Tensor, hidden: int = 512):
        super().__init__()
        self.register_buffer("features", features.float())  # identities × feature_dim, fixed inputs
        self.k, self.width = k, anchor.numel()
        self.mlp = nn.Sequential(nn.LayerNorm(features.shape[1]), nn.Linear(features.shape[1], hidden), nn.GELU(),
                                 nn.Linear(hidden, k * self.width))
        nn.init.zeros_(self.mlp[-1].weight)  # starts as the anchor: training begins from "person"
        nn.init.zeros_(self.mlp[-1].bias)
        self.register_buffer("anchor", anchor.float().expand(k, -1).clone())

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        return self.anchor + self.mlp(features.float()).view(-1, self.k, self.width)

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return self.encode(self.features[index])


@contextmanager
def identity_tokens(text_encoder, placeholder_ids: list[int], vectors: torch.Tensor | None) -> Iterator[None]:
    """Within the block, placeholder tokens of row b embed as `vectors[b]` (B×K×hidden)."""
    if vectors is None:
        yield
        return
    ids = torch.tensor(placeholder_ids)

    def swap(module, inputs, output):
        tokens = inputs[0]
        for k, token in enumerate(ids.tolist()):
            where = (tokens == token).unsqueeze(-1)
            output = torch.where(where, vectors[:, k].unsqueeze(1).to(output.dtype), output)
        return output

    handle = text_encoder.get_input_embeddings().register_forward_hook(swap)
    try:
        yield
    finally:
        handle.remove()
