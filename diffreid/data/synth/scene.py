"""Cameras: the scene each one looks at and the light it sees it in.

Each camera is fixed for a (seed, style): one background panorama that people walk
across, one gain, colour cast, gamma and saturation, and a preferred walking direction
(so one camera sees mostly fronts, another mostly backs). Same person, other camera:
other background, other colours, often another side of them - the cross-camera gap
that makes Re-ID hard.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

from diffreid.data.synth.seeds import derive_rng
from diffreid.data.synth.styles import STYLES, Style

VIEWS = ("front", "back", "left", "right")
SUPERSAMPLE = 2  # people and scenes are drawn at twice the image size, then reduced: smooth edges
PANORAMA = (1.5, 4)  # a camera's background is this many image heights high and widths wide; images show a part

_WALLS = {
    "outdoor": [(172, 170, 162), (150, 84, 64), (204, 190, 162), (118, 138, 150), (214, 214, 208), (96, 120, 80)],
    "indoor": [(226, 222, 210), (200, 204, 210), (236, 230, 214), (180, 170, 160)],
    "street": [(30, 30, 40), (42, 38, 36), (24, 30, 36)],
}
_GROUNDS = {
    "outdoor": [(150, 150, 146), (176, 164, 140), (160, 104, 88), (120, 122, 120), (190, 186, 176)],
    "indoor": [(214, 208, 196), (236, 236, 232), (190, 180, 166), (170, 174, 180)],
    "street": [(58, 58, 60), (46, 46, 50), (70, 66, 60)],
}
_MUTED = {"outdoor": 0.6, "indoor": 0.7, "street": 1.0}  # scene saturation: campuses are greyer than malls
_SHOPS = [(200, 40, 40), (30, 90, 170), (240, 200, 40), (40, 150, 90), (230, 120, 30), (120, 60, 160),
          (150, 200, 220), (30, 30, 30), (240, 240, 240)]


@dataclass(frozen=True)
class Camera:
    """One camera's fixed look."""

    background: np.ndarray  # uint8, (H, W) * SUPERSAMPLE * PANORAMA, 3
    gain: float
    cast: np.ndarray  # per-channel multipliers
    gamma: float
    saturation: float
    views: np.ndarray  # probabilities over VIEWS
    side_light: float  # -1..1: how much brighter people's image-right side is
    spot: np.ndarray | None  # street lamp: per-pixel light (H, W), or None for even light


@lru_cache(maxsize=64)
def camera(style_name: str, seed: int, cam: int) -> Camera:
    """Camera `cam` (1-based) of a style; cached, as every image of that camera uses it."""
    style = STYLES[style_name]
    rng = derive_rng(seed, style.name, 0, cam)
    direction = rng.normal(size=3)
    cast = np.exp(style.cast * direction / np.linalg.norm(direction))
    street = style.scene == "street"
    return Camera(
        background=_background(rng, style),
        gain=float(rng.uniform(*style.brightness)),
        cast=cast / cast.mean() ** 0.5,
        gamma=float(rng.uniform(0.93, 1.07)),
        saturation=float(rng.uniform(0.6, 0.85) if street else rng.uniform(0.85, 1.05)),
        views=rng.dirichlet(np.full(len(VIEWS), 0.9)),
        side_light=float(rng.uniform(-1, 1)),
        spot=_street_lamp(rng, style.size) if street else None,
    )


def light(cam: Camera, image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Apply the camera's light to an RGB image, with a little per-image flicker."""
    gains = cam.gain * rng.uniform(0.9, 1.1) * cam.cast
    levels = 255 * (np.arange(256) / 255) ** cam.gamma
    image = image.point(np.clip(levels[None, :] * gains[:, None], 0, 255).astype(np.uint8).ravel().tolist())
    image = ImageEnhance.Color(image).enhance(cam.saturation)
    if cam.spot is not None:
        lit = np.asarray(image, np.float32) * cam.spot[..., None]
        image = Image.fromarray(np.clip(lit, 0, 255).astype(np.uint8))
    return image


def _street_lamp(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Light falling off around a lamp: bright under it, dim away from it."""
    height, width = size
    x, y, radius = rng.uniform(0.1, 0.9), rng.uniform(-0.2, 0.4), rng.uniform(0.5, 0.9)
    rows, cols = np.mgrid[0:height, 0:width] / height
    d2 = (cols - x * width / height) ** 2 + (rows - y) ** 2
    return (0.5 + np.exp(-d2 / radius**2)).astype(np.float32)


def _background(rng: np.random.Generator, style: Style) -> np.ndarray:
    height = int(style.size[0] * SUPERSAMPLE * PANORAMA[0])
    width = style.size[1] * SUPERSAMPLE * PANORAMA[1]
    kind = style.scene
    horizon = int(height * rng.uniform(0.3, 0.55))
    wall = _choice(rng, _WALLS[kind])
    ground = _choice(rng, _GROUNDS[kind])
    image = Image.new("RGB", (width, height), wall)
    draw = ImageDraw.Draw(image)
    _ground(draw, rng, ground, horizon, width, height, tiles=kind != "street")
    if kind == "outdoor":
        _outdoor(draw, rng, horizon, width)
    elif kind == "indoor":
        _indoor(draw, rng, horizon, width)
    else:
        _street(draw, rng, horizon, width, height)
    pixels = np.asarray(image, np.float32)
    grey = pixels.mean(axis=2, keepdims=True)
    pixels = grey + _MUTED[kind] * (pixels - grey)
    texture = rng.normal(0, 5, (height, width, 1)) + rng.normal(0, 2, (height, width, 3))
    return np.clip(pixels + texture, 0, 255).astype(np.uint8)


def _choice(rng: np.random.Generator, options: list) -> tuple[int, int, int]:
    base = np.asarray(options[rng.integers(len(options))], float)
    return tuple(int(v) for v in np.clip(base * rng.uniform(0.85, 1.1) + rng.normal(0, 6, 3), 0, 255))


def _shade(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(min(255, v * factor)) for v in rgb)


def _ground(draw, rng, colour, horizon, width, height, tiles: bool) -> None:
    """The floor: lighter towards the camera, with tile seams in perspective."""
    rows = height - horizon
    for y in range(horizon, height):
        draw.line([(0, y), (width, y)], fill=_shade(colour, 0.85 + 0.25 * (y - horizon) / rows))
    if not tiles:
        return
    seam = _shade(colour, 0.8)
    y, step = float(horizon), rng.uniform(3, 6)
    while y < height:
        draw.line([(0, int(y)), (width, int(y))], fill=seam, width=1)
        step *= 1.35
        y += step
    vanish = rng.uniform(0, width)
    for x in np.arange(-width, 2 * width, rng.uniform(20, 40)):
        draw.line([(vanish + (x - vanish) * 0.2, horizon), (x, height)], fill=seam, width=1)


def _outdoor(draw, rng, horizon, width) -> None:
    """Building walls with windows, railings, trees and lamp posts."""
    x = 0.0
    while x < width:
        w = rng.uniform(60, 160)
        if rng.random() < 0.6:  # windows
            frame = _shade(_choice(rng, _WALLS["outdoor"]), 0.9)
            draw.rectangle([x, 0, x + w, horizon], fill=frame)
            glass = _choice(rng, [(70, 90, 110), (110, 130, 140), (40, 50, 60)])
            for wx in np.arange(x + 4, x + w - 10, 18):
                for wy in np.arange(4, horizon - 14, 22):
                    draw.rectangle([wx, wy, wx + 11, wy + 14], fill=glass)
        elif rng.random() < 0.5:  # trees
            leaf = _choice(rng, [(60, 110, 50), (80, 130, 60), (40, 80, 40)])
            draw.rectangle([x, 0, x + w, horizon], fill=_choice(rng, [(170, 200, 220), (200, 210, 215)]))
            for _ in range(4):
                cx, r = x + rng.uniform(0, w), rng.uniform(15, 35)
                draw.ellipse([cx - r, horizon - 2 * r, cx + r, horizon + 4], fill=_shade(leaf, rng.uniform(0.8, 1.2)))
        x += w
    if rng.random() < 0.6:  # railing along the walkway
        rail = _choice(rng, [(200, 200, 200), (60, 60, 60), (120, 100, 80)])
        top = horizon - rng.uniform(12, 24)
        draw.rectangle([0, top, width, top + 3], fill=rail)
        draw.rectangle([0, top + 10, width, top + 12], fill=rail)
        for px in np.arange(rng.uniform(0, 30), width, rng.uniform(20, 40)):
            draw.rectangle([px, top, px + 3, horizon], fill=rail)


def _indoor(draw, rng, horizon, width) -> None:
    """Shop fronts with coloured signs and windows, and pillars."""
    x = 0.0
    while x < width:
        w = rng.uniform(50, 130)
        sign = _choice(rng, _SHOPS)
        draw.rectangle([x, horizon * 0.12, x + w, horizon * 0.24], fill=sign)
        window = _choice(rng, [(190, 205, 215), (160, 170, 180), (220, 215, 200), (120, 128, 136)])
        draw.rectangle([x + 4, horizon * 0.3, x + w - 4, horizon], fill=window)
        for _ in range(int(rng.integers(0, 5))):  # goods on display
            gx, gy = x + rng.uniform(8, max(9.0, w - 16)), rng.uniform(horizon * 0.5, horizon * 0.85)
            draw.rectangle([gx, gy, gx + rng.uniform(5, 12), horizon], fill=_choice(rng, _SHOPS))
        draw.rectangle([x + w - 6, 0, x + w, horizon], fill=_choice(rng, _WALLS["indoor"]))  # pillar
        x += w


def _street(draw, rng, horizon, width, height) -> None:
    """Dark facades with lit windows, a kerb and lane markings."""
    for wx in np.arange(rng.uniform(0, 10), width, rng.uniform(14, 24)):
        for wy in np.arange(rng.uniform(2, 8), horizon - 12, rng.uniform(16, 24)):
            if rng.random() < 0.35:
                draw.rectangle([wx, wy, wx + 8, wy + 10], fill=_choice(rng, [(230, 200, 120), (200, 210, 230)]))
    draw.rectangle([0, horizon, width, horizon + 4], fill=(90, 90, 88))  # kerb
    lane = height - rng.uniform(10, 40)
    for lx in np.arange(rng.uniform(0, 20), width, 60):
        draw.rectangle([lx, lane, lx + 30, lane + 3], fill=(200, 190, 140))
