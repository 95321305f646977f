"""One entry point for every kind of Re-ID model a stage can be given."""

from __future__ import annotations

from pathlib import Path

from diffreid.errors import DiffreidError

TORCH_SUFFIXES = (".pth", ".pt", ".safetensors")


def load_reid_model(spec: str, input_size: tuple[int, int] | None = None):
    """Load a Re-ID feature extractor from a path: an ONNX file or a backbone's weights."""
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".onnx":
        from diffreid.reid.onnx_model import OnnxReidModel

        return OnnxReidModel(path, input_size=input_size)
    if path.suffix.lower() in TORCH_SUFFIXES:
        from diffreid.reid.torch_model import load_torch_reid_model

        return load_torch_reid_model(path, input_size=input_size)
    raise DiffreidError(f"{spec}: unsupported model; expected an ONNX Re-ID model (*.onnx) or a backbone's "
                        f"weights ({', '.join('*' + s for s in TORCH_SUFFIXES)})")
