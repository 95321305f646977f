"""Batched feature extraction over records, with images decoded in background threads."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from diffreid.data.records import Record

log = logging.getLogger(__name__)


def load_resized(path, size: tuple[int, int]) -> np.ndarray:
    """An RGB image as uint8 H×W×3, resized bilinearly to (height, width)."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        if image.size != (size[1], size[0]):
            image = image.resize((size[1], size[0]), Image.BILINEAR)
        return np.asarray(image, dtype=np.uint8)


def _try_load(path, size):
    try:
        return load_resized(path, size)
    except (OSError, ValueError) as error:
        return error


def extract_features(model: Callable[[np.ndarray], np.ndarray], records: Sequence[Record],
                     input_size: tuple[int, int], batch_size: int = 64,
                     desc: str = "extract") -> tuple[np.ndarray, list[Record]]:
    """Features of every readable image, and the records they belong to.

    An unreadable image is reported and skipped, never silently: the returned records
    say which images the feature rows are for.
    """
    features, kept = [], []
    with ThreadPoolExecutor(max_workers=4) as pool, tqdm(total=len(records), desc=desc, unit="img") as bar:
        for start in range(0, len(records), batch_size):
            batch = records[start:start + batch_size]
            images = []
            for record, image in zip(batch, pool.map(_try_load, [r.path for r in batch], [input_size] * len(batch))):
                if isinstance(image, Exception):
                    log.warning("%s: unreadable image skipped (%s)", record.path, image)
                    continue
                images.append(image)
                kept.append(record)
            if images:
                features.append(np.asarray(model(np.stack(images)), dtype=np.float32))
            bar.update(len(batch))
    dim = features[0].shape[1] if features else 0
    return (np.concatenate(features) if features else np.zeros((0, dim), np.float32)), kept
