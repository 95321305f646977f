"""DIR/report.json of `diffreid run`: timings, counts, filter statistics, results, and the claim.

`results` is {init: {setting: {"mAP", "rank1", "mINP"}}}, each the mean over the run's
seeds; `per_seed` has every seed's numbers, `over_seeds` each cell's mean ± 95% interval
(`evaluation/intervals.py`), `test_sets` the size of each setting's test set (queries, gallery
images, identities queried): one query of 47 is 2 points of Rank-1.

The claim is asked of the measured numbers, by mAP. Its headline is the paper's own
comparison, where the run has it: ImageNet then Diff-Person pre-training against ImageNet
alone. Diff-Person from scratch against scratch and against pre-training on the raw
source images (source-only) are this project's extra controls: secondary rows, and the
headline only of a run without ImageNet rows. Each comparison is a verdict from the
paired 95% interval of the difference over seeds: beats, within noise or loses; with
fewer seeds than `report: min_seeds` (default 3) it is not enough seeds to claim. The
answer of a group of comparisons: yes (all beat), partly (some beat), within noise (all
within noise), no (none beats, some lose), or not enough seeds (any has too few).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from diffreid.artifacts import read_jsonl, write_json_atomic
from diffreid.evaluation.intervals import MIN_SEEDS, paired_verdict, percent, t_interval
from diffreid.run_spec import RunSpec, setting_label

log = logging.getLogger(__name__)

METRIC = "mAP"
PAPER = (("imagenet+diff-person", "imagenet"),)  # the paper's comparison
CONTROLS = (("diff-person", "scratch"), ("diff-person", "source-only"))  # this project's extra controls
INTERVAL = ("mean ± 95% Student-t interval over seeds; verdict from the paired 95% Student-t interval of the "
            "per-seed difference (beats: above 0, loses: below 0, within noise: holds 0)")


def write_report_json(spec: RunSpec, out: Path, ledger: dict) -> dict:
    stages = ledger["stages"]
    counts = {"source_identities": 0, "generated": 0, "kept": 0}
    for source in spec.sources:
        counts["source_identities"] += len(read_jsonl(out / "sources" / source.name / "captions" / "identities.jsonl"))
    filter_report = _json(out / "diff-person" / "filter_report.json")
    if filter_report:
        counts |= {"generated": filter_report["images_in"], "kept": filter_report["kept"],
                   "diff_person_identities": filter_report["identities_with_images"]}
    measured = stages.get("settings", {}).get("counts", {})
    results = measured.get("results", {})
    per_seed = measured.get("per_seed") or {  # a run recorded before seeds: its one seed
        init: {setting: [{"seed": spec.seed, **numbers}] for setting, numbers in per_init.items()}
        for init, per_init in results.items()}
    sizes = test_sets(spec, out)
    report = {"config": str(spec.path), "out": str(out),
              "stages": {name: {"seconds": entry["seconds"], "finished": entry["finished"]}
                         for name, entry in stages.items() if entry.get("finished")},
              "counts": counts,
              "filter": {key: filter_report[key] for key in ("kept_fraction", "dropped", "score", "thresholds")}
              if filter_report else {},
              "results": results, "per_seed": per_seed, "over_seeds": over_seeds(per_seed), "test_sets": sizes,
              "claim": claim(per_seed, int(spec.report.get("min_seeds", MIN_SEEDS)), sizes)}
    write_json_atomic(out / "report.json", report)
    return report


def over_seeds(per_seed: dict) -> dict:
    """{init: {setting: {"seeds": n, metric: {"mean", "ci"}}}}: ci the half-width of the 95% interval."""
    found = {}
    for init, per_init in per_seed.items():
        for setting, rows in per_init.items():
            cell = {"seeds": len(rows)}
            for metric in ("mAP", "rank1"):
                mean, half = t_interval([row[metric] for row in rows])
                cell[metric] = {"mean": mean, "ci": half}
            found.setdefault(init, {})[setting] = cell
    return found


def test_sets(spec: RunSpec, out: Path) -> dict:
    """Per setting: what it was tested on and how big that is (queries, gallery images, identities)."""
    from diffreid.data import load_dataset

    found, sizes = {}, {}
    for setting in spec.settings:
        label = setting_label(setting)
        done = next((path for init in spec.inits
                     if (path := out / "settings" / init / label / "results.json").is_file()), None)
        if done is None:
            continue
        test = json.loads(done.read_text(encoding="utf-8"))["test"]
        if test not in sizes:
            try:
                dataset = load_dataset(test)
                query, gallery = dataset.split("query"), dataset.split("gallery")
                sizes[test] = {"queries": len(query), "gallery": len(gallery),
                               "identities": len({r.pid for r in query if r.pid > 0})}
            except Exception as error:  # noqa: BLE001 - a moved dataset leaves the sizes unknown, not the report
                log.warning("%s: test set not readable for its size (%s)", test, error)
                sizes[test] = {"queries": None, "gallery": None, "identities": None}
        found[label] = {"test": test, **sizes[test]}
    return found


def size_text(size: dict | None) -> str:
    if not size or size.get("queries") is None:
        return "test set size unknown"
    return (f"{size['queries']} queries of {size['identities']} identities against {size['gallery']} "
            "gallery images")


def claim(per_seed: dict, min_seeds: int = MIN_SEEDS, sizes: dict | None = None) -> dict:
    """The headline (the paper's comparison where the run has it) and the extra controls, by mAP."""
    sizes = sizes or {}
    paper = _group(per_seed, PAPER, "paper", min_seeds)
    controls = _group(per_seed, CONTROLS, "extra control", min_seeds)
    if not paper["rows"] and not controls["rows"]:
        return {"answer": "not measured", "text": "The run holds no Diff-Person results beside a baseline.",
                "metric": METRIC, "min_seeds": min_seeds, "interval": INTERVAL, "headline": "none",
                "comparisons": []}
    if paper["rows"]:
        headline, answer = "paper", paper["answer"]
        text = ("Headline, the paper's comparison: ImageNet then Diff-Person pre-training against ImageNet alone: "
                f"{answer}. " + _describe(paper["rows"], sizes, min_seeds))
        if controls["rows"]:
            text += (" This project's extra controls (not the paper's comparison): "
                     + _describe(controls["rows"], sizes, min_seeds))
    else:
        headline, answer = "extra controls", controls["answer"]
        text = ("The paper's comparison (ImageNet against ImageNet then Diff-Person) is not in this run (it has no "
                "imagenet rows; give the config `imagenet:`). Headline, this project's extra controls: Diff-Person "
                f"pre-training from scratch against scratch and against source-only pre-training: {answer}. "
                + _describe(controls["rows"], sizes, min_seeds))
    text += f" ({METRIC}: {INTERVAL}; a claim needs {min_seeds} seeds.)"
    return {"answer": answer, "text": text, "metric": METRIC, "min_seeds": min_seeds, "interval": INTERVAL,
            "headline": headline, "comparisons": paper["rows"] + controls["rows"]}


def _group(per_seed: dict, pairs: tuple, role: str, min_seeds: int) -> dict:
    rows = []
    for init, baseline in pairs:
        for setting, runs in per_seed.get(init, {}).items():
            others = per_seed.get(baseline, {}).get(setting)
            if others is None:
                continue
            a = {row["seed"]: row[METRIC] for row in runs}
            b = {row["seed"]: row[METRIC] for row in others}
            found = paired_verdict(a, b, min_seeds)
            mean_a, ci_a = t_interval(list(a.values()))
            mean_b, ci_b = t_interval(list(b.values()))
            rows.append({"role": role, "setting": setting, "init": init, "baseline": baseline,
                         "init_mean": mean_a, "init_ci": ci_a, "baseline_mean": mean_b, "baseline_ci": ci_b,
                         **found})
    verdicts = [row["verdict"] for row in rows]
    answer = ("not enough seeds" if "not enough seeds" in verdicts else
              "yes" if all(v == "beats" for v in verdicts) else "partly" if "beats" in verdicts else
              "within noise" if all(v == "within noise" for v in verdicts) else "no")
    return {"rows": rows, "answer": answer}


def _describe(rows: list[dict], sizes: dict, min_seeds: int) -> str:
    parts = []
    for row in rows:
        seeds = len(row["seeds"])
        head = (f"{row['setting']} ({size_text(sizes.get(row['setting']))}), {row['init']} {METRIC} "
                f"{percent(row['init_mean'], row['init_ci'])} against {row['baseline']} "
                f"{percent(row['baseline_mean'], row['baseline_ci'])}")
        short = (f"{seeds} paired seed{'s' * (seeds != 1)} of the {min_seeds} a claim needs: "
                 "not enough seeds to claim")
        if row["low"] is None:
            parts.append(f"{head}, difference {100 * row['difference']:+.1f} points; {short}")
        elif row["verdict"] == "not enough seeds":
            parts.append(f"{head}, difference {100 * row['difference']:+.1f} points [{100 * row['low']:+.1f}, "
                         f"{100 * row['high']:+.1f}]; {short}")
        else:
            parts.append(f"{head}, difference {100 * row['difference']:+.1f} points [{100 * row['low']:+.1f}, "
                         f"{100 * row['high']:+.1f}] over {seeds} seeds: {row['verdict']}")
    return "; ".join(parts) + "."


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
