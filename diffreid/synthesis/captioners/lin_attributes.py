"""Market-1501 and DukeMTMC-reID attributes (Lin et al., "Improving Person Re-identification
by Attribute and Identity Learning"), read from `market_attribute.mat` / `duke_attribute.mat`
as they are published, and turned into captions.

Both files hold `<name>_attribute[0, 0]["train" | "test"][0, 0]`, one row per identity:
one field per attribute (1 x N uint8) and `image_index`, the 4-digit identity. The value
coding is the one the published READMEs give: every binary attribute, colours included,
is no(1) / yes(2); gender male(1) / female(2); Market age young(1) / teenager(2) /
adult(3) / old(4), hair short(1) / long(2), `up` (sleeves) long(1) / short(2), `down`
(lower-body length) long(1) / short(2), `clothes` dress(1) / pants(2); Duke `top`
(upper-body length) short(1) / long(2), `shoes` dark(1) / light(2). A value outside
the coding (two Duke training identities have `top` 0) means "not annotated" and is
left out. The field order differs between the splits, so fields are read by name.
"""

from __future__ import annotations

import logging
from pathlib import Path

from diffreid.errors import DiffreidError
from diffreid.synthesis.captioners.phrasing import join_and, person_sentence, with_article

log = logging.getLogger(__name__)

_NO_YES = {1: False, 2: True}
_COMMON = {"gender": {1: "male", 2: "female"}, "hat": _NO_YES, "backpack": _NO_YES, "bag": _NO_YES,
           "handbag": _NO_YES}
CODES: dict[str, dict[str, dict[int, object]]] = {
    "market": _COMMON | {"age": {1: "young", 2: "teenager", 3: "adult", 4: "old"}, "hair": {1: "short", 2: "long"},
                         "up": {1: "long", 2: "short"}, "down": {1: "long", 2: "short"},
                         "clothes": {1: "dress", 2: "pants"}},
    "duke": _COMMON | {"top": {1: "short", 2: "long"}, "boots": _NO_YES, "shoes": {1: "dark", 2: "light"}},
}
# Colour fields are `up<colour>` / `down<colour>`; captions list a person's colours in this order.
_COLOURS = ("black", "white", "red", "pink", "purple", "yellow", "gray", "blue", "green", "brown")

Attributes = dict[str, object]  # decoded: {"gender": "female", "hat": False, "up colours": ["white"], ...}


def read_lin_attributes(path: Path) -> tuple[str, dict[str, dict[int, Attributes]]]:
    """(`market` or `duke`, split -> pid -> decoded attributes) from a published attribute file."""
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
    except (OSError, ValueError) as error:
        raise DiffreidError(f"{path}: cannot read as a MATLAB file ({error})") from None
    name = next((n for n in CODES if f"{n}_attribute" in mat), None)
    if name is None:
        raise DiffreidError(f"{path}: no market_attribute or duke_attribute variable; expected Lin et al.'s "
                            "market_attribute.mat or duke_attribute.mat")
    root = mat[f"{name}_attribute"][0, 0]
    splits, unannotated = {}, 0
    for split in root.dtype.names:
        table = root[split][0, 0]
        pids = [int(str(index.ravel()[0])) for index in table["image_index"].ravel()]
        columns = {field: table[field].ravel() for field in table.dtype.names if field != "image_index"}
        splits[split] = {}
        for row, pid in enumerate(pids):
            decoded, missing = _decode(name, {field: int(values[row]) for field, values in columns.items()})
            splits[split][pid] = decoded
            unannotated += missing
    if unannotated:
        log.info("%s: %d attribute values outside the published coding (not annotated) left out", path, unannotated)
    return name, splits


def _decode(name: str, row: dict[str, int]) -> tuple[Attributes, int]:
    """Decoded attributes of one identity and how many of its values were not annotated."""
    codes = CODES[name]
    decoded: Attributes = {"up colours": [], "down colours": []}
    missing = 0
    for field, value in row.items():
        part = next((p for p in ("up", "down") if field.startswith(p) and field[len(p):] in _COLOURS), None)
        coding = _NO_YES if part else codes.get(field)
        if coding is None:
            continue  # a field the coding does not know: nothing to say about it
        if value not in coding:
            missing += 1
        elif part:
            if coding[value]:
                decoded[f"{part} colours"].append(field[len(part):])
        else:
            decoded[field] = coding[value]
    for part in ("up", "down"):
        decoded[f"{part} colours"].sort(key=_COLOURS.index)
    return decoded, missing


def lin_caption(name: str, attributes: Attributes) -> str:
    """A caption from decoded Market-1501 or DukeMTMC-reID attributes."""
    return (_market_caption if name == "market" else _duke_caption)(attributes)


def _subject(attributes: Attributes, ages: dict[str, tuple[str, str]]) -> str:
    """'a young woman', 'a boy', 'a man', 'a person' (gender not annotated)."""
    male, female = ages.get(attributes.get("age"), ("man", "woman"))
    return with_article({"male": male, "female": female}.get(attributes.get("gender"), "person"))


def _colours(attributes: Attributes, part: str) -> str:
    return join_and(attributes[f"{part} colours"]) + " " if attributes[f"{part} colours"] else ""


def _carrying(attributes: Attributes) -> list[str]:
    return [with_article(item) for item in ("backpack", "bag", "handbag") if attributes.get(item)]


def _market_caption(attributes: Attributes) -> str:
    """'a young woman with long hair, wearing a short-sleeved white top and a short white skirt'.

    Market's "young" is a child and "teenager" covers the campus' students, hence
    boy/girl and young man/woman; lower-body "dress" is a skirt or dress, "pants" become
    trousers or shorts by their length.
    """
    subject = _subject(attributes, {"young": ("boy", "girl"), "teenager": ("young man", "young woman"),
                                    "old": ("old man", "old woman")})
    features = [f"{attributes['hair']} hair"] if "hair" in attributes else []
    sleeves = f"{attributes['up']}-sleeved " if "up" in attributes else ""
    wearing = [with_article(f"{sleeves}{_colours(attributes, 'up')}top")]
    length, colour = attributes.get("down"), _colours(attributes, "down")
    if attributes.get("clothes") == "dress":
        wearing.append(with_article(f"{length + ' ' if length else ''}{colour}skirt"))
    elif attributes.get("clothes") == "pants":
        wearing.append(f"{colour}{'shorts' if length == 'short' else 'trousers'}")
    else:
        wearing.append(f"{length + ' ' if length else ''}{colour}bottoms")
    if attributes.get("hat"):
        wearing.append("a hat")
    return person_sentence(subject, features, wearing, _carrying(attributes))


def _duke_caption(attributes: Attributes) -> str:
    """'a man wearing a black top, black bottoms and light-coloured shoes, carrying a backpack'.

    Duke (recorded in winter) annotates the length of the upper-body garment, not its
    sleeves: a long one is a coat. It names no lower-body type, hence "bottoms".
    """
    upper = f"{_colours(attributes, 'up')}{'coat' if attributes.get('top') == 'long' else 'top'}"
    wearing = [with_article(f"long {upper}" if attributes.get("top") == "long" else upper),
               f"{_colours(attributes, 'down')}bottoms"]
    shade = {"dark": "dark ", "light": "light-coloured "}.get(attributes.get("shoes"), "")
    wearing.append(f"{shade}{'boots' if attributes.get('boots') else 'shoes'}")
    if attributes.get("hat"):
        wearing.append("a hat")
    return person_sentence(_subject(attributes, {}), [], wearing, _carrying(attributes))
