"""CUHK03, detected or labeled boxes, under the 767/700 "new protocol" (Zhong et al., CVPR 2017).

The images ship only inside the original `cuhk-03.mat` (MATLAB v7.3, so HDF5): cell
arrays `detected` and `labeled` of five campus camera pairs, each a persons x 10 cell of
images (1-5 from the pair's first camera, 6-10 from its second; empty where missing),
held as object references to transposed uint8 arrays. The protocol's split files
(`cuhk03_new_protocol_config_{detected,labeled}.mat`) name PNG files
`{campus}_{person:03d}_{camera}_{image:02d}.png`, so the images are written out once
under those names, as torchreid does, into ROOT/images_{kind}/ (or a cache folder when
ROOT is read-only) and reused after. pid is the split file's `labels` (1..1467, unique
across campus pairs), camid its `camId` (1 or 2, the pair's two cameras), both kept.

ROOT is the torchreid layout (`cuhk03_release/cuhk-03.mat` beside the two split files)
or a folder holding all three files directly.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path

import numpy as np

from diffreid.artifacts import atomic_path, write_text_atomic
from diffreid.data.records import Problem, Record, ReidDataset
from diffreid.data.registry import register
from diffreid.errors import DatasetError

log = logging.getLogger(__name__)

RAW_MAT = "cuhk-03.mat"
SPLIT_MAT = "cuhk03_new_protocol_config_{kind}.mat"
SPLIT_FIELDS = {"train": "train_idx", "query": "query_idx", "gallery": "gallery_idx"}
_EXTRACTED = ".extracted"  # written once every image of cuhk-03.mat is out
_SPLIT_SOURCE = "github.com/zhunzhong07/person-re-ranking (evaluation/data/CUHK03)"


def image_name(campus: int, person: int, image: int) -> str:
    """The new protocol's file name for a 1-based campus pair, person and image (1-5: camera 1)."""
    return f"{campus}_{person:03d}_{1 if image <= 5 else 2}_{image:02d}.png"


def read_cuhk03_split(path: Path) -> list[tuple[str, int, int, str]]:
    """(file name, pid, camid, split) for every image a new-protocol split file assigns."""
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
    except (OSError, ValueError, TypeError, NotImplementedError) as error:
        raise DatasetError(f"{path}: not a readable split file ({error}); download it again from {_SPLIT_SOURCE}") from None
    missing = [f for f in ("filelist", "labels", "camId", *SPLIT_FIELDS.values()) if f not in mat]
    if missing:
        raise DatasetError(f"{path}: no {', '.join(missing)} field; is this a CUHK03 new-protocol split file?")
    names = [str(np.asarray(cell).ravel()[0]) for cell in mat["filelist"].ravel()]
    labels, cameras = mat["labels"].ravel().astype(int), mat["camId"].ravel().astype(int)
    if not len(names) == len(labels) == len(cameras):
        raise DatasetError(f"{path}: filelist, labels and camId differ in length; download it again from {_SPLIT_SOURCE}")
    entries = []
    for split, field in SPLIT_FIELDS.items():
        for index in mat[field].ravel().astype(int):  # 1-based, as MATLAB counts
            if not 1 <= index <= len(names):
                raise DatasetError(f"{path}: {field} holds {index}, outside 1..{len(names)}; download it again")
            entries.append((names[index - 1], int(labels[index - 1]), int(cameras[index - 1]), split))
    return entries


def extract_images(raw_mat: Path, kind: str, out_dir: Path) -> int:
    """Write every `kind` image of cuhk-03.mat into out_dir as PNG, each atomically; return how many.

    Images already there are kept, so an interrupted extraction resumes where it stopped.
    """
    import h5py
    from PIL import Image
    from tqdm import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    present = set(os.listdir(out_dir))
    written = 0
    try:
        mat = h5py.File(raw_mat, "r")
    except OSError as error:
        raise DatasetError(f"{raw_mat}: not a MATLAB v7.3 (HDF5) file ({error}); use the original {RAW_MAT}") from None
    with mat:
        if kind not in mat:
            raise DatasetError(f"{raw_mat}: no {kind!r} cell array; use the original {RAW_MAT}")
        campuses = [mat[ref][()].T for ref in mat[kind][()].ravel()]  # each: persons x 10 references
        log.info("extracting CUHK03 %s images from %s into %s (once)", kind, raw_mat, out_dir)
        with tqdm(total=sum(len(c) for c in campuses), desc=f"CUHK03 {kind}", unit="person", file=sys.stderr) as bar:
            for campus, people in enumerate(campuses, 1):
                for person, refs in enumerate(people, 1):
                    for image, ref in enumerate(refs, 1):
                        name = image_name(campus, person, image)
                        if name in present:
                            continue
                        pixels = mat[ref][()]
                        if pixels.ndim != 3 or pixels.size == 0:
                            continue  # an empty cell: MATLAB stores it as a 2-element placeholder
                        with atomic_path(out_dir / name) as tmp:
                            Image.fromarray(np.ascontiguousarray(pixels.T)).save(tmp, format="PNG")
                        written += 1
                    bar.update()
    write_text_atomic(out_dir / _EXTRACTED, f"{raw_mat}\n")
    return written


def cache_dir(base: Path) -> Path:
    """Where images go when the dataset folder is read-only: $DIFFREID_CACHE or ~/.cache/diffreid."""
    home = Path(os.environ.get("DIFFREID_CACHE") or Path.home() / ".cache" / "diffreid")
    return home / "cuhk03" / hashlib.sha256(str(base.resolve()).encode()).hexdigest()[:16]


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK)


def images_dir(base: Path, kind: str, names: set[str]) -> Path:
    """The images_{kind}/ folder with the protocol's images, extracting cuhk-03.mat first when needed."""
    candidates = [base / f"images_{kind}", cache_dir(base) / f"images_{kind}"]
    for folder in candidates:
        if (folder / _EXTRACTED).is_file() or (folder.is_dir() and names <= set(os.listdir(folder))):
            return folder
    raw = next((p for p in (base / "cuhk03_release" / RAW_MAT, base / RAW_MAT) if p.is_file()), None)
    if raw is None:
        partial = next((folder for folder in candidates if folder.is_dir()), None)
        if partial is not None:
            return partial  # images missing from it are reported by the reader
        raise DatasetError(
            f"{base}: no {RAW_MAT} and no extracted images_{kind}/; put the CUHK03 release's "
            f"cuhk03_release/{RAW_MAT} in {base}"
        )
    target = candidates[0] if _writable(base) else candidates[1]
    extract_images(raw, kind, target)
    return target


def _find_base(root: Path) -> Path:
    """ROOT, or ROOT/cuhk03 when the files are there (torchreid's root is one level up)."""
    for base in (root, root / "cuhk03"):
        if any((base / name).exists() for name in ("cuhk03_release", RAW_MAT, SPLIT_MAT.format(kind="detected"),
                                                     SPLIT_MAT.format(kind="labeled"))):
            return base
    return root


def read_cuhk03(root: Path, kind: str) -> ReidDataset:
    """Read the new protocol's `kind` ("detected" or "labeled") split, extracting images when needed."""
    base = _find_base(root)
    split_file = base / SPLIT_MAT.format(kind=kind)
    if not split_file.is_file():
        raise DatasetError(f"{split_file}: CUHK03 split file missing; download it from {_SPLIT_SOURCE} into {base}")
    entries = read_cuhk03_split(split_file)
    folder = images_dir(base, kind, {entry[0] for entry in entries})
    present = set(os.listdir(folder))
    dataset = ReidDataset(name=f"cuhk03-{kind}", root=base)
    for name, pid, camid, split in entries:
        if name in present:
            dataset.split(split).append(Record(folder / name, pid, camid, split))
        else:
            dataset.problems.append(Problem(
                f"listed in {split_file.name} but not among the extracted images; skipped", folder / name))
    return dataset


@register("cuhk03", "cuhk03-detected")
def read_cuhk03_detected(root: Path) -> ReidDataset:
    return read_cuhk03(root, "detected")


@register("cuhk03-labeled")
def read_cuhk03_labeled(root: Path) -> ReidDataset:
    return read_cuhk03(root, "labeled")
