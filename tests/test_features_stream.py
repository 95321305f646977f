"""Streamed extraction: the same features as `extract_features`, written to disk batch by batch."""

from __future__ import annotations

import numpy as np

from diffreid.data.records import Record
from diffreid.reid.features import extract_features, extract_features_to_disk


class MeanColour:
    """A stand-in model: mean RGB per image, so each row is checkable."""

    calls: list[int]

    def __init__(self):
        self.calls = []

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.calls.append(len(images))
        return images.reshape(len(images), -1, 3).mean(1).astype(np.float32)


def _records(tiny_persons, tmp_path, n=10):
    paths = sorted((tiny_persons / "bounding_box_train").glob("*.jpg"))[:n]
    broken = tmp_path / "0001_c1s1_000099_00.jpg"
    broken.write_bytes(b"")
    paths.insert(3, broken)
    return [Record(p, 1, 1, "train") for p in paths]


def test_stream_to_disk_equals_in_memory(tiny_persons, tmp_path):
    records = _records(tiny_persons, tmp_path)
    in_memory, kept = extract_features(MeanColour(), records, (32, 16), batch_size=4)
    model = MeanColour()
    on_disk, kept_disk = extract_features_to_disk(model, records, (32, 16), tmp_path / "f.npy", batch_size=4)
    assert model.calls == [3, 4, 3]  # batches of 4, the unreadable image left out of the first
    assert isinstance(on_disk, np.memmap) and on_disk.shape == (10, 3)
    assert kept_disk == kept and records[3] not in kept
    np.testing.assert_array_equal(np.asarray(on_disk), in_memory)
    # the file is a plain .npy of exactly the readable images
    assert np.load(tmp_path / "f.npy").shape == (10, 3)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
