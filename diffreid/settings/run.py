"""`diffreid setting NAME`: train with an initialisation, test on a target, record the result.

- supervised: the training datasets' full train splits, tested on the (first) dataset;
- small-scale: a fraction of one dataset's training identities (default 25%);
- few-shot: a fraction of each training identity's images (default 10%), or one per camera;
- usl (unsupervised): cluster contrast on the target's training images, no labels read;
- uda (unsupervised domain adaptation): supervised on the source datasets, then cluster
  contrast on the target's unlabelled training images from that model;
- dg (domain generalization): train on source datasets, test on an unseen target.

Each run folder holds `data/` (the subset, when there is one), `run/` (the training
run), `eval/results.json`, and `results.json`; the row goes to the results table.
"""

from __future__ import annotations

from pathlib import Path

from diffreid.artifacts import write_json_atomic
from diffreid.config import SETTINGS, EvaluateConfig, SettingConfig, config_dict, load_train_config
from diffreid.data.subsets import subset_spec
from diffreid.errors import DiffreidError
from diffreid.settings.table import append_row



def training_data(config: SettingConfig, out: Path) -> tuple[tuple[str, ...], str]:
    """The training dataset specs and the test spec of a setting."""
    if config.name not in SETTINGS:
        raise DiffreidError(f"unknown setting {config.name!r}; settings: {', '.join(SETTINGS)}")
    target = config.target or config.data[0]
    if config.name in ("dg", "uda"):
        if config.target is None or config.target in config.data:
            raise DiffreidError(f"{config.name} tests on a dataset it did not train on: give --target FORMAT:ROOT "
                                "outside --data")
        return tuple(config.data), target
    if config.name in ("supervised", "usl"):
        return tuple(config.data), target
    if len(config.data) != 1:
        raise DiffreidError(f"{config.name} thins one dataset's training set; give one --data")
    if config.name == "small-scale":
        spec = subset_spec(config.data[0], out / "data", identities=config.fraction or 0.25, seed=config.seed)
    else:
        spec = subset_spec(config.data[0], out / "data", images=None if config.one_per_camera else
                           (config.fraction or 0.1), one_per_camera=config.one_per_camera, seed=config.seed)
    return (spec,), (spec if config.target is None else target)


def run(config: SettingConfig) -> dict:
    from diffreid.reid.cluster_contrast import run_usl
    from diffreid.reid.evaluate_model import run as evaluate
    from diffreid.reid.export import export_backbone
    from diffreid.reid.trainer import run as train

    out = Path(config.out)
    specs, target = training_data(config, out)
    values = {**(config.overrides or {}), "data": specs, "out": out / "run", "init": config.init, "seed": config.seed}
    if config.name == "usl":
        run_dir = run_usl(load_train_config(config.preset, values), config.eps, config.min_samples)
    else:
        run_dir = train(load_train_config(config.preset, values))
    if config.name == "uda":  # adapt the source model to the target without its labels
        backbone = export_backbone(run_dir, out / "source-backbone.safetensors")
        adapted = {**values, "data": (target,), "out": out / "adapted", "init": str(backbone)}
        run_dir = run_usl(load_train_config(config.preset, adapted), config.eps, config.min_samples)
    results = evaluate(EvaluateConfig(model=str(run_dir), data=target, out=out / "eval"))
    summary = {"setting": config.name, "init": config.init, "train": " + ".join(config.data),
               "test": config.target or config.data[0],
               "rank1": results["cmc"][0], "mAP": results["mAP"], "mINP": results["mINP"], "run": str(out),
               "config": config_dict(config)}
    write_json_atomic(out / "results.json", summary)
    append_row(Path(config.table or out.parent / "results"), summary)
    return summary
