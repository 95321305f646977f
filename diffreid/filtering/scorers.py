"""Scorers: Re-ID models trained on a source dataset, asked about images of its identities."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffreid.data import parse_spec
from diffreid.data.records import Record
from diffreid.errors import DiffreidError
from diffreid.reid.features import iter_features
from diffreid.reid.loading import load_reid_model


class Scorer:
    def __init__(self, model_path: str, batch_size: int = 64):
        self.name = model_path
        self.model = load_reid_model(model_path)
        self.batch_size = batch_size

    def embed(self, records: list[Record], probabilities: bool = False, desc: str = "score"):
        """Features (and class probabilities) of the readable images, and their records."""
        model = self.model
        if probabilities:
            width = []

            def model(images, inner=self.model):  # one decode serves both outputs
                features = inner(images)
                width[:] = [features.shape[1]]
                return np.concatenate([features, inner.classify(images)], axis=1)
        rows, kept = [], []
        for batch, batch_records in iter_features(model, records, self.model.input_size, self.batch_size, desc):
            rows.append(batch)
            kept += batch_records
        if not rows:
            return np.zeros((0, 1), np.float32), None, kept
        matrix = np.concatenate(rows)
        if probabilities:
            return matrix[:, :width[0]], matrix[:, width[0]:], kept
        return matrix, None, kept

    def class_index(self, source: str, pids: np.ndarray) -> np.ndarray:
        """The classifier's class of each source pid (classes of a run name their dataset)."""
        classes = self.model.classes
        mine = [i for i, c in enumerate(classes) if c["dataset"] == source] or list(range(len(classes)))
        lookup = {int(classes[i]["pid"]): i for i in mine}
        missing = sorted({int(p) for p in pids} - set(lookup))
        if missing:
            raise DiffreidError(f"{self.name}: its classifier has no class for identities {missing[:5]} of {source}; "
                                "the prob score needs a scorer trained on the source's identities")
        return np.array([lookup[int(p)] for p in pids])


def _same_data(key: str) -> str:
    """FORMAT:ROOT with the root resolved, so a link and its target name one dataset."""
    if ":" not in key:
        return key
    fmt, root = parse_spec(key)
    return f"{fmt}:{Path(root).resolve()}"


def scorers_by_source(specs: tuple[str, ...], sources: list[str], batch_size: int) -> dict[str, list[Scorer]]:
    """`SOURCE=MODEL` flags matched to the generated folders' sources (the full FORMAT:ROOT, or its format)."""
    wanted: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, model = spec.partition("=")
        if not sep or not key or not model:
            raise DiffreidError(f"--scorer {spec!r} is not SOURCE=MODEL, e.g. market1501=runs/bot-market "
                                "or cuhk01:/data/cuhk01=osnet.onnx")
        wanted.setdefault(key, []).append(model)
    found = {}
    for source in sources:
        fmt, root = parse_spec(source)
        names = {_same_data(source), fmt, str(Path(root).resolve())}
        models = [m for key, ms in wanted.items() if _same_data(key) in names for m in ms]
        if not models:
            raise DiffreidError(f"no --scorer for source {source}; give --scorer {parse_spec(source)[0]}=MODEL "
                                f"(sources: {', '.join(sources)})")
        found[source] = [Scorer(m, batch_size) for m in models]
    return found
