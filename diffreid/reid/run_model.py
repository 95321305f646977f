"""A trained run (`RUN/`) as a Re-ID model: features for ranking, probabilities for filtering.

What `load_reid_model(RUN)` returns: a `TorchReidModel` on the BNNeck feature (as BoT
evaluates), flip-averaged, that can also `classify` images into the run's training
identities; the confidence threshold filter scores generated images with it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.torch import load_file

from diffreid.errors import DiffreidError
from diffreid.reid.model import ReidNet
from diffreid.reid.torch_model import TorchReidModel

RUN_FILES = ("config.yaml", "classes.json", "model.safetensors")


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.yaml").is_file()


def reid_net_from_config(config: dict, num_classes: int) -> ReidNet:
    """The run's architecture, randomly initialised (weights are loaded after)."""
    return ReidNet(config["backbone"], num_classes, pooling=config.get("pooling", "avg"),
                   neck=config.get("neck", True), nonlocal_blocks=config.get("nonlocal_blocks", False),
                   last_stride=config.get("last_stride"))


class TrainedReidModel(TorchReidModel):
    """A `ReidNet` from a run: `__call__` gives features, `classify` class probabilities.

    `classes[i]` is class i's {"dataset", "pid"}; `class_pids[i]` its source pid.
    """

    def __init__(self, module: ReidNet, classes: list[dict], input_size, device=None, flip: bool = True):
        super().__init__(module, input_size, device, flip)
        self.classes = classes
        self.class_pids = np.array([c["pid"] for c in classes])

    def classify(self, images: np.ndarray) -> np.ndarray:
        """Softmax probabilities over the training identities, N×num_classes (no flip averaging)."""
        with torch.inference_mode():
            return torch.softmax(self.module.classify(self.normalise(images)).float(), dim=1).cpu().numpy()


def load_run(run_dir: str | Path, input_size: tuple[int, int] | None = None, device=None,
             flip: bool = True) -> TrainedReidModel:
    run_dir = Path(run_dir)
    missing = [name for name in RUN_FILES if not (run_dir / name).is_file()]
    if missing:
        raise DiffreidError(f"{run_dir}: not a finished training run (missing {', '.join(missing)}); "
                            f"finish it with `diffreid train ... --out {run_dir}`, which resumes")
    config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    classes = json.loads((run_dir / "classes.json").read_text(encoding="utf-8"))
    model = reid_net_from_config(config, len(classes))
    try:
        model.load_state_dict(load_file(run_dir / "model.safetensors"))
    except RuntimeError as error:
        raise DiffreidError(f"{run_dir / 'model.safetensors'}: does not fit the run's config.yaml "
                            f"({str(error).splitlines()[0]})") from None
    return TrainedReidModel(model, classes, input_size or tuple(config["input_size"]), device, flip)
