"""The dataset format registry: `FORMAT:ROOT` on the command line becomes a ReidDataset."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from diffreid.data.records import ReidDataset
from diffreid.errors import DatasetError
from diffreid.registry import Registry

Reader = Callable[[Path], ReidDataset]
READERS: Registry[Reader] = Registry("dataset format", lambda: _load_builtin_readers())
register = READERS.register  # a reader under one or more format names (`market1501`, `dukemtmc`, ...)


def formats() -> list[str]:
    return sorted(READERS.names())


def parse_spec(spec: str) -> tuple[str, Path]:
    """Split `FORMAT:ROOT` into its parts, with an error that shows the expected shape."""
    fmt, sep, root = spec.partition(":")
    if not sep or not fmt or not root:
        raise DatasetError(
            f"dataset {spec!r} is not of the form FORMAT:ROOT, e.g. market1501:/data/Market-1501-v15.09.15; "
            f"formats: {', '.join(formats())}"
        )
    return fmt.lower(), Path(root).expanduser()


def load_dataset(spec: str) -> ReidDataset:
    """Read the dataset named by `FORMAT:ROOT` from its published layout."""
    fmt, root = parse_spec(spec)
    if fmt not in READERS:
        raise DatasetError(f"unknown dataset format {fmt!r} in {spec!r}; formats: {', '.join(formats())}")
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset directory not found; check the path after '{fmt}:'")
    return READERS[fmt](root)


def _load_builtin_readers() -> None:
    # Importing the modules runs their @register decorators.
    from diffreid.data import cuhk01, cuhk03, listfile, market1501, msmt17, peta  # noqa: F401
