"""The backbone registry: every backbone at 256×128, last stride, IBN-a, weight files and their errors."""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

from diffreid.errors import DiffreidError
from diffreid.reid.backbones import create_backbone, list_backbones
from diffreid.reid.backbones.ibn import IBN
from diffreid.reid.loading import load_reid_model
from diffreid.training.weights import read_state_dict

FEATURE_DIMS = {
    "resnet18": 512, "resnet50": 2048, "resnet50_ibn_a": 2048, "mobilenet_v2": 1280, "efficientnet_lite0": 1280,
    "osnet_x1_0": 512, "osnet_x0_75": 512, "osnet_x0_5": 512, "osnet_x0_25": 512,
    "swin_tiny": 768, "swin_small": 768, "swin_base": 1024, "vit_small": 384, "vit_base": 768,
}
# Seconds each on a 2-core CPU: their shapes are checked on the meta device instead.
HEAVY = {"swin_small", "swin_base", "vit_base"}


def _batch(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, 256, 128, generator=torch.Generator().manual_seed(0))


def test_every_backbone_is_covered():
    assert set(list_backbones()) == set(FEATURE_DIMS)


@pytest.mark.parametrize("name", sorted(set(FEATURE_DIMS) - HEAVY))
def test_backbone_runs_at_256x128(name):
    model = create_backbone(name).eval()
    with torch.inference_mode():
        features = model(_batch())
    assert features.shape == (2, model.feature_dim) and model.feature_dim == FEATURE_DIMS[name]
    assert torch.isfinite(features).all()


@pytest.mark.parametrize("name", sorted(HEAVY))
def test_heavy_backbone_shapes_at_256x128(name):
    with torch.device("meta"):
        model = create_backbone(name)
        assert model(_batch().to("meta")).shape == (2, FEATURE_DIMS[name])
    assert model.feature_dim == FEATURE_DIMS[name]


@pytest.mark.parametrize("name", ["resnet50", "efficientnet_lite0"])
def test_last_stride_one_keeps_a_16x8_map(name):
    channels = FEATURE_DIMS[name]
    with torch.device("meta"):
        x = _batch(1).to("meta")
        assert create_backbone(name).forward_features(x).shape == (1, channels, 8, 4)
        assert create_backbone(name, last_stride=1).forward_features(x).shape == (1, channels, 16, 8)


def test_last_stride_where_there_is_none_is_an_error():
    with pytest.raises(DiffreidError, match="no last-stride option"):
        create_backbone("vit_small", last_stride=1)


def test_ibn_a_instance_norm_in_bottlenecks_of_layers_1_to_3():
    model = create_backbone("resnet50_ibn_a")
    for layer, ibn in ((model.layer1, True), (model.layer2, True), (model.layer3, True), (model.layer4, False)):
        for block in layer:
            assert isinstance(block.bn1, IBN) == ibn
            assert not isinstance(block.bn2, IBN) and not isinstance(block.bn3, IBN)
            if ibn:
                assert block.bn1.IN.num_features == block.bn1.BN.num_features == block.conv1.out_channels // 2
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in model.modules()) == 3 + 4 + 6
    assert "layer1.0.bn1.IN.weight" in model.state_dict() and "layer1.0.bn1.BN.running_mean" in model.state_dict()


def test_unknown_backbone_lists_the_names():
    with pytest.raises(DiffreidError, match="unknown backbone 'resnet51'.*resnet50.*swin_tiny"):
        create_backbone("resnet51")


def test_resnet_exports_torchvision_keys_and_loads_them_back(tmp_path):
    model = create_backbone("resnet18")
    save_file(model.state_dict(), tmp_path / "backbone.safetensors")
    reference = torchvision.models.resnet18()
    missing, unexpected = reference.load_state_dict(read_state_dict(tmp_path / "backbone.safetensors"), strict=False)
    assert set(missing) == {"fc.weight", "fc.bias"} and not unexpected
    torch.save(reference.state_dict(), tmp_path / "imagenet.pth")  # with its 1000-class fc
    loaded = create_backbone("resnet18", pretrained=tmp_path / "imagenet.pth")
    torch.testing.assert_close(loaded.state_dict(), model.state_dict())


def test_timm_imagenet_checkpoint_is_adapted_and_exports_round_trip(tmp_path):
    torch.save(timm.create_model("vit_small_patch16_224").state_dict(), tmp_path / "in1k.pth")  # 224×224, head
    model = create_backbone("vit_small", pretrained=tmp_path / "in1k.pth")
    assert model.pos_embed.shape == (1, 1 + 16 * 8, 384)  # resampled to 256×128
    save_file(model.state_dict(), tmp_path / "vit.safetensors")
    loaded = load_reid_model(str(tmp_path / "vit.safetensors"))
    torch.testing.assert_close(loaded.module.state_dict(), model.state_dict())


def test_wrong_architecture_weights_are_a_clear_error(tmp_path):
    torch.save(create_backbone("resnet18").state_dict(), tmp_path / "r18.pth")
    with pytest.raises(DiffreidError, match=r"r18\.pth: not the weights of a resnet50 backbone.*layer1\.0\.conv3"):
        create_backbone("resnet50", pretrained=tmp_path / "r18.pth")


def test_weights_of_no_known_backbone_are_a_clear_error(tmp_path):
    torch.save({"encoder.weight": torch.zeros(3, 3)}, tmp_path / "other.pt")
    with pytest.raises(DiffreidError, match=r"other\.pt: the weights match no known backbone.*osnet_x0_25"):
        load_reid_model(str(tmp_path / "other.pt"))


class Payload:
    """Any class: unpickling it would run code from the file, so it must be refused."""


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"conv.weight": torch.zeros(1), "extra": Payload()}, tmp_path / "pickled.pth")
    with pytest.raises(DiffreidError, match="pickled Python objects"):
        read_state_dict(tmp_path / "pickled.pth")


def test_missing_weights_file(tmp_path):
    with pytest.raises(DiffreidError, match="missing.safetensors: weights file not found"):
        create_backbone("resnet18", pretrained=tmp_path / "missing.safetensors")


@pytest.mark.shared
def test_mobilenet_loads_the_shared_imagenet_features(shared_data):
    path = shared_data / "models" / "mobilenet_v2_imagenet_features.safetensors"
    model = create_backbone("mobilenet_v2", pretrained=path)
    torch.testing.assert_close(model.features[0][0].weight, read_state_dict(path)["features.0.0.weight"])
    assert load_reid_model(str(path)).module.feature_dim == 1280
