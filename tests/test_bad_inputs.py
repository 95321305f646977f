"""Bad inputs in a whole `diffreid run`: each named in a clear message, the run completes with the rest."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from diffreid.cli import main
from diffreid.config import SynthConfig
from diffreid.data.synth import synthesize

from pipeline_configs import tiny_config, write_config


@pytest.fixture(scope="module")
def damaged_source(tmp_path_factory):
    """Procedural persons with a corrupt JPEG, a zero-byte file, a misnamed file and a one-image identity."""
    folder = tmp_path_factory.mktemp("damaged")
    root = synthesize(SynthConfig(out=folder / "clean", identities=8, seed=0))
    shutil.copytree(root, folder / "source")
    train = sorted((folder / "source" / "bounding_box_train").glob("*.jpg"))
    by_pid: dict[str, list] = {}
    for path in train:
        by_pid.setdefault(path.name[:4], []).append(path)
    first, second, lonely = sorted(by_pid)[:3]
    corrupt, empty = by_pid[first][0], by_pid[second][0]
    corrupt.write_bytes(corrupt.read_bytes()[:200])  # a truncated JPEG
    empty.write_bytes(b"")
    for path in by_pid[lonely][1:]:  # an identity with one image left
        path.unlink()
    (folder / "source" / "bounding_box_train" / "holiday_photo.jpg").write_bytes(by_pid[first][1].read_bytes())
    return folder / "source", {"corrupt": corrupt.name, "empty": empty.name, "lonely": int(lonely)}


def test_a_run_reports_each_bad_input_and_completes(damaged_source, tiny_base, tmp_path, caplog):
    source, damage = damaged_source
    config = write_config(tmp_path, tiny_config(
        tiny_base, sources=[{"name": "source", "data": f"market1501:{source}"}],
        settings=[{"name": "supervised"}]))
    out = tmp_path / "run"
    caplog.set_level(logging.WARNING)
    assert main(["run", str(config), "--out", str(out), "--until", "caption"]) == 0
    captions = out / "sources" / "source" / "captions" / "captions.jsonl"
    lines = captions.read_text().splitlines()
    captions.write_text("\n".join([lines[0], '{"image": "bounding_box_train/broken', *lines[1:]]) + "\n")

    assert main(["run", str(config), "--out", str(out)]) == 0
    messages = "\n".join(record.getMessage() for record in caplog.records)
    assert "holiday_photo.jpg" in messages  # misnamed: skipped by the reader, named
    assert damage["corrupt"] in messages and damage["empty"] in messages  # unreadable: named, skipped
    assert f"{captions}:2: not valid JSON" in messages  # the broken caption line, by file and line
    report = json.loads((out / "report.json").read_text())
    assert set(report["results"]) == {"scratch", "source-only", "diff-person"}
    generated = [json.loads(line)["pid"] for line in
                 (out / "sources" / "source" / "generated" / "manifest.jsonl").read_text().splitlines()]
    assert damage["lonely"] in generated  # the one-image identity was learnt and generated too
