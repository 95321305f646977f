"""The stages of `diffreid run`, each the library call its command makes, on the run's folders.

DIR/
  datasets/<name>/          procedural persons the config asks to render
  sources/<name>/captions/  caption      (LPE captions and identity descriptions)
  sources/<name>/generator/ finetune     (IIR, LoRA, Diversity Injection)
  sources/<name>/generated/ generate
  pretrain/source-only/     pre-training on the raw source images (also the CTF's scorer
                            where a source names none)
  diff-person/              filter       (the CTF; Market-1501 layout)
  pretrain/diff-person/, pretrain/imagenet+diff-person/
  settings/<init>/<label>/  downstream runs; results/ the table of all of them
  seeds/<seed>/pretrain/, seeds/<seed>/settings/
                            the same runs for each further seed of `seeds` (DIR/pretrain
                            and DIR/settings hold the run's `seed`)
Every stage resumes on its own (units, checkpoints), so a stage cut short by a crash picks
up where it stopped when the run is started again.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from diffreid.artifacts import read_jsonl
from diffreid.config import (CaptionConfig, FilterConfig, FinetuneConfig, GenerateConfig, SettingConfig, SynthConfig,
                             build_config, config_dict, load_train_config)
from diffreid.errors import DiffreidError
from diffreid.run_spec import RunSpec, setting_label, setting_sources, train_values, training_seeds
from diffreid.settings import SETTINGS

log = logging.getLogger(__name__)


def datasets(spec: RunSpec, out: Path) -> dict:
    from diffreid.data.synth import synthesize

    rendered = {}
    for dataset in [*spec.sources, spec.target]:
        if dataset.synth is not None:
            values = {"seed": spec.seed, **dataset.synth, "out": out / "datasets" / dataset.name}
            synthesize(build_config(SynthConfig, values))
            rendered[dataset.name] = values.get("identities", SynthConfig.identities)
    return {"rendered_identities": rendered}


def caption(spec: RunSpec, out: Path) -> dict:
    from diffreid.synthesis.captioning import run

    counts = {}
    for source in spec.sources:
        folder = run(build_config(CaptionConfig, {**spec.caption, "data": source.spec(out),
                                                  "out": out / "sources" / source.name / "captions"}))
        counts[source.name] = len(read_jsonl(folder / "captions.jsonl"))
    return {"captioned_images": counts}


def finetune(spec: RunSpec, out: Path) -> dict:
    from diffreid.synthesis.finetune import run

    for source in spec.sources:
        folder = out / "sources" / source.name
        run(build_config(FinetuneConfig, {"seed": spec.seed, **spec.finetune, "data": source.spec(out),
                                          "captions": folder / "captions", "out": folder / "generator"}))
    return {}


def generate(spec: RunSpec, out: Path) -> dict:
    from diffreid.synthesis.generate import run

    counts = {}
    for source in spec.sources:
        folder = out / "sources" / source.name
        run(build_config(GenerateConfig, {"seed": spec.seed, **spec.generate, "generator": folder / "generator",
                                          "out": folder / "generated"}))
        counts[source.name] = len(read_jsonl(folder / "generated" / "manifest.jsonl"))
    return {"generated_images": counts}


def needs_source_only(spec: RunSpec) -> bool:
    return "source-only" in spec.inits or any(source.scorer is None for source in spec.sources)


def source_only(spec: RunSpec, out: Path) -> dict:
    """Pre-training on the raw source images: the baseline the synthetic data must beat."""
    if not needs_source_only(spec):
        return {}
    return pretrain_backbone(spec, out / "pretrain" / "source-only", [s.spec(out) for s in spec.sources], "scratch")


def ctf_filter(spec: RunSpec, out: Path) -> dict:
    """The Re-ID Confidence Threshold Filter over every source's generated images."""
    import json

    from diffreid.filtering import run

    scorers = tuple(f"{s.spec(out)}={s.scorer or out / 'pretrain' / 'source-only'}" for s in spec.sources)
    folder = run(build_config(FilterConfig, {**spec.filter, "generated": [out / "sources" / s.name / "generated"
                                                                          for s in spec.sources],
                                             "scorers": scorers, "out": out / "diff-person"}))
    report = json.loads((folder / "filter_report.json").read_text(encoding="utf-8"))
    if not report["kept"]:
        raise DiffreidError(f"{folder / 'filter_report.json'}: the CTF kept none of {report['images_in']} generated "
                            f"images (dropped: {report['dropped']}); lower `filter: percentile` or set a `threshold` "
                            "in the config, or fine-tune the generator longer, then run again")
    return {"images_in": report["images_in"], "kept": report["kept"]}


def seed_folder(spec: RunSpec, out: Path, seed: int) -> Path:
    """Where the training runs of one seed go: DIR for the run's `seed`, DIR/seeds/<seed> for the others."""
    return Path(out) if seed == spec.seed else Path(out) / "seeds" / str(seed)


def pretrain(spec: RunSpec, out: Path) -> dict:
    """Pre-training on Diff-Person for every seed (and, for the further seeds, source-only: the run's
    `seed` has it from its own stage, where it is also the CTF's scorer)."""
    counts = {}
    data = [f"diffperson:{out / 'diff-person'}"]
    for seed in training_seeds(spec):
        folder, seeded = seed_folder(spec, out, seed), dataclasses.replace(spec, seed=seed)
        tag = "" if seed == spec.seed else f" seed {seed}"
        if seed != spec.seed and "source-only" in spec.inits:
            counts[f"source-only{tag}"] = pretrain_backbone(seeded, folder / "pretrain" / "source-only",
                                                            [s.spec(out) for s in spec.sources], "scratch")
        if "diff-person" in spec.inits:
            counts[f"diff-person{tag}"] = pretrain_backbone(seeded, folder / "pretrain" / "diff-person", data,
                                                            "scratch")
        if "imagenet+diff-person" in spec.inits:
            counts[f"imagenet+diff-person{tag}"] = pretrain_backbone(
                seeded, folder / "pretrain" / "imagenet+diff-person", data, f"imagenet:{spec.imagenet}")
    return counts


def pretrain_backbone(spec: RunSpec, run_dir: Path, data: list[str], init: str) -> dict:
    from diffreid.reid.export import export_backbone
    from diffreid.reid.trainer import run

    preset, values = train_values(spec, "pretrain")
    run(load_train_config(preset, {**values, "data": tuple(data), "out": run_dir, "init": init}))
    export_backbone(run_dir, run_dir / "backbone.safetensors")
    return {"data": data, "init": init}


def init_value(spec: RunSpec, out: Path, init: str) -> str:
    """What `--init` a downstream run of this initialisation gets."""
    if init == "scratch":
        return "scratch"
    if init == "imagenet":
        return f"imagenet:{spec.imagenet}"
    return str(out / "pretrain" / init / "backbone.safetensors")


def setting_config(spec: RunSpec, out: Path, init: str, setting: dict, seed: int | None = None) -> SettingConfig:
    """One downstream run: `setting` from initialisation `init`, trained with `seed` (default the run's)."""
    seed = spec.seed if seed is None else seed
    folder = seed_folder(spec, out, seed)
    preset, values = train_values(dataclasses.replace(spec, seed=seed), "downstream")
    target = spec.target.spec(out)
    across = SETTINGS[setting["name"]].across  # trained on the sources, tested on the target (never one of them)
    data = tuple(s.spec(out) for s in setting_sources(spec, setting)) if across else (target,)
    return SettingConfig(name=setting["name"], data=data,
                         target=target if across else None, out=folder / "settings" / init / setting_label(setting),
                         init=init_value(spec, folder, init),
                         preset=setting.get("preset") or preset or SettingConfig.preset,
                         fraction=setting.get("fraction"), one_per_camera=bool(setting.get("one_per_camera")),
                         table=out / "results", overrides=values, eps=setting.get("eps", SettingConfig.eps),
                         min_samples=setting.get("min_samples", SettingConfig.min_samples), seed=seed)


METRICS = ("mAP", "rank1", "mINP")


def settings(spec: RunSpec, out: Path) -> dict:
    """Every setting for every initialisation and seed; a finished one (same config) is read back, not
    rerun. `results` holds the mean over seeds, `per_seed` every seed's numbers."""
    import json

    from diffreid.settings import run

    per_seed: dict[str, dict[str, list]] = {}
    for seed in training_seeds(spec):
        for init in spec.inits:
            for setting in spec.settings:
                config = setting_config(spec, out, init, setting, seed)
                done = Path(config.out) / "results.json"
                summary = json.loads(done.read_text(encoding="utf-8")) if done.is_file() else None
                if summary is None or summary.get("config") != json.loads(json.dumps(config_dict(config),
                                                                                     default=str)):
                    summary = run(config)
                per_seed.setdefault(init, {}).setdefault(setting_label(setting), []).append(
                    {"seed": seed, **{k: summary[k] for k in METRICS}})
    results = {init: {label: {k: sum(row[k] for row in rows) / len(rows) for k in METRICS}
                      for label, rows in per_setting.items()} for init, per_setting in per_seed.items()}
    return {"results": results, "per_seed": per_seed}


STAGES = {"datasets": datasets, "caption": caption, "finetune": finetune, "generate": generate,
          "source-only": source_only, "filter": ctf_filter, "pretrain": pretrain, "settings": settings}
