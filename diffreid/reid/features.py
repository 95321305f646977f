"""Batched feature extraction over records, with images decoded in background threads."""

from __future__ import annotations

import io
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from diffreid.artifacts import atomic_path
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


def iter_features(model: Callable[[np.ndarray], np.ndarray], records: Sequence[Record],
                  input_size: tuple[int, int], batch_size: int = 64,
                  desc: str = "extract") -> Iterator[tuple[np.ndarray, list[Record]]]:
    """Features of every readable image, a batch at a time, with the records they belong to.

    An unreadable image is reported and skipped, never silently: each batch's records
    say which images its feature rows are for. An empty `desc` hides the progress bar
    (for callers that show their own).
    """
    with ThreadPoolExecutor(max_workers=4) as pool, tqdm(total=len(records), desc=desc, unit="img",
                                                         disable=not desc) as bar:
        for start in range(0, len(records), batch_size):
            batch = records[start:start + batch_size]
            images, kept = [], []
            for record, image in zip(batch, pool.map(_try_load, [r.path for r in batch], [input_size] * len(batch))):
                if isinstance(image, Exception):
                    log.warning("%s: unreadable image skipped (%s)", record.path, image)
                    continue
                images.append(image)
                kept.append(record)
            if images:
                yield np.asarray(model(np.stack(images)), dtype=np.float32), kept
            bar.update(len(batch))


def extract_features(model: Callable[[np.ndarray], np.ndarray], records: Sequence[Record],
                     input_size: tuple[int, int], batch_size: int = 64,
                     desc: str = "extract") -> tuple[np.ndarray, list[Record]]:
    """Features of every readable image in memory, and the records they belong to (see `iter_features`)."""
    features, kept = [], []
    for batch_features, batch_records in iter_features(model, records, input_size, batch_size, desc):
        features.append(batch_features)
        kept += batch_records
    dim = features[0].shape[1] if features else 0
    return (np.concatenate(features) if features else np.zeros((0, dim), np.float32)), kept


def extract_features_to_disk(model: Callable[[np.ndarray], np.ndarray], records: Sequence[Record],
                             input_size: tuple[int, int], path: str | Path, batch_size: int = 64,
                             desc: str = "extract") -> tuple[np.ndarray, list[Record]]:
    """`extract_features` for sets too large for memory: rows go to the .npy file `path` as
    they come, so memory holds one batch whatever the number of images.

    Returns the file opened read-only as a memory map (N×D float32, N the readable
    images) and the records of its rows. The file is written under a temporary name and
    renamed when complete.
    """
    path = Path(path)
    kept: list[Record] = []
    with atomic_path(path) as tmp:
        array = None
        for batch_features, batch_records in iter_features(model, records, input_size, batch_size, desc):
            if array is None:
                array = np.lib.format.open_memmap(tmp, "w+", np.float32, (len(records), batch_features.shape[1]))
            array[len(kept):len(kept) + len(batch_features)] = batch_features
            kept += batch_records
        if array is None:
            with open(tmp, "wb") as f:
                np.save(f, np.zeros((0, 0), np.float32))
        else:
            array.flush()
            del array
            _keep_rows(tmp, len(kept))
    return np.load(path, mmap_mode="r"), kept


def _keep_rows(path: Path, rows: int) -> None:
    """Shrink a 2-D float32 .npy file in place to its first `rows` rows (skipped images leave
    the last rows unused). numpy pads v1.0 headers so the row count can change in place."""
    with open(path, "r+b") as f:
        np.lib.format.read_magic(f)
        (_, dim), _, _ = np.lib.format.read_array_header_1_0(f)
        offset = f.tell()
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (rows, dim)})
        if len(header.getvalue()) != offset:
            raise RuntimeError(f"{path}: .npy header would change size; cannot shrink in place")
        f.seek(0)
        f.write(header.getvalue())
        f.truncate(offset + rows * dim * 4)
