"""One entry point for every kind of Re-ID model a stage can be given."""

from __future__ import annotations

from pathlib import Path

from diffreid.errors import DiffreidError


def load_reid_model(spec: str, input_size: tuple[int, int] | None = None):
    """Load a Re-ID feature extractor from a path: today an ONNX file."""
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".onnx":
        from diffreid.reid.onnx_model import OnnxReidModel

        return OnnxReidModel(path, input_size=input_size)
    raise DiffreidError(f"{spec}: unsupported model; expected an ONNX Re-ID model (*.onnx)")
