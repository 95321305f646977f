"""Re-ID backbones behind one name: `create_backbone("resnet50", last_stride=1)`.

Every backbone is an `nn.Module` with the same contract, so heads and trainers need not
know which one they hold:

- `forward(x)`: N×3×H×W normalised RGB (256×128 by default) → N×`feature_dim` global
  feature: average-pooled last map for CNNs and Swin, the class token for ViT, the
  512-d fc embedding for OSNet (what torchreid's OSNet returns at test time).
- `forward_features(x)`: the unpooled output, for heads that pool their own way: an
  N×C×h×w map for CNNs and OSNet, timm's tokens for ViT (N×(1+L)×C) and Swin (N×h×w×C).
- state-dict keys are those of the architecture's home library (torchvision, timm,
  torchreid) minus the ImageNet classifier, so exported weights load there and published
  weights load here.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from diffreid.errors import DiffreidError
from diffreid.registry import Registry

log = logging.getLogger(__name__)
Builder = Callable[..., nn.Module]
Filter = Callable[[dict, nn.Module], dict]
BACKBONES: Registry[tuple[Builder, Filter | None]] = Registry("backbone", lambda: _load_builtin_backbones())


def register_backbone(name: str, filter_fn: Filter | None = None) -> Callable[[Builder], Builder]:
    """Register a builder under `name`; `filter_fn(state_dict, model)` adapts foreign
    checkpoints (timm's resampling of position embeddings and window biases)."""

    def decorate(builder: Builder) -> Builder:
        BACKBONES.register(name)((builder, filter_fn))
        return builder

    return decorate


def list_backbones() -> list[str]:
    return sorted(BACKBONES.names())


def create_backbone(name: str, pretrained: str | Path | None = None, last_stride: int | None = None,
                    **kwargs) -> nn.Module:
    """Build backbone `name`, loading `pretrained` weights (.safetensors, .pth, .pt) if given.

    `last_stride=1` keeps the last stage at the previous stage's resolution (a 16×8 map at
    256×128 for ResNets, as BoT does); None is the architecture's own stride.
    """
    if name not in BACKBONES:
        raise DiffreidError(f"unknown backbone {name!r}; backbones: {', '.join(list_backbones())}")
    builder, filter_fn = BACKBONES[name]
    if last_stride is not None:
        if "last_stride" not in inspect.signature(builder).parameters:
            raise DiffreidError(f"backbone {name!r} has no last-stride option; drop last_stride")
        kwargs["last_stride"] = last_stride
    model = builder(**kwargs)
    if pretrained is not None:
        from diffreid.training.weights import load_weights

        load_weights(model, pretrained, name, filter_fn)
    return model


def match_backbone(state_dict: dict[str, torch.Tensor], source: str | Path) -> str:
    """The registered backbone whose weights `state_dict` holds, told by key names and shapes.

    Candidates are built on the meta device (no memory, no init cost); an ImageNet or
    Re-ID classifier in the state dict is ignored.
    """
    from diffreid.training.weights import mismatch

    misfits = {}
    for name in list_backbones():
        builder, filter_fn = BACKBONES[name]
        with torch.device("meta"):
            model = builder()
        expected = model.state_dict()
        try:  # the backbone's own adapter first, as loading applies it (EfficientNet-PyTorch's key names)
            candidate = filter_fn(state_dict, model) if filter_fn else state_dict
        except Exception as error:  # weights of another family: the adapter cannot read them
            log.debug("%s: %s's adapter does not take them: %s", source, name, error)
            continue
        problems = mismatch(candidate, expected)
        if not problems:
            return name
        if expected.keys() & state_dict.keys():
            misfits[name] = problems
    message = (f"{source}: the weights match no known backbone; expected a state dict of one of "
               f"{', '.join(list_backbones())} (torchvision / timm / torchreid key names)")
    if misfits:
        closest = min(misfits, key=lambda n: len(misfits[n]))
        message += (f"; closest, {closest}: {'; '.join(misfits[closest][:3])}"
                    f"{' ...' if len(misfits[closest]) > 3 else ''}")
    raise DiffreidError(message)


def _load_builtin_backbones() -> None:
    # Importing the modules runs their @register_backbone decorators.
    from diffreid.reid.backbones import efficientnet, ibn, mobilenet, osnet, resnet, timm_models  # noqa: F401
