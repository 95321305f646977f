"""`diffreid run CONFIG --out DIR`: the whole paradigm, in order, resumable.

DIR/run.json is the ledger: for each stage started, a digest of the config sections it
depends on (chained through the stages before it), and once it finished, its wall time
and counts. Started again, the run skips each finished stage whose digest still matches
and hands an unfinished one to that stage's own resume. A stage whose config changed is
not resumed: its outputs and every later stage's are removed and made again, so nothing
made with the old config survives. The log of every start is appended to DIR/run.log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

from diffreid.artifacts import log_to_file, write_json_atomic, write_text_atomic
from diffreid.errors import DiffreidError
from diffreid.pipeline.stages import STAGES
from diffreid.run_spec import RunSpec, load_run_spec

log = logging.getLogger(__name__)

ORDER = (*STAGES, "report")
# the config sections each stage reads (beyond what the stages before it read); a source's
# `scorer` is the filter's alone, so changing it keeps the generated images
DEPENDS = {"datasets": ("seed", "sources", "target"), "caption": ("caption",), "finetune": ("finetune",),
           "generate": ("generate",), "source-only": ("pretrain", "backbone", "inits"),
           "filter": ("filter", "scorers"),
           "pretrain": ("imagenet", "seeds"), "settings": ("downstream", "settings"), "report": ("report",)}


# what each stage writes under DIR (globs), removed when the stage must start again from nothing
OUTPUTS = {"datasets": ("datasets",), "caption": ("sources/*/captions",), "finetune": ("sources/*/generator",),
           "generate": ("sources/*/generated",), "source-only": ("pretrain/source-only",), "filter": ("diff-person",),
           "pretrain": ("pretrain/diff-person", "pretrain/imagenet+diff-person", "seeds/*/pretrain"),
           "settings": ("settings", "results", "seeds/*/settings"),
           "report": ("report.json", "report.html")}


def _remove_outputs(out: Path, stage: str) -> None:
    for pattern in OUTPUTS[stage]:
        for path in out.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


TRAINING = ("finetune", "source-only", "pretrain", "settings")  # the stages whose runs write checkpoints/


def _prune(out: Path, stage: str) -> None:
    """A finished stage is skipped, never resumed, so its training runs' checkpoints only take disk."""
    from diffreid.training.checkpoints import prune_checkpoints

    freed = sum(prune_checkpoints(path) for pattern in OUTPUTS[stage] for path in out.glob(pattern) if path.is_dir())
    if freed:
        log.info("stage %s: its checkpoints removed (%.0f MB; `keep_checkpoints: true` keeps them)", stage, freed / 1e6)


def digests(spec: RunSpec) -> dict[str, str]:
    chain, found = "", {}
    for stage in ORDER:
        part = {key: _section(spec.raw, key) for key in DEPENDS[stage]}
        if part.get("scorers") == [None] * len(spec.raw["sources"]):
            del part["scorers"]  # no source names a scorer: digests as before scorers were hashed apart
        if "seeds" in part and part["seeds"] is None:
            del part["seeds"]  # one seed: digests as before `seeds` existed
        chain = hashlib.sha256((chain + json.dumps(part, sort_keys=True, default=str)).encode()).hexdigest()[:16]
        found[stage] = chain
    return found


def _section(raw: dict, key: str):
    if key == "sources":
        return [{k: v for k, v in source.items() if k != "scorer"} for source in raw["sources"]]
    if key == "scorers":
        return [source.get("scorer") for source in raw["sources"]]
    return raw.get(key)


def run(config: str | Path, out: str | Path, until: str | None = None, overrides: dict | None = None) -> Path:
    """Run (or resume) every stage up to `until` (default: all, the report included)."""
    if until is not None and until not in ORDER:
        raise DiffreidError(f"--until {until!r}: stages are {', '.join(ORDER)}")
    spec = load_run_spec(config, overrides)  # the whole config checked before any work
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    handler = log_to_file(out / "run.log")
    try:
        write_text_atomic(out / "config.yaml", _yaml(spec.raw))
        ledger = _read_ledger(out)
        wanted = digests(spec)
        for index, stage in enumerate(ORDER[:ORDER.index(until) + 1 if until else len(ORDER)]):
            recorded = ledger["stages"].get(stage)
            if recorded and recorded["digest"] == wanted[stage] and recorded.get("finished"):
                log.info("stage %s: done in an earlier run (%.0f s), skipped", stage, recorded["seconds"])
                continue
            if recorded and recorded["digest"] != wanted[stage]:  # made with another config: not resumable
                log.info("stage %s: its config changed; its outputs and every later stage's are removed", stage)
                for later in ORDER[index:]:
                    _remove_outputs(out, later)
                    ledger["stages"].pop(later, None)
            ledger["stages"][stage] = {"digest": wanted[stage], "finished": None}  # started: resumable
            write_json_atomic(out / "run.json", ledger)
            log.info("stage %s: starting", stage)
            tick = time.time()
            counts = _report(spec, out, ledger) if stage == "report" else STAGES[stage](spec, out)
            ledger["stages"][stage] = {"digest": wanted[stage], "seconds": round(time.time() - tick, 1),
                                       "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                       "counts": counts}
            write_json_atomic(out / "run.json", ledger)
            log.info("stage %s: finished in %.0f s", stage, ledger["stages"][stage]["seconds"])
            if stage in TRAINING and not spec.keep_checkpoints:
                _prune(out, stage)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    return out


def _report(spec: RunSpec, out: Path, ledger: dict) -> dict:
    from diffreid.report.html import write_report_html
    from diffreid.report.summary import write_report_json

    report = write_report_json(spec, out, ledger)
    write_report_html(spec, out, report)
    return {"claim": report["claim"]["answer"]}


def _read_ledger(out: Path) -> dict:
    path = out / "run.json"
    if not path.is_file():
        return {"stages": {}}
    try:
        ledger = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        log.warning("%s is unreadable; every stage checks its own progress again", path)
        return {"stages": {}}
    return ledger if isinstance(ledger.get("stages"), dict) else {"stages": {}}


def _yaml(raw: dict) -> str:
    import yaml

    return yaml.safe_dump(raw, sort_keys=False)
