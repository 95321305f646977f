"""`diffreid filter`: keep the generated images a Re-ID model is confident about (CTF).

Identities are the units of work. Each finished identity writes its kept images into
`bounding_box_train/` and its decisions to `.units/<pid>.json` atomically, so a killed
run resumes where it stopped and `--shard K/N` runs can split the identities between
machines; the run that finds every identity done merges `manifest.jsonl`,
`filter_report.json` and the figures. Real-image features and the calibrated threshold
of each source are computed once and cached in `.cache/`, so all shards use the same bar.

The real reference (each identity's centroid, the rivals of `margin`) and the threshold
come from the source's training identities only (`reference_splits`, default train):
with a source that is also the target, its test identities must never set the bar of
the data pre-trained on. Generated pids are source pids, so every generated identity
must be a training identity; one that is not stops the run with the file that names it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from diffreid.artifacts import atomic_path, sweep_partial, write_json_atomic, write_manifest, write_text_atomic
from diffreid.config import FilterConfig, config_dict
from diffreid.data import load_dataset
from diffreid.data.records import SPLITS, Record
from diffreid.errors import DiffreidError
from diffreid.evaluation.distance import l2_normalize
from diffreid.filtering.diffperson import EMPTY_SPLITS, write_image
from diffreid.filtering.generated import Generated, read_generated
from diffreid.filtering.report import plot_kept_per_identity, plot_scores
from diffreid.filtering.scorers import Scorer, scorers_by_source
from diffreid.filtering.scores import SCORES, Reference, confidence, cross_camera_scores
from diffreid.scaleout import merges_here, stage_shard

log = logging.getLogger(__name__)
REASONS = ("kept", "low_score", "near_duplicate", "unreadable", "unknown_identity")


def run(config: FilterConfig) -> Path:
    if config.score not in SCORES:
        raise DiffreidError(f"unknown score {config.score!r}; scores: {', '.join(SCORES)}")
    splits = tuple(config.reference_splits)
    if not splits or set(splits) - set(SPLITS):
        raise DiffreidError(f"reference splits {list(splits)}: give some of {', '.join(SPLITS)} (default: train)")
    k, n = stage_shard(config.shard)
    out = Path(config.out)
    folders = [read_generated(folder) for folder in config.generated]
    sources = list(dict.fromkeys(source for source, _ in folders))
    units = _plan(folders, sources)
    real = {source: _reference_records(source, splits) for source in sources}
    _check_identities(config, folders, real)
    _check_settings(out, config)
    scorers = scorers_by_source(config.scorers, sources, config.batch_size)
    mine = [unit for i, unit in enumerate(units) if i % n == k - 1]
    todo = [unit for unit in mine if not (out / ".units" / f"{unit[0]}.json").is_file()]
    log.info("%d identities from %d sources; shard %d/%d holds %d, %d to do", len(units), len(sources), k, n,
             len(mine), len(todo))
    references = {}
    for index, source in enumerate(sources):
        if any(unit[1] == source for unit in todo):
            references[source] = _source_reference(out, index, source, real[source], scorers[source], config)
    with tqdm(total=sum(len(unit[3]) for unit in todo), desc="filter", unit="img") as bar:
        for gpid, source, pid, items in todo:
            _filter_identity(out, gpid, source, pid, items, scorers[source], references[source], config)
            bar.update(len(items))
    if not merges_here(config.shard):
        return out
    done = sum((out / ".units" / f"{unit[0]}.json").is_file() for unit in units)
    if done < len(units):
        log.info("%d of %d identities filtered; run the other shards, then once more to merge", done, len(units))
        return out
    return _merge(out, units, sources, {s: [scorer.name for scorer in scorers[s]] for s in sources}, config)


def _plan(folders: list[tuple[str, list[Generated]]], sources: list[str]) -> list[tuple[int, str, int, list]]:
    """(Diff-Person pid, source, source pid, images) per identity, numbered across sources."""
    by_identity: dict[tuple[str, int], list[Generated]] = {}
    for _, items in folders:
        for item in items:
            by_identity.setdefault((item.source, item.pid), []).append(item)
    keys = sorted(by_identity, key=lambda key: (sources.index(key[0]) if key[0] in sources else len(sources), key[1]))
    unknown = sorted({source for source, _ in keys} - set(sources))
    if unknown:
        raise DiffreidError(f"images name sources {unknown} that no generated folder's manifest.json names")
    return [(i + 1, source, pid, by_identity[(source, pid)]) for i, (source, pid) in enumerate(keys)]


def _reference_records(source: str, splits: tuple[str, ...]) -> list[Record]:
    """The source's identified real images in `splits`: the CTF's reference."""
    dataset = load_dataset(source)
    records = [r for split in splits for r in dataset.split(split) if r.pid > 0]
    if not records:
        raise DiffreidError(f"{source}: no identified images in its {'/'.join(splits)} split(s) to compare "
                            "generated ones with")
    return records


def _check_identities(config: FilterConfig, folders: list[tuple[str, list[Generated]]],
                      real: dict[str, list[Record]]) -> None:
    """Every generated identity (a source pid) has real images in the reference splits."""
    splits = "/".join(config.reference_splits)
    for folder, (_, items) in zip(config.generated, folders):
        by_source: dict[str, set[int]] = {}
        for item in items:
            by_source.setdefault(item.source, set()).add(item.pid)
        for source, pids in by_source.items():
            missing = sorted(pids - {r.pid for r in real[source]})
            if not missing:
                continue
            shown = ", ".join(map(str, missing[:8])) + (", ..." if len(missing) > 8 else "")
            fix = ("generate from the source's training identities (e.g. `diffreid generate --references "
                   f"{source} --split train`)" if tuple(config.reference_splits) == ("train",) else
                   "generate from identities of those splits")
            raise DiffreidError(
                f"{Path(folder) / 'manifest.jsonl'}: {len(missing)} of its {len(pids)} identities of {source} "
                f"({shown}) have no images in the source's {splits} split(s), the CTF's reference: generated "
                f"pids are source pids, and the reference and threshold come from the training identities only, "
                f"so test identities never set the bar. Fix: {fix}; only for a source that is never a target, "
                "--reference-splits train query gallery (`filter: reference_splits` in a run config) also "
                "takes its test identities")


def _check_settings(out: Path, config: FilterConfig) -> None:
    """A run resumes only with the settings that made its finished identities."""
    settings = {key: value for key, value in config_dict(config).items() if key not in ("out", "shard", "batch_size")}
    path = out / ".units" / "settings.json"
    if path.is_file():
        before = json.loads(path.read_text(encoding="utf-8"))
        if before != settings:
            changed = sorted(key for key in settings if before.get(key) != settings[key])
            if "reference_splits" not in before:
                raise DiffreidError(f"{out}: holds a filter run made before --reference-splits, whose reference "
                                    "took the source's train, query and gallery images; use a new --out")
            raise DiffreidError(f"{out}: holds a filter run with other settings ({', '.join(changed)}); use a new "
                                "--out or the same options")
    else:
        write_json_atomic(path, settings)


def _source_reference(out: Path, index: int, source: str, records: list[Record], scorers: list[Scorer],
                      config: FilterConfig) -> dict:
    """Each scorer's view of the source's real images (`records`), and the threshold calibrated on them."""
    views, classifier = [], SCORES[config.score].classifier
    for j, scorer in enumerate(scorers):
        cache = out / ".cache" / f"source-{index}-scorer-{j}.npz"
        if not cache.is_file():
            features, probabilities, kept = scorer.embed(records, classifier, desc=f"real {source}")
            arrays = {"features": features, "pids": np.array([r.pid for r in kept]),
                      "camids": np.array([r.camid for r in kept]), "paths": np.array([str(r.path) for r in kept])}
            if probabilities is not None:
                arrays["probabilities"] = probabilities
            with atomic_path(cache) as tmp, open(tmp, "wb") as f:
                np.savez(f, **arrays)
        data = np.load(cache)
        reference = Reference.from_features(data["features"], data["pids"], data["camids"])
        probabilities = data["probabilities"] if "probabilities" in data else None
        class_index = scorer.class_index(source, data["pids"]) if classifier else None
        views.append({"reference": reference, "probabilities": probabilities, "class_index": class_index,
                      "paths": data["paths"]})
    calibration = out / ".cache" / f"threshold-{index}.json"
    if not calibration.is_file():
        real = np.mean([cross_camera_scores(config.score, v["reference"], v["probabilities"], v["class_index"])
                        for v in views], axis=0)
        if config.threshold is None:
            threshold, method = float(np.percentile(real, config.percentile)), (
                f"{config.percentile:g}th percentile of {len(real)} real images' cross-camera {config.score} scores "
                f"({'/'.join(config.reference_splits)} split)")
        else:
            threshold, method = float(config.threshold), "fixed (--threshold)"
        write_json_atomic(calibration, {"source": source, "threshold": threshold, "method": method,
                                        "real_scores": real.tolist()})
    return {"views": views, **json.loads(calibration.read_text(encoding="utf-8"))}


def _pixels(path) -> str | None:
    try:
        with Image.open(path) as image:
            return hashlib.sha1(np.asarray(image.convert("RGB")).tobytes()).hexdigest()
    except (OSError, ValueError):
        return None


def _filter_identity(out: Path, gpid: int, source: str, pid: int, items: list[Generated], scorers: list[Scorer],
                     reference: dict, config: FilterConfig) -> None:
    records = [Record(item.path, pid, 1, "generated") for item in items]
    reasons = ["unreadable"] * len(items)
    scores = np.full(len(items), np.nan, np.float32)
    closest = np.zeros(len(items), np.float32)
    views = reference["views"]
    if (views[0]["reference"].index(np.array([pid])) < 0).any():
        log.warning("%s has no real images of identity %d: its %d generated images are dropped", source, pid,
                    len(items))
        reasons = ["unknown_identity"] * len(items)
    else:
        position = {str(item.path): i for i, item in enumerate(items)}
        per_scorer, classifier = [], SCORES[config.score].classifier
        for scorer, view in zip(scorers, views):
            features, probabilities, kept = scorer.embed(records, classifier, desc="")
            rows = np.array([position[str(r.path)] for r in kept], dtype=int)
            claimed = np.full(len(kept), pid)
            class_index = scorer.class_index(source, claimed) if classifier else None
            own_real = view["reference"].features[view["reference"].image_pids == pid]
            similarity = (l2_normalize(features) @ own_real.T).max(axis=1) if len(kept) else np.zeros(0)
            per_scorer.append((rows, confidence(config.score, features, claimed, view["reference"], probabilities,
                                                class_index), similarity))
        rows = per_scorer[0][0]
        scores[rows] = np.mean([s for _, s, _ in per_scorer], axis=0)
        closest[rows] = np.mean([c for _, _, c in per_scorer], axis=0)
        copies = {_pixels(p) for p in views[0]["paths"][views[0]["reference"].image_pids == pid]} - {None}
        for i in rows:
            duplicate = config.near_duplicate is not None and (
                closest[i] >= config.near_duplicate or _pixels(items[i].path) in copies)
            reasons[i] = ("near_duplicate" if duplicate else
                          "kept" if scores[i] >= reference["threshold"] else "low_score")
    entries = []
    for frame, (item, reason) in enumerate(zip(items, reasons)):
        file = None
        if reason == "kept":
            with Image.open(item.path) as image:
                file = write_image(image, out, gpid, frame, config.jpeg_quality)
        entries.append({"generated": str(item.path), "file": file, "reason": reason,
                        "score": None if np.isnan(scores[frame]) else float(scores[frame]),
                        "closest_source": float(closest[frame]), "prompt": item.prompt, "seed": item.seed,
                        "injected": list(item.injected)})
    write_json_atomic(out / ".units" / f"{gpid}.json", {"pid": gpid, "source": source, "source_pid": pid,
                                                          "entries": entries})


def _merge(out: Path, units: list, sources: list[str], scorer_names: dict[str, list[str]], config: FilterConfig) -> Path:
    sweep_partial(out)
    lines, kept_scores, dropped_scores, counts = [], [], [], {reason: 0 for reason in REASONS}
    per_identity = {}
    for gpid, source, pid, _ in units:
        unit = json.loads((out / ".units" / f"{gpid}.json").read_text(encoding="utf-8"))
        per_identity[gpid] = 0
        for entry in unit["entries"]:
            counts[entry["reason"]] += 1
            if entry["reason"] == "kept":
                per_identity[gpid] += 1
                kept_scores.append(entry["score"])
                lines.append({"file": entry["file"], "pid": gpid, "camid": 1, "source": source, "source_pid": pid,
                              "prompt": entry["prompt"], "seed": entry["seed"], "injected": entry["injected"],
                              "score": entry["score"], "score_kind": config.score,
                              "scorer": " + ".join(scorer_names[source])})
            elif entry["reason"] == "low_score":
                dropped_scores.append(entry["score"])
    thresholds = {}
    real_scores = []
    for index, source in enumerate(sources):
        calibration = json.loads((out / ".cache" / f"threshold-{index}.json").read_text(encoding="utf-8"))
        thresholds[source] = {"threshold": calibration["threshold"], "method": calibration["method"]}
        real_scores += calibration["real_scores"]
    write_text_atomic(out / "manifest.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    for folder in EMPTY_SPLITS:  # Market-1501 readers (torchreid's too) require the test folders to exist
        (out / folder).mkdir(parents=True, exist_ok=True)
    total = sum(counts.values())
    report = {"images_in": total, "kept": counts["kept"], "dropped": {r: counts[r] for r in REASONS[1:]},
              "kept_fraction": counts["kept"] / max(1, total), "score": config.score, "thresholds": thresholds,
              "near_duplicate_bound": config.near_duplicate, "identities": len(units),
              "identities_with_images": sum(1 for v in per_identity.values() if v),
              "kept_per_identity": {str(k): v for k, v in per_identity.items()}}
    write_json_atomic(out / "filter_report.json", report)
    plot_scores(kept_scores, dropped_scores, real_scores, {s: t["threshold"] for s, t in thresholds.items()},
                out / "scores.png")
    plot_kept_per_identity(list(per_identity.values()), out / "kept_per_identity.png")
    write_manifest(out, "filter", config_dict(config), counts={"images_in": total, "kept": counts["kept"],
                                                                "identities": len(units)},
                   inputs={str(folder): "generated" for folder in config.generated} | {s: "source" for s in sources})
    log.info("kept %d of %d generated images (%s); wrote %s", counts["kept"], total,
             ", ".join(f"{r} {counts[r]}" for r in REASONS[1:] if counts[r]), out)
    return out
