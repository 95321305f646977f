"""How well the filter tells a person from an impostor, measured on real images.

CUHK01 stands in for a generator whose output is known: on identities 486-971, the
camera-B images are new views of their own person (genuine candidates), or, relabelled,
of a random other person, or of the nearest other person by the scorer's own features
(a look-alike). The source dataset the filter sees holds identities 1-485 from both
cameras (the threshold is calibrated on them, cross-camera) and identities 486-971 from
camera A only (their centroids). The real `diffreid filter` stage runs on it; rates and
ROC curves are read from its decisions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from diffreid.artifacts import atomic_path, write_json_atomic, write_text_atomic
from diffreid.config import FilterConfig
from diffreid.data import load_dataset
from diffreid.filtering.scorers import Scorer
from diffreid.filtering.scores import Reference
from diffreid.filtering.stage import run

KINDS = ("genuine", "random", "lookalike")
TRAIN_IDENTITIES = 485


def _link_images(folder: Path, images: Path) -> str:
    """Reach the CUHK01 images from inside `folder` (paths read from files stay in their root)."""
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "campus"
    if not link.exists():
        link.symlink_to(images.resolve(), target_is_directory=True)
    return "campus"


def build_protocol(model: str, cuhk01: Path, work: Path, seed: int = 0) -> tuple[str, list[Path]]:
    """The source dataset (list format) and the three generated folders."""
    dataset = load_dataset(f"cuhk01:{cuhk01}")
    records = dataset.query + dataset.gallery
    images = records[0].path.parent
    source = work / "source"
    prefix = _link_images(source, images)
    known = [r for r in records if r.pid <= TRAIN_IDENTITIES or r.camid == 1]
    header = "path,pid,camid\n"
    write_text_atomic(source / "train.csv", header + "".join(f"{prefix}/{r.path.name},{r.pid},{r.camid}\n"
                                                             for r in known))
    for name in ("query.csv", "gallery.csv"):
        write_text_atomic(source / name, header)
    spec = f"list:{source}"

    test_a = [r for r in records if r.pid > TRAIN_IDENTITIES and r.camid == 1]
    candidates = [r for r in records if r.pid > TRAIN_IDENTITIES and r.camid == 2]
    scorer = Scorer(model)
    features_a, _, kept_a = scorer.embed(test_a, desc="camera A")
    features_b, _, kept_b = scorer.embed(candidates, desc="camera B")
    reference = Reference.from_features(features_a, np.array([r.pid for r in kept_a]), np.ones(len(kept_a)))
    own = reference.index(np.array([r.pid for r in kept_b]))
    similarity = (features_b / np.linalg.norm(features_b, axis=1, keepdims=True)) @ reference.centroids.T
    similarity[np.arange(len(own)), own] = -np.inf
    lookalike = reference.pids[similarity.argmax(axis=1)]
    rng = np.random.default_rng(seed)
    others = [int(rng.choice(reference.pids[reference.pids != r.pid])) for r in kept_b]
    labels = {"genuine": [r.pid for r in kept_b], "random": others, "lookalike": lookalike.tolist()}
    folders = []
    for kind in KINDS:
        folder = work / kind
        prefix = _link_images(folder, images)
        lines = [{"file": f"{prefix}/{r.path.name}", "pid": int(pid), "source": spec, "prompt": kind, "seed": -1}
                 for r, pid in zip(kept_b, labels[kind])]
        write_text_atomic(folder / "manifest.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
        write_json_atomic(folder / "manifest.json", {"stage": "generate", "config": {"data": spec}})
        folders.append(folder)
    return spec, folders


def measure(model: str, cuhk01: Path, work: Path, score: str = "cosine", percentile: float = 5.0,
            near_duplicate: float | None = 0.98) -> dict:
    """Genuine kept, random and look-alike impostors dropped, and the ROC of `score`."""
    spec, folders = build_protocol(model, cuhk01, work)
    out = run(FilterConfig(generated=tuple(folders), scorers=(f"{spec}={model}",), out=work / f"ctf-{score}",
                           score=score, percentile=percentile, near_duplicate=near_duplicate))
    report = json.loads((out / "filter_report.json").read_text(encoding="utf-8"))
    decisions = {kind: [] for kind in KINDS}
    for unit in (out / ".units").glob("[0-9]*.json"):
        for entry in json.loads(unit.read_text(encoding="utf-8"))["entries"]:
            kind = Path(entry["generated"]).relative_to(work).parts[0]
            decisions[kind].append((entry["score"], entry["reason"] == "kept"))
    rates = {"genuine_kept": np.mean([k for _, k in decisions["genuine"]]),
             "random_dropped": 1 - np.mean([k for _, k in decisions["random"]]),
             "lookalike_dropped": 1 - np.mean([k for _, k in decisions["lookalike"]])}
    curves = {kind: roc([s for s, _ in decisions["genuine"]], [s for s, _ in decisions[kind]])
              for kind in ("random", "lookalike")}
    threshold = report["thresholds"][spec]
    return {"score": score, "threshold": threshold["threshold"], "method": threshold["method"],
            **{k: float(v) for k, v in rates.items()}, "candidates": {k: len(v) for k, v in decisions.items()},
            "auc": {kind: curve["auc"] for kind, curve in curves.items()}, "roc": curves}


def roc(positive: list[float], negative: list[float]) -> dict:
    """True- and false-positive rates at every threshold, and the area under the curve."""
    scores = np.concatenate([positive, negative])
    truth = np.concatenate([np.ones(len(positive)), np.zeros(len(negative))])
    order = np.argsort(-scores, kind="stable")
    tpr = np.concatenate([[0], np.cumsum(truth[order]) / max(1, len(positive))])
    fpr = np.concatenate([[0], np.cumsum(1 - truth[order]) / max(1, len(negative))])
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoids (np.trapezoid needs numpy 2)
    return {"tpr": tpr.tolist(), "fpr": fpr.tolist(), "auc": auc}


def plot_roc(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for axis, kind in zip(axes, ("random", "lookalike")):
        for result in results:
            curve = result["roc"][kind]
            axis.plot(curve["fpr"], curve["tpr"], label=f"{result['score']} (AUC {curve['auc']:.3f})")
            axis.plot(1 - result[f"{kind}_dropped"], result["genuine_kept"], "o", color="black")
        axis.set(xlabel=f"{kind} impostors kept", ylabel="genuine kept", title=f"genuine vs {kind} impostors",
                 xlim=(0, 1), ylim=(0, 1))
        axis.legend(loc="lower right")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
