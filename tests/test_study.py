"""`diffreid study`: each question's variants made from a finished run, redoing only what they change."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from diffreid.cli import main
from diffreid.errors import DiffreidError
from diffreid.pipeline import run
from diffreid.pipeline.study import threshold_keeping

from pipeline_configs import tiny_config, write_config


@pytest.fixture(scope="module")
def studied(tiny_base, tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    finished = run(write_config(folder, tiny_config(tiny_base, settings=[{"name": "supervised"}])), folder / "run")
    assert main(["study", str(finished), "--out", str(folder / "study"), "--keep", "1", "0.5", "0.06",
                 "--lengths", "1"]) == 0
    return finished, folder / "study"


def test_every_question_gets_its_rows(studied):
    _, out = studied
    rows = {row["variant"]: row for row in json.loads((out / "study.json").read_text())["rows"]}
    assert list(rows) == ["run", "ctf-1", "ctf-0.5", "ctf-0.06", "data-both", "sequence-1", "no-iir", "no-di"]
    # one image kept is one identity, too few to pre-train on: reported, and the study went on
    assert "needs at least 2 identities, found 1" in rows.pop("ctf-0.06")["error"]
    for row in rows.values():
        assert set(row["results"]) == {"supervised"} and 0 <= row["results"]["supervised"]["mAP"] <= 1
    for name in ("run", "sequence-1", "no-iir", "no-di"):  # each with a generator of its own is judged
        judged = rows[name]["consistency"]["source"]
        assert 0 <= judged["closer_to_own"] <= 1 and judged["spread"] >= 0
    table = (out / "study.md").read_text()
    assert table.count("\n") == 2 + len(rows) + 1 + 2  # header, rows, the failed one, the baselines
    assert "| ctf | 0.06 | not measured: " in table
    for name in ("ctf.png", "sequence.png", "grid-di-iir.png", "study.log"):
        assert (out / name).is_file(), name
    # measured variants keep their weights, not their resume points; the failed one keeps what it had
    assert {path.relative_to(out).parts[0] for path in out.rglob("checkpoints")} <= {"ctf-0.06"}


def test_ctf_variants_keep_the_fraction_asked_of_the_run_images(studied):
    finished, out = studied
    rows = {row["variant"]: row for row in json.loads((out / "study.json").read_text())["rows"]}
    scored = rows["ctf-1"]["generated"] - json.loads(
        (out / "ctf-1" / "diff-person" / "filter_report.json").read_text())["dropped"]["near_duplicate"]
    assert rows["ctf-1"]["kept"] == scored >= rows["run"]["kept"]  # without the CTF all scored images stay
    assert abs(rows["ctf-0.5"]["kept"] - scored / 2) <= 1
    assert (out / "ctf-0.5" / "sources" / "source" / "generated").resolve() == \
        (finished / "sources" / "source" / "generated").resolve()  # the run's images, not made again
    trained = json.loads((out / "ctf-0.5" / "settings" / "diff-person" / "supervised" / "results.json").read_text())
    assert str(out / "ctf-0.5" / "pretrain" / "diff-person") in json.dumps(trained["config"])


def test_generator_variants_change_what_they_say(studied):
    _, out = studied
    generators = {name: out / name / "sources" / "source" / "generator" for name in ("no-iir", "no-di", "sequence-1")}
    assert json.loads((generators["no-iir"] / "generator.json").read_text())["identity_tokens"] == 0
    made = [json.loads(line) for line in (out / "no-iir" / "sources" / "source" / "generated" /
                                          "manifest.jsonl").read_text().splitlines()]
    assert made and all("<id_" not in entry["prompt"] for entry in made)
    made = [json.loads(line) for line in (out / "no-di" / "sources" / "source" / "generated" /
                                          "manifest.jsonl").read_text().splitlines()]
    assert made and all(not entry["injected"] for entry in made)
    assert not (generators["no-di"] / "reference_set").exists()  # no FSPP loss: no reference set made
    sequence = json.loads((generators["sequence-1"] / "generator.json").read_text())
    assert sequence["images_per_identity"] == 1 and sequence["input_images"] == 4  # one of each of 4 identities
    both = json.loads((out / "data-both" / "pretrain" / "diff-person" / "manifest.json").read_text())
    assert len(both["config"]["data"]) == 2  # Diff-Person and the raw source images


def test_study_again_measures_nothing_new(studied):
    finished, out = studied
    before = (out / "study.json").read_text()
    tick = time.time()
    assert main(["study", str(finished), "--out", str(out), "--keep", "1", "0.5", "0.06", "--lengths", "1"]) == 0
    assert time.time() - tick < 60 and (out / "study.json").read_text() == before  # the failed one tried again
    assert (out / "study.log").read_text().count("measured in an earlier study") >= 7


def test_threshold_keeping_and_bad_studies(tmp_path):
    scores = np.arange(100, dtype=float)
    assert (scores >= threshold_keeping(scores, 0.2)).sum() == 20
    assert (scores >= threshold_keeping(scores, 1.0)).all()
    with pytest.raises(DiffreidError, match="kept fraction"):
        threshold_keeping(scores, 0)
    assert main(["study", str(tmp_path), "--out", str(tmp_path / "s")]) == 2  # not a finished run
