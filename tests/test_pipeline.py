"""`diffreid run`: every stage from one config on procedural persons and a tiny miniature; the
report (opened in headless Chromium), resume, SIGKILL at random points, bad config."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from diffreid.errors import DiffreidError
from diffreid.pipeline import run
from diffreid.pipeline.spec import load_run_spec, preset_path

from pipeline_configs import tiny_config, tree_hashes, write_config


@pytest.fixture(scope="module")
def finished_run(tiny_base, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline")
    out = run(write_config(folder, tiny_config(tiny_base)), folder / "run")
    return out


def test_run_writes_every_stage_and_the_report(finished_run):
    report = json.loads((finished_run / "report.json").read_text())
    assert set(report["stages"]) == {"datasets", "caption", "finetune", "generate", "source-only", "filter",
                                     "pretrain", "settings"}  # the report's own time is in run.json
    assert all(entry["seconds"] >= 0 for entry in report["stages"].values())
    assert report["counts"]["source_identities"] == 4 and report["counts"]["generated"] == 16
    assert 0 < report["counts"]["kept"] < 16
    assert set(report["results"]) == {"scratch", "source-only", "diff-person"}
    for per_init in report["results"].values():
        assert set(per_init) == {"supervised", "few-shot"}
        assert all(0 <= v["mAP"] <= 1 and 0 <= v["rank1"] <= 1 for v in per_init.values())
    assert report["claim"]["answer"] in ("yes", "no", "partly")
    assert "diff-person mAP" in report["claim"]["text"]
    for name in ("diff-person/bounding_box_train", "pretrain/source-only/backbone.safetensors",
                 "pretrain/diff-person/backbone.safetensors", "results/results.csv", "run.log", "config.yaml"):
        assert (finished_run / name).exists(), name
    assert not list(finished_run.rglob("checkpoints"))  # finished stages keep their weights, not their resume points


def test_report_html_is_self_contained_and_renders_in_chromium(finished_run, tmp_path):
    page = (finished_run / "report.html").read_text()
    assert "src='http" not in page and "src=\"http" not in page  # nothing fetched
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have Debian's chromium (.ci/run installs it)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          (finished_run / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert 'id="grids"' in dom and 'id="results"' in dom
    grids = dom[dom.index('id="grids"'):dom.index("</table>", dom.index('id="grids"'))]
    assert grids.count("<tr>") == 1 + 3  # header + the report's 3 identities
    assert grids.count("data:image/jpeg;base64,") >= 3 * 2  # input and generated images in every row
    results = dom[dom.index('id="results"'):dom.index("</table>", dom.index('id="results"'))]
    assert all(init in results for init in ("scratch", "source-only", "diff-person"))
    assert "data:image/png;base64," in dom  # score histogram and curves


def test_run_again_skips_every_finished_stage(finished_run):
    before = (finished_run / "run.json").read_text()
    tick = time.time()
    run(finished_run.parent / "run.yaml", finished_run)
    assert time.time() - tick < 30
    log = (finished_run / "run.log").read_text()
    assert log.count("done in an earlier run") >= 9
    assert json.loads((finished_run / "run.json").read_text())["stages"]["settings"] == \
        json.loads(before)["stages"]["settings"]


def test_a_changed_filter_reruns_filter_and_what_follows_from_nothing(finished_run, tiny_base):
    before = json.loads((finished_run / "diff-person" / "filter_report.json").read_text())
    config = finished_run.parent / "stricter.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tiny_base, filter={"score": "cosine", "percentile": 20})))
    run(config, finished_run)
    log = (finished_run / "run.log").read_text().split("stage datasets")[-1]  # this start's lines
    assert log.count("done in an earlier run") == 5  # datasets ... source-only
    assert "stage filter: its config changed" in log
    after = json.loads((finished_run / "diff-person" / "filter_report.json").read_text())
    assert after["kept"] < before["kept"]
    kept = len(list((finished_run / "diff-person" / "bounding_box_train").iterdir()))
    assert kept == after["kept"]  # no image of the old bar left behind
    report = json.loads((finished_run / "report.json").read_text())
    assert report["counts"]["kept"] == after["kept"]
    trained = (finished_run / "pretrain" / "diff-person" / "train.log").read_text()
    assert "resuming" not in trained  # pre-trained again from nothing on the new Diff-Person


def test_a_changed_section_reruns_its_stage_and_the_ones_after(tiny_base, tmp_path):
    from diffreid.pipeline.runner import digests

    base = tiny_config(tiny_base)
    changed = tiny_config(tiny_base, filter={"score": "cosine", "percentile": 20})
    a = digests(load_run_spec(write_config(tmp_path, base)))
    b = digests(load_run_spec(write_config(tmp_path, changed)))
    assert [s for s in a if a[s] == b[s]] == ["datasets", "caption", "finetune", "generate", "source-only"]
    scored = tiny_config(tiny_base, sources=[{**base["sources"][0], "scorer": "osnet.onnx"}])
    c = digests(load_run_spec(write_config(tmp_path, scored)))  # a scorer is the filter's: images are kept
    assert [s for s in a if a[s] == c[s]] == ["datasets", "caption", "finetune", "generate", "source-only"]


@pytest.mark.parametrize("change, message", [
    ({"sorces": []}, "unknown key(s) sorces"),
    ({"target": {"data": "market1501:/nowhere/at/all"}}, "/nowhere/at/all does not exist; fix the path"),
    ({"generate": {"per_identiy": 3}}, "generate: unknown option(s) per_identiy"),
    ({"pretrain": {"preset": "no-such-preset"}}, "no such training preset"),
    ({"inits": ["scratch", "imagenet"]}, "needs `imagenet:`"),
    ({"settings": [{"name": "semi-supervised"}]}, "settings[0]: `name` must be one of"),
    ({"keep_checkpoints": "yes"}, "`keep_checkpoints` is true or false"),
])
def test_a_bad_config_stops_before_any_work(tiny_base, tmp_path, change, message):
    path = write_config(tmp_path, tiny_config(tiny_base, **change))
    with pytest.raises(DiffreidError) as error:
        run(path, tmp_path / "out")
    assert message in str(error.value) and str(path) in str(error.value)
    assert not (tmp_path / "out").exists()


def test_keep_checkpoints_keeps_a_finished_stages_resume_points(tiny_base, tmp_path):
    out = run(write_config(tmp_path, tiny_config(tiny_base, keep_checkpoints=True)), tmp_path / "run", until="finetune")
    assert list((out / "sources" / "source" / "generator" / "checkpoints").glob("step-*"))


def test_presets_are_valid_configs():
    for name in ("demo-quick", "demo-full"):
        spec = load_run_spec(preset_path(name))
        assert spec.finetune["base_model"] == "tiny" and spec.sources[0].synth and spec.target.synth
    with pytest.raises(DiffreidError, match="does not exist; fix the path"):  # its datasets are the user's
        load_run_spec(preset_path("paper"))


def test_presets_ship_inside_the_package():
    """`pip install diffreid` (a wheel, no source tree) must still find every preset."""
    import tomllib

    import diffreid
    from diffreid.config import TRAIN_PRESETS

    package = Path(diffreid.__file__).parent
    assert preset_path("demo-quick").parent == package / "configs" and TRAIN_PRESETS.parent == package / "configs"
    root = package.parent / "pyproject.toml"
    if not root.is_file():
        pytest.skip("installed from a wheel: no pyproject.toml beside the package")
    globs = tomllib.loads(root.read_text())["tool"]["setuptools"]["package-data"]["diffreid"]
    presets = sorted((package / "configs").rglob("*.yaml"))
    assert len(presets) >= 4
    for preset in presets:
        assert any(preset.relative_to(package).match(glob) for glob in globs), f"{preset} is not package data"


def _run_until_filter(config: Path, out: Path, kill_when=None) -> int:
    """`diffreid run --until filter` in a subprocess; SIGKILL it once `kill_when()` holds."""
    process = subprocess.Popen([sys.executable, "-m", "diffreid", "run", str(config), "--out", str(out),
                                "--until", "filter"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while process.poll() is None:
        if kill_when is not None and kill_when():
            process.send_signal(signal.SIGKILL)
            process.wait()
            return -signal.SIGKILL
        time.sleep(0.02)
    return process.returncode


def test_sigkill_in_generate_and_filter_then_restart_gives_the_same_dataset(tiny_base, tmp_path):
    config = write_config(tmp_path, tiny_config(tiny_base, generate={"per_identity": 6, "steps": 3, "batch_size": 1}))
    out = tmp_path / "run"
    assert _run_until_filter(config, out) == 0
    expected_generated = tree_hashes(out / "sources" / "source" / "generated")
    expected = tree_hashes(out / "diff-person")
    shutil.rmtree(out)

    rng = random.Random(0)
    images = out / "sources" / "source" / "generated" / "images"
    kept = out / "diff-person" / "bounding_box_train"
    kills = 0
    for target in sorted(rng.sample(range(1, 23), 2)):  # random points in generate: after k of its 24 images
        if _run_until_filter(config, out, lambda: len(list(images.rglob("*.png"))) >= target) == -signal.SIGKILL:
            kills += 1
    for target in sorted(rng.sample(range(1, 5), 2)):  # and in filter: after k of the kept images
        if _run_until_filter(config, out, lambda: kept.is_dir() and len(list(kept.iterdir())) >= target) \
                == -signal.SIGKILL:
            kills += 1
    assert kills >= 3  # the points fell inside the stages
    assert _run_until_filter(config, out) == 0
    assert tree_hashes(out / "sources" / "source" / "generated") == expected_generated
    assert tree_hashes(out / "diff-person") == expected
    assert not list(out.rglob("*.tmp"))  # nothing half-written left behind


def test_demo_on_a_real_target_generates_from_its_own_training_identities(tmp_path):
    from diffreid.pipeline.spec import demo_overrides

    (tmp_path / "cuhk01").mkdir()
    weights = tmp_path / "mobilenet.safetensors"
    weights.write_bytes(b"")
    preset = preset_path("demo-full")
    overrides = demo_overrides(preset, f"cuhk01-485:{tmp_path / 'cuhk01'}", str(weights))
    spec = load_run_spec(preset, overrides)
    assert spec.sources[0].data == spec.target.data == f"cuhk01-485:{tmp_path / 'cuhk01'}"
    assert spec.caption["captioner"] == "fixed"  # CUHK01 carries no attributes
    assert spec.inits[-2:] == ["imagenet", "imagenet+diff-person"] and spec.backbone == "mobilenet_v2"
    assert spec.sources[0].scorer is None
    scorer = tmp_path / "osnet.onnx"
    spec = load_run_spec(preset, demo_overrides(preset, f"cuhk01-485:{tmp_path / 'cuhk01'}", str(weights),
                                                scorer=str(scorer)))
    assert spec.sources[0].scorer == str(scorer) and spec.sources[0].data == spec.target.data


def test_claim_weighs_the_baselines_and_the_papers_imagenet_comparison():
    from diffreid.report.summary import claim

    def r(m):
        return {"mAP": m, "rank1": m}

    results = {"scratch": {"supervised": r(0.02), "few-shot": r(0.01)},
               "source-only": {"supervised": r(0.14), "few-shot": r(0.05)},
               "diff-person": {"supervised": r(0.09), "few-shot": r(0.06)}}
    plain = claim(results)
    assert plain["answer"] == "partly" and "imagenet" not in plain  # 3 of 4: loses supervised to source-only
    assert [row["beats source-only"] for row in plain["settings"]] == [False, True]
    results |= {"imagenet": {"supervised": r(0.31), "few-shot": r(0.13)},
                "imagenet+diff-person": {"supervised": r(0.45), "few-shot": r(0.12)}}
    paper = claim(results)
    assert paper["answer"] == "partly" and paper["imagenet"]["answer"] == "partly"
    assert "won 1 of 2 (partly): supervised 45.0% against 31.0%; few-shot 12.0% against 13.0%" in paper["text"]
