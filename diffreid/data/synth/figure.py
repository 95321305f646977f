"""Drawing one person: a jointed 2-D figure, clothed from the identity's attributes.

Coordinates are in units of body height: y runs from 0 at the top of the head to 1 at
the soles, x from the body's centre line. Front and back views draw the figure face on
(the person's left is on the image's right from the front, on its left from the back);
side views draw it facing +x and mirror x for people walking left. What a view shows
follows the body: a backpack is a pack from behind but only straps from the front, a
logo is on the chest, a shoulder bag hangs on one hip and hides behind the body when
that hip faces away.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import cos, pi, sin

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from diffreid.data.synth.identity import Identity

Point = tuple[float, float]


@dataclass(frozen=True)
class Pose:
    """Where a person is in their stride and which side the camera sees."""

    view: str  # "front", "back", "left" (walking left) or "right"
    phase: float  # gait phase in radians
    stride: float  # 0 standing still .. 1 long strides
    arm_spread: float  # how far the arms hang away from the body


def sample_pose(rng: np.random.Generator, view: str) -> Pose:
    stride = 0.0 if rng.random() < 0.12 else float(rng.uniform(0.4, 1.0))
    return Pose(view, float(rng.uniform(0, 2 * pi)), stride, float(rng.uniform(0.0, 0.02)))


class _Pen:
    """Maps figure coordinates to pixels and draws filled shapes."""

    def __init__(self, image: Image.Image, cx: float, top: float, height: float, mirror: float):
        self.image, self.draw = image, ImageDraw.Draw(image)
        self.cx, self.top, self.h, self.mirror = cx, top, height, mirror

    def px(self, p: Point) -> Point:
        return self.cx + self.mirror * p[0] * self.h, self.top + p[1] * self.h

    def polygon(self, points: list[Point], fill) -> None:
        self.draw.polygon([self.px(p) for p in points], fill=fill)

    def ellipse(self, centre: Point, rx: float, ry: float, fill) -> None:
        x, y = self.px(centre)
        rx *= abs(self.mirror)
        self.draw.ellipse([x - rx * self.h, y - ry * self.h, x + rx * self.h, y + ry * self.h], fill=fill)

    def chord(self, centre: Point, rx: float, ry: float, start: float, end: float, fill) -> None:
        x, y = self.px(centre)
        rx *= abs(self.mirror)
        if self.mirror < 0:
            start, end = 180 - end, 180 - start
        self.draw.chord([x - rx * self.h, y - ry * self.h, x + rx * self.h, y + ry * self.h], start, end, fill=fill)

    def limb(self, a: Point, b: Point, wa: float, wb: float, fill) -> None:
        """A tapered segment with rounded ends, from width wa at a to wb at b."""
        dx, dy = b[0] - a[0], b[1] - a[1]
        norm = max((dx * dx + dy * dy) ** 0.5, 1e-6)
        nx, ny = -dy / norm / 2, dx / norm / 2
        self.polygon([(a[0] + nx * wa, a[1] + ny * wa), (b[0] + nx * wb, b[1] + ny * wb),
                      (b[0] - nx * wb, b[1] - ny * wb), (a[0] - nx * wa, a[1] - ny * wa)], fill)
        self.ellipse(a, wa / 2, wa / 2, fill)
        self.ellipse(b, wb / 2, wb / 2, fill)

    def mask(self, draw_shape) -> Image.Image:
        """A mask of what `draw_shape(pen)` paints, for clipping patterns to a garment."""
        mask = Image.new("L", self.image.size, 0)
        pen = _Pen(mask, self.cx, self.top, self.h, self.mirror)
        draw_shape(pen, 255)
        return mask


def _lerp(a: Point, b: Point, t: float) -> Point:
    return a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t


def _darker(rgb, factor: float = 0.7):
    return tuple(int(v * factor) for v in rgb)


@dataclass
class _Skeleton:
    legs: list[tuple[Point, Point, Point]]  # (hip, knee, ankle), far leg first in side views
    arms: list[tuple[Point, Point, Point]]  # (shoulder, elbow, wrist), same order; front/back: image left first


def _side_skeleton(pose: Pose) -> _Skeleton:
    legs, arms = [], []
    for phase in (pose.phase + pi, pose.phase):  # far limb, then near limb
        swing = pose.stride * 0.42 * sin(phase)
        bend = pose.stride * 0.7 * max(0.0, cos(phase)) + 0.05
        hip = (0.0, 0.5)
        knee = (hip[0] + 0.23 * sin(swing), hip[1] + 0.23 * cos(swing))
        ankle = (knee[0] + 0.225 * sin(swing - bend), knee[1] + 0.225 * cos(swing - bend))
        legs.append((hip, knee, ankle))
        arm = -swing * 0.8
        shoulder = (0.0, 0.19)
        elbow = (shoulder[0] + 0.16 * sin(arm), shoulder[1] + 0.16 * cos(arm))
        fore = arm + 0.2 + 0.3 * pose.stride
        arms.append((shoulder, elbow, (elbow[0] + 0.15 * sin(fore), elbow[1] + 0.15 * cos(fore))))
    drop = 0.955 - max(leg[2][1] for leg in legs)  # plant the lower foot on the ground
    return _Skeleton([_lower(leg, drop) for leg in legs], [_lower(arm, drop) for arm in arms])


def _lower(points: tuple[Point, ...], dy: float) -> tuple[Point, ...]:
    return tuple((x, y + dy) for x, y in points)


def _face_on_skeleton(pose: Pose, width: float) -> _Skeleton:
    legs, arms = [], []
    for side, phase in ((-1, pose.phase), (1, pose.phase + pi)):
        lift = pose.stride * 0.035 * max(0.0, sin(phase))  # a leg swinging towards the camera foreshortens
        hip, ankle = (side * 0.045 * width, 0.5), (side * 0.05 * width, 0.955 - lift)
        legs.append((hip, _lerp(hip, ankle, 0.5), ankle))
        short = pose.stride * 0.03 * abs(sin(phase))
        shoulder = (side * 0.092 * width, 0.19)
        elbow = (side * (0.11 * width + pose.arm_spread), 0.35 - short)
        arms.append((shoulder, elbow, (side * (0.115 * width + 1.5 * pose.arm_spread), 0.49 - 2 * short)))
    return _Skeleton(legs, arms)


def draw_person(image: Image.Image, person: Identity, pose: Pose, cx: float, top: float, height: float,
                stretch: float = 1.0, light: float = 0.0) -> None:
    """Draw `person` in `pose` onto `image`: centre line at x=cx, head top at y=top, `height` pixels tall.

    `stretch` widens the figure, as resizing a detector's box to a fixed aspect does;
    `light` (-1..1) is how much brighter the image's right side of the body is than its left.
    """
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    pen = _Pen(layer, cx, top, height, -stretch if pose.view == "left" else stretch)
    if pose.view in ("left", "right"):
        _draw_side(pen, person, pose)
    else:
        _draw_face_on(pen, person, pose)
    _shade_onto(image, layer, cx, height * stretch, light)


def _shade_onto(image: Image.Image, layer: Image.Image, cx: float, size: float, light: float) -> None:
    """Composite the flat-coloured figure with rounded shading: darker at its outline, lit from one side.

    Flat fills are what no camera sees; shading spreads each garment over a range of
    brightness, as cloth in light does.
    """
    box = layer.getbbox()
    if box is None:
        return
    layer = layer.crop(box)
    alpha = layer.getchannel("A")
    soft = np.asarray(alpha.filter(ImageFilter.BoxBlur(max(1, int(0.025 * size)))), np.float32) / 255
    x = (np.arange(box[0], box[2], dtype=np.float32) - cx) / (0.15 * size)
    shade = (0.72 + 0.28 * soft) * (0.88 + 0.12 * light * np.clip(x, -1, 1))[None, :]
    shade_image = Image.fromarray((255 * shade).astype(np.uint8)).convert("RGB")
    image.paste(ImageChops.multiply(layer.convert("RGB"), shade_image), box[:2], alpha)


# ---- face-on views -------------------------------------------------------------------------

def _draw_face_on(pen: _Pen, p: Identity, pose: Pose) -> None:
    front = pose.view == "front"
    w = p.width
    sk = _face_on_skeleton(pose, w)
    # x sign of the person's left side in the image
    left = 1 if front else -1
    bag_x = left if p.bag_side == "left" else -left
    if front and p.bag == "backpack":  # the pack itself peeks out above the shoulders
        pen.polygon([(-0.07 * w, 0.16), (0.07 * w, 0.16), (0.06 * w, 0.2), (-0.06 * w, 0.2)], p.rgb["bag"])
    if p.hair == "long" and front:
        pen.polygon([(-0.06, 0.05), (0.06, 0.05), (0.075, 0.27), (-0.075, 0.27)], p.rgb["hair"])
    for hip, knee, ankle in sk.legs:
        _leg(pen, p, hip, knee, ankle, side_view=False)
    _lower_garment(pen, p, front_view=True)
    pen.polygon([(-0.022, 0.11), (0.022, 0.11), (0.024, 0.165), (-0.024, 0.165)], p.rgb["skin"])  # neck
    _torso(pen, p, _face_on_torso(p), front_view=front)
    if p.bag == "backpack":
        if front:
            for s in (-1, 1):
                pen.limb((s * 0.06 * w, 0.165), (s * 0.065 * w, 0.38), 0.02, 0.02, _darker(p.rgb["bag"], 0.85))
        else:
            bag = p.rgb["bag"]
            pen.polygon([(-0.08 * w, 0.2), (0.08 * w, 0.2), (0.085 * w, 0.44), (-0.085 * w, 0.44)], bag)
            pen.polygon([(-0.07 * w, 0.2), (0.07 * w, 0.2), (0.075 * w, 0.28), (-0.075 * w, 0.28)], _darker(bag))
            pen.polygon([(-0.05 * w, 0.34), (0.05 * w, 0.34), (0.05 * w, 0.42), (-0.05 * w, 0.42)], _darker(bag, 0.85))
    if p.bag == "shoulder bag":
        strap = _darker(p.rgb["bag"], 0.8)
        pen.limb((-bag_x * 0.07 * w, 0.17), (bag_x * 0.09 * w, 0.44), 0.014, 0.014, strap)
        pen.polygon([(bag_x * 0.07 * w, 0.42), (bag_x * 0.17 * w, 0.42), (bag_x * 0.17 * w, 0.54),
                     (bag_x * 0.07 * w, 0.54)], p.rgb["bag"])
    for arm in sk.arms:
        _arm(pen, p, *arm)
    if p.bag == "handbag":
        _handbag(pen, p, sk.arms[1 if bag_x > 0 else 0][2])
    _head_face_on(pen, p, front)


def _face_on_torso(p: Identity) -> list[Point]:
    w = p.width
    hem, hem_w = (0.68, 0.115) if p.upper == "coat" else (0.53, 0.09)
    half = [(0.03, 0.145), (0.098 * w, 0.165), (0.108 * w, 0.2), (0.094 * w, 0.28), (0.082 * w, 0.42),
            (hem_w * w, hem)]
    return half + [(-x, y) for x, y in reversed(half)]


def _head_face_on(pen: _Pen, p: Identity, front: bool) -> None:
    hair, skin = p.rgb["hair"], p.rgb["skin"]
    head = (0.0, 0.068)
    if p.hair == "bald":
        pen.ellipse(head, 0.05, 0.064, skin)
    elif front:
        pen.ellipse((0.0, 0.062), 0.054, 0.064, hair)
        pen.ellipse((0.0, 0.078), 0.044, 0.052, skin)
        for s in (-1, 1):
            pen.ellipse((s * 0.017, 0.074), 0.006, 0.005, (40, 30, 30))
    else:
        pen.ellipse(head, 0.052, 0.066, hair)
        if p.hair == "long":
            pen.polygon([(-0.055, 0.07), (0.055, 0.07), (0.07, 0.27), (-0.07, 0.27)], hair)
        if p.hair == "ponytail":
            pen.limb((0.0, 0.09), (0.0, 0.22), 0.03, 0.018, hair)
    _hat(pen, p, brim_front=front, side=False)


# ---- side views (drawn facing +x) ---------------------------------------------------------------

def _draw_side(pen: _Pen, p: Identity, pose: Pose) -> None:
    sk = _side_skeleton(pose)
    near = "left" if pose.view == "right" else "right"  # walking right shows the person's left side
    bag_near = p.bag_side == near
    far_arm, near_arm = sk.arms
    far_leg, near_leg = sk.legs
    if p.bag == "shoulder bag" and not bag_near:
        pen.polygon([(-0.07, 0.42), (0.03, 0.42), (0.03, 0.54), (-0.07, 0.54)], _darker(p.rgb["bag"], 0.8))
    _arm(pen, p, *far_arm, shade=0.8)
    if p.bag == "handbag" and not bag_near:
        _handbag(pen, p, far_arm[2], shade=0.8)
    _leg(pen, p, *far_leg, side_view=True, shade=0.82)
    _leg(pen, p, *near_leg, side_view=True)
    _lower_garment(pen, p, front_view=False)
    pen.polygon([(-0.02, 0.11), (0.025, 0.11), (0.03, 0.16), (-0.025, 0.16)], p.rgb["skin"])  # neck
    _torso(pen, p, _side_torso(p), front_view=False)
    if p.hair == "long":
        pen.polygon([(-0.05, 0.05), (0.0, 0.05), (-0.02, 0.26), (-0.07, 0.25)], p.rgb["hair"])
    if p.bag == "backpack":
        bag = p.rgb["bag"]
        pen.polygon([(-0.06, 0.2), (-0.14, 0.22), (-0.145, 0.42), (-0.06, 0.44)], bag)
        pen.polygon([(-0.14, 0.26), (-0.165, 0.28), (-0.165, 0.4), (-0.145, 0.41)], _darker(bag))
        pen.limb((-0.02, 0.17), (0.03, 0.36), 0.018, 0.018, _darker(bag, 0.85))
    if p.bag == "shoulder bag" and bag_near:
        pen.limb((-0.01, 0.17), (0.045, 0.42), 0.014, 0.014, _darker(p.rgb["bag"], 0.8))
        pen.polygon([(-0.06, 0.41), (0.05, 0.41), (0.055, 0.55), (-0.065, 0.55)], p.rgb["bag"])
    _head_side(pen, p)
    _arm(pen, p, *near_arm)
    if p.bag == "handbag" and bag_near:
        _handbag(pen, p, near_arm[2])


def _side_torso(p: Identity) -> list[Point]:
    d = 0.5 + 0.5 * p.width  # depth grows less than width with build
    hem = 0.68 if p.upper == "coat" else 0.53
    flare = 0.02 if p.upper == "coat" else 0.0
    return [(0.025 * d, 0.145), (0.065 * d, 0.2), (0.07 * d, 0.3), (0.062 * d, 0.42), ((0.062 + flare) * d, hem),
            ((-0.062 - flare) * d, hem), (-0.058 * d, 0.42), (-0.068 * d, 0.22), (-0.035 * d, 0.145)]


def _head_side(pen: _Pen, p: Identity) -> None:
    hair, skin = p.rgb["hair"], p.rgb["skin"]
    pen.ellipse((0.006, 0.07), 0.05, 0.064, skin)
    pen.polygon([(0.045, 0.07), (0.062, 0.085), (0.045, 0.092)], skin)  # nose
    if p.hair != "bald":
        pen.chord((-0.004, 0.066), 0.052, 0.064, 100, 330, hair)
        if p.hair == "ponytail":
            pen.limb((-0.05, 0.06), (-0.08, 0.16), 0.028, 0.016, hair)
    pen.ellipse((0.03, 0.072), 0.005, 0.005, (40, 30, 30))  # eye
    _hat(pen, p, brim_front=True, side=True)


# ---- parts shared by all views ------------------------------------------------------------------

def _leg(pen: _Pen, p: Identity, hip: Point, knee: Point, ankle: Point, side_view: bool, shade: float = 1.0) -> None:
    w = p.width
    skin = _darker(p.rgb["skin"], shade)
    cloth = _darker(p.rgb["lower"], shade)
    thigh, calf, foot_w = 0.068 * w, 0.05 * w, 0.036 * w
    if p.lower == "trousers":
        pen.limb(hip, knee, thigh, calf * 1.05, cloth)
        pen.limb(knee, ankle, calf * 1.05, foot_w * 1.15, cloth)
    else:
        pen.limb(hip, knee, thigh * 0.9, calf * 0.85, skin)
        pen.limb(knee, ankle, calf * 0.85, foot_w * 0.8, skin)
        if p.lower == "shorts":
            pen.limb(hip, _lerp(hip, knee, 0.6), thigh * 1.05, thigh, cloth)
    shoe = _darker(p.rgb["shoe"], shade)
    if p.shoes == "boots":
        pen.limb(_lerp(knee, ankle, 0.55), ankle, foot_w * 1.2, foot_w * 1.25, shoe)
    if side_view:
        pen.ellipse((ankle[0] + 0.028, ankle[1] + 0.018), 0.045, 0.022, shoe)
    else:
        pen.ellipse((ankle[0], ankle[1] + 0.02), 0.03, 0.024, shoe)


def _lower_garment(pen: _Pen, p: Identity, front_view: bool) -> None:
    """Hips, and a skirt's flare over the legs."""
    w = p.width
    half = 0.09 * w if front_view else 0.065
    if p.lower == "skirt":
        flare = 0.14 * w if front_view else 0.11
        pen.polygon([(-half, 0.45), (half, 0.45), (flare, 0.68), (-flare, 0.68)], p.rgb["lower"])
    else:
        pen.polygon([(-half, 0.45), (half, 0.45), (half, 0.56), (-half, 0.56)], p.rgb["lower"])


def _torso(pen: _Pen, p: Identity, outline: list[Point], front_view: bool) -> None:
    pen.polygon(outline, p.rgb["upper"])
    if p.pattern_colour is not None and (p.pattern != "logo on the front" or front_view):
        mask = pen.mask(lambda q, fill: q.polygon(outline, fill))
        pen.image.paste(_pattern(pen, p), mask=mask)
    if p.upper in ("jacket", "coat") and front_view:
        pen.limb((0.0, 0.16), (0.0, 0.68 if p.upper == "coat" else 0.52), 0.008, 0.008, _darker(p.rgb["upper"], 0.6))
        for s in (-1, 1):
            pen.polygon([(s * 0.03, 0.145), (s * 0.005, 0.2), (s * 0.05, 0.17)], _darker(p.rgb["upper"], 0.8))


def _pattern(pen: _Pen, p: Identity) -> Image.Image:
    """The garment's pattern over the whole image, in figure units so it scales with the person."""
    width, height = pen.image.size
    y = (np.arange(height)[:, None] - pen.top) / pen.h
    x = (np.arange(width)[None, :] - pen.cx) / (pen.h * abs(pen.mirror))
    if p.pattern == "horizontal stripes":
        on = (y // 0.035) % 2 == 0
        on = np.broadcast_to(on, (height, width))
    elif p.pattern == "vertical stripes":
        on = np.broadcast_to((x // 0.03) % 2 == 0, (height, width))
    elif p.pattern == "checked":
        on = (x % 0.04 < 0.012) | (y % 0.04 < 0.012)
    else:  # logo on the front: a badge on the chest
        on = ((x / 0.045) ** 2 + ((y - 0.27) / 0.05) ** 2) < 1
    base = np.asarray(p.rgb["upper"], np.uint8)
    stripe = np.asarray(p.rgb["pattern"], np.uint8)
    return Image.fromarray(np.where(on[..., None], stripe, base).astype(np.uint8))


def _arm(pen: _Pen, p: Identity, shoulder: Point, elbow: Point, wrist: Point, shade: float = 1.0) -> None:
    cloth = _darker(p.rgb["upper"], shade)
    skin = _darker(p.rgb["skin"], shade)
    upper_w, fore_w = 0.046 * p.width, 0.036 * p.width
    if p.upper == "t-shirt":
        pen.limb(shoulder, elbow, upper_w * 0.85, fore_w, skin)
        pen.limb(elbow, wrist, fore_w, fore_w * 0.85, skin)
        pen.limb(shoulder, _lerp(shoulder, elbow, 0.55), upper_w * 1.1, upper_w, cloth)
    else:
        pen.limb(shoulder, elbow, upper_w, fore_w * 1.05, cloth)
        pen.limb(elbow, wrist, fore_w * 1.05, fore_w * 0.95, cloth)
    pen.ellipse(_lerp(elbow, wrist, 1.12), 0.019, 0.021, skin)


def _handbag(pen: _Pen, p: Identity, wrist: Point, shade: float = 1.0) -> None:
    bag = _darker(p.rgb["bag"], shade)
    x, y = wrist
    pen.limb((x - 0.02, y + 0.03), (x, y), 0.008, 0.008, _darker(bag, 0.7))
    pen.polygon([(x - 0.045, y + 0.03), (x + 0.045, y + 0.03), (x + 0.055, y + 0.12), (x - 0.055, y + 0.12)], bag)


def _hat(pen: _Pen, p: Identity, brim_front: bool, side: bool) -> None:
    if p.hat == "none":
        return
    hat = p.rgb["hat"]
    pen.chord((0.0, 0.062), 0.056, 0.06, 180, 360, hat)
    if p.hat == "beanie":
        pen.polygon([(-0.056, 0.055), (0.056, 0.055), (0.056, 0.068), (-0.056, 0.068)], _darker(hat, 0.85))
    elif side:
        pen.polygon([(0.02, 0.055), (0.1, 0.06), (0.1, 0.068), (0.02, 0.068)], _darker(hat, 0.8))
    elif brim_front:
        pen.ellipse((0.0, 0.06), 0.062, 0.014, _darker(hat, 0.8))
