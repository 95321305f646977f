"""The base text-to-image model: Stable Diffusion v1.x, or the miniature of the same shape.

Both are an image codec (SD's VAE, or the pretrained TAEF2 autoencoder), a CLIP
tokenizer and text encoder, a `UNet2DConditionModel` and a noise scheduler, loaded from
one folder laid out as diffusers pipelines are (`unet/`, `text_encoder/`, `tokenizer/`,
`scheduler/`, and `vae/` or `codec/`). Everything downstream (fine-tuning, the
attribute reference set, sampling) sees only `BaseModel`, so a real SD checkpoint and
the CPU miniature run the same code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from diffreid.artifacts import write_json_atomic
from diffreid.config import BaseTrainConfig
from diffreid.errors import DiffreidError
from diffreid.synthesis.codec import LatentCodec
from diffreid.synthesis.reference_tokens import ReferenceTokens

MINIATURE = Path(__file__).resolve().parent / "miniature"
MAX_TOKENS = 77  # SD v1's CLIP context


class VaeCodec(nn.Module):
    """SD's `AutoencoderKL` behind the codec interface: images in [0, 1], scaled latents."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    @property
    def latent_channels(self) -> int:
        return self.vae.config.latent_channels

    @property
    def downscale(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(images * 2 - 1).latent_dist.sample() * self.vae.config.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return ((self.vae.decode(latents / self.vae.config.scaling_factor).sample + 1) / 2).clamp(0, 1)


@dataclass
class BaseModel:
    codec: nn.Module  # LatentCodec or VaeCodec
    tokenizer: object  # transformers.CLIPTokenizer
    text_encoder: nn.Module  # transformers.CLIPTextModel
    unet: nn.Module  # diffusers.UNet2DConditionModel
    noise_scheduler: object  # diffusers.DDPMScheduler: the training noise schedule
    image_size: tuple[int, int]  # (height, width) it draws at
    kind: str  # "miniature" or "stable-diffusion"
    caption_words: set[str] | None = None  # every word of its training captions, where base-train recorded them
    reference_tokens: nn.Module | None = None  # ReferenceTokens: a reference read as cross-attention tokens

    @property
    def takes_reference(self) -> bool:
        """Its UNet reads a reference image (the image-level IIR): its latents beside the noisy ones,
        or its tokens beside the text's."""
        return self.reference_channels or self.reference_tokens is not None

    @property
    def reference_channels(self) -> bool:
        """The reference's latents join the UNet's input as channels."""
        return self.unet.config.in_channels == 2 * self.codec.latent_channels

    @property
    def latent_size(self) -> tuple[int, int]:
        return self.image_size[0] // self.codec.downscale, self.image_size[1] // self.codec.downscale

    def tokenize(self, prompts: list[str]) -> torch.Tensor:
        return self.tokenizer(prompts, padding="max_length", truncation=True, max_length=MAX_TOKENS,
                              return_tensors="pt").input_ids

    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """Per-token text embeddings, the UNet's cross-attention context."""
        ids = self.tokenize(prompts).to(self.text_encoder.device)
        return self.text_encoder(ids).last_hidden_state

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "BaseModel":
        for module in self.modules():
            module.to(device=device, dtype=dtype)
        return self

    def modules(self) -> list[nn.Module]:
        return [self.codec, self.text_encoder, self.unet] + [m for m in (self.reference_tokens,) if m is not None]

    def save_pretrained(self, folder: str | Path) -> Path:
        """A folder `load_base_model` reads back and diffusers' `DiffusionPipeline.from_pretrained` loads
        (as a `DiffReidPipeline`, or a `StableDiffusionPipeline` for SD); UNet and text encoder as safetensors."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.unet.save_pretrained(folder / "unet")
        self.text_encoder.save_pretrained(folder / "text_encoder")
        self.tokenizer.save_pretrained(folder / "tokenizer")
        self.noise_scheduler.save_pretrained(folder / "scheduler")
        if self.kind == "miniature":
            self.codec.save_pretrained(folder / "codec")
        else:
            self.codec.vae.save_pretrained(folder / "vae")
        if self.reference_tokens is not None:
            self.reference_tokens.save_pretrained(folder / "reference_tokens")
        if self.caption_words is not None:
            write_json_atomic(folder / CAPTION_WORDS, sorted(self.caption_words))
        write_json_atomic(folder / "model_index.json", model_index(self))
        return folder


CAPTION_WORDS = "caption_words.json"
SD_IMAGE_SIZE = (512, 256)  # SD v1 draws at 512; persons are twice as tall as wide


def model_index(model: BaseModel, **extra) -> dict:
    """The folder's `model_index.json` as diffusers' pipelines write it: each component as [library,
    class] (the codec by its module path, which diffusers resolves once diffreid is imported). The
    miniature's is `DiffReidPipeline`'s, its image size a pipeline setting; SD's is
    `StableDiffusionPipeline`'s, the image size kept under an underscore key diffusers skips.
    `extra`: more underscore keys (provenance)."""
    import diffusers

    def entry(module) -> list[str]:
        kind = type(module)
        library = kind.__module__.split(".")[0]
        return [library if library in ("diffusers", "transformers") else kind.__module__, kind.__name__]

    index = {"_diffusers_version": diffusers.__version__, "unet": entry(model.unet),
             "text_encoder": entry(model.text_encoder), "tokenizer": entry(model.tokenizer),
             "scheduler": entry(model.noise_scheduler)}
    if model.kind == "miniature":
        index |= {"_class_name": "DiffReidPipeline", "codec": entry(model.codec), "image_size": list(model.image_size)}
        if model.reference_tokens is not None:
            index["reference_tokens"] = entry(model.reference_tokens)
    else:
        index |= {"_class_name": "StableDiffusionPipeline", "vae": entry(model.codec.vae),
                  "safety_checker": [None, None], "feature_extractor": [None, None], "image_encoder": [None, None],
                  "requires_safety_checker": False, "_image_size": list(model.image_size)}
    return dict(sorted((index | extra).items()))


def load_base_model(source: str | Path = "tiny", image_size: tuple[int, int] | None = None) -> BaseModel:
    """"tiny" (the miniature shipped in the package), a model folder, or a hub id of SD v1.x."""
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    folder = MINIATURE if str(source) == "tiny" else Path(str(source)).expanduser()
    local = folder.is_dir()
    if str(source) == "tiny" and not (folder / "unet").is_dir():
        raise DiffreidError(f"{folder}: the miniature's trained UNet and text encoder are not installed; "
                            "train one with `diffreid base-train` and pass its folder as --base-model")
    if not local and (Path(str(source)).is_absolute() or str(source).startswith(".")):
        raise DiffreidError(f"{source}: no such base-model folder; pass a folder holding unet/, text_encoder/, "
                            "tokenizer/, scheduler/ and vae/ or codec/, or a hub id such as CompVis/stable-diffusion-v1-4")
    index = _model_index(folder) if local else {}
    is_miniature = local and (folder / "codec").is_dir()
    try:
        tokenizer = CLIPTokenizer.from_pretrained(str(source) if not local else folder, subfolder="tokenizer",
                                                  model_max_length=MAX_TOKENS)
        text_encoder = CLIPTextModel.from_pretrained(str(source) if not local else folder, subfolder="text_encoder")
        unet = UNet2DConditionModel.from_pretrained(str(source) if not local else folder, subfolder="unet")
        noise_scheduler = DDPMScheduler.from_pretrained(str(source) if not local else folder, subfolder="scheduler")
        if is_miniature:
            codec = LatentCodec.from_pretrained(folder / "codec")
        else:
            from diffusers import AutoencoderKL

            codec = VaeCodec(AutoencoderKL.from_pretrained(str(source) if not local else folder, subfolder="vae"))
    except (OSError, ValueError) as error:
        raise DiffreidError(f"{source}: cannot load a base model ({str(error).splitlines()[0]}); pass a local "
                            "folder laid out as a diffusers pipeline, or a hub id when the hub can be reached") from None
    # "image_size": the miniature's pipeline setting (and every folder written before diffusers could load them)
    size = image_size or tuple(index.get("image_size") or index.get("_image_size") or SD_IMAGE_SIZE)
    words = folder / CAPTION_WORDS
    model = BaseModel(codec, tokenizer, text_encoder, unet, noise_scheduler, (int(size[0]), int(size[1])),
                      "miniature" if is_miniature else "stable-diffusion",
                      set(json.loads(words.read_text(encoding="utf-8"))) if local and words.is_file() else None,
                      ReferenceTokens.from_pretrained(folder / "reference_tokens")
                      if local and (folder / "reference_tokens").is_dir() else None)
    for module in model.modules():
        module.eval()
        if is_miniature:  # shipped in half precision to stay small; a CPU computes in float32
            module.float()
    return model


def _model_index(folder: Path) -> dict:
    path = folder / "model_index.json"
    if not path.is_file():
        raise DiffreidError(f"{path}: missing; a base-model folder has a model_index.json beside unet/ and "
                            "text_encoder/ (diffusers' `save_pretrained` writes one)")
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class MiniatureShape:
    """The miniature's UNet and text encoder sizes: SD v1's structure, scaled to a CPU (the sizes
    base-train sets, by default those of its config)."""

    image_size: tuple[int, int] = BaseTrainConfig.image_size
    unet_channels: tuple[int, ...] = BaseTrainConfig.unet_channels
    layers_per_block: int = BaseTrainConfig.layers_per_block
    attention_head_dim: int = 32
    text_hidden: int = BaseTrainConfig.text_hidden
    text_layers: int = BaseTrainConfig.text_layers
    text_heads: int = 3


def new_miniature(shape: MiniatureShape = MiniatureShape(), codec_folder: str | Path | None = None,
                  tokenizer_folder: str | Path | None = None, seed: int = 0, reference: bool = False,
                  reference_tokens: int = 0) -> BaseModel:
    """An untrained miniature: pretrained codec and tokenizer, randomly initialised UNet and text
    encoder; with `reference`, a UNet that also reads a reference image: its latents as input
    channels, or, given `reference_tokens` K > 0, K tokens its cross-attention reads."""
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    tokenizer = CLIPTokenizer.from_pretrained(Path(tokenizer_folder or MINIATURE / "tokenizer"),
                                              model_max_length=MAX_TOKENS)
    codec = LatentCodec.from_taef2(codec_folder or MINIATURE / "codec")
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=shape.text_hidden, intermediate_size=4 * shape.text_hidden,
        num_hidden_layers=shape.text_layers, num_attention_heads=shape.text_heads,
        max_position_embeddings=MAX_TOKENS, projection_dim=shape.text_hidden,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id))
    depth = len(shape.unet_channels)
    unet = UNet2DConditionModel(
        sample_size=(shape.image_size[0] // codec.downscale, shape.image_size[1] // codec.downscale),
        in_channels=codec.latent_channels * (2 if reference and not reference_tokens else 1),
        out_channels=codec.latent_channels,
        block_out_channels=shape.unet_channels, layers_per_block=shape.layers_per_block,
        # attention only below the top level, where a 16x8 latent is already coarse
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (depth - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (depth - 1) + ("UpBlock2D",),
        cross_attention_dim=shape.text_hidden, attention_head_dim=shape.attention_head_dim)
    # SD v1's schedule, predicting v (stable at the low-noise end a small model struggles with)
    noise_scheduler = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                    beta_schedule="scaled_linear", prediction_type="v_prediction",
                                    clip_sample=False)
    model = BaseModel(codec, tokenizer, text_encoder, unet, noise_scheduler, tuple(shape.image_size), "miniature")
    if reference and reference_tokens:
        model.reference_tokens = new_reference_tokens(model, reference_tokens)
    return model


def new_reference_tokens(model: BaseModel, tokens: int) -> ReferenceTokens:
    """A reference reader sized for the model's latents and its UNet's cross-attention."""
    return ReferenceTokens(latent_channels=model.codec.latent_channels, latent_size=model.latent_size, tokens=tokens,
                           cross_attention_dim=model.unet.config.cross_attention_dim)


def with_reference_input(unet):
    """The same UNet taking a reference latent as extra input channels (InstructPix2Pix's way of
    widening a trained UNet): the new input weights start at zero, so it draws as before until trained."""
    from diffusers import UNet2DConditionModel

    old = unet.conv_in
    config = {**unet.config, "in_channels": 2 * old.in_channels}
    widened = UNet2DConditionModel.from_config(config)
    state = unet.state_dict()
    weight = torch.zeros(old.out_channels, 2 * old.in_channels, *old.kernel_size, dtype=old.weight.dtype)
    weight[:, :old.in_channels] = old.weight.detach()
    state["conv_in.weight"] = weight
    widened.load_state_dict(state)
    return widened.to(old.weight.device)


def ship_miniature(folder: str | Path, provenance: dict, dest: Path = MINIATURE) -> Path:
    """Install a base-train run's model/ as the package's miniature: UNet and text encoder in
    half precision (about 32 MB), beside the codec and tokenizer files already there."""
    model = load_base_model(folder)
    model.unet.half().save_pretrained(dest / "unet")
    model.text_encoder.half().save_pretrained(dest / "text_encoder")
    if model.reference_tokens is not None:
        model.reference_tokens.half().save_pretrained(dest / "reference_tokens")
    model.noise_scheduler.save_pretrained(dest / "scheduler")
    write_json_atomic(dest / "codec" / LatentCodec.config_name,
                      {"kind": "taef2", "shift": model.codec.shift, "scale": model.codec.scale})
    if model.caption_words is not None:
        write_json_atomic(dest / CAPTION_WORDS, sorted(model.caption_words))
    write_json_atomic(dest / "model_index.json", model_index(model, _trained=provenance))
    return dest
