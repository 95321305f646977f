"""`diffreid setting NAME`: train with an initialisation, test on a target, record the result.

Each setting is a `Setting` registered by name in `SETTINGS` where it is defined below: what it
trains and tests on (`training_data`) and how it trains (`train`). Each run folder holds
`data/` (the subset, when there is one), `run/` (the training run), `eval/results.json`, and
`results.json`; the row goes to the results table.
"""

from __future__ import annotations

from pathlib import Path

from diffreid.artifacts import write_json_atomic
from diffreid.config import EvaluateConfig, SettingConfig, config_dict, load_train_config
from diffreid.data.subsets import subset_spec
from diffreid.errors import DiffreidError
from diffreid.registry import Registry
from diffreid.settings.table import append_row


class Setting:
    """A downstream setting, registered in SETTINGS: by default the `--data` datasets' full train
    splits, supervised, tested on `--target` or the first dataset."""

    across = False  # trains on sources and tests on a target outside them (never one of them)

    def training_data(self, config: SettingConfig, out: Path) -> tuple[tuple[str, ...], str]:
        """The training dataset specs and the test spec."""
        return tuple(config.data), config.target or config.data[0]

    def train(self, config: SettingConfig, values: dict, target: str, out: Path) -> Path:
        """The run to test, trained from the training config `values`."""
        from diffreid.reid.trainer import run as train

        return train(load_train_config(config.preset, values))


SETTINGS: Registry[type[Setting]] = Registry("setting")


def _cluster_contrast(config: SettingConfig, values: dict) -> Path:
    from diffreid.reid.cluster_contrast import run_usl

    return run_usl(load_train_config(config.preset, values), config.eps, config.min_samples)


class _Thinned(Setting):
    """Trains on a subset of one dataset's training set, tested on its query / gallery."""

    def training_data(self, config: SettingConfig, out: Path) -> tuple[tuple[str, ...], str]:
        _, target = super().training_data(config, out)
        if len(config.data) != 1:
            raise DiffreidError(f"{config.name} thins one dataset's training set; give one --data")
        spec = self.subset(config, out / "data")
        return (spec,), (spec if config.target is None else target)

    def subset(self, config: SettingConfig, folder: Path) -> str:
        raise NotImplementedError


class _Across(Setting):
    """Trains on source datasets, tests on a target it did not train on."""

    across = True

    def training_data(self, config: SettingConfig, out: Path) -> tuple[tuple[str, ...], str]:
        data, target = super().training_data(config, out)
        if config.target is None or config.target in config.data:
            raise DiffreidError(f"{config.name} tests on a dataset it did not train on: give --target FORMAT:ROOT "
                                "outside --data")
        return data, target


@SETTINGS.register("supervised")
class Supervised(Setting):
    """The training datasets' full train splits, tested on the (first) dataset."""


@SETTINGS.register("small-scale")
class SmallScale(_Thinned):
    """A fraction of one dataset's training identities (default 25%)."""

    def subset(self, config: SettingConfig, folder: Path) -> str:
        return subset_spec(config.data[0], folder, identities=config.fraction or 0.25, seed=config.seed)


@SETTINGS.register("few-shot")
class FewShot(_Thinned):
    """A fraction of each training identity's images (default 10%), or one per camera."""

    def subset(self, config: SettingConfig, folder: Path) -> str:
        return subset_spec(config.data[0], folder, images=None if config.one_per_camera else (config.fraction or 0.1),
                           one_per_camera=config.one_per_camera, seed=config.seed)


@SETTINGS.register("usl")
class Unsupervised(Setting):
    """Unsupervised: cluster contrast on the target's training images, no labels read."""

    def train(self, config: SettingConfig, values: dict, target: str, out: Path) -> Path:
        return _cluster_contrast(config, values)


@SETTINGS.register("uda")
class DomainAdaptation(_Across):
    """Unsupervised domain adaptation: supervised on the source datasets, then cluster contrast on the
    target's unlabelled training images from that model."""

    def train(self, config: SettingConfig, values: dict, target: str, out: Path) -> Path:
        from diffreid.reid.export import export_backbone

        backbone = export_backbone(super().train(config, values, target, out), out / "source-backbone.safetensors")
        return _cluster_contrast(config, {**values, "data": (target,), "out": out / "adapted", "init": str(backbone)})


@SETTINGS.register("dg")
class DomainGeneralization(_Across):
    """Domain generalization: train on source datasets, test on an unseen target."""


def run(config: SettingConfig) -> dict:
    from diffreid.reid.evaluate_model import run as evaluate

    out, setting = Path(config.out), SETTINGS[config.name]()
    specs, target = setting.training_data(config, out)
    values = {**(config.overrides or {}), "data": specs, "out": out / "run", "init": config.init, "seed": config.seed}
    run_dir = setting.train(config, values, target, out)
    results = evaluate(EvaluateConfig(model=str(run_dir), data=target, out=out / "eval"))
    summary = {"setting": config.name, "init": config.label or config.init, "train": " + ".join(config.data),
               "test": config.target or config.data[0],
               "rank1": results["cmc"][0], "mAP": results["mAP"], "mINP": results["mINP"],
               "queries": results["num_query"], "gallery": results["num_gallery"], "run": str(out),
               "config": config_dict(config)}
    write_json_atomic(out / "results.json", summary)
    append_row(Path(config.table or out.parent / "results"), summary)
    return summary
