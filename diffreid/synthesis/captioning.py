"""`diffreid caption`: captions for a dataset's images and one description per identity (LPE part 1).

Writes `captions.jsonl` (image relative to the dataset root, pid, camid, caption; one
line per captioned image), `identities.jsonl` (pid, description, n_images) and
`manifest.json`. Identities are the units of work: each finished identity is written
atomically to `.units/<pid>.jsonl`, and the outputs are merged from those files, so a
killed run restarted with the same settings captions only the identities it had not
finished and ends with the same files an uninterrupted run writes. The unit files stay
after the merge: running again re-merges at once, and only captions identities the
dataset has gained. Batches span identities, so a GPU stays full when identities are small.
`--shard K/N` (or a launch on several processes, see `diffreid.scaleout`) captions every
N-th identity; the run that finds all identities done merges.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from diffreid.artifacts import sweep_partial, write_json_atomic, write_manifest, write_text_atomic
from diffreid.config import CaptionConfig
from diffreid.data import load_dataset, parse_spec
from diffreid.data.records import Record, ReidDataset
from diffreid.errors import DiffreidError
from diffreid.scaleout import merges_here, stage_shard
from diffreid.synthesis.captioners import captioner_factory
from diffreid.synthesis.captioners.attributes import attribute_file, attribute_fingerprint
from diffreid.synthesis.descriptions import merge_captions

log = logging.getLogger(__name__)

Unit = tuple[int, list[Record]]


def run(config: CaptionConfig) -> Path:
    """Caption `config.splits` of `config.data` into `config.out`; returns the output folder."""
    if config.batch_size < 1:
        raise DiffreidError(f"--batch-size must be at least 1, got {config.batch_size}")
    make_captioner = captioner_factory(config.captioner)
    dataset = load_dataset(config.data).require(*config.splits)
    units = identities([r for split in config.splits for r in dataset.split(split)])
    attributes = attribute_file(config, dataset)
    settings = _settings(config, attributes, dataset)
    out = Path(config.out)
    folder = _resumable_units(out, settings)

    k, n = stage_shard(config.shard)
    mine = [unit for i, unit in enumerate(units) if i % n == k - 1]
    todo = [(pid, records) for pid, records in mine if not (folder / f"{pid}.jsonl").exists()]
    total = sum(len(records) for _, records in mine)
    if len(todo) < len(mine):
        log.info("resuming %s: %d of %d identities already captioned", out, len(mine) - len(todo), len(mine))
    if todo:
        captioner = make_captioner(config, attributes)  # before writing anything: loading is what fails most
        write_json_atomic(folder / "settings.json", settings)
        sizes = {pid: len(records) for pid, records in todo}
        with tqdm(total=total, initial=total - sum(sizes.values()), desc=f"caption {config.captioner}",
                  unit="img") as bar:
            for pid, captioned in caption_units(todo, captioner.caption, config.batch_size):
                lines = [{"image": record.path.relative_to(dataset.root).as_posix(), "pid": pid,
                          "camid": record.camid, "caption": text} for record, text in captioned]
                write_text_atomic(folder / f"{pid}.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
                bar.update(sizes[pid])
    if not merges_here(config.shard):
        return out
    done = sum((folder / f"{pid}.jsonl").exists() for pid, _ in units)
    if done < len(units):
        log.info("%d of %d identities captioned; run the other shards, then once more to merge", done, len(units))
        return out
    sweep_partial(out)
    total = sum(len(records) for _, records in units)
    counts = _merge(out, folder, units)
    counts |= {"skipped_images": total - counts["images"], "dataset_identities": len(units)}
    if counts["skipped_images"]:
        log.warning("%d of %d images got no caption (see the warnings above)", counts["skipped_images"], total)
    inputs = {"data": settings["data"]} | ({"attributes": settings["attributes"]} if attributes else {})
    write_manifest(out, "caption", config, counts, inputs)
    log.info("wrote %d captions of %d identities to %s", counts["images"], counts["identities"], out)
    return out


def identities(records: list[Record]) -> list[Unit]:
    """Records grouped by pid, in pid order; distractors (pid 0) are many people, so they are left out."""
    groups: dict[int, list[Record]] = defaultdict(list)
    for record in records:
        groups[record.pid].append(record)
    if 0 in groups:
        log.info("%d distractor images (pid 0) left out: they show no one identity", len(groups.pop(0)))
    return sorted(groups.items())


def caption_units(units: list[Unit], caption: Callable[[list[Record]], list[str | None]],
                  batch_size: int) -> Iterator[tuple[int, list[tuple[Record, str]]]]:
    """Yield (pid, [(record, caption)]) as each identity's last image is captioned; skipped images are left out."""
    flat = [(pid, record) for pid, records in units for record in records]
    remaining = {pid: len(records) for pid, records in units}
    captioned: dict[int, list[tuple[Record, str]]] = defaultdict(list)
    for start in range(0, len(flat), batch_size):
        batch = flat[start:start + batch_size]
        for (pid, record), text in zip(batch, caption([record for _, record in batch]), strict=True):
            if text is not None:
                captioned[pid].append((record, text))
            remaining[pid] -= 1
            if not remaining[pid]:
                yield pid, captioned.pop(pid, [])


def _settings(config: CaptionConfig, attributes: Path | None, dataset: ReidDataset) -> dict:
    """What the output depends on: a leftover `.units/` made with other settings is not resumed."""
    fmt, root = parse_spec(config.data)
    settings = asdict(config) | {"data": f"{fmt}:{root.resolve()}", "splits": list(config.splits)}
    for field in ("out", "batch_size", "device", "attributes", "shard"):
        del settings[field]
    if attributes is not None:
        settings["attributes"] = attribute_fingerprint(attributes, dataset)
    if config.captioner != "blip2":
        for field in ("model", "prompt", "num_beams", "max_new_tokens"):
            del settings[field]
    if config.captioner != "fixed":
        del settings["fixed_caption"]
    return settings


def _resumable_units(out: Path, settings: dict) -> Path:
    """`out/.units`, emptied first when it was made with other settings."""
    folder = out / ".units"
    recorded = folder / "settings.json"
    if folder.exists() and (not recorded.exists() or json.loads(recorded.read_text()) != settings):
        log.warning("%s was made with other settings; captioning from scratch", folder)
        shutil.rmtree(folder)
    return folder


def _merge(out: Path, folder: Path, units: list[Unit]) -> dict[str, int]:
    """captions.jsonl and identities.jsonl from the unit files, in pid order."""
    captions, descriptions = [], []
    for pid, _ in units:
        lines = [json.loads(line) for line in (folder / f"{pid}.jsonl").read_text(encoding="utf-8").splitlines()]
        captions += lines
        if lines:
            description = merge_captions([line["caption"] for line in lines])
            descriptions.append({"pid": pid, "description": description, "n_images": len(lines)})
    write_text_atomic(out / "captions.jsonl", "".join(json.dumps(line) + "\n" for line in captions))
    write_text_atomic(out / "identities.jsonl", "".join(json.dumps(line) + "\n" for line in descriptions))
    return {"images": len(captions), "identities": len(descriptions)}
