"""`diffreid evaluate` with ONNX Re-ID models: the real OSNet on CUHK01, and tiny built models."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffreid.cli import main
from diffreid.errors import DiffreidError
from diffreid.reid.onnx_model import OnnxReidModel


def _colour_model(path: Path, batch, height, width) -> Path:
    """An ONNX model whose feature is the mean colour of the image: it ranks by colour."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["output"])],
        "mean_colour",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, height, width])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _colour_dataset(root: Path) -> Path:
    """A list-format dataset where each identity has its own colour; pid 3 has two shades."""
    colours = {1: (200, 30, 30), 2: (30, 200, 30), 3: (30, 30, 200)}
    rows = {"query": [], "gallery": []}
    for pid, colour in colours.items():
        for camid, split in ((1, "query"), (2, "gallery"), (3, "gallery")):
            name = f"img/{pid}_{camid}.png"
            shade = tuple(int(c * (0.9 if camid == 3 else 1.0)) for c in colour)
            (root / "img").mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32, 64), shade).save(root / name)
            rows[split].append((name, pid, camid))
    for split, entries in rows.items():
        with open(root / f"{split}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "pid", "camid"])
            writer.writerows(entries)
    return root


@pytest.mark.parametrize("batch", [1, 2, "N"])
def test_onnx_model_batches_and_reads_input_size(tmp_path, batch):
    model = OnnxReidModel(_colour_model(tmp_path / "m.onnx", batch, 16, 8))
    assert model.input_size == (16, 8)
    images = np.random.default_rng(0).integers(0, 256, size=(5, 16, 8, 3), dtype=np.uint8)
    features = model(images)
    expected = ((images / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])).mean((1, 2))
    np.testing.assert_allclose(features, expected, atol=1e-5)


def test_onnx_model_input_size_given_when_dynamic(tmp_path):
    path = _colour_model(tmp_path / "m.onnx", "N", "H", "W")
    with pytest.raises(DiffreidError, match="--input-size"):
        OnnxReidModel(path)
    assert OnnxReidModel(path, input_size=(32, 16)).input_size == (32, 16)
    with pytest.raises(DiffreidError, match="fixes its input"):
        OnnxReidModel(_colour_model(tmp_path / "f.onnx", 1, 16, 8), input_size=(32, 16))


def test_evaluate_writes_results_and_rank_lists(tmp_path, capsys):
    data = _colour_dataset(tmp_path / "data")
    model = _colour_model(tmp_path / "m.onnx", "N", 16, 8)
    out = tmp_path / "run"
    assert main(["evaluate", "--model", str(model), "--data", f"list:{data}", "--out", str(out),
                 "--rank-lists", "2", "--metric", "euclidean"]) == 0
    assert "mAP: 100.0%" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["mAP"] == pytest.approx(1.0) and results["mINP"] == pytest.approx(1.0)
    assert len(results["cmc"]) == 50 and results["cmc"][0] == pytest.approx(1.0)
    assert results["num_query"] == 3 and results["num_gallery"] == 6
    pictures = sorted((out / "rank_lists").glob("*.png"))
    assert len(pictures) == 2
    picture = np.asarray(Image.open(pictures[0]))
    green = (picture[..., 1] > 150) & (picture[..., 0] < 50) & (picture[..., 2] < 50)
    assert green.any(), "true matches are framed green"


def test_evaluate_rerank_streams_and_draws_rank_lists(tmp_path, capsys):
    data = _colour_dataset(tmp_path / "data")
    model = _colour_model(tmp_path / "m.onnx", "N", 16, 8)
    out = tmp_path / "run"
    assert main(["evaluate", "--model", str(model), "--data", f"list:{data}", "--out", str(out),
                 "--rank-lists", "3", "--metric", "euclidean", "--rerank"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert 0 < results["mAP"] <= 1 and results["config"]["rerank"] is True
    assert len(sorted((out / "rank_lists").glob("*.png"))) == 3


def test_evaluate_unknown_model_is_a_clear_error(tmp_path, capsys):
    data = _colour_dataset(tmp_path / "data")
    assert main(["evaluate", "--model", str(tmp_path / "missing.onnx"), "--data", f"list:{data}"]) == 2
    assert "missing.onnx" in capsys.readouterr().err


@pytest.mark.slow
def test_osnet_onnx_reproduces_published_cuhk01_numbers(shared_data, tmp_path):
    """../shared/data/README.md: Rank-1 67.1%, Rank-5 84.1%, mAP 66.9%, mINP 59.0% (±0.3 points)."""
    out = tmp_path / "run"
    main(["evaluate", "--model", str(shared_data / "models" / "osnet_x0_25_msmt17.onnx"),
          "--data", f"cuhk01:{shared_data / 'cuhk01'}", "--out", str(out)])
    results = json.loads((out / "results.json").read_text())
    assert results["num_query"] == 1942 and results["num_gallery"] == 1942
    assert abs(100 * results["cmc"][0] - 67.1) <= 0.3
    assert abs(100 * results["cmc"][4] - 84.1) <= 0.3
    assert abs(100 * results["mAP"] - 66.9) <= 0.3
    assert abs(100 * results["mINP"] - 59.0) <= 0.3
