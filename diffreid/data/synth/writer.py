"""`diffreid data synth`: render identities in worker processes and lay them out as Market-1501.

Identities are the units of work. Each is rendered into `.<out>.partial/` and recorded
in `.units/` once all its images are written, so a killed run restarted with the same
settings skips finished identities; the partial folder becomes `out` in one rename
after the manifests are written, so `out` is never half a dataset.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm import tqdm

from diffreid.artifacts import write_json_atomic, write_manifest, write_text_atomic
from diffreid.config import SynthConfig
from diffreid.data.market1501 import FOLDERS
from diffreid.data.synth.identity import sample_identity
from diffreid.data.synth.render import render_image
from diffreid.data.synth.seeds import derive_rng
from diffreid.data.synth.styles import Style, get_style
from diffreid.errors import DiffreidError

log = logging.getLogger(__name__)

_INLINE_BELOW = 16  # fewer identities than this render in-process: a pool would cost more than it saves


def synthesize(config: SynthConfig, workers: int | None = None) -> Path:
    """Render `config.identities` procedural people into `config.out`; returns the dataset folder.

    Odd pids are training identities, even pids test identities, so a person's split,
    like their look, does not depend on how many identities were asked for.
    """
    style = get_style(config.style)
    if config.identities < 2:
        raise DiffreidError(f"--identities must be at least 2 (one training and one test identity), "
                            f"got {config.identities}")
    if config.seed < 0:
        raise DiffreidError(f"--seed must be zero or positive, got {config.seed}")
    out = Path(config.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DiffreidError(f"{out} already exists and is not an empty folder; remove it or choose another --out")
    config = replace(config, out=out, style=style.name)
    work = _work_folder(out, config)

    units = work / ".units"
    todo = [pid for pid in range(1, config.identities + 1) if not (units / f"{pid:04d}.json").exists()]
    if len(todo) < config.identities:
        log.info("resuming %s: %d of %d identities already rendered", work, config.identities - len(todo),
                 config.identities)
    jobs = [(style.name, config.seed, pid, str(work)) for pid in todo]
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    with _mapper(workers, len(jobs)) as mapper:
        results = mapper(_render_identity, jobs)  # workers start here, before tqdm starts its thread
        with tqdm(total=config.identities, initial=config.identities - len(todo), desc=f"synth {style.name}",
                  unit="identity") as bar:
            for pid, unit in results:
                write_json_atomic(units / f"{pid:04d}.json", unit)
                bar.update(1)

    _finish(work, units, config)
    if out.exists():
        out.rmdir()
    os.replace(work, out)
    return out


def _work_folder(out: Path, config: SynthConfig) -> Path:
    """`.<out>.partial` beside `out`; a leftover one is resumed only if made with the same settings."""
    out = out.resolve()
    work = out.with_name(f".{out.name}.partial")
    settings = work / ".units" / "settings.json"
    wanted = {"identities": config.identities, "style": config.style, "seed": config.seed}
    if work.exists() and (not settings.exists() or json.loads(settings.read_text()) != wanted):
        shutil.rmtree(work)
    if not work.exists():
        write_json_atomic(settings, wanted)
    return work


@contextmanager
def _mapper(workers: int, jobs: int) -> Iterator[Callable]:
    """`map`, over a process pool when there is enough work to pay for one.

    fork, where there is one: spawn and forkserver re-import `__main__` in each worker,
    which re-runs any script that calls `synthesize` without an `if __name__` guard.
    """
    if workers <= 1 or jobs < _INLINE_BELOW:
        yield map
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    pool = ProcessPoolExecutor(workers, mp_context=context)
    try:
        yield partial(pool.map, chunksize=4)
    except BaseException:  # Ctrl-C or an error: drop the queued identities instead of rendering them all
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _plan_cameras(rng: np.random.Generator, style: Style) -> list[int]:
    """The camera (1-based) of each of an identity's images: 2+ cameras, 2+ images in each.

    Two images per camera guarantee that every query (one per camera) keeps a gallery
    image of its person in another camera.
    """
    low, high = style.images_per_identity
    count = int(rng.integers(low, high + 1))
    seen = int(rng.integers(2, min(style.cameras, count // 2) + 1))
    cams = rng.choice(style.cameras, seen, replace=False) + 1
    order = np.concatenate([np.repeat(cams, 2), rng.choice(cams, count - 2 * seen)])
    return [int(c) for c in rng.permutation(order)]


def _render_identity(job: tuple[str, int, int, str]) -> tuple[int, dict]:
    """Render and save every image of one identity; returns its records and attributes."""
    style_name, seed, pid, root = job
    style = get_style(style_name)
    rng = derive_rng(seed, style_name, pid)
    person = sample_identity(rng, style)
    cams = _plan_cameras(rng, style)
    records, queried = [], set()
    for index, cam in enumerate(cams):
        if pid % 2:
            split = "train"
        else:
            split = "gallery" if cam in queried else "query"
            queried.add(cam)
        file = f"{FOLDERS[split]}/{pid:04d}_c{cam}s1_{index + 1:06d}_00.jpg"
        image = render_image(style, seed, cam, person, derive_rng(seed, style_name, pid, index + 1))
        path = Path(root) / file
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, quality=style.quality)
        records.append({"file": file, "pid": pid, "camid": cam, "split": split})
    return pid, {"records": records, "attributes": person.attributes()}


def _finish(work: Path, units: Path, config: SynthConfig) -> None:
    """Gather the identities' records into manifest.jsonl, attributes.json and manifest.json."""
    records, attributes = [], {}
    for pid in range(1, config.identities + 1):
        unit = json.loads((units / f"{pid:04d}.json").read_text())
        records += unit["records"]
        attributes[f"{pid:04d}"] = unit["attributes"]
    order = list(FOLDERS)
    records.sort(key=lambda r: (order.index(r["split"]), r["file"]))
    write_text_atomic(work / "manifest.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    write_json_atomic(work / "attributes.json", attributes)
    counts = {split: sum(r["split"] == split for r in records) for split in FOLDERS}
    counts |= {"images": len(records), "identities": config.identities, "cameras": get_style(config.style).cameras,
               "train_identities": len({r["pid"] for r in records if r["split"] == "train"}),
               "test_identities": len({r["pid"] for r in records if r["split"] != "train"})}
    write_manifest(work, "synth", config, counts)
    shutil.rmtree(units)
