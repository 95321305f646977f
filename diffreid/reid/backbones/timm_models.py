"""Swin and ViT from timm, built for person-shaped input (256×128 by default).

The model is timm's own, headless (`num_classes=0`), so its keys stay timm's and
`forward` gives timm's pooled feature: the class token for ViT, the averaged last
stage for Swin. Swin uses 8×8 windows rather than ImageNet's 7×7: at 256×128 its stages
are 64×32, 32×16, 16×8 and 8×4 tokens, which 8×8 windows tile exactly (the last stage
becomes a single 8×4 window), where 7×7 windows would pad stage 3 from 128 to 294
tokens and attend over the padding. ImageNet checkpoints still load: timm's filter
resamples their relative-position tables (and ViT's position embeddings) on load.
"""

from __future__ import annotations

import importlib
from functools import partial

from torch import nn

from diffreid.reid.backbones import register_backbone

SWIN = {"swin_tiny": "swin_tiny_patch4_window7_224", "swin_small": "swin_small_patch4_window7_224",
        "swin_base": "swin_base_patch4_window7_224"}
VIT = {"vit_small": "vit_small_patch16_224", "vit_base": "vit_base_patch16_224"}


def timm_filter(state_dict: dict, model: nn.Module) -> dict:
    """timm's checkpoint adapter for the model's family (its module's `checkpoint_filter_fn`)."""
    return importlib.import_module(type(model).__module__).checkpoint_filter_fn(state_dict, model)


def timm_backbone(timm_name: str, img_size: tuple[int, int] = (256, 128), **kwargs) -> nn.Module:
    import timm

    model = timm.create_model(timm_name, pretrained=False, num_classes=0, img_size=tuple(img_size), **kwargs)
    model.feature_dim = model.num_features
    return model


for _name, _timm_name in SWIN.items():
    register_backbone(_name, timm_filter)(partial(timm_backbone, _timm_name, window_size=8))
for _name, _timm_name in VIT.items():
    register_backbone(_name, timm_filter)(partial(timm_backbone, _timm_name))
