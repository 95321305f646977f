"""Captioners: objects with `caption(records) -> list[str | None]` (None: the image was skipped, with a warning)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol

from diffreid.data.records import Record
from diffreid.registry import Registry


class Captioner(Protocol):
    def caption(self, records: list[Record]) -> list[str | None]: ...


# factory(config, attributes_file) per captioner name
CAPTIONERS: Registry[Callable[..., Captioner]] = Registry("captioner")


@CAPTIONERS.register("blip2")
def _blip2(config, attributes: Path | None) -> Captioner:
    from diffreid.synthesis.captioners.blip2 import Blip2Captioner

    return Blip2Captioner(config.model, config.prompt, config.num_beams, config.max_new_tokens, config.device)


@CAPTIONERS.register("attributes")
def _attributes(config, attributes: Path | None) -> Captioner:
    from diffreid.synthesis.captioners.attributes import attribute_captioner

    return attribute_captioner(attributes)


class FixedCaptioner:
    """One caption for every image: real datasets with neither attributes nor a captioner's weights
    (the identity tokens then carry all of an identity's look)."""

    def __init__(self, text: str):
        self.text = text

    def caption(self, records: list[Record]) -> list[str | None]:
        return [self.text] * len(records)


@CAPTIONERS.register("fixed")
def _fixed(config, attributes: Path | None) -> Captioner:
    return FixedCaptioner(config.fixed_caption)


def captioner_factory(name: str) -> Callable[..., Captioner]:
    """`factory(config, attributes_file)` for a captioner name; checked before any work, built only when needed
    (loading BLIP-2 takes a minute, and a resumed run may have nothing left to caption)."""
    return CAPTIONERS[name]
