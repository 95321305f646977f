"""The filter's output: a Diff-Person dataset in Market-1501 layout that any Re-ID toolkit reads.

Identities are numbered 1..N across all sources in a fixed order (sources as given,
pids ascending), so two sources' pid 1 become two people and a shard knows every
identity's final number without seeing the others. Generated images have no camera of
their own: all are camera 1, sequence 1; the frame number is the image's index among
its identity's generated images.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from diffreid.artifacts import atomic_path

TRAIN_DIR = "bounding_box_train"
EMPTY_SPLITS = ("query", "bounding_box_test")  # Diff-Person is for training only


def file_name(pid: int, frame: int) -> str:
    """Market-1501's `{pid}_c{cam}s{seq}_{frame}_{box}.jpg`; torchreid's and fast-reid's
    pattern `([-\\d]+)_c(\\d)` reads any number of pid digits."""
    return f"{pid:04d}_c1s1_{frame:06d}_00.jpg"


def write_image(image: Image.Image, out: Path, pid: int, frame: int, quality: int) -> str:
    relative = f"{TRAIN_DIR}/{file_name(pid, frame)}"
    with atomic_path(out / relative) as tmp:
        image.convert("RGB").save(tmp, format="JPEG", quality=quality)
    return relative
