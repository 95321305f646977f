"""`diffreid export`: a run's backbone loads into torchvision's ResNet-50 and timm's Swin as theirs."""

from __future__ import annotations

import json

import timm
import torch
import torchvision
import yaml
from safetensors.torch import load_file, save_file

from diffreid.cli import main
from diffreid.reid.model import ReidNet


def _fake_run(path, model: ReidNet, backbone: str):
    """A RUN directory as the trainer leaves it, for a model too big to train in a test."""
    path.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path / "model.safetensors")
    (path / "config.yaml").write_text(yaml.safe_dump({"backbone": backbone, "input_size": [256, 128]}))
    (path / "classes.json").write_text(json.dumps([{"dataset": "x:y", "pid": i} for i in range(model.num_classes)]))
    return path


def test_resnet50_export_loads_into_torchvision(tmp_path):
    torch.manual_seed(0)
    model = ReidNet("resnet50", 3, pooling="gem", nonlocal_blocks=True, last_stride=1)
    run = _fake_run(tmp_path / "run", model, "resnet50")
    assert main(["export", str(run), "--out", str(tmp_path / "backbone.safetensors")]) == 0
    exported = load_file(tmp_path / "backbone.safetensors")
    resnet = torchvision.models.resnet50()
    result = resnet.load_state_dict(exported, strict=False)
    assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"] and result.unexpected_keys == []
    assert torch.equal(resnet.layer4[2].conv3.weight, model.backbone.layer4[2].conv3.weight)


def test_swin_export_loads_into_timm(tmp_path):
    torch.manual_seed(0)
    model = ReidNet("swin_tiny", 3)
    run = _fake_run(tmp_path / "run", model, "swin_tiny")
    assert main(["export", str(run), "--out", str(tmp_path / "swin.safetensors")]) == 0
    swin = timm.create_model("swin_tiny_patch4_window7_224", img_size=(256, 128), window_size=8)
    result = swin.load_state_dict(load_file(tmp_path / "swin.safetensors"), strict=False)
    assert sorted(result.missing_keys) == ["head.fc.bias", "head.fc.weight"] and result.unexpected_keys == []
    x = torch.randn(1, 3, 256, 128)
    with torch.inference_mode():
        assert torch.allclose(swin.eval().forward_head(swin.forward_features(x), pre_logits=True),
                              model.backbone.eval()(x), atol=1e-5)


def test_export_of_an_unfinished_run_says_so(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "b.safetensors")]) == 2
    assert "not a finished training run" in capsys.readouterr().err
