"""PRID, GRID, i-LIDS classic protocols: seeded splits, list export, `diffreid benchmark small`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reader_trees import write_image
from safetensors.torch import save_file

from diffreid.cli import main
from diffreid.data import load_dataset
from diffreid.data.small_protocols import (FOLDERS, SMALL_BENCHMARKS, TEST_IDS, export_lists, small_split,
                                           trial_sizes)
from diffreid.errors import DiffreidError
from diffreid.reid.backbones import create_backbone
from diffreid.settings.table import compare, read_table
from diffreid.small_benchmark import model_seed, run

# Scaled-down sets in PETA's naming: (pids seen twice, pids seen once) and the test ids each trial draws
PRID_PAIRED, PRID_A_ONLY, PRID_B_ONLY = range(1, 9), range(9, 12), range(12, 17)
GRID_PAIRED, GRID_SINGLE = range(1, 11), range(11, 16)
ILIDS_IMAGES = {1: 2, 2: 3, 3: 2, 4: 4, 5: 2, 6: 3, 7: 2, 8: 2, 9: 1}
SMALL_TEST_IDS = {"prid": 4, "grid": 3, "ilids": 4}


def _peta_tree(base: Path) -> Path:
    seed = iter(range(10_000))
    for pid in PRID_PAIRED:
        for camera in "ab":
            write_image(base / "PRID" / f"{pid:04d}_{camera}.png", next(seed))
    for pids, camera in ((PRID_A_ONLY, "a"), (PRID_B_ONLY, "b")):
        for pid in pids:
            write_image(base / "PRID" / f"{pid:04d}_{camera}.png", next(seed))
    for pid in GRID_PAIRED:  # probe view camera 1, the other camera 3 (its name sorts after)
        write_image(base / "GRID" / f"{pid:04d}_1_25004_107_32_106_221.jpeg", next(seed))
        write_image(base / "GRID" / f"{pid:04d}_3_25023_116_134_128_330.jpeg", next(seed))
    for pid in GRID_SINGLE:
        write_image(base / "GRID" / f"{pid:04d}_5_26000_10_10_50_120.jpeg", next(seed))
    for pid, count in ILIDS_IMAGES.items():
        for index in range(1, count + 1):
            write_image(base / "i-LID" / f"{pid:04d}_{index:03d}.jpg", next(seed))
    return base


@pytest.fixture(scope="module")
def peta(tmp_path_factory) -> Path:
    return _peta_tree(tmp_path_factory.mktemp("peta"))


def _split(peta: Path, name: str, seed: int = 0, trial: int = 0):
    dataset = load_dataset(f"{name}:{peta / FOLDERS[name]}")
    return small_split(name, dataset, seed, trial, SMALL_TEST_IDS[name])


def _pids(records) -> set[int]:
    return {r.pid for r in records}


@pytest.mark.parametrize("name", SMALL_BENCHMARKS)
def test_same_seed_same_split_other_seed_or_trial_another(peta, name):
    def key(split):
        return [[(r.path, r.pid, r.camid) for r in split.split(s)] for s in ("train", "query", "gallery")]

    first = _split(peta, name, seed=0, trial=0)
    assert key(first) == key(_split(peta, name, seed=0, trial=0))
    assert key(first) != key(_split(peta, name, seed=1, trial=0))
    assert key(first) != key(_split(peta, name, seed=0, trial=1))


@pytest.mark.parametrize("name", SMALL_BENCHMARKS)
def test_no_identity_is_in_both_train_and_test(peta, name):
    for trial in range(5):
        split = _split(peta, name, trial=trial)
        assert not _pids(split.train) & (_pids(split.query) | _pids(split.gallery))
        assert split.train and all(r.split == "train" for r in split.train)


def test_prid_protocol_sizes_and_distractors(peta):
    split = _split(peta, "prid")
    test = _pids(split.query)
    assert len(test) == 4 and all(r.camid == 1 for r in split.query) and all(r.camid == 2 for r in split.gallery)
    assert _pids(split.gallery) == test | set(PRID_B_ONLY)  # distractors keep their pids, gallery only
    assert not _pids(split.query) & set(PRID_B_ONLY) and not _pids(split.train) & {*PRID_A_ONLY, *PRID_B_ONLY}
    assert _pids(split.train) == set(PRID_PAIRED) - test and len(split.train) == 2 * (len(PRID_PAIRED) - 4)
    assert trial_sizes(split) == {"num_query": 4, "num_gallery": 4 + len(PRID_B_ONLY), "test_ids": 4}


def test_grid_protocol_sizes_and_distractors(peta):
    split = _split(peta, "grid")
    test = _pids(split.query)
    assert all(r.path.name.split("_")[1] == "1" for r in split.query)  # the probe view: first by file name
    assert _pids(split.gallery) == test | set(GRID_SINGLE)
    assert not _pids(split.query) & set(GRID_SINGLE) and not _pids(split.train) & set(GRID_SINGLE)
    assert _pids(split.train) == set(GRID_PAIRED) - test
    assert trial_sizes(split) == {"num_query": 3, "num_gallery": 3 + len(GRID_SINGLE), "test_ids": 3}


def test_ilids_query_and_gallery_are_different_images_of_one_identity(peta):
    for trial in range(5):
        split = _split(peta, "ilids", trial=trial)
        assert trial_sizes(split) == {"num_query": 4, "num_gallery": 4, "test_ids": 4}
        assert [r.pid for r in split.query] == [r.pid for r in split.gallery]
        assert all(q.path != g.path and q.camid != g.camid for q, g in zip(split.query, split.gallery))
        assert _pids(split.train) == set(ILIDS_IMAGES) - _pids(split.query)  # 9, seen once, is training


def test_too_few_identities_is_a_clear_error(peta):
    dataset = load_dataset(f"prid:{peta / 'PRID'}")
    with pytest.raises(DiffreidError, match="8 ids seen by both cameras, the protocol needs 100"):
        small_split("prid", dataset, 0, 0)


@pytest.mark.parametrize("name", SMALL_BENCHMARKS)
def test_exported_lists_read_back_identically(peta, tmp_path, name):
    split = _split(peta, name)
    folder = export_lists(split, tmp_path / "trial-0", seed=0, trial=0)
    back = load_dataset(f"list:{folder}")
    assert not back.problems
    for part in ("train", "query", "gallery"):
        assert [(r.path.resolve(), r.pid, r.camid, r.split) for r in back.split(part)] == \
               [(r.path.resolve(), r.pid, r.camid, r.split) for r in split.split(part)]
    assert (folder / "query.csv").read_text().splitlines()[0] == "path,pid,camid"
    assert json.loads((folder / "split.json").read_text())["source"] == str((peta / FOLDERS[name]).resolve())
    export_lists(split, folder)  # again over the same folder: the link is kept, nothing fails


def test_cli_end_to_end_with_color_histogram(peta, tmp_path, monkeypatch, capsys):
    for name, n in SMALL_TEST_IDS.items():
        monkeypatch.setitem(TEST_IDS, name, n)
    out = tmp_path / "bench"
    assert main(["benchmark", "small", "--model", "color-histogram", "--out", str(out), "--trials", "3",
                 "--peta", str(peta), "--list"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["protocol"] == "zero-shot DG" and results["trials"] == 3
    prid = results["models"]["color-histogram"]["prid"]
    assert len(prid["trials"]) == 3 and (prid["num_query"], prid["num_gallery"], prid["test_ids"]) == (4, 9, 4)
    assert set(prid["mean"]) >= {"rank1", "rank5", "mAP"} and set(prid["std"]) == set(prid["mean"])
    assert set(results["models"]["color-histogram"]) == set(SMALL_BENCHMARKS)
    table = (out / "results.md").read_text()
    assert "| color-histogram | grid |" in table and "3 / 8 (3)" in table
    assert "results.md" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "splits" / "ilids").iterdir()) == ["trial-0", "trial-1", "trial-2"]


def test_cli_refuses_mit_and_names_a_missing_folder(peta, tmp_path, capsys):
    assert main(["benchmark", "small", "--model", "color-histogram", "--out", str(tmp_path / "x"),
                 "--peta", str(peta), "--datasets", "mit"]) == 2
    assert "MIT set has no identities" in capsys.readouterr().err
    assert main(["benchmark", "small", "--model", "color-histogram", "--out", str(tmp_path / "x"),
                 "--peta", str(tmp_path), "--datasets", "grid"]) == 2
    assert "GRID/ folder under --peta" in capsys.readouterr().err
    with pytest.raises(DiffreidError, match="model not found"):
        run(["no-such-model.onnx"], tmp_path / "x", root=peta, datasets=["ilids"])


def test_published_sizes_on_the_real_sets(shared_data):
    expected = {"prid": (100, 649), "grid": (125, 900), "ilids": (60, 60)}
    for name, (queries, gallery) in expected.items():
        dataset = load_dataset(f"{name}:{shared_data / 'peta' / FOLDERS[name]}")
        split = small_split(name, dataset, seed=0, trial=0)
        assert trial_sizes(split) == {"num_query": queries, "num_gallery": gallery, "test_ids": queries}


def test_a_backbone_is_compared_at_the_size_given_or_its_default(peta, tmp_path, monkeypatch):
    monkeypatch.setitem(TEST_IDS, "ilids", SMALL_TEST_IDS["ilids"])
    save_file(create_backbone("resnet18").state_dict(), tmp_path / "backbone.safetensors")
    model = str(tmp_path / "backbone.safetensors")
    assert main(["benchmark", "small", "--model", model, "--out", str(tmp_path / "small"), "--trials", "2",
                 "--peta", str(peta), "--datasets", "ilids", "--input-size", "64x32"]) == 0
    results = json.loads((tmp_path / "small" / "results.json").read_text())
    assert results["models"][model]["ilids"]["input_size"] == [64, 32]
    default = run([model], tmp_path / "default", trials=2, root=peta, datasets=["ilids"])
    assert default["models"][model]["ilids"]["input_size"] == [256, 128]


def test_a_rerun_keeps_unchanged_models_and_redoes_a_changed_one(peta, tmp_path, monkeypatch):
    import os

    import diffreid.small_benchmark as small_benchmark

    monkeypatch.setitem(TEST_IDS, "ilids", SMALL_TEST_IDS["ilids"])
    weights = tmp_path / "backbone.safetensors"
    save_file(create_backbone("resnet18").state_dict(), weights)
    models, out = ["color-histogram", str(weights)], tmp_path / "small"
    first = run(models, out, trials=2, root=peta, datasets=["ilids"], input_size=(64, 32))
    loaded = []
    real_load = small_benchmark.load_model
    monkeypatch.setattr(small_benchmark, "load_model", lambda spec, size=None: loaded.append(spec) or
                        real_load(spec, size))
    again = run(models, out, trials=2, root=peta, datasets=["ilids"], input_size=(64, 32))
    assert loaded == [] and again["models"] == first["models"]
    # a retrained model (new weights at the same path) is benchmarked again; the other is kept
    save_file(create_backbone("resnet18").state_dict(), weights)
    os.utime(weights, ns=(1, 1))
    run(models, out, trials=2, root=peta, datasets=["ilids"], input_size=(64, 32))
    assert loaded == [str(weights)]
    # another protocol (trials) or input size redoes every model
    loaded.clear()
    run(models, out, trials=3, root=peta, datasets=["ilids"], input_size=(64, 32))
    assert loaded == models
    loaded.clear()
    run(models, out, trials=3, root=peta, datasets=["ilids"])
    assert loaded == models


def test_labelled_rows_go_to_the_results_table_and_compare_over_seeds(peta, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(TEST_IDS, "ilids", SMALL_TEST_IDS["ilids"])
    weights = tmp_path / "backbone.safetensors"
    save_file(create_backbone("resnet18").state_dict(), weights)
    table = tmp_path / "results"
    args = ["benchmark", "small", "--model", "color-histogram", "--model", str(weights), "--out", str(tmp_path / "s"),
            "--trials", "2", "--peta", str(peta), "--datasets", "ilids", "--table", str(table)]
    assert main([*args, "--label", "floor"]) == 2  # one label for two models: refused before any work
    assert "1 --label for 2 --model" in capsys.readouterr().err and not (tmp_path / "s").exists()
    assert main([*args, "--label", "floor", "--label", "imagenet"]) == 0
    rows = {row["init"]: row for row in read_table(table)}
    assert set(rows) == {"floor", "imagenet"} and rows["floor"]["setting"] == "zero-shot DG"
    assert rows["imagenet"]["test"] == "ilids (2 trials)"
    assert (rows["imagenet"]["queries"], rows["imagenet"]["gallery"]) == ("4", "4")
    assert json.loads(rows["imagenet"]["config"])["seed"] is None  # a file: one fixed model
    assert "[fixed]" in compare(table, baseline="floor")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("seed: 2\n")
    assert model_seed(str(run_dir)) == 2 and model_seed(str(weights)) is None


def test_a_model_given_twice_is_refused(peta, tmp_path):
    with pytest.raises(DiffreidError, match="given more than once"):
        run(["color-histogram", "color-histogram"], tmp_path / "x", root=peta, datasets=["ilids"])
