"""`diffreid study RUN --out DIR`: the questions the paper leaves open, measured on a finished run.

A finished `diffreid run` holds what every variant shares with it (datasets, captions, the
CTF's scorer, the baselines' downstream results), so a variant makes again only what it
changes, in its own run-shaped folder DIR/<variant>/ whose shared parts link to RUN, and
is scored as the run was: the run's downstream settings with the Diff-Person
initialisation and, where it has its own generator, the identity consistency and spread
of its generated images under one Re-ID model (the run's source-only model by default).

Questions, each a set of variants:
- ctf: the fraction of generated images kept, by CTF score (1.0 is without the CTF);
- data: pre-training on synthetic images only (the run), real only (its source-only
  model), or both;
- sequence: fine-tuning on n images per identity (the run: all of them);
- iir: without the Identity Information Representer (no identity tokens);
- di: without Diversity Injection (no FSPP loss, no injected attributes at sampling).
DIR/study.json and DIR/study.md hold every row; a plot per sweep; a grid of input | run |
without DI | without IIR. A variant whose row exists is not run again; one cut short
resumes through its stages' own checkpoints.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from diffreid.artifacts import atomic_path, log_to_file, write_json_atomic, write_text_atomic
from diffreid.errors import DiffreidError
from diffreid.pipeline import stages
from diffreid.run_spec import RunSpec, load_run_spec, training_seeds
from diffreid.training.checkpoints import prune_checkpoints

log = logging.getLogger(__name__)

QUESTIONS = ("ctf", "data", "sequence", "iir", "di")
STUDY_INITS = ("diff-person", "imagenet+diff-person")  # what the variants pre-train: from scratch, or from ImageNet
SHARED = ("datasets", "sources/*/captions", "pretrain/source-only")  # what no variant changes
GENERATED = ("sources/*/generator", "sources/*/generated")


def study(run: str | Path, out: str | Path, questions: tuple[str, ...] = QUESTIONS,
          keep: tuple[float, ...] = (1.0, 0.8, 0.6, 0.4, 0.2), lengths: tuple[int, ...] = (1, 2),
          consistency_model: str | None = None, init: str = STUDY_INITS[0]) -> Path:
    run, out = Path(run), Path(out)
    unknown = sorted(set(questions) - set(QUESTIONS))
    if unknown:
        raise DiffreidError(f"unknown question(s) {', '.join(unknown)}; questions: {', '.join(QUESTIONS)}")
    if init not in STUDY_INITS:
        raise DiffreidError(f"--init {init!r}: a study pre-trains {' or '.join(STUDY_INITS)}")
    report_path = run / "report.json"
    if not report_path.is_file():
        raise DiffreidError(f"{run}: not a finished `diffreid run` (no report.json); run it to the end first")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    base = load_run_spec(run / "config.yaml")
    if init not in base.inits:
        raise DiffreidError(f"{run / 'config.yaml'}: the run has no {init} rows to compare with; "
                            f"its inits are {', '.join(base.inits)}")
    out.mkdir(parents=True, exist_ok=True)
    handler = log_to_file(out / "study.log")
    try:
        return _study(run, out, report, base, questions, keep, lengths, consistency_model, init)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def _study(run: Path, out: Path, report: dict, base: RunSpec, questions: tuple[str, ...], keep: tuple[float, ...],
           lengths: tuple[int, ...], consistency_model: str | None, init: str) -> Path:
    judge = consistency_model or str(run / "pretrain" / "source-only")
    rows_path = out / "study.json"
    rows = {row["variant"]: row for row in json.loads(rows_path.read_text(encoding="utf-8"))["rows"]} \
        if rows_path.is_file() else {}

    def summary() -> dict:
        return {"run": str(run), "init": init, "consistency_model": judge, "baselines": report["results"],
                "rows": list(rows.values())}

    def measure(name: str, question: str, value, make) -> None:
        if name in rows and "error" not in rows[name]:
            log.info("variant %s: measured in an earlier study, kept", name)
            return
        log.info("variant %s (%s = %s): starting", name, question, value)
        try:
            rows[name] = {"variant": name, "question": question, "value": value, **make(out / name)}
            if not base.keep_checkpoints:  # a measured variant is read back, never resumed
                prune_checkpoints(out / name)
        except DiffreidError as error:  # e.g. too few identities kept to train on: reported, the rest goes on
            log.warning("variant %s: not measured: %s", name, error)
            rows[name] = {"variant": name, "question": question, "value": value, "error": str(error)}
        write_json_atomic(rows_path, summary())

    measure("run", "run", "as run", lambda folder: _the_run(run, report, base, init, judge))
    if "ctf" in questions:
        scores = generated_scores(run / "diff-person")
        for fraction in keep:
            measure(f"ctf-{fraction:g}", "ctf", fraction,
                    lambda folder, f=fraction: _kept_fraction(run, base, folder, init, scores, f))
    if "data" in questions:
        measure("data-both", "data", "synthetic + real", lambda folder: _both(run, base, folder, init))
    if "sequence" in questions:
        for n in lengths:
            measure(f"sequence-{n}", "sequence", n, lambda folder, n=n: _new_generator(
                run, base, folder, init, judge, {"finetune": {**base.finetune, "images_per_identity": n}}))
    if "iir" in questions:
        measure("no-iir", "iir", "without", lambda folder: _new_generator(
            run, base, folder, init, judge, {"finetune": {**base.finetune, "identity_tokens": 0}}))
    if "di" in questions:
        measure("no-di", "di", "without", lambda folder: _new_generator(
            run, base, folder, init, judge, {"finetune": {**base.finetune, "prior_weight": 0.0},
                                             "generate": {**base.generate, "injection": False}}))
    write_text_atomic(out / "study.md", study_table(summary()))
    plot_study(summary(), out)
    _grids(run, out, base)
    log.info("wrote %s", out / "study.md")
    return out


def generated_scores(diff_person: Path) -> np.ndarray:
    """The CTF score of every scored generated image of a filter run (kept or not)."""
    units = sorted(path for path in (diff_person / ".units").glob("*.json") if path.stem.isdigit())  # one per identity
    if not units:
        raise DiffreidError(f"{diff_person}: no filter units (.units/*.json) to read scores from; "
                            "was the run's filter stage finished?")
    scores = [entry["score"] for unit in units for entry in json.loads(unit.read_text(encoding="utf-8"))["entries"]
              if entry.get("score") is not None]
    return np.asarray(scores, dtype=np.float64)


def threshold_keeping(scores: np.ndarray, fraction: float) -> float:
    """The CTF threshold that keeps `fraction` of `scores` (1.0: all of them)."""
    if not 0 < fraction <= 1:
        raise DiffreidError(f"kept fraction {fraction} must be in (0, 1]")
    if fraction == 1:
        return float(scores.min()) - 1.0
    return float(np.quantile(scores, 1 - fraction))


def _variant(run: Path, base: RunSpec, folder: Path, init: str, overrides: dict, shared: tuple[str, ...]) -> RunSpec:
    """A run-shaped folder whose unchanged parts link to RUN, and its config."""
    import yaml

    for pattern in shared:
        for made in run.glob(pattern):
            link = folder / made.relative_to(run)
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink() and not link.exists():
                link.symlink_to(made.resolve(), target_is_directory=made.is_dir())
    inits = ["diff-person", *(["imagenet+diff-person"] if init == "imagenet+diff-person" else [])]
    raw = {**base.raw, **overrides, "inits": inits}
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yaml"
    write_text_atomic(config, yaml.safe_dump(raw, sort_keys=False))
    return load_run_spec(config)


def _downstream(spec: RunSpec, folder: Path, init: str, data: list[str] | None = None) -> dict:
    """Pre-train on this variant's Diff-Person (or `data`) and run the settings from it."""
    import dataclasses

    if data is None:
        stages.pretrain(dataclasses.replace(spec, inits=[init]), folder)
    else:
        for seed in training_seeds(spec):  # every seed the settings are run with
            stages.pretrain_backbone(dataclasses.replace(spec, seed=seed),
                                     stages.seed_folder(spec, folder, seed) / "pretrain" / init, data,
                                     "scratch" if init == "diff-person" else f"imagenet:{spec.imagenet}")
    results = stages.settings(dataclasses.replace(spec, inits=[init]), folder)["results"]
    return results[init]


def _filter_counts(diff_person: Path) -> dict:
    report = json.loads((diff_person / "filter_report.json").read_text(encoding="utf-8"))
    return {"generated": report["images_in"], "kept": report["kept"],
            "kept_fraction": round(report["kept_fraction"], 4)}


def _consistency(judge: str, spec: RunSpec, folder: Path) -> dict:
    from diffreid.judges.consistency import identity_consistency

    found = {}
    for source in spec.sources:
        scored = identity_consistency(judge, folder / "sources" / source.name / "generated")
        found[source.name] = {"closer_to_own": scored["generated"]["closer_to_own"],
                              "rank1": scored["generated"]["rank1"], "mAP": scored["generated"]["mAP"],
                              "spread": scored["generated"]["spread"], "real_spread": scored["real_spread"]}
    return found


def _the_run(run: Path, report: dict, base: RunSpec, init: str, judge: str) -> dict:
    from diffreid.data import load_dataset

    train = [r.pid for source in base.sources for r in load_dataset(source.spec(run)).train]
    return {**_filter_counts(run / "diff-person"), "consistency": _consistency(judge, base, run),
            "images_per_identity": round(len(train) / len(set(train)), 2), "results": report["results"][init]}


def _kept_fraction(run: Path, base: RunSpec, folder: Path, init: str, scores: np.ndarray, fraction: float) -> dict:
    threshold = threshold_keeping(scores, fraction)
    spec = _variant(run, base, folder, init, {"filter": {**base.filter, "threshold": threshold}}, SHARED + GENERATED)
    stages.ctf_filter(spec, folder)
    return {**_filter_counts(folder / "diff-person"), "threshold": threshold,
            "results": _downstream(spec, folder, init)}


def _both(run: Path, base: RunSpec, folder: Path, init: str) -> dict:
    spec = _variant(run, base, folder, init, {}, SHARED + GENERATED + ("diff-person",))
    data = [f"diffperson:{folder / 'diff-person'}", *(source.spec(folder) for source in spec.sources)]
    return {**_filter_counts(folder / "diff-person"), "results": _downstream(spec, folder, init, data)}


def _new_generator(run: Path, base: RunSpec, folder: Path, init: str, judge: str, overrides: dict) -> dict:
    """Fine-tune, generate and filter again with a changed generator config, then as the run."""
    spec = _variant(run, base, folder, init, overrides, SHARED)
    for stage in (stages.finetune, stages.generate, stages.ctf_filter):
        stage(spec, folder)
    return {**_filter_counts(folder / "diff-person"), "consistency": _consistency(judge, spec, folder),
            "results": _downstream(spec, folder, init)}


def study_table(summary: dict) -> str:
    """A markdown table: one row per variant, and the baselines' rows below."""
    settings = list(next(row for row in summary["rows"] if "error" not in row)["results"])
    head = ["question", "variant", "generated", "kept", "closer to own", "gen. Rank-1", "spread (real)"]
    head += [f"{s} mAP / R1" for s in settings]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]

    def cells(results: dict) -> list[str]:
        return [f"{100 * results[s]['mAP']:.1f} / {100 * results[s]['rank1']:.1f}" if s in results else ""
                for s in settings]

    for row in summary["rows"]:
        if "error" in row:
            lines.append("| " + " | ".join([row["question"], str(row["value"]), f"not measured: {row['error']}",
                                             *[""] * (len(head) - 3)]) + " |")
            continue
        scored = next(iter(row.get("consistency", {}).values()), None)
        judged = [f"{100 * scored['closer_to_own']:.1f}%", f"{100 * scored['rank1']:.1f}%",
                  f"{scored['spread']:.3f} ({scored['real_spread']:.3f})"] if scored else ["", "", ""]
        lines.append("| " + " | ".join([row["question"], str(row["value"]), str(row["generated"]), str(row["kept"]),
                                         *judged, *cells(row["results"])]) + " |")
    for init, results in summary["baselines"].items():
        if "diff-person" not in init:
            lines.append("| " + " | ".join(["baseline", init, "", "", "", "", "", *cells(results)]) + " |")
    return "\n".join(lines) + "\n"


def plot_study(summary: dict, out: Path) -> None:
    """mAP against kept fraction (ctf) and against sequence length, baselines as lines; for the
    sequence also identity consistency and spread of the generated images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in summary["rows"] if "error" not in row]
    the_run = next(row for row in rows if row["variant"] == "run")
    settings = list(the_run["results"])
    sweeps = {"ctf": ("kept fraction of generated images", lambda row: row["kept_fraction"]),
              "sequence": ("images per identity given to fine-tuning (the run: all, their mean)",
                           lambda row: row["value"])}
    for question, (label, x_of) in sweeps.items():
        points = [row for row in rows if row["question"] == question]
        if not points:
            continue
        points.append(the_run if question == "ctf" else {**the_run, "value": the_run["images_per_identity"]})
        ordered = sorted(points, key=x_of)
        xs = [x_of(row) for row in ordered]
        figure, axes = plt.subplots(1, 2 if question == "sequence" else 1, figsize=(11 if question == "sequence"
                                                                                 else 6, 4), squeeze=False)
        axis = axes[0][0]
        for setting in settings:
            line, = axis.plot(xs, [100 * row["results"][setting]["mAP"] for row in ordered], "o-",
                              label=f"diff-person, {setting}")
            for init, results in summary["baselines"].items():
                if "diff-person" not in init and setting in results:
                    axis.axhline(100 * results[setting]["mAP"], color=line.get_color(),
                                 linestyle="--" if init == "source-only" else ":", linewidth=1,
                                 label=f"{init}, {setting}")
        axis.set_ylabel("target mAP (%)")
        axis.set_title(f"{question}: Diff-Person pre-training against the baselines", fontsize=10)
        axis.legend(fontsize=8)
        if question == "sequence":
            judged = [next(iter(row["consistency"].values())) for row in ordered]
            right = axes[0][1]
            right.plot(xs, [100 * j["closer_to_own"] for j in judged], "o-", label="closer to own identity (%)")
            right.plot(xs, [100 * j["rank1"] for j in judged], "s-", label="generated as queries, Rank-1 (%)")
            right.set_ylabel("identity consistency (%)")
            spread = right.twinx()
            spread.plot(xs, [j["spread"] for j in judged], "^--", color="grey", label="spread (diversity)")
            spread.set_ylabel("spread: cosine distance to identity mean")
            right.set_title("identity consistency and diversity of the generated images", fontsize=10)
            handles = right.get_legend_handles_labels()
            more = spread.get_legend_handles_labels()
            right.legend(handles[0] + more[0], handles[1] + more[1], fontsize=8)
        for axis in axes[0]:
            axis.set_xlabel(label, fontsize=9)
            if question == "sequence":
                axis.set_xscale("log")
        figure.tight_layout()
        with atomic_path(out / f"{question}.png") as tmp:
            figure.savefig(tmp, format="png", dpi=120)
        plt.close(figure)


def _grids(run: Path, out: Path, base: RunSpec) -> None:
    """input | the run's generated | without DI | without IIR, for a few identities."""
    from diffreid.filtering.generated import read_generated
    from diffreid.report.grids import comparison_grid

    source = base.sources[0].name
    folders = [run / "sources" / source / "generated"]
    folders += [out / name / "sources" / source / "generated" for name in ("no-di", "no-iir")
                if (out / name / "sources" / source / "generated" / "manifest.jsonl").is_file()]
    if len(folders) == 1:
        return
    pids = sorted({item.pid for item in read_generated(folders[0])[1]})[:6]
    comparison_grid(folders, pids, out / "grid-di-iir.png")
