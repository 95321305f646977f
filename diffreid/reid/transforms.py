"""Re-ID augmentations on torchvision's transforms v2: resize, flip, pad and crop, random erasing.

Random erasing runs after normalisation with value 0, i.e. the ImageNet mean pixel, as
BoT erases.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from diffreid.reid.onnx_model import IMAGENET_MEAN, IMAGENET_STD


def train_transform(size: tuple[int, int], flip: float = 0.5, pad: int = 10, erasing: float = 0.5) -> v2.Compose:
    """uint8 C×H×W image → augmented, normalised float tensor of `size` (height, width)."""
    steps = [v2.Resize(tuple(size), antialias=True), v2.RandomHorizontalFlip(flip)]
    if pad > 0:
        steps += [v2.Pad(pad), v2.RandomCrop(tuple(size))]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if erasing > 0:
        steps.append(v2.RandomErasing(p=erasing, value=0))
    return v2.Compose(steps)

