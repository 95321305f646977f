"""Typed configs, one per stage; the CLI fills them from flags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class SynthConfig:
    """`diffreid data synth`: a procedural person dataset in Market-1501 layout."""

    out: Path
    identities: int = 100
    style: str | None = None  # None: the default style
    seed: int = 0


@dataclass
class CaptionConfig:
    """`diffreid caption`: a caption per image and a description per identity (LPE part 1)."""

    data: str
    out: Path
    captioner: str = "blip2"  # "blip2" or "attributes"
    model: str = "Salesforce/blip2-opt-2.7b"  # blip2: a local folder or a hub id
    attributes: Path | None = None  # attributes: None reads attributes.json in the dataset root
    splits: tuple[str, ...] = ("train",)
    batch_size: int = 16
    prompt: str = "a photo of a person wearing"  # blip2: the text the caption continues
    num_beams: int = 3
    max_new_tokens: int = 30
    device: str | None = None  # None: cuda when there is one


@dataclass
class EvaluateConfig:
    """`diffreid evaluate`: rank a dataset's queries against its gallery with a model."""

    model: str
    data: str
    out: Path | None = None
    rerank: bool = False
    rank_lists: int = 0
    batch_size: int = 64
    input_size: tuple[int, int] | None = None  # (height, width); None: read from the model
    metric: str = "cosine"
    protocol: str = "market1501"
    max_rank: int = 50
