"""Downstream settings: subsets, training with an init, the results table and the side-by-side view."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from diffreid.cli import main
from diffreid.data import load_dataset
from diffreid.data.subsets import subset_spec
from diffreid.errors import DiffreidError
from diffreid.settings.table import append_row, compare, read_table


def test_subsets_thin_the_train_split_and_keep_the_test(tiny_persons, tmp_path):
    spec = f"market1501:{tiny_persons}"
    full = load_dataset(spec)
    half = load_dataset(subset_spec(spec, tmp_path / "half", identities=0.5, seed=1))
    assert len({r.pid for r in half.train}) == 3 and {r.pid for r in half.train} < {r.pid for r in full.train}
    assert len(half.query) == len(full.query) and len(half.gallery) == len(full.gallery)
    shot = load_dataset(subset_spec(spec, tmp_path / "shot", one_per_camera=True))
    per_identity = Counter((r.pid, r.camid) for r in shot.train)
    assert set(per_identity.values()) == {1}
    assert {r.pid for r in shot.train} == {r.pid for r in full.train}
    tenth = load_dataset(subset_spec(spec, tmp_path / "tenth", images=0.1))
    assert len(tenth.train) < len(full.train) / 5
    with pytest.raises(DiffreidError, match="fraction"):
        subset_spec(spec, tmp_path / "bad", identities=1.5)


def test_settings_fill_the_table_and_compare_lays_out_inits(tiny_persons, tmp_path, capsys):
    spec = f"market1501:{tiny_persons}"
    common = ["--preset", "cpu-tiny", "--table", str(tmp_path / "results"), "--data", spec]
    assert main(["setting", "supervised", "--init", "scratch", "--out", str(tmp_path / "sup"), *common]) == 0
    assert main(["export", str(tmp_path / "sup" / "run"), "--out", str(tmp_path / "backbone.safetensors")]) == 0
    backbone = str(tmp_path / "backbone.safetensors")
    assert main(["setting", "few-shot", "--init", backbone, "--one-per-camera", "--out", str(tmp_path / "fs"),
                 *common]) == 0
    assert main(["setting", "supervised", "--init", backbone, "--label", "pre-trained", "--out", str(tmp_path / "sup2"),
                 *common]) == 0
    rows = read_table(tmp_path / "results")
    assert [(r["setting"], r["init"]) for r in rows] == [
        ("supervised", "scratch"), ("few-shot", backbone), ("supervised", "pre-trained")]
    assert all(0 <= float(r["mAP"]) <= 1 and r["test"] == spec for r in rows)
    queries, gallery = (len(load_dataset(spec).query), len(load_dataset(spec).gallery))
    assert {(r["queries"], r["gallery"]) for r in rows} == {(str(queries), str(gallery))}
    table = compare(tmp_path / "results")
    assert f"- few-shot on {spec}: {queries} queries / {gallery} gallery" in table
    header, _, supervised, few_shot = table.splitlines()[:4]
    assert "scratch" in header and backbone in header and "pre-trained" in header
    assert supervised.count("[1]") == 2 and "—" in few_shot  # few-shot has no scratch run; one seed each
    capsys.readouterr()
    assert main(["setting", "dg", "--out", str(tmp_path / "dg"), *common]) == 2
    assert "--target" in capsys.readouterr().err


def test_compare_gives_each_initialisation_over_seeds_and_a_paired_verdict(tmp_path, capsys):
    """Three seeds of two initialisations are two cells (mean ± interval), and the verdict pairs them by
    seed; before, the table kept one seed's number per cell and compared nothing."""
    folder = tmp_path / "results"
    maps = {"imagenet": (0.30, 0.31, 0.32), "imagenet+dp": (0.35, 0.37, 0.36), "imagenet+real": (0.31, 0.30)}
    for init, values in maps.items():
        for seed, value in enumerate(values):
            append_row(folder, {"setting": "supervised", "init": init, "train": "t", "test": "cuhk01", "rank1": value,
                                "mAP": value, "mINP": value, "run": f"runs/{init}/{seed}", "config": {"seed": seed}})
    table = compare(folder, baseline="imagenet")
    assert "| supervised | cuhk01 | 31.0 ± 2.5% / 31.0 ± 2.5% [3] | 36.0 ± 2.5% / 36.0 ± 2.5% [3] |" in table
    assert "| supervised | cuhk01 | imagenet+dp | +5.0 | [+2.5, +7.5] | 3 | beats |" in table
    assert "| imagenet+real | +0.0 |" in table and table.rstrip().endswith("(a verdict needs 3 paired seeds)")
    assert "| 2 | not enough seeds |" in table  # two paired seeds of the three a verdict needs
    assert "- supervised on cuhk01: sizes not recorded" in table  # rows written without queries / gallery
    assert main(["compare", str(folder), "--baseline", "imagenet", "--min-seeds", "2"]) == 0
    assert "| 2 | within noise |" in capsys.readouterr().out
    assert main(["compare", str(folder), "--baseline", "imagenet", "--metric", "rank1"]) == 0
    assert "| rank1 difference to imagenet |" in capsys.readouterr().out
    with pytest.raises(DiffreidError, match=r"imagenet\+dp"):
        compare(folder, baseline="scratch")


def test_a_setting_is_one_registered_definition(monkeypatch, tmp_path):
    """Registered from here, a setting is a `setting NAME` choice and runs by name; one that trains across
    datasets is refused a target among its training data, as uda and dg are. Before: a tuple of names."""
    from diffreid.settings import SETTINGS, Setting

    monkeypatch.setattr(SETTINGS, "_items", dict(SETTINGS._items))  # the test's setting leaves with the test

    class Trained(Exception):
        pass

    @SETTINGS.register("half-dg")
    class HalfDg(Setting):
        across = True

        def training_data(self, config, out):
            if config.target in config.data:
                raise DiffreidError("half-dg tests on a dataset it did not train on")
            return tuple(config.data[:1]), config.target

        def train(self, config, values, target, out):
            raise Trained(values["data"], target, values["out"])

    argv = ["setting", "half-dg", "--data", "market1501:/a", "--data", "market1501:/b", "--out", str(tmp_path / "o")]
    with pytest.raises(Trained) as trained:
        main([*argv, "--target", "market1501:/c"])
    assert trained.value.args == (("market1501:/a",), "market1501:/c", tmp_path / "o" / "run")
    assert main([*argv, "--target", "market1501:/b"]) == 2
    from diffreid.pipeline.stages import setting_config
    from diffreid.run_spec import DatasetSpec, RunSpec

    spec = RunSpec(sources=[DatasetSpec("a", "market1501:/a")], target=DatasetSpec("c", "market1501:/c"),
                   path=tmp_path / "run.yaml", settings=[{"name": "half-dg"}])
    made = setting_config(spec, tmp_path / "run", "scratch", spec.settings[0])  # a run trains it on the sources
    assert (made.data, made.target) == (("market1501:/a",), "market1501:/c")


def test_cosine_schedule_warms_up_then_decays_to_the_floor():
    from diffreid.config import load_train_config
    from diffreid.training.schedules import reid_schedule

    config = load_train_config("pretrain-cpu", {"data": ("x:y",), "out": "o", "epochs": 11, "warmup_epochs": 1})
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=config.lr)
    schedule, rates = reid_schedule(optimizer, config), []
    for _ in range(11):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[0] < rates[1] == pytest.approx(config.lr)
    assert all(a > b for a, b in zip(rates[1:], rates[2:]))
    assert rates[-1] == pytest.approx(config.lr * config.min_lr_factor)


def test_pretrain_on_a_diffperson_folder_exports_a_backbone(tiny_persons, tmp_path):
    import shutil

    from safetensors.torch import load_file

    from diffreid.reid.backbones import create_backbone

    diffperson = tmp_path / "Diff-Person"
    shutil.copytree(tiny_persons / "bounding_box_train", diffperson / "bounding_box_train")
    dataset = load_dataset(f"diffperson:{diffperson}")
    assert dataset.train and not dataset.problems
    assert main(["pretrain", "--data", f"diffperson:{diffperson}", "--preset", "cpu-tiny", "--backbone",
                 "mobilenet_v2", "--out", str(tmp_path / "pre")]) == 0
    weights = load_file(tmp_path / "pre" / "backbone.safetensors")
    create_backbone("mobilenet_v2").load_state_dict(weights)  # torchvision's keys, nothing missing


def test_dbscan_on_jaccard_distances_finds_separated_identities():
    import numpy as np

    from diffreid.reid.cluster_contrast import pseudo_labels

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(8, 32))
    features = np.concatenate([c + 0.15 * rng.normal(size=(10, 32)) for c in centres])
    labels = pseudo_labels(features, eps=0.6, min_samples=4, k1=10, k2=3)
    truth = np.repeat(np.arange(8), 10)
    assert len(set(labels.tolist()) - {-1}) == 8
    assert all(len(set(labels[truth == i].tolist())) == 1 for i in range(8))  # one cluster per identity


def test_usl_and_uda_train_without_target_labels(tiny_persons, tmp_path):
    import json

    from diffreid.config import SynthConfig
    from diffreid.data.synth import synthesize
    from diffreid.reid.loading import load_reid_model

    target = synthesize(SynthConfig(out=tmp_path / "target", identities=12, style="mall", seed=4))
    # eps 0.15 gave batch_p's 4 clusters on earlier CPUs and 3 on an AMD EPYC, failing there; 0.1 gave 8 on it
    common = ["--preset", "cpu-tiny", "--init", "scratch", "--eps", "0.1", "--min-samples", "2",
              "--table", str(tmp_path / "results")]
    assert main(["setting", "usl", "--data", f"market1501:{target}", "--out", str(tmp_path / "usl"), *common]) == 0
    clusters = json.loads((tmp_path / "usl" / "run" / "clusters.json").read_text())
    assert clusters["clusters"] >= 4 and 0 < clusters["clustered"] <= clusters["images"]
    model = load_reid_model(str(tmp_path / "usl" / "run"))
    assert len(model.classes) == clusters["clusters"] and model.classes[0]["pseudo"]
    assert main(["setting", "uda", "--data", f"market1501:{tiny_persons}", "--target", f"market1501:{target}",
                 "--out", str(tmp_path / "uda"), *common]) == 0
    assert (tmp_path / "uda" / "source-backbone.safetensors").is_file()
    assert (tmp_path / "uda" / "adapted" / "clusters.json").is_file()
    rows = read_table(tmp_path / "results")
    assert [(r["setting"], r["test"]) for r in rows] == [("usl", f"market1501:{target}"),
                                                         ("uda", f"market1501:{target}")]


def test_usl_keeps_the_model_and_its_batches_on_the_runs_device(tiny_persons, tmp_path, monkeypatch):
    """Clustering and training follow the run's one device (accelerate's), whatever a feature
    extractor's own default is; before, clustering moved the model to that default (CUDA on any
    GPU machine) and the batches stayed behind, so usl and uda failed on every GPU. Here the
    default is the meta device, which holds no data, so a tensor that goes there fails the run."""
    import diffreid.reid.torch_model as torch_model
    from diffreid.config import load_train_config
    from diffreid.reid.cluster_contrast import run_usl

    monkeypatch.setattr(torch_model, "default_device", lambda: torch.device("meta"))
    config = load_train_config("cpu-tiny", {"data": (f"market1501:{tiny_persons}",), "out": tmp_path / "usl",
                                            "epochs": 1})
    out = run_usl(config, eps=0.15, min_samples=2)
    assert (out / "model.safetensors").is_file()


def test_killed_usl_resumes_to_the_same_weights(tiny_persons, tmp_path, monkeypatch, caplog):
    from safetensors.torch import load_file

    import diffreid.reid.cluster_contrast as cluster_contrast

    common = ["--data", f"market1501:{tiny_persons}", "--preset", "cpu-tiny", "--init", "scratch", "--eps", "0.15",
              "--min-samples", "2", "--table", str(tmp_path / "results")]
    assert main(["setting", "usl", "--out", str(tmp_path / "whole"), *common]) == 0

    killed = tmp_path / "killed"
    real_update = cluster_contrast.ClusterMemory.update

    def dies_in_epoch_two(self, features, labels):
        if (killed / "run" / "checkpoints" / "epoch-0001").is_dir():
            raise KeyboardInterrupt  # after epoch two's first optimizer step, before its checkpoint
        real_update(self, features, labels)

    monkeypatch.setattr(cluster_contrast.ClusterMemory, "update", dies_in_epoch_two)
    assert main(["setting", "usl", "--out", str(killed), *common]) == 130  # as after Ctrl-C
    assert not (killed / "run" / "model.safetensors").exists()
    monkeypatch.setattr(cluster_contrast.ClusterMemory, "update", real_update)
    caplog.clear()
    assert main(["setting", "usl", "--out", str(killed), *common]) == 0
    assert "resuming from epoch 1" in caplog.text  # not started over
    resumed = load_file(killed / "run" / "model.safetensors")
    whole = load_file(tmp_path / "whole" / "run" / "model.safetensors")
    assert resumed.keys() == whole.keys() and all(torch.equal(resumed[k], whole[k]) for k in whole)


def test_a_fixed_model_is_paired_with_every_seed_of_the_other(tmp_path):
    """A model without seeds (`"seed": null`, as `benchmark small --table` writes for ImageNet features)
    is one cell marked fixed and stands at each seed of the other; before, it was seed 0 and paired once."""
    folder = tmp_path / "results"
    append_row(folder, {"setting": "zero-shot DG", "init": "imagenet", "train": "-", "test": "prid", "rank1": 0.10,
                        "mAP": 0.10, "mINP": 0.1, "run": "features.safetensors", "config": {"seed": None}})
    for seed, value in enumerate((0.20, 0.22, 0.21)):
        append_row(folder, {"setting": "zero-shot DG", "init": "imagenet+dp", "train": "-", "test": "prid",
                            "rank1": value, "mAP": value, "mINP": value, "run": f"pretrain/dp/seed{seed}",
                            "config": {"seed": seed}})
    table = compare(folder, baseline="imagenet")
    assert "| zero-shot DG | prid | 10.0% / 10.0% [fixed] | 21.0 ± 2.5% / 21.0 ± 2.5% [3] |" in table
    assert "| zero-shot DG | prid | imagenet+dp | +11.0 | [+8.5, +13.5] | 3 | beats |" in table
    assert "[fixed]: one model without seeds" in table
    reverse = compare(folder, baseline="imagenet+dp")
    assert "| zero-shot DG | prid | imagenet | -11.0 | [-13.5, -8.5] | 3 | loses |" in reverse


def test_several_tables_compare_as_one_and_a_repeated_name_keeps_its_folder(tmp_path):
    """Experiments in separate folders (×4 and ×1 images per identity, each labelled imagenet+dp)
    compare in one call; before, compare read one table, so such pairs needed a script of their own."""
    x4, x1 = tmp_path / "claims" / "results", tmp_path / "claims-x1" / "results"
    for folder, values in ((x4, (0.48, 0.49, 0.50)), (x1, (0.44, 0.45, 0.45))):
        for seed, value in enumerate(values):
            append_row(folder, {"setting": "supervised", "init": "imagenet+dp", "train": "t", "test": "cuhk01",
                                "rank1": value, "mAP": value, "mINP": value, "run": f"{folder}/{seed}",
                                "config": {"seed": seed}})
    table = compare([x4, x1], baseline=f"imagenet+dp@{x1}")
    assert f"| imagenet+dp | imagenet+dp@{x1} |" in table
    assert "| supervised | cuhk01 | imagenet+dp | +4.3 | [+2.9, +5.8] | 3 | beats |" in table
    with pytest.raises(DiffreidError, match="no results yet"):
        compare([x4, tmp_path / "empty"])
