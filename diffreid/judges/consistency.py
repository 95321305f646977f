"""Is a generated image still its person, and how much new does it show? Judged by a Re-ID model.

Identity consistency, with a scorer nobody here trained (e.g. the OSNet MSMT17 model):
(a) the mean cosine of each generated image to its identity's real centroid against its
nearest other identity's centroid; (b) Rank-1 and mAP of generated images as queries
against the identities' real images as gallery. Real images of other cameras, scored the
same way, are the reference generated ones should approach. Spread: how far an
identity's images lie from their own mean in the feature space, generated against real.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffreid.artifacts import inside_root
from diffreid.config import FilterConfig
from diffreid.data import load_dataset
from diffreid.data.records import Record
from diffreid.evaluation.distance import l2_normalize
from diffreid.evaluation.feature_metrics import evaluate_features
from diffreid.evaluation.intervals import wilson_interval
from diffreid.filtering.generated import read_generated
from diffreid.filtering.scorers import Scorer
from diffreid.filtering.scores import Reference


def _summary(features: np.ndarray, pids: np.ndarray, reference: Reference, gallery: Reference,
             per_identity: int | None) -> dict:
    features = l2_normalize(features)
    similarity = features @ reference.centroids.T
    own = reference.index(pids)
    own_cosine = similarity[np.arange(len(pids)), own]
    similarity[np.arange(len(pids)), own] = -np.inf
    nearest_other = similarity.max(axis=1)
    ranks = evaluate_features(features, gallery.features, pids, gallery.image_pids, np.full(len(pids), -1),
                              gallery.camids)
    closer = int((own_cosine > nearest_other).sum())
    return {"images": int(len(pids)), "own_centroid_cosine": float(own_cosine.mean()),
            "nearest_other_centroid_cosine": float(nearest_other.mean()),
            "closer_to_own": closer / len(pids), "closer_to_own_interval": list(wilson_interval(closer, len(pids))),
            "rank1": float(ranks["cmc"][0]), "mAP": float(ranks["mAP"]), "spread": spread(features, pids, per_identity)}


def spread(features: np.ndarray, pids: np.ndarray, per_identity: int | None = None) -> float:
    """Mean cosine distance of an identity's images to their own mean direction, over identities.

    The mean of few images lies closer to each of them than the mean of many, so spreads
    compare only at equal counts: `per_identity` takes each identity's first N images."""
    features = l2_normalize(features)
    values = []
    for pid in np.unique(pids):
        members = features[pids == pid][:per_identity]
        if len(members) > 1:
            values.append(float(1 - (members @ l2_normalize(members.mean(axis=0, keepdims=True)).T).mean()))
    return float(np.mean(values)) if values else float("nan")


def identity_consistency(model: str, generated: Path, real_camera: int | None = None,
                         reference_camera: int | None = None) -> dict:
    """Scores of generated images, and of real images as the reference.

    The real images of the generated identities (all splits of the source dataset) form
    the centroids and the gallery. With `reference_camera` / `real_camera` (e.g. 1 and 2
    on CUHK01), the gallery holds `reference_camera`'s images and the real reference
    queries are `real_camera`'s. Spreads are taken over as many images per identity as the
    real images have (their median count), generated and real alike.
    """
    source, items = read_generated(generated)
    pids = sorted({item.pid for item in items})
    records = [r for split in ("train", "query", "gallery") for r in load_dataset(source).split(split)
               if r.pid in set(pids)]
    scorer = Scorer(model)
    real, _, kept = scorer.embed(records, desc="real")
    real_pids, real_cams = np.array([r.pid for r in kept]), np.array([r.camid for r in kept])
    in_gallery = real_cams == reference_camera if reference_camera is not None else np.ones(len(kept), bool)
    gallery = Reference.from_features(real[in_gallery], real_pids[in_gallery], real_cams[in_gallery])
    count = int(np.median(np.unique(real_pids, return_counts=True)[1]))
    made, _, made_kept = scorer.embed([Record(i.path, i.pid, -1, "generated") for i in items], desc="generated")
    result = {"source": source, "identities": len(pids), "spread_per_identity": count,
              "generated": _summary(made, np.array([r.pid for r in made_kept]), gallery, gallery, count)}
    if real_camera is not None:
        queries = real_cams == real_camera
        result["real"] = _summary(real[queries], real_pids[queries], gallery, gallery, count)
    result["real_spread"] = spread(real, real_pids, count)
    references = references_by_person(items, Path(load_dataset(source).root))
    if references:
        read = read_references(scorer, references)
        result["copies"] = copies(made, made_kept, references, read)
        # a real new view of the person (another of their images, of the gallery's camera when given)
        # is how far from its reference an image that is no copy can be: the yardstick for the above
        used = {p for found in references.values() for p in found}
        views = [i for i, r in enumerate(kept) if in_gallery[i] and Path(r.path).resolve() not in used]
        if views:
            result["copies_real_views"] = copies(real[views], [kept[i] for i in views], references, read)
    return result


def references_by_person(items: list, root: Path) -> dict[int, list[Path]]:
    """The reference images generated images were drawn from, per person (none for a fine-tuned generator)."""
    by_pid: dict[int, list[Path]] = {}
    for item in items:
        for reference in item.references:
            path = inside_root(root, reference, root).resolve()
            if path not in by_pid.setdefault(item.pid, []):
                by_pid[item.pid].append(path)
    return by_pid


def read_references(scorer: Scorer, references: dict[int, list[Path]]) -> dict[Path, tuple[np.ndarray, object]]:
    """Each readable reference's unit feature and picture, read once for every comparison with it."""
    from PIL import Image

    paths = sorted({p for found in references.values() for p in found})
    features, _, kept = scorer.embed([Record(str(p), -1, -1, "reference") for p in paths], desc="references")
    read = {}
    for feature, record in zip(l2_normalize(features), kept):
        with Image.open(record.path) as image:
            read[Path(record.path)] = (feature, image.convert("RGB"))
    return read


def copies(made: np.ndarray, made_kept: list[Record], references: dict[int, list[Path]],
           read: dict[Path, tuple[np.ndarray, object]], bound: float = FilterConfig.near_duplicate) -> dict:
    """Are images drawn from reference images new views or copies of them? Per image of a person
    with references: the scorer's cosine to the nearest of them, the share at or above the filter's
    near-duplicate bound, and the mean absolute pixel difference (0-1) to the nearest reference."""
    from PIL import Image

    made = l2_normalize(made)
    cosines, differences = [], []
    for row, record in enumerate(made_kept):
        own = [read[p] for p in references.get(record.pid, []) if p in read]
        if not own:
            continue
        cosines.append(float(max(feature @ made[row] for feature, _ in own)))
        with Image.open(record.path) as image:
            drawn = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
        differences.append(min(float(np.abs(np.asarray(picture.resize(drawn.shape[1::-1]), np.float32) / 255
                                           - drawn).mean()) for _, picture in own))
    cosines = np.asarray(cosines)
    return {"images": len(cosines), "near_duplicate_bound": bound,
            "passes_near_duplicate_guard": float((cosines < bound).mean()),
            "cosine_to_nearest_reference": float(cosines.mean()),
            "pixel_difference_to_nearest_reference": float(np.mean(differences))}
