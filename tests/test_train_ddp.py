"""Data-parallel training: two CPU processes on gloo, launched as users launch them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from diffreid.reid import load_reid_model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_run_keeps_the_contract(tiny_persons, tmp_path):
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(_free_port()), "-m", "diffreid", "train", "--data", f"market1501:{tiny_persons}",
               "--preset", "cpu-tiny", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 processes" in (out / "train.log").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["processes"] == 2
    # one writer: one row per epoch, and the final weights are the last checkpoint's
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    tensors = load_file(out / "checkpoints" / "epoch-0002" / "model.safetensors")
    final = load_file(out / "model.safetensors")
    assert final.keys() == tensors.keys() and all(torch.equal(final[k], tensors[k]) for k in final)
    model = load_reid_model(str(out))
    features = model(np.zeros((2, *model.input_size, 3), np.uint8))
    assert features.shape == (2, 512) and np.isfinite(features).all()
