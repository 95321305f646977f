"""`diffreid train`: the RUN directory contract, resume after a kill, presets, init, and RUN as a model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from diffreid.cli import main
from diffreid.config import EvaluateConfig, load_train_config
from diffreid.errors import DiffreidError
from diffreid.reid import load_reid_model
from diffreid.reid.evaluate_model import run as evaluate
from diffreid.reid.features import load_resized
from diffreid.reid.init import resolve_init
from diffreid.reid.model import ReidNet
from diffreid.reid.run_model import TrainedReidModel
from diffreid.reid.train_data import TrainImages
from diffreid.reid.trainer import run
from diffreid.training.schedules import reid_schedule

RUN_FILES = {"config.yaml", "classes.json", "checkpoints", "train.log", "metrics.jsonl", "curves.png",
             "model.safetensors", "manifest.json"}


def _train_cli(data, out, *extra) -> int:
    return main(["train", "--data", f"market1501:{data}", "--preset", "cpu-tiny", "--out", str(out), *extra])


@pytest.fixture(scope="module")
def tiny_run(tiny_persons, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert _train_cli(tiny_persons, out, "--eval-data", f"market1501:{tiny_persons}", "--eval-every", "2") == 0
    return out


def test_run_directory_contract(tiny_run, tiny_persons):
    assert RUN_FILES <= {p.name for p in tiny_run.iterdir()}
    config = yaml.safe_load((tiny_run / "config.yaml").read_text())
    assert config["backbone"] == "resnet18" and config["preset"] == "cpu-tiny" and config["epochs"] == 2
    classes = json.loads((tiny_run / "classes.json").read_text())
    train_pids = sorted({int(p.name[:4]) for p in (tiny_persons / "bounding_box_train").glob("*.jpg")})
    assert classes == [{"dataset": f"market1501:{tiny_persons}", "pid": pid} for pid in train_pids]
    rows = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(r["loss_total"] > 0 and 0 <= r["train_accuracy"] <= 1 for r in rows)
    assert "rank1" in rows[1] and "mAP" in rows[1] and "rank1" not in rows[0]
    assert [p.name for p in sorted((tiny_run / "checkpoints").iterdir())] == ["epoch-0001", "epoch-0002"]
    assert "epoch 2:" in (tiny_run / "train.log").read_text()
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert manifest["stage"] == "train" and manifest["counts"]["identities"] == len(classes)
    # the final model is the last checkpoint's
    checkpoint = tiny_run / "checkpoints" / "epoch-0002"
    tensors, final = load_file(checkpoint / "model.safetensors"), load_file(tiny_run / "model.safetensors")
    assert json.loads((checkpoint / "progress.json").read_text()) == {"epoch": 2}
    assert final.keys() == tensors.keys() and all(torch.equal(final[k], tensors[k]) for k in final)


def test_run_is_a_reid_model_that_classifies(tiny_run, tiny_persons):
    model = load_reid_model(str(tiny_run))
    assert isinstance(model, TrainedReidModel) and model.input_size == (64, 32) and model.flip
    paths = sorted((tiny_persons / "bounding_box_train").glob("*.jpg"))[:3]
    images = np.stack([load_resized(p, model.input_size) for p in paths])
    features = model(images)
    assert features.shape == (3, 512)
    # flip averaging: the mean of the features of the image and its mirror, after the BNNeck
    net = model.module
    with torch.inference_mode():
        x = model.normalise(images)
        assert np.allclose(features, ((net(x) + net(x.flip(3))) / 2).numpy(), atol=1e-5)
    probabilities = model.classify(images)
    assert probabilities.shape == (3, len(model.classes)) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    assert model.class_pids.tolist() == [c["pid"] for c in json.loads((tiny_run / "classes.json").read_text())]


def test_evaluate_takes_a_run(tiny_run, tiny_persons, tmp_path, monkeypatch):
    config = EvaluateConfig(model=str(tiny_run), data=f"market1501:{tiny_persons}", out=tmp_path, rerank=True)
    results = evaluate(config)
    assert 0 < results["mAP"] <= 1 and json.loads((tmp_path / "results.json").read_text())["model"] == str(tiny_run)
    # large splits stream their features through a file on disk: the same ranking
    monkeypatch.setattr("diffreid.reid.evaluate_model.STREAM_ABOVE", 0)
    streamed = evaluate(config)
    assert streamed["mAP"] == pytest.approx(results["mAP"], abs=1e-6) and streamed["cmc"][0] == results["cmc"][0]


def test_killed_run_resumes_to_the_same_weights(tiny_run, tiny_persons, tmp_path, monkeypatch):
    out = tmp_path / "killed"
    real_getitem = TrainImages.__getitem__
    calls = {"n": 0}

    def dies_in_epoch_two(self, item):
        calls["n"] += 1
        if calls["n"] > 3 * 8 + 5:  # cpu-tiny: 3 batches of 8 per epoch; die in the second epoch
            raise KeyboardInterrupt
        return real_getitem(self, item)

    monkeypatch.setattr(TrainImages, "__getitem__", dies_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        run(load_train_config("cpu-tiny", {"data": (f"market1501:{tiny_persons}",), "out": out}))
    assert (out / "checkpoints" / "epoch-0001").is_dir() and not (out / "model.safetensors").exists()
    monkeypatch.setattr(TrainImages, "__getitem__", real_getitem)
    assert _train_cli(tiny_persons, out) == 0
    resumed, uninterrupted = load_file(out / "model.safetensors"), load_file(tiny_run / "model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_a_run_directory_refuses_a_different_config(tiny_run, tiny_persons):
    with pytest.raises(DiffreidError, match="different config.*lr"):
        run(load_train_config("cpu-tiny", {"data": (f"market1501:{tiny_persons}",), "out": tiny_run, "lr": 0.1}))


def test_a_run_older_than_an_option_resumes_and_says_so(tmp_path, caplog):
    from diffreid.training.checkpoints import check_same_run

    (tmp_path / "checkpoints" / "step-000100").mkdir(parents=True)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"lr": 0.1, "steps": 100}))
    check_same_run(tmp_path, {"lr": 0.1, "steps": 200, "pairs": "any"}, ("steps",), "base-train")
    assert "before pairs existed; resumed with pairs='any'" in caplog.text
    with pytest.raises(DiffreidError, match="different config.*lr"):
        check_same_run(tmp_path, {"lr": 0.2, "steps": 100, "pairs": "any"}, ("steps",), "base-train")


def test_agw_with_center_loss_and_accumulation_trains(tiny_persons, tmp_path):
    out = tmp_path / "agw"
    assert main(["train", "--data", f"market1501:{tiny_persons}", "--preset", "agw-r50", "--out", str(out),
                 "--init", "scratch", "--epochs", "1", "--batch-p", "2", "--batch-k", "2", "--input-size", "64x32",
                 "--grad-accumulation", "2", "--num-workers", "0", "--set", "max_steps_per_epoch=3",
                 "--set", "center_loss_weight=0.0005"]) == 0
    checkpoint = out / "checkpoints" / "epoch-0001"
    tensors = load_file(checkpoint / "model.safetensors")
    optimizer = torch.load(checkpoint / "optimizer.bin", weights_only=True)
    # 3 batches allowed, accumulated in pairs: 2 batches used, one optimizer step
    assert {int(s["step"]) for s in optimizer["state"].values()} == {1}
    assert "centers" in load_file(checkpoint / "model_1.safetensors") and (checkpoint / "optimizer_1.bin").is_file()
    assert any(k.startswith("nonlocal_blocks.") for k in tensors)
    assert float(tensors["pool.p"]) != 3.0  # GeM's exponent learned


def test_presets_load_and_flags_override():
    config = load_train_config("bot-r50", {"data": ("x:y",), "out": "run", "epochs": 5})
    assert (config.backbone, config.last_stride, config.triplet, config.epochs) == ("resnet50", 1, "batch_hard", 5)
    agw = load_train_config("agw-r50", {"data": ("x:y",), "out": "run"})
    assert (agw.pooling, agw.nonlocal_blocks, agw.triplet) == ("gem", True, "weighted")
    assert load_train_config("bot-swin-tiny", {"data": ("x:y",), "out": "r"}).backbone == "swin_tiny"
    assert load_train_config("bot-r50", {"data": ("x:y",), "out": "r", "last_stride": None}).last_stride is None
    with pytest.raises(DiffreidError, match="no such training preset"):
        load_train_config("bot-r51", {})
    with pytest.raises(DiffreidError, match="unknown training option"):
        load_train_config(None, {"data": ("x:y",), "out": "r", "learning_rate": 1})


def test_warmup_and_steps():
    config = load_train_config("bot-r50", {"data": ("x:y",), "out": "run"})
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=config.lr)
    schedule, rates = reid_schedule(optimizer, config), []
    for _ in range(config.epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[0] == pytest.approx(3.5e-5)
    assert rates[5] == pytest.approx(3.5e-5 + 0.9 * 3.5e-4 * 0.5)
    assert rates[10] == pytest.approx(3.5e-4)
    assert rates[40] == pytest.approx(3.5e-5)
    assert rates[119] == pytest.approx(3.5e-6)


def test_init_from_a_backbone_file_and_clear_imagenet_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(DiffreidError, match="nothing is downloaded here.*resnet18"):
        resolve_init("imagenet", "resnet18")
    with pytest.raises(DiffreidError, match="not in the Hugging Face cache"):
        resolve_init("imagenet", "swin_tiny")
    with pytest.raises(DiffreidError, match="no published ImageNet weights"):
        resolve_init("imagenet", "osnet_x0_25")
    assert resolve_init("scratch", "resnet18") is None
    source = ReidNet("resnet18", 2).backbone_state_dict()
    save_file(source, tmp_path / "r18.safetensors")
    assert resolve_init(f"imagenet:{tmp_path / 'r18.safetensors'}", "resnet18") == tmp_path / "r18.safetensors"
    model = ReidNet("resnet18", 4, pretrained=resolve_init(str(tmp_path / "r18.safetensors"), "resnet18"))
    assert all(torch.equal(model.backbone.state_dict()[k], v) for k, v in source.items())


@pytest.mark.shared
def test_init_from_the_imagenet_mobilenet(shared_data):
    path = shared_data / "models" / "mobilenet_v2_imagenet_features.safetensors"
    model = ReidNet("mobilenet_v2", 3, pretrained=resolve_init(f"imagenet:{path}", "mobilenet_v2"))
    assert torch.equal(model.backbone.features[0][0].weight, load_file(path)["features.0.0.weight"])
