"""Scale-out: caption, generate and filter launched on 2 CPU processes with torchrun (each rank its
shard of the identities, rank 0 merges) equal a single-process run, file for file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from diffreid.pipeline import run

from pipeline_configs import tiny_config, tree_hashes, write_config


@pytest.fixture(scope="module")
def stages(tiny_base, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scaleout")
    return run(write_config(folder, tiny_config(tiny_base)), folder / "run", until="filter")


def _command(args: list[str], processes: int) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # what torchrun gives each rank; the same for the single run
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                "-m"] if processes > 1 else [sys.executable, "-m"]
    done = subprocess.run([*launcher, "diffreid", *args], env=env, check=True, capture_output=True, text=True,
                          timeout=600)
    return done.stderr


@pytest.mark.parametrize("stage", ["caption", "generate", "filter"])
def test_two_processes_write_what_one_does(stages, tmp_path, stage):
    source = f"market1501:{stages / 'datasets' / 'source'}"
    args = {"caption": ["caption", "--data", source, "--captioner", "attributes"],
            "generate": ["generate", "--generator", str(stages / "sources" / "source" / "generator"),
                         "--per-identity", "3", "--steps", "2", "--batch-size", "2"],
            "filter": ["filter", "--generated", str(stages / "sources" / "source" / "generated"),
                       "--scorer", f"{source}={stages / 'pretrain' / 'source-only'}"]}[stage]
    _command([*args, "--out", str(tmp_path / "one")], 1)
    log = _command([*args, "--out", str(tmp_path / "two")], 2)
    if stage != "caption":  # each rank said which shard it took
        assert "shard 1/2" in log and "shard 2/2" in log
    one, two = tree_hashes(tmp_path / "one"), tree_hashes(tmp_path / "two")
    assert one == two
    merged = {"caption": "captions.jsonl", "generate": "manifest.jsonl", "filter": "filter_report.json"}[stage]
    assert merged in one and (tmp_path / "two" / "manifest.json").is_file()
