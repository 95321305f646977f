"""The dataset format registry: `FORMAT:ROOT` on the command line becomes a ReidDataset."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from diffreid.data.records import ReidDataset
from diffreid.errors import DatasetError

Reader = Callable[[Path], ReidDataset]
_READERS: dict[str, Reader] = {}


def register(*names: str) -> Callable[[Reader], Reader]:
    """Register a reader under one or more format names (`market1501`, `dukemtmc`, ...)."""

    def decorate(reader: Reader) -> Reader:
        for name in names:
            _READERS[name] = reader
        return reader

    return decorate


def formats() -> list[str]:
    _load_builtin_readers()
    return sorted(_READERS)


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
    _load_builtin_readers()
    if fmt not in _READERS:
        raise DatasetError(f"unknown dataset format {fmt!r} in {spec!r}; formats: {', '.join(formats())}")
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset directory not found; check the path after '{fmt}:'")
    return _READERS[fmt](root)


def _load_builtin_readers() -> None:
    # Importing the modules runs their @register decorators.
    from diffreid.data import cuhk01, cuhk03, listfile, market1501, msmt17, peta  # noqa: F401
