"""Captions from the procedural persons' `attributes.json` (written by `diffreid data synth`).

The file names every attribute in words (`{"upper": {"type": "t-shirt", "colour":
"white", "pattern": "horizontal stripes", "pattern colour": "red"}, ...}`), so a caption
only has to order them; sections a hand-written file leaves out are left out of the
caption too.
"""

from __future__ import annotations

import json
from pathlib import Path

from diffreid.errors import DiffreidError
from diffreid.synthesis.captioners.phrasing import person_sentence, with_article

_PLURAL = {"trousers", "shorts", "jeans", "pants", "sneakers", "boots", "shoes", "leather shoes"}
_BUILD = {"slim": "slim", "heavy": "heavy-set"}  # "average" says nothing


def read_procedural_captions(path: Path) -> dict[int, str]:
    """pid -> caption for every identity in an `attributes.json`."""
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
        return {int(pid): procedural_caption(attributes) for pid, attributes in table.items()}
    except (OSError, ValueError, AttributeError, TypeError) as error:
        raise DiffreidError(f"{path}: not an attributes file as `diffreid data synth` writes it "
                            f"(an object of identities, each an object of attributes): {error}") from None


def procedural_caption(attributes: dict) -> str:
    """'a slim person with pale skin and short brown hair, wearing a grey long-sleeved shirt, ...'."""
    build = _BUILD.get(attributes.get("build", ""))
    features = [f"{attributes['skin tone']} skin"] if "skin tone" in attributes else []
    if "hair" in attributes:
        features.append(_hair(attributes["hair"]))
    wearing = [_garment(attributes[part]) for part in ("upper", "lower", "shoes", "hat")
               if attributes.get(part, {}).get("type", "none") != "none"]
    carrying = [_garment(attributes["bag"])] if attributes.get("bag", {}).get("type", "none") != "none" else []
    return person_sentence(f"a {build} person" if build else "a person", features, wearing, carrying)


def _hair(hair: dict) -> str:
    style, colour = hair.get("style", ""), hair.get("colour")
    if style == "bald":
        return "a bald head"
    if style == "ponytail":
        return with_article(f"{colour} ponytail" if colour else "ponytail")
    return " ".join(word for word in (style, colour, "hair") if word)


def _garment(item: dict) -> str:
    """'black shorts', 'a white t-shirt with red horizontal stripes', 'a black and light blue checked jacket'."""
    kind, colour = item["type"], item.get("colour")
    pattern, accent = item.get("pattern", "plain"), item.get("pattern colour")
    named = f"{colour} {kind}" if colour else kind
    if pattern == "checked":
        named = f"{colour} and {accent} checked {kind}" if colour and accent else f"checked {named}"
    phrase = named if kind in _PLURAL else with_article(named)
    if pattern == "logo on the front":
        phrase += f" with {with_article(f'{accent} logo' if accent else 'logo')} on the front"
    elif pattern not in ("plain", "checked"):
        phrase += f" with {accent} {pattern}" if accent else f" with {pattern}"
    return phrase
