"""`diffreid benchmark small`: PRID, GRID and i-LIDS with their classic protocols, over seeded trials.

Zero-shot domain generalisation: the models are used as given (never trained on these
sets), each image's feature is extracted once per model, and every trial ranks its query
against its gallery (Market-1501 rules, cosine distance). The trials' training
identities are in the splits (`--list` writes them) for a setting that fine-tunes on
them ("train-on-half"); this command does not. Run again over the same OUT, it keeps the
numbers of every model whose weights, protocol and input size are unchanged, so adding one
model to a comparison of ten costs one model's time.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml
from tqdm import tqdm

from diffreid.artifacts import write_json_atomic, write_text_atomic
from diffreid.baselines import color_histogram_features
from diffreid.data import load_dataset
from diffreid.data.records import ReidDataset
from diffreid.data.small_protocols import (FOLDERS, SMALL_BENCHMARKS, TEST_IDS, describe, export_lists,
                                           small_split)
from diffreid.errors import DiffreidError
from diffreid.evaluation import evaluate_rank
from diffreid.evaluation.distance import pairwise_distance
from diffreid.reid import extract_features, load_reid_model

log = logging.getLogger(__name__)

COLOR_HISTOGRAM = "color-histogram"
DEFAULT_PETA = Path("../shared/data/peta")  # relative to the current directory
METRICS = ("rank1", "rank5", "rank10", "mAP", "mINP")
PROTOCOL = "zero-shot DG"


class ColorHistogramModel:
    """The nothing-learned floor (`diffreid.baselines`) behind the same call as a Re-ID model."""

    input_size = (128, 64)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return color_histogram_features(images)


def default_peta_root() -> Path:
    """../shared/data/peta from the current directory, or an error naming --peta."""
    if DEFAULT_PETA.is_dir():
        return DEFAULT_PETA
    raise DiffreidError(f"no PETA folder at {DEFAULT_PETA.resolve()}; pass --peta ROOT, the folder holding "
                        f"{', '.join(f + '/' for f in FOLDERS.values())}")


def check_names(datasets: Sequence[str]) -> tuple[str, ...]:
    """The asked-for sets, refusing those without a protocol (MIT has no identities at all)."""
    for name in datasets:
        if name == "mit":
            raise DiffreidError("mit: PETA's MIT set has no identities (every image is a different person), so "
                                f"there is nothing to rank; choose from {', '.join(SMALL_BENCHMARKS)}")
        if name not in SMALL_BENCHMARKS:
            raise DiffreidError(f"{name}: no small-benchmark protocol; choose from {', '.join(SMALL_BENCHMARKS)}")
    if not datasets:
        raise DiffreidError(f"no dataset asked for; choose from {', '.join(SMALL_BENCHMARKS)}")
    return tuple(dict.fromkeys(datasets))


def read_set(name: str, root: Path) -> ReidDataset:
    folder = Path(root) / FOLDERS[name]
    if not folder.is_dir():
        raise DiffreidError(f"{folder}: not found; {name} needs PETA's {FOLDERS[name]}/ folder under --peta {root} "
                            f"(pass --peta ROOT holding it, or leave {name} out of --datasets)")
    dataset = load_dataset(f"{name}:{folder}")
    for problem in dataset.problems:
        log.warning("%s", problem)
    return dataset


def load_model(spec: str, input_size: tuple[int, int] | None = None):
    """`color-histogram`, or anything `diffreid evaluate --model` takes, at `input_size` when given
    (a model trained at 64×32 is compared at its own size, not at the 256×128 default)."""
    if spec == COLOR_HISTOGRAM:
        return ColorHistogramModel()
    return load_reid_model(spec, input_size=input_size)


def weights_stamp(spec: str) -> str:
    """What a model's numbers came from: size and modification time of its file, or of the files at the
    top of its run directory (weights, config), so a retrained or replaced model is benchmarked again."""
    if spec == COLOR_HISTOGRAM:
        return COLOR_HISTOGRAM
    path = Path(spec).expanduser()
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    return ";".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


def kept_entries(out: Path, results: dict) -> dict[str, dict[str, dict]]:
    """{model: {set: entry}} of a previous results.json at OUT made under the same protocol, trials,
    seed, PETA copy and input size; nothing when there is none or it cannot be read (then all is redone)."""
    try:
        previous = json.loads((out / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    header = ("protocol", "seed", "trials", "peta", "metric", "rules", "input_size")
    if not isinstance(previous, dict) or any(previous.get(key) != results[key] for key in header):
        return {}
    return {spec: {name: entry for name, entry in per_set.items()
                   if previous.get("datasets", {}).get(name) == results["datasets"].get(name)}
            for spec, per_set in previous.get("models", {}).items()}


def rank_trial(features: np.ndarray, row: dict[Path, int], split: ReidDataset) -> dict:
    """Rank-1/5/10, mAP and mINP of one trial from the set's features (rows by image path)."""
    query = [r for r in split.query if r.path in row]
    gallery = [r for r in split.gallery if r.path in row]
    distances = pairwise_distance(features[[row[r.path] for r in query]], features[[row[r.path] for r in gallery]],
                                  "cosine")
    result = evaluate_rank(distances, [r.pid for r in query], [r.pid for r in gallery],
                           [r.camid for r in query], [r.camid for r in gallery], max_rank=10)
    cmc = result["cmc"]
    return {"rank1": float(cmc[0]), "rank5": float(cmc[4]), "rank10": float(cmc[9]), "mAP": float(result["mAP"]),
            "mINP": float(result["mINP"]), "num_query": len(query), "num_gallery": len(gallery),
            "test_ids": len({r.pid for r in query}), "valid_queries": int(result["num_valid_queries"])}


def summarise(trials: list[dict]) -> dict:
    """Mean and standard deviation (over trials, ddof=1; 0 for one trial) of every metric."""
    values = {m: np.array([t[m] for t in trials]) for m in METRICS}
    return {"mean": {m: float(v.mean()) for m, v in values.items()},
            "std": {m: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for m, v in values.items()}}


def run(models: Sequence[str], out: str | Path, trials: int = 10, seed: int = 0, root: str | Path | None = None,
        datasets: Sequence[str] = SMALL_BENCHMARKS, lists: bool = False, batch_size: int = 64,
        test_ids: dict[str, int] | None = None, input_size: tuple[int, int] | None = None) -> dict:
    """Every model on every set's `trials` trials, each Re-ID model at `input_size` (default: its
    own); writes OUT/results.json, OUT/results.md and, with `lists`, OUT/splits/<set>/trial-<k>/
    (a `list` dataset each). A model and set OUT's results.json already holds under the same
    protocol and unchanged weights (`weights_stamp`) is kept, not recomputed. Returns the results."""
    if trials < 1:
        raise DiffreidError(f"--trials {trials}: need at least 1")
    if not models:
        raise DiffreidError(f"no model given; pass --model MODEL (a Re-ID model or {COLOR_HISTOGRAM})")
    twice = sorted({spec for spec in models if list(models).count(spec) > 1})
    if twice:
        raise DiffreidError(f"--model {', '.join(twice)} given more than once; give each model once")
    names = check_names(list(datasets))
    for spec in models:
        if spec != COLOR_HISTOGRAM and not Path(spec).expanduser().exists():
            raise DiffreidError(f"{spec}: model not found; give a Re-ID model file (ONNX, .pth, .safetensors), a "
                                f"training run's directory, or {COLOR_HISTOGRAM}")
    root = default_peta_root() if root is None else Path(root)
    out = Path(out)
    sizes = {**TEST_IDS, **(test_ids or {})}
    splits = {}
    for name in names:
        dataset = read_set(name, root)
        splits[name] = [small_split(name, dataset, seed, k, sizes[name]) for k in range(trials)]
        log.info("%s: %d images; %d trials of: %s", name, len(dataset.train), trials, describe(name, sizes[name]))
        if lists:
            for k, split in enumerate(splits[name]):
                export_lists(split, out / "splits" / name / f"trial-{k}", seed=seed, trial=k)
            log.info("wrote %s", out / "splits" / name)
    results = {"protocol": PROTOCOL, "seed": seed, "trials": trials, "peta": str(root.resolve()),
               "metric": "cosine", "rules": "market1501", "input_size": list(input_size) if input_size else None,
               "datasets": {name: {"folder": FOLDERS[name], "protocol": describe(name, sizes[name])}
                            for name in names},
               "models": {}}
    earlier = kept_entries(out, results)
    for spec in models:
        model, stamp = None, weights_stamp(spec)
        results["models"][spec] = {}
        for name in names:
            entry = earlier.get(spec, {}).get(name)
            if entry is not None and entry.get("weights") == stamp:
                log.info("%s on %s: kept from %s (same weights, protocol and input size)", spec, name,
                         out / "results.json")
                results["models"][spec][name] = entry
                continue
            if model is None:
                model = load_model(spec, input_size)
            started = time.monotonic()
            used = sorted({r.path: r for s in splits[name] for r in s.query + s.gallery}.values(),
                          key=lambda r: str(r.path))
            log.info("%s on %s: features of %d images (every image a trial ranks), then %d trials", spec, name,
                     len(used), trials)
            features, kept = extract_features(model, used, tuple(model.input_size), batch_size,
                                              desc=f"{Path(spec).name} {name}")
            if len(kept) < len(used):
                log.warning("%s: %d unreadable images left out of every trial", name, len(used) - len(kept))
            row = {r.path: i for i, r in enumerate(kept)}
            per_trial = [{"trial": k, **rank_trial(features, row, split)}
                         for k, split in enumerate(tqdm(splits[name], desc=f"rank {name}", unit="trial"))]
            entry = {**summarise(per_trial), **{key: per_trial[0][key] for key in ("num_query", "num_gallery",
                                                                                   "test_ids")},
                     "images": len(kept), "input_size": list(model.input_size), "weights": stamp,
                     "seconds": round(time.monotonic() - started, 1), "trials": per_trial}
            results["models"][spec][name] = entry
            mean, std = entry["mean"], entry["std"]
            log.info("%s on %s: Rank-1 %.1f ± %.1f%%, mAP %.1f ± %.1f%%", spec, name, 100 * mean["rank1"],
                     100 * std["rank1"], 100 * mean["mAP"], 100 * std["mAP"])
            _write(out, results)  # after every set, so a long run shows what it has
    log.info("wrote %s and %s", out / "results.json", out / "results.md")
    return results


def model_seed(spec: str) -> int | None:
    """The seed a training run's folder was trained with; None for a model without one (a published or
    ImageNet model: one fixed model, which `diffreid compare` pairs with every seed of another)."""
    config = Path(spec).expanduser() / "config.yaml"
    if not config.is_file():
        return None
    seed = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("seed")
    return None if seed is None else int(seed)


def table_rows(results: dict, labels: Sequence[str] | None = None) -> list[dict]:
    """One results-table row per model and set (`diffreid.settings.table`), so the zero-shot numbers
    sit in `diffreid compare` beside the fine-tuned ones: the init column is the model's label
    (default: its file or folder name), the test column names the set and its trials, the sizes are a trial's."""
    models = list(results["models"])
    labels = list(labels or [_name(Path(spec).expanduser()) for spec in models])
    if len(labels) != len(models):
        raise DiffreidError(f"{len(labels)} --label for {len(models)} --model; give one label per model, in order")
    rows = []
    for spec, label in zip(models, labels):
        for name, entry in results["models"][spec].items():
            rows.append({"setting": PROTOCOL, "init": label, "train": "none (zero-shot)",
                         "test": f"{name} ({results['trials']} trials)",
                         **{metric: entry["mean"][metric] for metric in ("rank1", "mAP", "mINP")},
                         "queries": entry["num_query"], "gallery": entry["num_gallery"],
                         "run": spec, "config": {"seed": model_seed(spec), "input_size": entry["input_size"],
                                                 "trials": results["trials"], "trial_seed": results["seed"]}})
    return rows


def _name(path: Path) -> str:
    return path.name if path.is_dir() else path.stem


def _write(out: Path, results: dict) -> None:
    write_json_atomic(out / "results.json", results)
    write_text_atomic(out / "results.md", render_table(results))


def render_table(results: dict) -> str:
    """results.md: one row per model and set, mean ± std over the trials, in %."""
    lines = [f"{PROTOCOL}: {results['trials']} trials from seed {results['seed']}, mean ± std (ddof=1) in %; "
             "cosine distance, Market-1501 rules", "",
             "| model | set | Rank-1 | Rank-5 | mAP | queries / gallery (test ids) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for spec, per_set in results["models"].items():
        for name, entry in per_set.items():
            cells = [f"{100 * entry['mean'][m]:.1f} ± {100 * entry['std'][m]:.1f}" for m in ("rank1", "rank5", "mAP")]
            lines.append(f"| {Path(spec).name} | {name} | {' | '.join(cells)} | "
                         f"{entry['num_query']} / {entry['num_gallery']} ({entry['test_ids']}) |")
    lines += [""] + [f"- {name}: {info['protocol']}" for name, info in results["datasets"].items()]
    return "\n".join(lines) + "\n"
