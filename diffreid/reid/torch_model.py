"""PyTorch Re-ID models as feature extractors: what `diffreid evaluate` runs on weight files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from diffreid.reid.backbones import create_backbone, match_backbone
from diffreid.reid.onnx_model import IMAGENET_MEAN, IMAGENET_STD
from diffreid.runtime import default_device
from diffreid.training.weights import read_state_dict

DEFAULT_INPUT_SIZE = (256, 128)


class TorchReidModel:
    """A module mapping normalised N×3×H×W images to N×D features, called on uint8 images.

    `flip=True` averages the features of each image and its mirror, a common test-time
    gain since a person seen mirrored is the same person.
    """

    def __init__(self, module: nn.Module, input_size: tuple[int, int] = DEFAULT_INPUT_SIZE,
                 device: str | torch.device | None = None, flip: bool = False):
        self.device = torch.device(device) if device else default_device()
        self.module = module.to(self.device).eval()
        self.input_size = tuple(input_size)
        self.flip = flip
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    def normalise(self, images: np.ndarray) -> torch.Tensor:
        """uint8 N×H×W×3 RGB → ImageNet-normalised float N×3×H×W on the model's device."""
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).permute(0, 3, 1, 2).float()
        return (x / 255.0 - self.mean) / self.std

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Features of float N×3×H×W RGB images in [0, 1] at any size, resized here; differentiable, so a
        sampler can follow their gradient (identity guidance)."""
        x = F.interpolate(images.to(self.mean), size=self.input_size, mode="bilinear", align_corners=False)
        return self.features((x - self.mean) / self.std)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The module on normalised images, averaged with their mirrors when `flip`."""
        features = self.module(x)
        return (features + self.module(x.flip(3))) / 2 if self.flip else features

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Features of a batch of uint8 N×H×W×3 RGB images at `input_size`."""
        with torch.inference_mode():
            return self.features(self.normalise(images)).float().cpu().numpy()


def load_torch_reid_model(path: str | Path, input_size: tuple[int, int] | None = None,
                          device: str | torch.device | None = None) -> TorchReidModel:
    """A Re-ID model from a state dict (.pth, .pt, .safetensors) of a registered backbone.

    The architecture is recognised from the key names and shapes, e.g. a torchreid OSNet
    of any width; a classifier in the file is ignored.
    """
    name = match_backbone(read_state_dict(path), path)
    return TorchReidModel(create_backbone(name, pretrained=path), input_size or DEFAULT_INPUT_SIZE, device)
