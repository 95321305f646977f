"""Identity consistency and spread of generated images, judged by a Re-ID model nobody here trained."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from diffreid.cli import main
from diffreid.data import load_dataset
from diffreid.judges.consistency import identity_consistency, spread
from generated_dirs import split_by_camera, write_generated

OSNET = "models/osnet_x0_25_msmt17.onnx"


def test_spread_is_zero_for_copies_and_grows_with_variety():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(1, 8))
    copies = np.repeat(base, 4, axis=0)
    varied = base + rng.normal(size=(4, 8))
    pids = np.array([1, 1, 1, 1])
    assert abs(spread(copies, pids)) < 1e-6 and spread(varied, pids) > 0.05


def test_spread_compares_equal_counts_per_identity():
    """Drawn from one distribution, 24 images spread wider around their mean than 2 do: the
    count is fixed so generated (many per identity) and real (few) compare fairly."""
    rng = np.random.default_rng(1)
    many = rng.normal(size=(200 * 24, 16)) + 3
    pids = np.repeat(np.arange(200), 24)
    assert spread(many, pids) > 1.3 * spread(many, pids, per_identity=2)
    few = many.reshape(200, 24, 16)[:, :2].reshape(-1, 16)
    assert abs(spread(many, pids, per_identity=2) - spread(few, np.repeat(np.arange(200), 2))) < 1e-9


def test_true_views_are_consistent_and_relabelled_ones_are_not(shared_data, tmp_path, capsys):
    from diffreid.config import SynthConfig
    from diffreid.data.synth import synthesize

    persons = synthesize(SynthConfig(out=tmp_path / "persons", identities=20, seed=5))
    source, views = split_by_camera(persons, tmp_path / "source", {1, 2, 3})
    spec = f"market1501:{source}"
    pids = sorted(views)
    write_generated(tmp_path / "true", spec, [(pid, Image.open(p)) for pid in pids for p in views[pid][:4]])
    shifted = {pid: pids[(i + 1) % len(pids)] for i, pid in enumerate(pids)}
    write_generated(tmp_path / "wrong", spec, [(shifted[pid], Image.open(p)) for pid in pids for p in views[pid][:4]])
    model = str(shared_data / OSNET)
    true = identity_consistency(model, tmp_path / "true")["generated"]
    wrong = identity_consistency(model, tmp_path / "wrong")["generated"]
    assert true["own_centroid_cosine"] > true["nearest_other_centroid_cosine"]
    assert true["closer_to_own"] > 0.8 and true["rank1"] > 0.8
    assert wrong["closer_to_own"] < 0.2 and wrong["rank1"] < 0.2 and wrong["mAP"] < true["mAP"]
    for judged in (true, wrong):  # the share's 95% interval over the images holds it
        low, high = judged["closer_to_own_interval"]
        assert 0 <= low <= judged["closer_to_own"] <= high <= 1 and high - low < 0.5

    # the command: both folders at once, with one camera's real images as the reference to approach
    assert main(["consistency", "--generated", str(tmp_path / "true"), str(tmp_path / "wrong"), "--model", model,
                 "--reference-camera", "1", "--real-camera", "2", "--out", str(tmp_path / "judged.json")]) == 0
    judged = json.loads((tmp_path / "judged.json").read_text())
    assert list(judged) == [str(tmp_path / "true"), str(tmp_path / "wrong")]
    real = judged[str(tmp_path / "true")]["real"]
    assert 0 < real["images"] < len(load_dataset(spec).train) and real["rank1"] > 0.8
    assert judged[str(tmp_path / "true")]["generated"]["rank1"] > judged[str(tmp_path / "wrong")]["generated"]["rank1"]
    table = capsys.readouterr().out
    assert table.count("| real camera 2 (") == 1 and f"| {tmp_path / 'wrong'} (" in table


def test_comparison_grid_lays_out_inputs_and_each_generated_folder(tiny_persons, tmp_path):
    from diffreid.report.grids import comparison_grid

    spec = f"market1501:{tiny_persons}"
    train = load_dataset(spec).train
    pids = sorted({r.pid for r in train})[:2]
    red, blue = Image.new("RGB", (32, 64), (255, 0, 0)), Image.new("RGB", (32, 64), (0, 0, 255))
    write_generated(tmp_path / "with", spec, [(pid, red) for pid in pids for _ in range(3)])
    write_generated(tmp_path / "without", spec, [(pid, blue) for pid in pids for _ in range(3)])
    sheet = Image.open(comparison_grid([tmp_path / "with", tmp_path / "without"], pids, tmp_path / "grid.png",
                                       per_column=3, height=64))
    assert sheet.size == (3 * 3 * 32 + 2 * 8, 2 * 64)
    assert sheet.getpixel((3 * 32 + 8 + 5, 70)) == (255, 0, 0)  # second group, second row: "with"
    assert sheet.getpixel((2 * (3 * 32 + 8) + 5, 5)) == (0, 0, 255)  # third group: "without"
