"""OSNet: torchreid's model-zoo state dicts load strictly, and the network computes what the
published ONNX export computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from diffreid.errors import DiffreidError
from diffreid.reid.backbones import create_backbone, match_backbone
from diffreid.reid.backbones.osnet import OSNet
from diffreid.reid.features import load_resized
from diffreid.reid.loading import load_reid_model
from diffreid.reid.torch_model import TorchReidModel
from diffreid.training.weights import mismatch, read_state_dict

CUHK01_IMAGES = ("0001001.png", "0001003.png", "0002001.png")
# torchreid 0.2.5's own OSNet (torchreid.models.osnet_x0_25) with osnet_x0_25_msmt17.pth,
# on CUHK01_IMAGES resized bilinearly to 256×128: the first four features and the norm.
TORCHREID_FEATURES = [[2.290757, 4.880482e-04, 0.0, 1.508424],
                      [1.359470, 3.957369e-04, 0.6505701, 1.649482],
                      [0.0, 6.849502e-05, 0.0, 0.0]]
TORCHREID_NORMS = [19.033636, 19.753860, 19.873316]


def _images(shared_data, names=CUHK01_IMAGES) -> np.ndarray:
    return np.stack([load_resized(shared_data / "cuhk01" / "campus" / name, (256, 128)) for name in names])


def test_osnet_x1_0_has_the_papers_size():
    parameters = sum(p.numel() for p in OSNet(1.0).parameters())
    assert 2.1e6 < parameters < 2.25e6  # paper Table 1: 2.2M (without the classifier)


@pytest.mark.parametrize("name, stem", [("osnet_x1_0", 64), ("osnet_x0_75", 48), ("osnet_x0_5", 32),
                                        ("osnet_x0_25", 16)])
def test_width_is_recognised_from_the_state_dict(tmp_path, name, stem):
    torch.save(create_backbone(name).state_dict(), tmp_path / "model.pth")
    model = load_reid_model(str(tmp_path / "model.pth"))
    assert isinstance(model.module, OSNet) and model.module.conv1.conv.out_channels == stem
    assert model.input_size == (256, 128)


def test_wrong_shaped_osnet_names_the_tensor(tmp_path):
    state = create_backbone("osnet_x0_25").state_dict()
    state["conv1.conv.weight"] = torch.zeros(16, 3, 5, 5)
    torch.save(state, tmp_path / "odd.pth")
    with pytest.raises(DiffreidError, match=r"odd\.pth: the weights match no known backbone.*closest, osnet_x0_25: "
                                            r"conv1\.conv\.weight is \(16, 3, 5, 5\), expected \(16, 3, 7, 7\)"):
        load_reid_model(str(tmp_path / "odd.pth"))


def test_flip_averages_an_image_and_its_mirror():
    model = TorchReidModel(create_backbone("osnet_x0_25"), device="cpu", flip=True)
    images = np.random.default_rng(0).integers(0, 256, size=(2, 256, 128, 3), dtype=np.uint8)
    features = model(images)
    assert features.dtype == np.float32 and features.shape == (2, 512)
    np.testing.assert_allclose(model(images[:, :, ::-1]), features, rtol=1e-4, atol=1e-5)


@pytest.mark.shared
@pytest.mark.parametrize("dataset, classes", [("msmt17", 1041), ("market1501", 751)])
def test_torchreid_state_dicts_load_strictly(shared_data, dataset, classes):
    path = shared_data / "models" / f"osnet_x0_25_{dataset}.pth"
    state = read_state_dict(path)
    model = OSNet(0.25)
    assert set(state) - set(model.state_dict()) == {"classifier.weight", "classifier.bias"}
    assert state["classifier.weight"].shape == (classes, 512)
    assert not mismatch(state, model.state_dict())
    assert match_backbone(state, path) == "osnet_x0_25"
    create_backbone("osnet_x0_25", pretrained=path)


@pytest.mark.shared
def test_features_equal_torchreids(shared_data):
    model = load_reid_model(str(shared_data / "models" / "osnet_x0_25_msmt17.pth"))
    features = model(_images(shared_data))
    np.testing.assert_allclose(features[:, :4], TORCHREID_FEATURES, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), TORCHREID_NORMS, rtol=1e-5)


def _load_onnx_weights(model: OSNet, path) -> None:
    """Put an ONNX export's weights into `model`.

    The exporter folded each BatchNorm2d into the conv before it, leaving that conv's
    weight and bias unnamed; they come in execution order, so they are matched to the
    model's BN-carrying convs in the order those run, each BN set to add the bias only.
    """
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    graph = onnx.load(path).graph
    tensors = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in graph.initializer}
    folded = [(n.input[1], n.input[2]) for n in graph.node if n.op_type == "Conv" and n.input[1] not in
              model.state_dict()]
    conv_of = {child: getattr(parent, "conv", None) or parent.conv2 for parent in model.modules()
               for child in parent.children() if isinstance(child, nn.BatchNorm2d)}
    order = []
    hooks = [bn.register_forward_hook(lambda bn, _, __: order.append(bn)) for bn in conv_of]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 256, 128))
        for hook in hooks:
            hook.remove()
        assert len(order) == len(folded)
        for key, value in model.state_dict().items():
            if key in tensors:
                value.copy_(tensors[key])
        for bn, (weight, bias) in zip(order, folded):
            conv_of[bn].weight.copy_(tensors[weight])
            bn.weight.fill_(1.0)
            bn.bias.copy_(tensors[bias])
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)


@pytest.mark.shared
def test_osnet_computes_what_the_onnx_export_computes(shared_data):
    """The ONNX file holds other weights than the .pth files (a different training run), so
    its own weights go into our OSNet: then the two graphs must agree."""
    path = shared_data / "models" / "osnet_x0_25_msmt17.onnx"
    module = OSNet(0.25)
    _load_onnx_weights(module, path)
    images = _images(shared_data, ["0003001.png", "0004002.png", "0005003.png", "0006004.png"])
    ours = TorchReidModel(module, device="cpu")(images)
    onnx_features = load_reid_model(str(path))(images)
    cosine = (ours * onnx_features).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(onnx_features, axis=1)
    assert cosine.min() > 0.9999
    np.testing.assert_allclose(ours, onnx_features, atol=1e-4 * np.abs(onnx_features).max())
