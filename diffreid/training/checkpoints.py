"""Run folders and where their checkpoints lie: `checkpoints/epoch-NNNN/` (or `step-NNNNNN/`
for step-counted training), each one accelerate state (see `diffreid.training.state`)."""

from __future__ import annotations

import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from diffreid.errors import DiffreidError

_NAME = re.compile(r"^(epoch|step)-(\d{4,})$")


def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(2)), p) for p in folder.iterdir() if (m := _NAME.match(p.name)) and p.is_dir()]
    return sorted(found)


def prune_checkpoints(root: Path) -> int:
    """Remove every `checkpoints/` folder under `root` (a finished run's resume points); the bytes freed."""
    freed = 0
    for folder in sorted(Path(root).rglob("checkpoints")):
        if folder.is_dir() and not folder.is_symlink() and checkpoints(folder):  # never a linked run's
            freed += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            shutil.rmtree(folder, ignore_errors=True)
    return freed


def check_same_run(out: Path, config: dict, resumable: tuple[str, ...], command: str) -> None:
    """Refuse to resume `out` with a config that differs but for the `resumable` fields.

    A field the run's config.yaml lacks is an option added since it started; it resumes
    with the option's value, which is logged (a new option's default keeps the old behaviour)."""
    import logging

    import yaml

    path = out / "config.yaml"
    if not path.is_file() or not checkpoints(out / "checkpoints"):
        return  # nothing trained yet: a new config simply replaces the old
    before = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    added = sorted(k for k in config if k not in before)
    if added:
        logging.getLogger(__name__).warning("%s: started before %s existed; resumed with %s", out, ", ".join(added),
                                            ", ".join(f"{k}={config[k]!r}" for k in added))
    changed = sorted(k for k in config if k not in (*resumable, "out", *added) and before[k] != config[k])  # a moved run resumes
    if changed:
        differences = ", ".join(f"{k}: {before.get(k)!r} -> {config[k]!r}" for k in changed)
        raise DiffreidError(f"{out}: holds a {command} run with a different config ({differences}); "
                            "resume with the same options or use a new --out")


@contextmanager
def open_run(out: Path, config: dict, resumable: tuple[str, ...], command: str) -> Iterator[Path]:
    """A step-counted run's folder: the config checked against what it holds and written,
    and the log appended to `train.log` while the block runs."""
    import logging

    import yaml

    from diffreid.artifacts import log_to_file, write_text_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    check_same_run(out, config, resumable, command)
    write_text_atomic(out / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    handler = log_to_file(out / "train.log")
    try:
        yield out
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
