"""PETA's attribute labels (`Label.txt`), read and decoded into words.

One line per identity: its key (the leading number of its images' names, padded in
any way: matched as an integer), then the binary attributes it has, from PETA's
vocabulary (`upperBodyBlack`, `lowerBodyJeans`, `carryingBackpack`, `personalMale`,
`personalLess30`, `hairLong`, ...). A part may carry several colours. Both the
captioner and the attribute judge read identities through `decode`, so they agree on
what a label means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from diffreid.data.records import Problem
from diffreid.errors import DatasetError

COLOURS = ("black", "white", "grey", "blue", "red", "brown", "green", "yellow", "orange", "pink", "purple")
# PETA label -> the words a caption uses; order here is the order a caption lists them in
UPPER_TYPES = {"Jacket": "jacket", "Suit": "suit jacket", "Sweater": "sweater", "Tshirt": "t-shirt"}
SLEEVES = {"LongSleeve": "long-sleeved", "ShortSleeve": "short-sleeved", "NoSleeve": "sleeveless"}
UPPER_PATTERNS = {"Logo": "a logo", "Plaid": "a plaid pattern", "ThinStripes": "thin stripes",
                  "ThickStripes": "thick stripes", "VNeck": "a v-neck"}
LOWER_TYPES = {"Jeans": "jeans", "Trousers": "trousers", "Suits": "suit trousers", "Shorts": "shorts",
               "HotPants": "hot pants", "Capri": "capri trousers", "ShortSkirt": "short skirt",
               "LongSkirt": "long skirt"}
FOOTWEAR = {"LeatherShoes": "leather shoes", "Sneakers": "sneakers", "Boots": "boots", "Sandals": "sandals",
            "Shoes": "shoes", "Stocking": "stockings"}
CARRYING = {"Backpack": "backpack", "MessengerBag": "shoulder bag", "PlasticBags": "plastic bags",
            "Suitcase": "suitcase", "LuggageCase": "luggage case", "Folder": "folder", "BabyBuggy": "baby buggy",
            "ShoppingTro": "shopping trolley", "Umbrella": "umbrella", "Other": "something"}
ACCESSORIES = {"Hat": "a hat", "Sunglasses": "sunglasses", "Muffler": "a scarf", "Kerchief": "a kerchief",
               "Shawl": "a shawl", "HairBand": "a hair band", "Headphone": "headphones"}
AGES = {"Less15": "child", "Less30": "young", "Less45": "adult", "Less60": "middle-aged", "Larger60": "old"}
_LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")  # personalLess30 has digits


@dataclass(frozen=True)
class PetaAttributes:
    """One identity's labels in words; an empty field means PETA labelled nothing there."""

    gender: str | None = None  # "male" / "female"
    age: str | None = None  # a value of AGES
    hair: str | None = None  # "long" / "short" / "bald"
    hair_colours: tuple[str, ...] = ()
    upper_colours: tuple[str, ...] = ()
    upper_types: tuple[str, ...] = ()
    sleeves: str | None = None
    upper_patterns: tuple[str, ...] = ()
    lower_colours: tuple[str, ...] = ()
    lower_types: tuple[str, ...] = ()
    footwear: tuple[str, ...] = ()
    footwear_colours: tuple[str, ...] = ()
    carrying: tuple[str, ...] = ()  # empty also when PETA says carryingNothing
    accessories: tuple[str, ...] = ()
    formal: bool | None = None  # upperBodyFormal / upperBodyCasual
    labels: frozenset[str] = field(default=frozenset(), compare=False)


def _pick(labels: frozenset[str], prefix: str, table: dict[str, str]) -> tuple[str, ...]:
    return tuple(words for key, words in table.items() if prefix + key in labels)


def _colours(labels: frozenset[str], prefix: str) -> tuple[str, ...]:
    return tuple(c for c in COLOURS if prefix + c.capitalize() in labels)


def decode(labels: frozenset[str]) -> PetaAttributes:
    """The words PETA's binary labels of one identity stand for."""
    gender = "male" if "personalMale" in labels else "female" if "personalFemale" in labels else None
    age = next((words for key, words in AGES.items() if "personal" + key in labels), None)
    hair = "bald" if "hairBald" in labels else "long" if "hairLong" in labels else \
        "short" if "hairShort" in labels else None
    sleeves = next((words for key, words in SLEEVES.items() if "upperBody" + key in labels), None)
    formal = True if "upperBodyFormal" in labels else False if "upperBodyCasual" in labels else None
    return PetaAttributes(
        gender=gender, age=age, hair=hair, hair_colours=_colours(labels, "hair"),
        upper_colours=_colours(labels, "upperBody"), upper_types=_pick(labels, "upperBody", UPPER_TYPES),
        sleeves=sleeves, upper_patterns=_pick(labels, "upperBody", UPPER_PATTERNS),
        lower_colours=_colours(labels, "lowerBody"), lower_types=_pick(labels, "lowerBody", LOWER_TYPES),
        footwear=_pick(labels, "footwear", FOOTWEAR), footwear_colours=_colours(labels, "footwear"),
        carrying=_pick(labels, "carrying", CARRYING), accessories=_pick(labels, "accessory", ACCESSORIES),
        formal=formal, labels=labels)


def read_label_file(path: Path) -> tuple[dict[int, frozenset[str]], list[Problem]]:
    """key -> labels of every identity in a Label.txt; a line that is not `KEY label label ...` is a problem."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig", errors="strict")
    except FileNotFoundError:
        raise DatasetError(f"{path}: no PETA label file; PETA ships Label.txt in every set's folder") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: cannot read the label file ({error})") from None
    table: dict[int, frozenset[str]] = {}
    problems: list[Problem] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if not fields[0].isdigit() or not all(_LABEL.match(label) for label in fields[1:]):
            problems.append(Problem(f"line {lineno}: not 'KEY label label ...'; line skipped", Path(path)))
            continue
        key = int(fields[0])
        if key in table:
            problems.append(Problem(f"line {lineno}: identity {key} labelled twice; the first line kept", Path(path)))
            continue
        table[key] = frozenset(fields[1:])
    return table, problems
