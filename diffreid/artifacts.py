"""Artifact bookkeeping: atomic writes, stage manifests, paths that stay in their root."""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from diffreid.errors import DiffreidError


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only on success.

    A killed process leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def sweep_partial(folder: str | os.PathLike) -> int:
    """Remove the temporary files killed writers left under `folder`; call it only when no
    writer is at work there (a stage's merge step). Returns how many went."""
    stale = list(Path(folder).rglob(".*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n")


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The entries of a JSON-lines file (none when it is absent); a broken line is reported with
    its file and line number and skipped, so one bad line does not sink a long job."""
    path = Path(path)
    if not path.is_file():
        return []
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            logging.getLogger(__name__).warning("%s:%d: not valid JSON (%s); line skipped: fix or delete it",
                                                path, number, error.msg)
            continue
        if isinstance(entry, dict):
            entries.append(entry)
        else:
            logging.getLogger(__name__).warning("%s:%d: not a JSON object; line skipped", path, number)
    return entries


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def package_versions(names: tuple[str, ...] = ("diffreid", "numpy", "onnxruntime", "torch")) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def write_manifest(out_dir: str | os.PathLike, stage: str, config: Any, counts: dict[str, int] | None = None,
                   inputs: dict[str, str] | None = None) -> Path:
    """Write `manifest.json` for a stage's artifact directory (DESIGN.md, principle 1)."""
    out_dir = Path(out_dir)
    manifest = {
        "stage": stage,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "config": config.__dict__ if hasattr(config, "__dict__") else config,
        "versions": package_versions(),
        "inputs": inputs or {},
        "counts": counts or {},
    }
    path = out_dir / "manifest.json"
    write_json_atomic(path, manifest)
    return path


def inside_root(root: str | os.PathLike, relative: str, origin: str | os.PathLike) -> Path:
    """Join a path read from `origin` onto `root`, refusing any that escapes it.

    The check is on the path as written (absolute paths and `..` climbing out are
    refused), not on where symlinks lead, so a dataset folder linked in from another
    disk still reads.
    """
    root = Path(os.path.abspath(root))
    candidate = Path(os.path.normpath(root / relative))
    if Path(relative).is_absolute() or not candidate.is_relative_to(root):
        raise DiffreidError(
            f"{origin}: path {relative!r} points outside the dataset root {root}; "
            "paths in list files must be relative to the dataset directory"
        )
    return candidate


def log_to_file(path: Path) -> logging.Handler:
    """Send INFO and above to `path` too (appended, so a resumed run keeps one log)."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    return handler


def parse_shard(text: str | None) -> tuple[int, int]:
    """`--shard K/N` as (K, N); None is the whole job (1, 1)."""
    if text is None:
        return 1, 1
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise DiffreidError(f"--shard {text!r} is not K/N, e.g. 2/8") from None
    if not 1 <= k <= n:
        raise DiffreidError(f"--shard {text}: K must be between 1 and N")
    return k, n
