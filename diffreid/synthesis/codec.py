"""The miniature's image codec: the pretrained TAEF2 tiny autoencoder as a torch module.

TAEF2 (madebyollin, MIT) maps [0, 1] RGB images to a 32-channel latent at 1/8 of the
image size. diffusers' `AutoencoderTiny` lacks the 'pool' branch its three blocks
nearest the latent carry, so it is written out here with module indices that match the
published state dicts key for key; the files load as they are. Latents are normalised
with a shift and scale measured on person images (SD's `scaling_factor` plays this
part for its VAE) so that the diffusion model sees unit-variance inputs.

`LatentCodec` is a diffusers model (`ModelMixin`, `ConfigMixin`), so it is a component of a
diffusers pipeline (`DiffReidPipeline`'s `codec`) that `DiffusionPipeline.from_pretrained`
loads and `save_pretrained` writes; its folder keeps the published files as they are.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from diffreid.artifacts import write_json_atomic
from diffreid.errors import DiffreidError
from diffreid.training.weights import mismatch, read_state_dict

LATENT_CHANNELS = 32
DOWNSCALE = 8


class _Clamp(nn.Module):
    """Soft clamp of decoder inputs to about ±3: latents far out of range stay bounded."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class _Block(nn.Module):
    """conv-ReLU-conv-ReLU-conv plus a skip; `pooled` adds TAEF2's 1x1 'pool' branch first."""

    def __init__(self, channels: int = 64, pooled: bool = False):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        self.pool = nn.Sequential(
            nn.Conv2d(channels, 4 * channels, 1, bias=False), nn.GroupNorm(4, 4 * channels), nn.ReLU(),
            nn.Conv2d(4 * channels, channels, 1, bias=False),
        ) if pooled else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return torch.relu(self.conv(x) + x)


def taef2_encoder(channels: int = 64) -> nn.Sequential:
    """Image [0, 1] -> raw latent; three stride-2 stages, pooled blocks at the bottom."""
    layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), _Block(channels)]
    for stage in range(3):
        layers.append(nn.Conv2d(channels, channels, 3, stride=2, padding=1, bias=False))
        layers += [_Block(channels, pooled=stage == 2) for _ in range(3)]
    layers.append(nn.Conv2d(channels, LATENT_CHANNELS, 3, padding=1))
    return nn.Sequential(*layers)


def taef2_decoder(channels: int = 64) -> nn.Sequential:
    """Raw latent -> image [0, 1]; soft clamp, three nearest-neighbour x2 stages."""
    layers: list[nn.Module] = [_Clamp(), nn.Conv2d(LATENT_CHANNELS, channels, 3, padding=1), nn.ReLU()]
    for stage in range(3):
        layers += [_Block(channels, pooled=stage == 0) for _ in range(3)]
        layers += [nn.Upsample(scale_factor=2), nn.Conv2d(channels, channels, 3, padding=1, bias=False)]
    layers += [_Block(channels), nn.Conv2d(channels, 3, 3, padding=1)]
    return nn.Sequential(*layers)


class LatentCodec(ModelMixin, ConfigMixin):
    """Encode images in [0, 1] to normalised latents and back, as the diffusion model sees them."""

    config_name = "codec_config.json"

    @register_to_config
    def __init__(self, shift: float = 0.0, scale: float = 1.0):
        super().__init__()
        self.encoder = taef2_encoder()
        self.decoder = taef2_decoder()

    # the latent normalisation is measured after the codec is built (base-train): its config follows it
    shift = property(lambda self: self.config["shift"], lambda self, value: self.register_to_config(shift=float(value)))
    scale = property(lambda self: self.config["scale"], lambda self, value: self.register_to_config(scale=float(value)))

    @property
    def latent_channels(self) -> int:
        return LATENT_CHANNELS

    @property
    def downscale(self) -> int:
        return DOWNSCALE

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return (self.encoder(images) - self.shift) * self.scale

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decoder(latents / self.scale + self.shift).clamp(0, 1)

    @classmethod
    def from_taef2(cls, folder: str | Path, shift: float = 0.0, scale: float = 1.0) -> "LatentCodec":
        """Load the published `taef2_encoder.pth` / `taef2_decoder.pth` from `folder`."""
        codec = cls(shift=float(shift), scale=float(scale))
        folder = Path(folder)
        for part in ("encoder", "decoder"):
            path = folder / f"taef2_{part}.pth"
            if not path.is_file():
                raise DiffreidError(f"{path}: TAEF2 {part} weights not found; pass the folder that holds "
                                    "taef2_encoder.pth and taef2_decoder.pth")
            state = {k: v.float() for k, v in read_state_dict(path).items()}
            problems = mismatch(state, getattr(codec, part).state_dict())
            if problems:
                raise DiffreidError(f"{path}: not a TAEF2 {part} ({'; '.join(problems[:3])}); use the files "
                                    "from madebyollin/taesd")
            getattr(codec, part).load_state_dict(state)
        codec.source = folder
        return codec

    def save_pretrained(self, folder: str | Path, **_) -> None:
        """The published files and their licence, unchanged (the codec is never trained), plus
        the latent normalisation. Other keywords (those diffusers' pipeline passes) are ignored."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        source = getattr(self, "source", None)
        if source is None:
            raise DiffreidError("a codec not loaded from TAEF2 files cannot be saved; build it with "
                                "LatentCodec.from_taef2(FOLDER)")
        for name in ("taef2_encoder.pth", "taef2_decoder.pth", "LICENSE"):
            if (source / name).is_file() and (source / name).resolve() != (folder / name).resolve():
                shutil.copyfile(source / name, folder / name)
        write_json_atomic(folder / self.config_name, {"_class_name": type(self).__name__, "kind": "taef2",
                                                      "shift": self.shift, "scale": self.scale})

    @classmethod
    def from_pretrained(cls, folder: str | Path, torch_dtype: torch.dtype | None = None, **_) -> "LatentCodec":
        """A `codec/` folder; `torch_dtype` as diffusers' loaders pass it, their other keywords ignored."""
        folder = Path(folder)
        config_path = folder / cls.config_name
        if not config_path.is_file():
            raise DiffreidError(f"{config_path}: no codec config; a miniature base model's codec/ folder "
                                "holds codec_config.json beside taef2_encoder.pth and taef2_decoder.pth")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        codec = cls.from_taef2(folder, float(config["shift"]), float(config["scale"]))
        return codec.to(torch_dtype) if torch_dtype is not None else codec
