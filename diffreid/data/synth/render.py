"""One image of one identity as one camera sees it.

Everything that differs between two images of a person is drawn here from the image's
own generator: the view (weighted by the camera's usual walking direction), the pose,
where the detector's box put the person, occluders in front, and the camera's
degradations (light, blur or low resolution, noise).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from diffreid.data.synth.figure import draw_person, sample_pose
from diffreid.data.synth.identity import Identity, sample_identity
from diffreid.data.synth.scene import SUPERSAMPLE, VIEWS, Camera, camera, light
from diffreid.data.synth.styles import Style

_POLES = [(90, 90, 92), (40, 60, 40), (30, 30, 30), (170, 160, 140), (200, 200, 200)]
_OBJECTS = [(120, 80, 50), (60, 60, 64), (30, 90, 50), (150, 30, 30), (200, 200, 190), (40, 60, 120)]


def render_image(style: Style, seed: int, cam: int, person: Identity, rng: np.random.Generator) -> Image.Image:
    """Render `person` as camera `cam` sees them; all per-image choices come from `rng`."""
    view_cam = camera(style.name, seed, cam)
    height, width = style.size[0] * SUPERSAMPLE, style.size[1] * SUPERSAMPLE
    panorama = view_cam.background
    top, left = (int(rng.integers(0, n - size + 1)) for n, size in zip(panorama.shape, (height, width)))
    canvas = Image.fromarray(panorama[top:top + height, left:left + width])
    view = VIEWS[rng.choice(len(VIEWS), p=view_cam.views)]
    scale = rng.uniform(0.84, 0.98) * height
    feet = rng.uniform(0.95, 1.04) * height
    cx = width * (0.5 + rng.normal(0, 0.05))
    _shadow(canvas, cx, feet, scale)
    draw_person(canvas, person, sample_pose(rng, view), cx, feet - scale, scale, stretch=rng.uniform(1.2, 1.45),
                light=view_cam.side_light)
    if rng.random() < style.occlusion:
        _occlude(canvas, style, rng, cx, scale, view_cam.side_light)
    image = canvas.reduce(SUPERSAMPLE)
    return _degrade(image, style, view_cam, rng)


def _shadow(canvas: Image.Image, cx: float, feet: float, scale: float) -> None:
    """A soft darker patch under the feet, so people stand on the ground instead of floating."""
    box = [int(cx - 0.14 * scale), int(feet - 0.03 * scale), int(cx + 0.14 * scale), int(feet + 0.02 * scale)]
    region = canvas.crop(box)
    mask = Image.new("L", region.size, 0)
    ImageDraw.Draw(mask).ellipse([0, 0, region.size[0] - 1, region.size[1] - 1], fill=90)
    canvas.paste(Image.new("RGB", region.size, (20, 20, 20)), box[:2], mask)


def _occlude(canvas: Image.Image, style: Style, rng: np.random.Generator, cx: float, scale: float,
             side_light: float) -> None:
    """Something between the camera and the person: a pole, a passer-by, or an object in the way."""
    width, height = canvas.size
    draw = ImageDraw.Draw(canvas)
    kind = rng.choice(3, p=[0.3, 0.35, 0.35])
    if kind == 0:  # pole or pillar
        x, w = cx + rng.uniform(-0.3, 0.3) * width, rng.uniform(0.04, 0.14) * width
        draw.rectangle([x - w / 2, 0, x + w / 2, height], fill=_POLES[rng.integers(len(_POLES))])
    elif kind == 1:  # another person, partly in frame
        other = sample_identity(rng, style)
        side = 1 if rng.random() < 0.5 else -1
        size = scale * rng.uniform(0.95, 1.2)
        x = cx + side * rng.uniform(0.45, 0.7) * width
        draw_person(canvas, other, sample_pose(rng, VIEWS[rng.integers(len(VIEWS))]), x,
                    height - size * rng.uniform(0.95, 1.02), size, light=side_light)
    else:  # a bin, bench or car bonnet: a block in front of the legs
        top = height * rng.uniform(0.62, 0.85)
        left, right = sorted(rng.uniform(-0.2, 1.2, 2) * width)
        right = max(right, left + 0.3 * width)
        colour = _OBJECTS[rng.integers(len(_OBJECTS))]
        draw.rounded_rectangle([left, top, right, height + 10], radius=int(0.05 * width), fill=colour)
        draw.rectangle([left, top, right, top + 0.02 * height], fill=tuple(int(c * 0.7) for c in colour))


def _degrade(image: Image.Image, style: Style, view_cam: Camera, rng: np.random.Generator) -> Image.Image:
    """Camera light, then blur or low resolution, then sensor noise."""
    image = light(view_cam, image, rng)
    if rng.random() < style.blur:
        if rng.random() < 0.5:
            image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.4)))
        else:
            factor = rng.uniform(0.35, 0.6)
            small = (max(8, int(image.width * factor)), max(8, int(image.height * factor)))
            image = image.resize(small, Image.BILINEAR).resize(image.size, Image.BILINEAR)
    # uniform noise from random bytes: as good as Gaussian to the eye, and several times cheaper to draw
    raw = rng.integers(0, 256, (image.height, image.width, 4), dtype=np.uint8).astype(np.float32) - 127.5
    noise = (raw[..., 3:] + 0.5 * raw[..., :3]) * (style.noise / 73.9)  # 73.9: the std of uniform bytes
    return Image.fromarray(np.clip(np.asarray(image, np.float32) + noise, 0, 255).astype(np.uint8))
