"""One entry point for every kind of Re-ID model a stage can be given."""

from __future__ import annotations

from pathlib import Path

from diffreid.errors import DiffreidError

TORCH_SUFFIXES = (".pth", ".pt", ".safetensors")


def load_reid_model(spec: str, input_size: tuple[int, int] | None = None, device=None):
    """Load a Re-ID feature extractor from a path: an ONNX file, a backbone's weights, or a
    training run's directory (which can also `classify`). `device`: where a PyTorch model runs
    (default: the first GPU, else the CPU)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        from diffreid.reid.run_model import is_run_dir, load_run

        if is_run_dir(path):
            return load_run(path, input_size=input_size, device=device)
    if path.suffix.lower() == ".onnx":
        from diffreid.reid.onnx_model import OnnxReidModel

        return OnnxReidModel(path, input_size=input_size)
    if path.suffix.lower() in TORCH_SUFFIXES:
        from diffreid.reid.torch_model import load_torch_reid_model

        return load_torch_reid_model(path, input_size=input_size, device=device)
    suffixes = ", ".join("*" + s for s in TORCH_SUFFIXES)
    raise DiffreidError(f"{spec}: unsupported model; expected an ONNX Re-ID model (*.onnx), a training run's "
                        f"directory (with config.yaml) or a backbone's weights ({suffixes})")
