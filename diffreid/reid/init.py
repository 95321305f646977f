"""Where a training run's backbone weights come from: `--init imagenet|scratch|PATH`.

`imagenet` looks for the backbone's published ImageNet weights where torchvision and
timm keep downloads (torch hub cache, Hugging Face cache) and never downloads itself:
when they are not there it says how to get them. EfficientNet-Lite0's come inside an
optional package (`diffreid[efficientnet]`). `imagenet:FILE` and `imagenet:HUB_ID`
name the source; a bare PATH is a backbone's weights (.safetensors, .pth).
"""

from __future__ import annotations

from pathlib import Path

from diffreid.errors import DiffreidError
from diffreid.reid.backbones.efficientnet import packaged_imagenet_weights
from diffreid.reid.backbones.timm_models import SWIN, VIT

TORCHVISION = ("resnet18", "resnet50", "mobilenet_v2")


def resolve_init(init: str, backbone: str) -> Path | None:
    """The weights file to start `backbone` from, or None for random (scratch) weights."""
    if init == "scratch":
        return None
    if init == "imagenet" or init.startswith("imagenet:"):
        source = init.partition(":")[2] or _default_source(backbone)
        return _local_file(source, backbone)
    path = Path(init).expanduser()
    if not path.is_file():
        raise DiffreidError(f"{init}: init weights not found; --init takes imagenet, imagenet:FILE_OR_HUB_ID, "
                            f"scratch or a backbone's weights file (.safetensors, .pth)")
    return path


def _default_source(backbone: str) -> str:
    if backbone in TORCHVISION:
        return f"torchvision:{backbone}"
    if backbone == "efficientnet_lite0":
        return str(packaged_imagenet_weights())
    timm_name = {**SWIN, **VIT}.get(backbone)
    if timm_name is not None:
        import timm

        return timm.models.get_pretrained_cfg(timm_name).hf_hub_id
    raise DiffreidError(f"no published ImageNet weights are known for {backbone!r}; pass --init PATH to a "
                        f"{backbone} backbone file, or --init scratch")


def _local_file(source: str, backbone: str) -> Path:
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if source.startswith("torchvision:"):
        return _torchvision_cached(source.partition(":")[2])
    return _hub_cached(source, backbone)


def _torchvision_cached(name: str) -> Path:
    import torch
    from torchvision.models import get_model_weights

    url = get_model_weights(name).DEFAULT.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if cached.is_file():
        return cached
    raise DiffreidError(f"ImageNet weights for {name} are not on this machine (looked for {cached}); nothing is "
                        f"downloaded here: fetch {url} on a machine with internet access and put it at that path, "
                        f"or pass --init imagenet:FILE, --init PATH, or --init scratch")


def _hub_cached(hub_id: str, backbone: str) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(hub_id, "model.safetensors", local_files_only=True))
    except (LocalEntryNotFoundError, ValueError, OSError):
        raise DiffreidError(f"ImageNet weights {hub_id!r} for {backbone} are not in the Hugging Face cache and "
                            f"nothing is downloaded here: run `huggingface-cli download {hub_id} model.safetensors` "
                            f"on a machine with internet access (copy its cache here), or pass --init imagenet:FILE, "
                            f"--init PATH, or --init scratch") from None
