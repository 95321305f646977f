"""Visual styles: what differs between procedural datasets, so one can be a domain gap for another.

A style fixes the camera network (number of cameras, image size), the scenes they
look at, how they light and degrade what they see, and what the people there wear.
Training on one style and testing on another shifts all of these at once, as moving
from Market-1501 to DukeMTMC or MSMT17 does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from diffreid.errors import DiffreidError


Wardrobe = dict[str, dict[str, float]]  # attribute -> {value: weight}


def wardrobe(table: str) -> Wardrobe:
    """Parse lines `attribute: value weight, value weight, ...`; values may hold spaces, indented lines continue."""
    out: Wardrobe = {}
    for line in re.sub(r"\n\s+", " ", table.strip()).splitlines():
        attribute, _, items = line.partition(":")
        out[attribute.strip()] = {value: float(weight) for value, _, weight in
                                  (item.strip().rpartition(" ") for item in items.split(","))}
    return out


@dataclass(frozen=True)
class Style:
    """One camera network and the people it sees."""

    name: str
    description: str
    cameras: int
    size: tuple[int, int]  # (height, width) of every image
    images_per_identity: tuple[int, int]  # inclusive range
    scene: str  # background family: "outdoor", "indoor" or "street"
    wardrobe: Wardrobe
    brightness: tuple[float, float]  # range of per-camera gain
    cast: float  # strength of the per-camera colour cast
    noise: float  # sensor noise, in 0..255 units
    blur: float  # probability that an image is blurred or low-resolution
    occlusion: float  # probability that something stands in front of the person
    quality: int  # JPEG quality


_SUMMER = wardrobe("""
upper: t-shirt 5, long-sleeved shirt 2, jacket 1.2, coat 0.3
upper colour: white 3, black 2.5, grey 2, red 1.5, blue 1.5, light blue 1, yellow 1, green 1, pink 1, purple 0.7,
    orange 0.7, navy blue 1
pattern: plain 6, horizontal stripes 1, vertical stripes 0.6, checked 0.8, logo on the front 1.2
lower: trousers 4, shorts 2.5, skirt 1.2
lower colour: black 3, denim blue 2.5, grey 2, white 0.8, beige 1, khaki 1, navy blue 1, brown 0.6, green 0.3, pink 0.3
hat: none 7, cap 1.5, beanie 0.5
bag: none 4, backpack 2.5, shoulder bag 2, handbag 1.5
""")
_WINTER = wardrobe("""
upper: t-shirt 0.6, long-sleeved shirt 2, jacket 3, coat 2.5
upper colour: black 3, dark grey 2, navy blue 2, brown 1.5, beige 1.5, dark red 1, olive 1, teal 0.7, white 1, khaki 1,
    purple 0.5, pink 0.5, orange 0.3
pattern: plain 6, horizontal stripes 0.8, vertical stripes 0.4, checked 1.2, logo on the front 0.6
lower: trousers 5, skirt 1, shorts 0.2
lower colour: black 3, denim blue 2, dark grey 2, navy blue 1.5, brown 1, beige 0.6, khaki 0.8, olive 0.5, dark red 0.3
hat: none 5, cap 0.8, beanie 2
bag: none 3, backpack 2, shoulder bag 2.5, handbag 2.5
""")
_EVENING = wardrobe("""
upper: t-shirt 2, long-sleeved shirt 3, jacket 3, coat 1
upper colour: black 4, dark grey 2, white 1.5, grey 1.5, navy blue 1.5, red 1, blue 1, beige 1, brown 1, green 0.5,
    yellow 0.5, orange 0.5
pattern: plain 7, horizontal stripes 1, vertical stripes 0.5, checked 1, logo on the front 1
lower: trousers 5, shorts 1, skirt 1
lower colour: black 4, denim blue 3, dark grey 2, grey 1, beige 0.7, khaki 0.7, navy blue 1
hat: none 6, cap 1.5, beanie 1.5
bag: none 4, backpack 3, shoulder bag 2, handbag 1
""")

STYLES: dict[str, Style] = {
    style.name: style
    for style in (
        Style("market", "summer campus, 6 outdoor cameras, 128x64, daylight", cameras=6, size=(128, 64),
              images_per_identity=(14, 26), scene="outdoor", wardrobe=_SUMMER, brightness=(0.85, 1.15),
              cast=0.03, noise=3.0, blur=0.2, occlusion=0.25, quality=90),
        Style("mall", "winter shopping mall, 8 indoor cameras, 160x64, warm and fluorescent light", cameras=8,
              size=(160, 64), images_per_identity=(12, 22), scene="indoor", wardrobe=_WINTER,
              brightness=(0.85, 1.15), cast=0.12, noise=2.0, blur=0.15, occlusion=0.3, quality=85),
        Style("night", "street surveillance at night, 4 cameras, 96x48, dim with strong colour casts", cameras=4,
              size=(96, 48), images_per_identity=(10, 18), scene="street", wardrobe=_EVENING,
              brightness=(0.45, 0.7), cast=0.18, noise=6.0, blur=0.45, occlusion=0.2, quality=75),
    )
}
DEFAULT_STYLE = "market"


def get_style(name: str | None) -> Style:
    """The named style (the default for None), or an error listing the available ones."""
    name = DEFAULT_STYLE if name is None else name
    if name not in STYLES:
        raise DiffreidError(f"unknown synth style {name!r}; available styles: {', '.join(STYLES)}")
    return STYLES[name]
