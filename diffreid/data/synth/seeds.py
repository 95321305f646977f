"""Seeds derived from (global seed, stage, style, unit, index), so every draw is reproducible alone.

Drawing identity k from its own stream, rather than from one stream shared by all
identities, is what makes identity k look the same whether 10 or 10,000 were asked for,
and lets worker processes render identities in any order.
"""

from __future__ import annotations

import zlib

import numpy as np

_STAGE = zlib.crc32(b"synth")


def derive_rng(seed: int, style: str, unit: int, index: int = 0) -> np.random.Generator:
    """The generator for one unit of work: an identity (unit = pid) or a camera (unit = 0)."""
    return np.random.default_rng([seed, _STAGE, zlib.crc32(style.encode()), unit, index])
