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
from diffreid.run_spec import load_run_spec, preset_path

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
    # one seed: numbers, but no verdict; the test set's size beside them
    assert report["claim"]["answer"] == "not enough seeds" and report["claim"]["headline"] == "extra controls"
    assert "diff-person mAP" in report["claim"]["text"] and "not enough seeds to claim" in report["claim"]["text"]
    sizes = report["test_sets"]["supervised"]
    assert sizes["queries"] > 0 and sizes["gallery"] > 0 and 0 < sizes["identities"] <= 8
    assert f"{sizes['queries']} queries of {sizes['identities']} identities" in report["claim"]["text"]
    assert all(cell["seeds"] == 1 for per_init in report["over_seeds"].values() for cell in per_init.values())
    page = (finished_run / "report.html").read_text()
    assert "id='comparisons'" in page and "this project&#x27;s extra control" in page
    assert page.count(f"{sizes['queries']} queries of") >= 3  # beside both tables, and in the claim
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
    ({"seeds": [1, 2, 3]}, "must include the run's `seed` (0)"),
    ({"report": {"min_seeds": 1}}, "min_seeds is the number of seeds a claim needs, at least 2"),
    ({"report": {"min_seed": 3}}, "report: unknown key(s) min_seed"),
    ({"settings": [{"name": "supervised", "sources": ["source"]}]}, "`sources` is for uda and dg"),
    ({"settings": [{"name": "dg", "sources": ["elsewhere"]}]}, "sources elsewhere are not the run's"),
])
def test_a_bad_config_stops_before_any_work(tiny_base, tmp_path, change, message):
    path = write_config(tmp_path, tiny_config(tiny_base, **change))
    with pytest.raises(DiffreidError) as error:
        run(path, tmp_path / "out")
    assert message in str(error.value) and str(path) in str(error.value)
    assert not (tmp_path / "out").exists()


def _on_disk(tmp_path: Path, *names: str) -> list[Path]:
    folders = [tmp_path / name for name in names]
    for folder in folders:
        folder.mkdir(exist_ok=True)
    return folders


@pytest.mark.parametrize("name", ["uda", "dg"])
@pytest.mark.parametrize("target_format", ["market1501", "list"])  # the same images under another reader too
def test_uda_and_dg_with_the_target_among_the_sources_stop_before_any_work(tiny_base, tmp_path, name, target_format):
    """Before: accepted, and the run trained on the target's people and tested on them."""
    market, msmt = _on_disk(tmp_path, "market", "msmt")
    config = tiny_config(tiny_base, sources=[{"name": "market", "data": f"market1501:{market}"},
                                             {"name": "msmt", "data": f"msmt17:{msmt}"}],
                         target={"name": "market-target", "data": f"{target_format}:{market}"},
                         settings=[{"name": "supervised"}, {"name": name}])
    path = write_config(tmp_path, config)
    with pytest.raises(DiffreidError) as error:
        run(path, tmp_path / "out")
    message = str(error.value)
    assert str(path) in message and f"settings[1] ({name}): setting {name} trains on the sources" in message
    assert "same dataset as source market" in message and "give it `sources: [msmt]`" in message
    assert not (tmp_path / "out").exists()
    # the fix the message names: the setting trains on the other source only
    config["settings"][1]["sources"] = ["msmt"]
    spec = load_run_spec(write_config(tmp_path, config))
    from diffreid.pipeline.stages import setting_config

    made = setting_config(spec, tmp_path / "out", "scratch", spec.settings[1])
    assert made.data == (f"msmt17:{msmt}",) and made.target == f"{target_format}:{market}"


def test_the_paper_preset_is_valid_once_its_paths_exist(tmp_path):
    """configs/paper.yaml, its paths pointed at folders that exist: valid; as it was (uda and dg on
    all four sources, Market-1501 among them and the target): refused, naming the setting."""
    import re

    def on_disk(found):
        folder = tmp_path / found.group(1).strip("/").replace("/", "_")
        folder.mkdir(exist_ok=True)
        return str(folder)

    text = re.sub(r"(/(?:data|models)/[^\"\s,}]+)", on_disk, preset_path("paper").read_text())
    path = tmp_path / "paper.yaml"
    path.write_text(text)
    spec = load_run_spec(path)
    assert {s["name"] for s in spec.settings} >= {"supervised", "uda", "dg"} and len(spec.seeds) >= 3
    assert "imagenet" in spec.inits and "imagenet+diff-person" in spec.inits
    before = yaml.safe_load(text)
    before["settings"] = [{k: v for k, v in s.items() if k != "sources"} for s in before["settings"]]
    path.write_text(yaml.safe_dump(before))
    with pytest.raises(DiffreidError, match=r"settings\[5\] \(uda\): setting uda trains on the sources and tests on "
                                            "the target, but the target market1501-target is the same dataset as "
                                            "source market1501"):
        load_run_spec(path)


def test_the_filter_never_takes_the_test_splits_of_a_source_that_is_the_target(tiny_base, tmp_path):
    market, msmt = _on_disk(tmp_path, "market", "msmt")
    every = {"score": "cosine", "reference_splits": ["train", "query", "gallery"]}
    config = tiny_config(tiny_base, sources=[{"name": "market", "data": f"market1501:{market}"}],
                         target={"name": "target", "data": f"market1501:{market}"}, filter=every)
    path = write_config(tmp_path, config)
    with pytest.raises(DiffreidError, match="reference_splits .* would let the test identities of source market"):
        run(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # a source that is never the target may lend its test identities to the reference
    config["target"] = {"name": "target", "data": f"msmt17:{msmt}"}
    assert load_run_spec(write_config(tmp_path, config)).filter["reference_splits"] == ["train", "query", "gallery"]
    # by default the pipeline passes the training split only
    from diffreid.config import FilterConfig

    assert FilterConfig(generated=(), scorers=(), out=tmp_path).reference_splits == ("train",)


def test_a_filter_score_that_does_not_exist_is_refused_before_any_work(tiny_base, tmp_path):
    config = tiny_config(tiny_base, filter={"score": "cosinus"})
    with pytest.raises(DiffreidError, match="filter: score 'cosinus' is not a CTF score; scores: .*cosine.*margin"):
        run(write_config(tmp_path, config), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    config["filter"] = {"score": "margin"}
    assert load_run_spec(write_config(tmp_path, config)).filter["score"] == "margin"


def test_every_seed_has_its_own_runs(tiny_base, tmp_path):
    from diffreid.pipeline.runner import digests
    from diffreid.pipeline.stages import setting_config

    one = load_run_spec(write_config(tmp_path, tiny_config(tiny_base)))
    three = load_run_spec(write_config(tmp_path, tiny_config(tiny_base, seeds=[2, 0, 1])))
    a, b = digests(one), digests(three)
    assert [s for s in a if a[s] == b[s]] == ["datasets", "caption", "finetune", "generate", "source-only", "filter"]
    runs = [setting_config(three, tmp_path, "diff-person", three.settings[1], seed) for seed in (0, 1, 2)]
    assert [r.seed for r in runs] == [0, 1, 2] and all(r.overrides["seed"] == r.seed for r in runs)
    assert runs[0].out == tmp_path / "settings" / "diff-person" / "few-shot"
    assert runs[2].out == tmp_path / "seeds" / "2" / "settings" / "diff-person" / "few-shot"
    assert runs[2].init == str(tmp_path / "seeds" / "2" / "pretrain" / "diff-person" / "backbone.safetensors")
    assert {r.table for r in runs} == {tmp_path / "results"}  # one table of every seed's rows


def test_seeds_repeat_the_training_runs_and_the_report_weighs_them(tiny_base, tiny_persons, tmp_path, monkeypatch):
    """The stages' wiring with the training replaced by records of what would be trained."""
    import diffreid.settings
    from diffreid.config import config_dict
    from diffreid.pipeline import stages
    from diffreid.report.html import write_report_html
    from diffreid.report.summary import write_report_json

    out = tmp_path / "run"
    spec = load_run_spec(write_config(tmp_path, tiny_config(tiny_base, seeds=[0, 1, 2],
                                                            settings=[{"name": "supervised"}])))
    pretrained = []
    monkeypatch.setattr(stages, "pretrain_backbone", lambda seeded, run_dir, data, init: pretrained.append(
        (seeded.seed, run_dir.relative_to(out).as_posix())) or {})
    gain = {"scratch": 0.02, "source-only": 0.10, "diff-person": 0.08}

    def trained(config):
        init = "scratch" if config.init == "scratch" else Path(config.init).parent.name
        m = gain[init] + 0.01 * config.seed * (init != "source-only") + 0.004 * (config.seed == 1)
        summary = {"mAP": m, "rank1": 2 * m, "mINP": m / 2, "config": config_dict(config),
                   "test": f"market1501:{tiny_persons}"}
        Path(config.out).mkdir(parents=True)
        (Path(config.out) / "results.json").write_text(json.dumps(summary, default=str))
        return summary

    monkeypatch.setattr(diffreid.settings, "run", trained)
    stages.pretrain(spec, out)
    assert pretrained == [(0, "pretrain/diff-person"), (1, "seeds/1/pretrain/source-only"),
                          (1, "seeds/1/pretrain/diff-person"), (2, "seeds/2/pretrain/source-only"),
                          (2, "seeds/2/pretrain/diff-person")]
    counts = stages.settings(spec, out)
    assert [row["seed"] for row in counts["per_seed"]["diff-person"]["supervised"]] == [0, 1, 2]
    assert counts["results"]["diff-person"]["supervised"]["mAP"] == pytest.approx(0.08 + 0.01 + 0.004 / 3)
    assert (out / "seeds" / "2" / "settings" / "scratch" / "supervised" / "results.json").is_file()
    report = write_report_json(spec, out, {"stages": {"settings": {"counts": counts, "seconds": 1, "finished": "x"}}})
    verdicts = {row["baseline"]: row["verdict"] for row in report["claim"]["comparisons"]}
    assert verdicts == {"scratch": "beats", "source-only": "within noise"}
    assert report["claim"]["answer"] == "partly" and report["over_seeds"]["scratch"]["supervised"]["seeds"] == 3
    dataset = load_dataset_sizes(tiny_persons)
    assert report["test_sets"]["supervised"] | {"test": None} == {"test": None, **dataset}
    page = write_report_html(spec, out, report).read_text()
    assert "beats" in page and f"{dataset['queries']} queries of {dataset['identities']} identities" in page


def load_dataset_sizes(root: Path) -> dict:
    from diffreid.data import load_dataset

    dataset = load_dataset(f"market1501:{root}")
    return {"queries": len(dataset.query), "gallery": len(dataset.gallery),
            "identities": len({r.pid for r in dataset.query})}


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
    from diffreid.run_spec import demo_overrides

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


def _seeded(**per_init) -> dict:
    """{init: {setting: [mAP per seed]}} as a run's per-seed results (seeds 0, 1, ...)."""
    return {init: {setting: [{"seed": seed, "mAP": m, "rank1": m, "mINP": m} for seed, m in enumerate(values)]
                   for setting, values in per_setting.items()} for init, per_setting in per_init.items()}


def test_one_seed_is_not_enough_to_claim():
    """Before: 45.0% > 31.0% on one seed each was a win ("won 1 of 2"); now it is no verdict."""
    from diffreid.report.summary import claim

    found = claim(_seeded(**{"imagenet": {"supervised": [0.31]}, "imagenet+diff-person": {"supervised": [0.45]},
                             "scratch": {"supervised": [0.02]}, "diff-person": {"supervised": [0.09]}}))
    assert found["answer"] == "not enough seeds" and found["headline"] == "paper"
    assert {row["verdict"] for row in found["comparisons"]} == {"not enough seeds"}
    assert "1 paired seed of the 3 a claim needs: not enough seeds to claim" in found["text"]
    assert "won " not in found["text"] and "seeds: beats" not in found["text"]


def test_claim_is_a_verdict_from_intervals_over_seeds():
    from diffreid.report.summary import claim

    results = _seeded(**{
        "scratch": {"supervised": [0.020, 0.030, 0.025], "few-shot": [0.010, 0.012, 0.011]},
        "source-only": {"supervised": [0.140, 0.150, 0.145], "few-shot": [0.050, 0.080, 0.020]},
        "diff-person": {"supervised": [0.090, 0.095, 0.092], "few-shot": [0.060, 0.060, 0.060]}})
    found = claim(results, sizes={"supervised": {"queries": 47, "gallery": 120, "identities": 47}})
    verdicts = {(row["setting"], row["baseline"]): row["verdict"] for row in found["comparisons"]}
    assert verdicts == {("supervised", "scratch"): "beats", ("few-shot", "scratch"): "beats",
                        ("supervised", "source-only"): "loses", ("few-shot", "source-only"): "within noise"}
    assert found["answer"] == "partly" and found["headline"] == "extra controls"
    assert "47 queries of 47 identities against 120 gallery images" in found["text"]
    assert "not in this run" in found["text"]  # the paper's comparison is missing, and said so
    row = next(r for r in found["comparisons"] if (r["setting"], r["baseline"]) == ("supervised", "scratch"))
    assert row["difference"] == pytest.approx(0.0673, abs=1e-4) and row["low"] > 0  # paired, over seeds 0-2
    # the number of seeds a claim needs is the config's
    assert claim(results, min_seeds=4)["answer"] == "not enough seeds"


def test_the_papers_comparison_is_the_headline_and_the_controls_are_labelled():
    from diffreid.report.summary import claim

    results = _seeded(**{
        "scratch": {"supervised": [0.02, 0.03, 0.02]}, "diff-person": {"supervised": [0.09, 0.10, 0.09]},
        "imagenet": {"supervised": [0.31, 0.33, 0.32]}, "imagenet+diff-person": {"supervised": [0.32, 0.31, 0.34]}})
    found = claim(results)
    assert found["headline"] == "paper" and found["answer"] == "within noise"
    assert [(row["role"], row["init"], row["baseline"], row["verdict"]) for row in found["comparisons"]] == [
        ("paper", "imagenet+diff-person", "imagenet", "within noise"),
        ("extra control", "diff-person", "scratch", "beats")]
    text = found["text"]
    assert text.startswith("Headline, the paper's comparison: ImageNet then Diff-Person pre-training against "
                           "ImageNet alone: within noise.")
    assert text.index("imagenet+diff-person mAP 32.3 ± ") < text.index("This project's extra controls")


def test_student_t_interval():
    from diffreid.evaluation.intervals import paired_verdict, t_interval

    mean, half = t_interval([1.0, 2.0, 3.0])
    assert mean == 2 and half == pytest.approx(4.302653 / 3 ** 0.5, rel=1e-6)  # t(0.975, 2) s / sqrt(n)
    assert t_interval([0.5]) == (0.5, None)
    # paired by seed: seed 3 of one side only is left out
    assert paired_verdict({0: 2.0, 1: 3.0, 2: 4.0, 3: 9.0}, {0: 1.0, 1: 2.0, 2: 3.5}, 3)["seeds"] == [0, 1, 2]


def test_wilson_interval_of_a_share():
    from diffreid.evaluation.intervals import wilson_interval

    low, high = wilson_interval(72, 486)  # 72 of 486 people: the reference model's 14.8%
    assert (round(low, 3), round(high, 3)) == (0.119, 0.182)
    assert wilson_interval(0, 486)[0] == 0 and 0 < wilson_interval(0, 486)[1] < 0.01  # never below 0, still wide
    assert wilson_interval(10, 10)[1] == pytest.approx(1) and wilson_interval(10, 10)[0] < 0.8
