"""Shared fixtures: the real data in ../shared/data, skipped with a reason when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the project; a user's clone has none, so tests skip there."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (present on CI and developer machines only)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_persons(tmp_path_factory) -> Path:
    """A procedural person dataset of 12 identities (6 train, 6 test) in Market-1501 layout."""
    from diffreid.config import SynthConfig
    from diffreid.data.synth import synthesize

    return synthesize(SynthConfig(out=tmp_path_factory.mktemp("persons") / "set", identities=12, seed=0))


# the miniature's structure at test size: a few seconds to build, sample and fine-tune
TINY_SHAPE = dict(image_size=(64, 32), unet_channels=(32, 64), text_hidden=32, text_layers=1, text_heads=1)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    """An untrained miniature base-model folder (real TAEF2 codec and CLIP tokenizer, tiny UNet)."""
    from diffreid.synthesis.base_model import MiniatureShape, new_miniature

    folder = tmp_path_factory.mktemp("base") / "tiny"
    new_miniature(MiniatureShape(**TINY_SHAPE), seed=0).save_pretrained(folder)
    return folder
