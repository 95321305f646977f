"""Reading what `diffreid generate` wrote: its source dataset and one entry per image."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from diffreid.artifacts import inside_root, read_jsonl
from diffreid.errors import DiffreidError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Generated:
    path: Path
    pid: int  # the source dataset's own pid
    source: str  # FORMAT:ROOT of the dataset the generator learnt the identity from
    prompt: str
    seed: int
    injected: tuple[str, ...]
    reference: str | None = None  # the source image it was drawn from (generate --references), under the source's root
    references: tuple[str, ...] = ()  # every source image it was drawn from (--references-per-image), reference first


def read_generated(folder: str | Path) -> tuple[str, list[Generated]]:
    """The source dataset spec and the images of one generated folder, in manifest order."""
    folder = Path(folder)
    manifest, lines = folder / "manifest.json", folder / "manifest.jsonl"
    for path in (manifest, lines):
        if not path.is_file():
            raise DiffreidError(f"{path}: missing; --generated takes folders written by `diffreid generate`")
    try:
        source = json.loads(manifest.read_text(encoding="utf-8"))["config"]["data"]
    except (ValueError, KeyError, TypeError):
        raise DiffreidError(f"{manifest}: names no source dataset (config.data); was it written by "
                            "`diffreid generate`?") from None
    items = []
    for entry in read_jsonl(lines):  # a broken line is reported and skipped
        try:
            reference = entry.get("reference")
            items.append(Generated(inside_root(folder, entry["file"], lines), int(entry["pid"]),
                                   entry.get("source", source), entry.get("prompt", ""), int(entry.get("seed", -1)),
                                   tuple(entry.get("injected", ())), reference,
                                   tuple(entry.get("references") or ([reference] if reference else []))))
        except (ValueError, KeyError, TypeError) as error:
            log.warning("%s: an entry without file and pid skipped (%s): %s", lines, error, entry)
    return source, items
