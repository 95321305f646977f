"""The YAML config of `diffreid run`: read, checked whole before any work starts.

A config names the source datasets the generator learns (each a `data: FORMAT:ROOT`, or
`synth:` options for procedural persons the run renders itself), the target dataset the
pre-trained backbones are fine-tuned and tested on, and one section per stage whose keys
are that stage's options (the fields of its config class, as on its command line). Every
key is checked against those fields and every dataset root against the disk, so a typo
or a missing dataset stops the run before any work, with the file, the key and the fix.
So does a setting that cannot run on the config's datasets: `uda` and `dg` test on a
target they did not train on, so a target that is also one of their sources (the same
images, whatever the format) is refused, and a setting picks its own `sources:` among
the run's. The CTF's reference takes a source's test splits only for a source that is
never the target.

`seed` seeds the stages that make the data (datasets, captions, generator, images,
filter); `seeds` (default `[seed]`, and it includes `seed`) lists the seeds of the Re-ID
training runs: every pre-training and downstream run is repeated per seed, so the report
weighs a claim by the spread over seeds (`report: min_seeds`, default 3, to claim at all).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from diffreid.config import (TRAIN_PRESETS, CaptionConfig, FilterConfig, FinetuneConfig, GenerateConfig, SynthConfig,
                             TrainConfig, config_values, train_preset)
from diffreid.errors import DiffreidError
from diffreid.evaluation.intervals import MIN_SEEDS
from diffreid.filtering.scores import SCORES
from diffreid.settings import SETTINGS

INITS = ("scratch", "source-only", "diff-person", "imagenet", "imagenet+diff-person")
DEMO_PRESETS = ("quick", "full")  # configs/demo-<preset>.yaml
TOP_LEVEL = ("seed", "seeds", "sources", "target", "backbone", "imagenet", "caption", "finetune", "generate",
             "filter", "pretrain", "downstream", "settings", "inits", "report", "keep_checkpoints")
SETTING_KEYS = ("name", "label", "preset", "fraction", "one_per_camera", "eps", "min_samples", "sources")
REPORT_KEYS = ("identities", "per_cell", "min_seeds")


@dataclass
class DatasetSpec:
    """A dataset of the run: on disk (`data`), or procedural persons rendered into the run."""

    name: str
    data: str | None = None
    synth: dict | None = None
    scorer: str | None = None  # sources: the CTF's Re-ID model; None: the run's source-only pre-training

    def spec(self, out: Path) -> str:
        return self.data or f"market1501:{Path(out) / 'datasets' / self.name}"


@dataclass
class RunSpec:
    sources: list[DatasetSpec]
    target: DatasetSpec
    path: Path  # the config file, named in errors
    seed: int = 0
    seeds: list[int] | None = None  # the Re-ID training runs' seeds, each run repeated per seed; None: [seed]
    backbone: str | None = None  # one backbone for pre-training and downstream runs
    imagenet: str | None = None  # ImageNet weights (file or hub id): adds the imagenet rows
    caption: dict = field(default_factory=dict)
    finetune: dict = field(default_factory=dict)
    generate: dict = field(default_factory=dict)
    filter: dict = field(default_factory=dict)
    pretrain: dict = field(default_factory=dict)  # {"preset": NAME, other TrainConfig fields}
    downstream: dict = field(default_factory=dict)  # the same, for the settings' runs
    settings: list[dict] = field(default_factory=list)  # {"name", "label", "preset", "fraction", "sources", ...}
    inits: list[str] = field(default_factory=lambda: ["scratch", "source-only", "diff-person"])
    report: dict = field(default_factory=dict)  # {"identities": rows of grids, "min_seeds": to claim}
    keep_checkpoints: bool = False  # a finished stage's training checkpoints are removed unless true
    raw: dict = field(default_factory=dict)  # the file's mapping, for the record


def load_run_spec(path: str | Path, overrides: dict | None = None) -> RunSpec:
    """Read and check a run config; `overrides` replace top-level keys (e.g. from `diffreid demo`)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise DiffreidError(f"{path}: no such run config; presets are in configs/ (demo-quick.yaml, "
                            "demo-full.yaml, paper.yaml)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise DiffreidError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise DiffreidError(f"{path}: a run config is a YAML mapping of sections ({', '.join(TOP_LEVEL)})")
    raw = {**raw, **(overrides or {})}
    unknown = sorted(set(raw) - set(TOP_LEVEL))
    if unknown:
        raise DiffreidError(f"{path}: unknown key(s) {', '.join(unknown)}; a run config has {', '.join(TOP_LEVEL)}")
    sources = raw.get("sources") or []
    if not isinstance(sources, list) or not sources:
        raise DiffreidError(f"{path}: `sources` must list at least one dataset the generator learns")
    if not isinstance(raw.get("target"), dict):
        raise DiffreidError(f"{path}: `target` must name the dataset to fine-tune and test on "
                            "(data: FORMAT:ROOT, or synth: {...})")
    spec = RunSpec(sources=[_dataset(path, f"sources[{i}]", s, f"source{i + 1}" if len(sources) > 1 else "source")
                            for i, s in enumerate(sources)],
                   target=_dataset(path, "target", raw["target"], "target"), path=path,
                   **{k: v for k, v in raw.items() if k not in ("sources", "target")}, raw=raw)
    _check(spec)
    return spec


def _dataset(path: Path, where: str, value, default_name: str) -> DatasetSpec:
    if not isinstance(value, dict):
        raise DiffreidError(f"{path}: {where} must be a mapping with `data: FORMAT:ROOT` or `synth: {{...}}`")
    unknown = sorted(set(value) - {"name", "data", "synth", "scorer"})
    if unknown:
        raise DiffreidError(f"{path}: {where}: unknown key(s) {', '.join(unknown)}; keys: name, data, synth, scorer")
    if bool(value.get("data")) == bool(value.get("synth")):
        raise DiffreidError(f"{path}: {where} needs exactly one of `data: FORMAT:ROOT` and `synth: {{...}}`")
    dataset = DatasetSpec(name=str(value.get("name", default_name)), data=value.get("data"),
                          synth=value.get("synth"), scorer=value.get("scorer"))
    if dataset.data is not None:
        from diffreid.data import parse_spec
        from diffreid.data.registry import formats

        fmt, root = parse_spec(dataset.data)
        if fmt not in formats():
            raise DiffreidError(f"{path}: {where}.data: unknown format {fmt!r}; formats: {', '.join(formats())}")
        if not root.exists():
            raise DiffreidError(f"{path}: {where}.data: {root} does not exist; fix the path (the dataset is not "
                                "downloaded by diffreid)")
    else:
        if not isinstance(dataset.synth, dict):
            raise DiffreidError(f"{path}: `{where}.synth` must be a mapping of options")
        _fields(path, f"{where}.synth", SynthConfig, dataset.synth)
    return dataset


def _fields(path: Path, where: str, cls, values: dict) -> None:
    """A section's options, checked before the run fills in its folders."""
    try:
        config_values(cls, values, partial=True)
    except DiffreidError as error:
        raise DiffreidError(f"{path}: {where}: {error}") from None


def _check(spec: RunSpec) -> None:
    path = spec.path
    names = [d.name for d in spec.sources] + [spec.target.name]
    if len(set(names)) != len(names):
        raise DiffreidError(f"{path}: dataset names must differ ({', '.join(names)}); set `name:` on each")
    if not isinstance(spec.keep_checkpoints, bool):
        raise DiffreidError(f"{path}: `keep_checkpoints` is true or false, not {spec.keep_checkpoints!r}")
    for section in ("caption", "finetune", "generate", "filter", "pretrain", "downstream"):
        if not isinstance(getattr(spec, section), dict):
            raise DiffreidError(f"{path}: `{section}` must be a mapping of options")
    _fields(path, "caption", CaptionConfig, spec.caption)
    _fields(path, "finetune", FinetuneConfig, spec.finetune)
    _fields(path, "generate", GenerateConfig, spec.generate)
    _fields(path, "filter", FilterConfig, spec.filter)
    score = spec.filter.get("score", FilterConfig.score)
    if score not in SCORES:  # else the run would stop at its filter stage, after captioning, fine-tuning and sampling
        raise DiffreidError(f"{path}: filter: score {score!r} is not a CTF score; scores: {', '.join(SCORES.names())}")
    for section in ("pretrain", "downstream"):
        preset, values = train_values(spec, section)
        try:
            preset_values = train_preset(preset)
        except DiffreidError as error:
            raise DiffreidError(f"{path}: {section}: {error}") from None
        _fields(path, section, TrainConfig, preset_values | values)
    for init in spec.inits:
        if init not in INITS:
            raise DiffreidError(f"{path}: inits: unknown {init!r}; inits: {', '.join(INITS)}")
        if init.startswith("imagenet") and not spec.imagenet:
            raise DiffreidError(f"{path}: init {init!r} needs `imagenet:` (a weights file or hub id)")
    if not spec.settings:
        raise DiffreidError(f"{path}: `settings` must list at least one downstream setting ({', '.join(SETTINGS)})")
    labels = []
    for i, setting in enumerate(spec.settings):
        if not isinstance(setting, dict) or setting.get("name") not in SETTINGS:
            raise DiffreidError(f"{path}: settings[{i}]: `name` must be one of {', '.join(SETTINGS)}")
        unknown = sorted(set(setting) - set(SETTING_KEYS))
        if unknown:
            raise DiffreidError(f"{path}: settings[{i}]: unknown key(s) {', '.join(unknown)}; keys: name, label, "
                                "preset (the downstream preset for this one), fraction, one_per_camera, eps, "
                                "min_samples, sources (uda, dg: the names of the run's sources they train on)")
        _check_across(spec, i, setting)
        labels.append(setting_label(setting))
    if len(set(labels)) != len(labels):
        raise DiffreidError(f"{path}: two settings share a label; give each a distinct `label:`")
    _check_reference_splits(spec)
    _check_seeds(spec)


def same_dataset(spec: RunSpec, a: DatasetSpec, b: DatasetSpec) -> bool:
    """Whether two datasets of a run hold the same people: one root on disk (whatever the format,
    e.g. cuhk01 and cuhk01-485), or the same procedural options."""
    if a.data is not None and b.data is not None:
        from diffreid.data import parse_spec

        return Path(parse_spec(a.data)[1]).resolve() == Path(parse_spec(b.data)[1]).resolve()
    if a.synth is not None and b.synth is not None:
        return {"seed": spec.seed, **a.synth} == {"seed": spec.seed, **b.synth}
    return False


def setting_sources(spec: RunSpec, setting: dict) -> list[DatasetSpec]:
    """What a `uda` / `dg` setting trains on: its `sources:` (names of the run's sources), or all of them."""
    names = setting.get("sources")
    if names is None:
        return list(spec.sources)
    return [source for name in names for source in spec.sources if source.name == name]


def _check_across(spec: RunSpec, i: int, setting: dict) -> None:
    path, name = spec.path, setting["name"]
    where = f"settings[{i}] ({setting_label(setting)})"
    if "sources" in setting:
        names = setting["sources"]
        known = [source.name for source in spec.sources]
        if not SETTINGS[name].across:
            across = " and ".join(setting for setting in SETTINGS if SETTINGS[setting].across)
            raise DiffreidError(f"{path}: {where}: `sources` is for {across}, which train on sources and test on "
                                f"the target; {name} trains on the target")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise DiffreidError(f"{path}: {where}: `sources` lists the names of the run's sources it trains on "
                                f"({', '.join(known)})")
        unknown = [n for n in names if n not in known]
        if unknown:
            raise DiffreidError(f"{path}: {where}: sources {', '.join(unknown)} are not the run's; its sources are "
                                f"{', '.join(known)}")
    if not SETTINGS[name].across:  # trained on sources, tested on the target: never the same dataset
        return
    clash = [source for source in setting_sources(spec, setting) if same_dataset(spec, source, spec.target)]
    if clash:
        others = [source.name for source in spec.sources if not same_dataset(spec, source, spec.target)]
        fix = (f"give it `sources: [{', '.join(others)}]` (the run's sources that are other datasets than the "
               "target), or drop it" if others else
               "drop it, or run it in a config whose target is a dataset none of its sources is")
        raise DiffreidError(f"{path}: {where}: setting {name} trains on the sources and tests on the target, but the "
                            f"target {spec.target.name} is the same dataset as source {clash[0].name}: it would test "
                            f"on the people it trained on. Fix: {fix}")


def _check_reference_splits(spec: RunSpec) -> None:
    """The CTF's reference takes a source's test splits only where that source is never the target."""
    splits = spec.filter.get("reference_splits", ["train"])
    splits = [splits] if isinstance(splits, str) else splits
    if not isinstance(splits, list) or not splits or set(splits) - {"train", "query", "gallery"}:
        raise DiffreidError(f"{spec.path}: filter: reference_splits lists some of train, query, gallery "
                            "(default: [train])")
    if set(splits) == {"train"}:
        return
    for source in spec.sources:
        if same_dataset(spec, source, spec.target):
            raise DiffreidError(f"{spec.path}: filter: reference_splits {splits} would let the test identities of "
                                f"source {source.name}, the same dataset as the target {spec.target.name}, set the "
                                "CTF's threshold and serve as rival centroids for the data pre-trained on. Fix: drop "
                                "`reference_splits` (default: the training identities only); it is for a source that "
                                "is never a target")


def _check_seeds(spec: RunSpec) -> None:
    path = spec.path
    if spec.seeds is not None and (not isinstance(spec.seeds, list) or not spec.seeds
                                   or not all(isinstance(s, int) and not isinstance(s, bool) for s in spec.seeds)
                                   or len(set(spec.seeds)) != len(spec.seeds)):
        raise DiffreidError(f"{path}: `seeds` lists distinct integer seeds of the Re-ID training runs, e.g. [0, 1, 2]")
    if spec.seeds is not None and spec.seed not in spec.seeds:
        raise DiffreidError(f"{path}: `seeds` {spec.seeds} must include the run's `seed` ({spec.seed}): its training "
                            "runs are the ones in DIR/pretrain and DIR/settings (the others go to DIR/seeds/<seed>)")
    if not isinstance(spec.report, dict):
        raise DiffreidError(f"{path}: `report` must be a mapping of options ({', '.join(REPORT_KEYS)})")
    unknown = sorted(set(spec.report) - set(REPORT_KEYS))
    if unknown:
        raise DiffreidError(f"{path}: report: unknown key(s) {', '.join(unknown)}; keys: {', '.join(REPORT_KEYS)}")
    least = spec.report.get("min_seeds", MIN_SEEDS)
    if not isinstance(least, int) or isinstance(least, bool) or least < 2:
        raise DiffreidError(f"{path}: report: min_seeds is the number of seeds a claim needs, at least 2 (an interval "
                            f"needs two); not {least!r}")


def training_seeds(spec: RunSpec) -> list[int]:
    """The seeds of the Re-ID training runs, the run's `seed` first: `seeds`, or that one seed."""
    return [spec.seed, *(seed for seed in spec.seeds or () if seed != spec.seed)]


def setting_label(setting: dict) -> str:
    return str(setting.get("label") or setting["name"])


def train_values(spec: RunSpec, section: str) -> tuple[str | None, dict]:
    """A training section as (preset, TrainConfig overrides), the run's backbone and seed included."""
    values = dict(getattr(spec, section))
    preset = values.pop("preset", None)
    if spec.backbone:
        values["backbone"] = spec.backbone
    return preset, {**values, "seed": spec.seed}


def preset_path(name: str) -> Path:
    """A run preset in configs/ (demo-quick, demo-full, paper)."""
    return TRAIN_PRESETS.parent / f"{name}.yaml"


def demo_overrides(preset: Path, target: str | None, imagenet: str | None, backbone: str | None = None,
                   scorer: str | None = None) -> dict:
    """`diffreid demo --target/--imagenet/--scorer`: the real-data protocol, generating from the
    target's own training identities (captioned with a fixed caption when the dataset carries no
    attributes). ImageNet rows need that backbone's weights: MobileNetV2 unless `backbone` says
    otherwise, as its weights are the ones in ../shared/data. `scorer`: the CTF's Re-ID model
    (e.g. OSNet) instead of the run's own source-only pre-training."""
    import yaml

    raw = yaml.safe_load(Path(preset).read_text(encoding="utf-8"))
    overrides: dict = {}
    if target is not None:
        overrides["target"] = {"data": target}
        overrides["sources"] = [{"data": target}]
        overrides["caption"] = {**raw.get("caption", {}), "captioner": "fixed"}
    if imagenet is not None:
        overrides["imagenet"] = imagenet
        overrides["backbone"] = backbone or "mobilenet_v2"
        overrides["inits"] = [*raw.get("inits", INITS[:3]), "imagenet", "imagenet+diff-person"]
    elif backbone is not None:
        overrides["backbone"] = backbone
    if scorer is not None:
        overrides["sources"] = [{**source, "scorer": scorer} for source in overrides.get("sources", raw["sources"])]
    return overrides
