"""DIR/report.json of `diffreid run`: timings, counts, filter statistics, results, and the claim.

`results` is {init: {setting: {"mAP", "rank1", "mINP"}}}. The claim is the paper's, asked
of the measured numbers: does pre-training on the generated data (`diff-person`) beat
scratch, and beat pre-training on the raw source images (`source-only`), on the target?
"""

from __future__ import annotations

import json
from pathlib import Path

from diffreid.artifacts import read_jsonl, write_json_atomic
from diffreid.pipeline.spec import RunSpec


def write_report_json(spec: RunSpec, out: Path, ledger: dict) -> dict:
    stages = ledger["stages"]
    counts = {"source_identities": 0, "generated": 0, "kept": 0}
    for source in spec.sources:
        counts["source_identities"] += len(read_jsonl(out / "sources" / source.name / "captions" / "identities.jsonl"))
    filter_report = _json(out / "diff-person" / "filter_report.json")
    if filter_report:
        counts |= {"generated": filter_report["images_in"], "kept": filter_report["kept"],
                   "diff_person_identities": filter_report["identities_with_images"]}
    results = stages.get("settings", {}).get("counts", {}).get("results", {})
    report = {"config": str(spec.path), "out": str(out),
              "stages": {name: {"seconds": entry["seconds"], "finished": entry["finished"]}
                         for name, entry in stages.items() if entry.get("finished")},
              "counts": counts,
              "filter": {key: filter_report[key] for key in ("kept_fraction", "dropped", "score", "thresholds")}
              if filter_report else {},
              "results": results, "claim": claim(results)}
    write_json_atomic(out / "report.json", report)
    return report


def claim(results: dict) -> dict:
    """Per setting: diff-person against scratch and source-only, by mAP; an overall answer."""
    rows, wins, comparisons = [], 0, 0
    generated = results.get("diff-person", {})
    for setting, numbers in generated.items():
        row = {"setting": setting, "diff-person": numbers["mAP"]}
        for baseline in ("scratch", "source-only"):
            other = results.get(baseline, {}).get(setting)
            if other is not None:
                row[baseline] = other["mAP"]
                row[f"beats {baseline}"] = numbers["mAP"] > other["mAP"]
                wins += row[f"beats {baseline}"]
                comparisons += 1
        rows.append(row)
    if not comparisons:
        return {"answer": "not measured", "text": "The run holds no diff-person results beside a baseline.",
                "settings": rows}
    answer = _answer(wins, comparisons)
    parts = []
    for row in rows:
        against = [f"{b} {row[b]:.1%} ({'beaten' if row[f'beats {b}'] else 'not beaten'})"
                   for b in ("scratch", "source-only") if b in row]
        parts.append(f"{row['setting']}: diff-person mAP {row['diff-person']:.1%} against " + ", ".join(against))
    text = (f"Pre-training on the generated data won {wins} of {comparisons} comparisons on the target "
            f"({answer}). " + "; ".join(parts) + ".")
    found = {"answer": answer, "text": text, "settings": rows}
    after_imagenet = against_imagenet(results)
    if after_imagenet:
        found["imagenet"] = after_imagenet
        found["text"] += " " + after_imagenet["text"]
    return found


def _answer(wins: int, comparisons: int) -> str:
    return "yes" if wins == comparisons else "no" if wins == 0 else "partly"


def against_imagenet(results: dict) -> dict | None:
    """The paper's own comparison: Diff-Person pre-training after ImageNet against ImageNet alone."""
    both, alone = results.get("imagenet+diff-person", {}), results.get("imagenet", {})
    shared = [setting for setting in both if setting in alone]
    if not shared:
        return None
    rows = [{"setting": s, "imagenet+diff-person": both[s]["mAP"], "imagenet": alone[s]["mAP"],
             "beats imagenet": both[s]["mAP"] > alone[s]["mAP"]} for s in shared]
    wins = sum(row["beats imagenet"] for row in rows)
    answer = _answer(wins, len(rows))
    text = (f"As the paper compares, ImageNet then Diff-Person against ImageNet alone won {wins} of {len(rows)} "
            f"({answer}): " + "; ".join(f"{r['setting']} {r['imagenet+diff-person']:.1%} against "
                                        f"{r['imagenet']:.1%}" for r in rows) + ".")
    return {"answer": answer, "text": text, "settings": rows}


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
