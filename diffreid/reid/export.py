"""`diffreid export`: a trained run's backbone as a safetensors file its home library loads.

The backbone inside `ReidNet` keeps torchvision's (timm's, torchreid's) key names, so
the export is the `backbone.` prefix stripped: `torchvision.models.resnet50()
.load_state_dict(sd, strict=False)` then misses only `fc.*`, a timm Swin only `head.*`.
Non-local blocks, pooling and the BNNeck head stay behind: they are not part of those
architectures.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from safetensors.torch import load_file, save_file

from diffreid.artifacts import atomic_path
from diffreid.errors import DiffreidError
from diffreid.reid.run_model import RUN_FILES

PREFIX = "backbone."


def export_backbone(run_dir: str | Path, out: str | Path) -> Path:
    run_dir, out = Path(run_dir), Path(out)
    missing = [name for name in RUN_FILES if not (run_dir / name).is_file()]
    if missing:
        raise DiffreidError(f"{run_dir}: not a finished training run (missing {', '.join(missing)})")
    config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    state = load_file(run_dir / "model.safetensors")
    backbone = {k.removeprefix(PREFIX): v for k, v in state.items() if k.startswith(PREFIX)}
    with atomic_path(out) as tmp:
        save_file(backbone, tmp, metadata={"backbone": str(config["backbone"]), "source": str(run_dir)})
    return out
