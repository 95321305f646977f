"""An identity: the attributes that make one drawn person recognisable across cameras.

Attributes are named in words ("navy blue", "shoulder bag") so `attributes.json` can be
turned into captions; the RGB values behind the names are jittered per identity, so two
people in "red" are not pixel-identical either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from diffreid.data.synth.styles import Style

COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (28, 28, 32), "white": (232, 232, 226), "grey": (128, 128, 130), "dark grey": (72, 72, 76),
    "red": (190, 32, 38), "dark red": (118, 24, 34), "pink": (228, 140, 170), "orange": (232, 118, 34),
    "yellow": (232, 204, 52), "beige": (208, 188, 150), "khaki": (160, 146, 98), "brown": (112, 74, 46),
    "green": (52, 140, 62), "olive": (106, 112, 52), "teal": (32, 128, 130), "light blue": (128, 178, 224),
    "blue": (40, 78, 188), "navy blue": (30, 40, 88), "denim blue": (68, 98, 148), "purple": (108, 52, 140),
}
SKIN_TONES = {"pale": (240, 210, 190), "light": (226, 186, 152), "medium": (200, 152, 112),
              "tan": (172, 122, 84), "brown": (128, 84, 56), "dark brown": (88, 58, 40)}
HAIR_COLOURS = {"black": (24, 20, 18), "dark brown": (58, 38, 26), "brown": (98, 64, 38),
                "blonde": (200, 168, 104), "grey": (150, 148, 144), "auburn": (124, 52, 30)}
BUILDS = {"slim": 0.88, "average": 1.0, "heavy": 1.16}

_HAIR_STYLES = {"short": 5, "long": 3, "ponytail": 1.5, "bald": 0.5}
_SHOES = {"sneakers": 5, "boots": 1.5, "leather shoes": 2}
_SHOE_COLOURS = {"white": 3, "black": 4, "brown": 1.5, "grey": 1, "red": 0.4}
_BAG_COLOURS = {"black": 4, "grey": 1, "navy blue": 1, "brown": 1.5, "red": 0.7, "blue": 0.7, "green": 0.5,
                "beige": 0.8, "pink": 0.4, "orange": 0.3}
_HAT_COLOURS = {"black": 3, "white": 1.5, "red": 1, "navy blue": 1, "grey": 1, "beige": 0.7, "green": 0.5}


def _pick(rng: np.random.Generator, options: dict[str, float], exclude: str | None = None) -> str:
    names = [name for name in options if name != exclude]
    p = np.array([options[name] for name in names], dtype=float)
    return names[rng.choice(len(names), p=p / p.sum())]


@dataclass(frozen=True)
class Identity:
    """One person's look; `rgb` holds the identity's own shade of each named colour."""

    build: str
    skin: str
    hair: str
    hair_colour: str
    upper: str
    upper_colour: str
    pattern: str
    pattern_colour: str | None
    lower: str
    lower_colour: str
    shoes: str
    shoe_colour: str
    bag: str
    bag_colour: str | None
    bag_side: str  # "left" or "right": the side a shoulder bag or handbag hangs on
    hat: str
    hat_colour: str | None
    rgb: dict[str, tuple[int, int, int]]

    @property
    def width(self) -> float:
        return BUILDS[self.build]

    def attributes(self) -> dict:
        """Human-readable attributes, as `attributes.json` stores them."""
        upper = {"type": self.upper, "colour": self.upper_colour, "pattern": self.pattern}
        if self.pattern_colour:
            upper["pattern colour"] = self.pattern_colour
        bag = {"type": self.bag} | ({"colour": self.bag_colour, "side": self.bag_side} if self.bag_colour else {})
        return {
            "build": self.build,
            "skin tone": self.skin,
            "hair": {"style": self.hair} | ({"colour": self.hair_colour} if self.hair != "bald" else {}),
            "upper": upper,
            "lower": {"type": self.lower, "colour": self.lower_colour},
            "shoes": {"type": self.shoes, "colour": self.shoe_colour},
            "bag": bag,
            "hat": {"type": self.hat} | ({"colour": self.hat_colour} if self.hat_colour else {}),
        }


def sample_identity(rng: np.random.Generator, style: Style) -> Identity:
    """Draw a person from the style's wardrobe."""
    wardrobe = style.wardrobe
    upper_colour = _pick(rng, wardrobe["upper colour"])
    pattern = _pick(rng, wardrobe["pattern"])
    pattern_colour = None if pattern == "plain" else _pick(rng, wardrobe["upper colour"], exclude=upper_colour)
    bag = _pick(rng, wardrobe["bag"])
    hat = _pick(rng, wardrobe["hat"])
    hair = _pick(rng, _HAIR_STYLES)
    fields = dict(
        build=_pick(rng, dict.fromkeys(BUILDS, 1.0)),
        skin=_pick(rng, dict.fromkeys(SKIN_TONES, 1.0)),
        hair=hair,
        hair_colour=_pick(rng, dict.fromkeys(HAIR_COLOURS, 1.0)),
        upper=_pick(rng, wardrobe["upper"]),
        upper_colour=upper_colour,
        pattern=pattern,
        pattern_colour=pattern_colour,
        lower=_pick(rng, wardrobe["lower"]),
        lower_colour=_pick(rng, wardrobe["lower colour"]),
        shoes=_pick(rng, _SHOES),
        shoe_colour=_pick(rng, _SHOE_COLOURS),
        bag=bag,
        bag_colour=None if bag == "none" else _pick(rng, _BAG_COLOURS),
        bag_side=("left", "right")[rng.integers(2)],
        hat=hat,
        hat_colour=None if hat == "none" else _pick(rng, _HAT_COLOURS),
    )
    named = {"skin": SKIN_TONES[fields["skin"]], "hair": HAIR_COLOURS[fields["hair_colour"]]}
    for part in ("upper", "pattern", "lower", "shoe", "bag", "hat"):
        name = fields[f"{part}_colour"]
        if name is not None:
            named[part] = COLOURS[name]
    rgb = {part: _jitter(rng, value) for part, value in named.items()}
    return Identity(**fields, rgb=rgb)


def _jitter(rng: np.random.Generator, rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """The identity's own shade: a common brightness change plus a small per-channel one."""
    value = np.asarray(rgb, float) * rng.uniform(0.85, 1.15) + rng.normal(0, 8, 3)
    return tuple(int(v) for v in np.clip(value, 0, 255))
