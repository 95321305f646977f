"""Training checkpoints: written whole or not at all, found again after a kill.

`checkpoints/epoch-NNNN/` (or `step-NNNNNN/` for step-counted training) holds `model.safetensors` (the Re-ID model and any loss
parameters, e.g. center-loss centres) and `training_state.pt` (optimizer, loss scaler,
epoch: plain tensors and numbers, read back with `weights_only=True`). A checkpoint is
written under a temporary name and renamed when complete, so a kill mid-write leaves the
previous one as the latest.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from safetensors.torch import load_file, save_file

from diffreid.errors import DiffreidError

_NAME = re.compile(r"^(epoch|step)-(\d{4,})$")


def save_checkpoint(folder: Path, epoch: int, tensors: dict[str, torch.Tensor], state: dict, keep: int = 2,
                    unit: str = "epoch") -> Path:
    """Write checkpoint `epoch` (the number of epochs, or steps, finished) and prune all but the last `keep`."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / (f"epoch-{epoch:04d}" if unit == "epoch" else f"step-{epoch:06d}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=folder))
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp / "model.safetensors")
        torch.save({**state, "epoch": epoch}, tmp / "training_state.pt")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for old in checkpoints(folder)[:-max(1, keep)]:
        shutil.rmtree(old[1], ignore_errors=True)
    return final


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


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and training state of one checkpoint directory."""
    try:
        tensors = load_file(path / "model.safetensors")
        state = torch.load(path / "training_state.pt", map_location="cpu", weights_only=True)
    except Exception as error:  # safetensors and torch raise untyped errors
        raise DiffreidError(f"{path}: unreadable checkpoint ({error}); delete it to resume from the one before") \
            from None
    return tensors, state


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
