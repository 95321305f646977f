"""External Re-ID models exported to ONNX, run with onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffreid.errors import DiffreidError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class OnnxReidModel:
    """An ONNX model mapping N×3×H×W normalised RGB images to N×D features.

    The input size comes from the model when it fixes one; a fixed batch size is
    honoured by feeding the model that many images at a time (padding the last batch).
    """

    def __init__(self, path: str | Path, input_size: tuple[int, int] | None = None,
                 mean: tuple[float, float, float] = IMAGENET_MEAN, std: tuple[float, float, float] = IMAGENET_STD):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise DiffreidError(f"{self.path}: ONNX model not found; pass --model PATH/TO/model.onnx")
        try:
            self.session = ort.InferenceSession(str(self.path), providers=ort.get_available_providers())
        except Exception as error:  # onnxruntime raises its own untyped errors
            raise DiffreidError(f"{self.path}: not a loadable ONNX model ({error})") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise DiffreidError(f"{self.path}: expected one N×3×H×W image input, found "
                                f"{[(i.name, i.shape) for i in inputs]}")
        self.input_name = inputs[0].name
        batch, _, height, width = inputs[0].shape
        self.fixed_batch = batch if isinstance(batch, int) and batch > 0 else None
        model_size = (height, width) if all(isinstance(v, int) and v > 0 for v in (height, width)) else None
        if model_size and input_size and tuple(input_size) != model_size:
            raise DiffreidError(f"{self.path}: the model fixes its input at {model_size[0]}x{model_size[1]}, "
                                f"not {input_size[0]}x{input_size[1]}; drop --input-size")
        self.input_size = model_size or (tuple(input_size) if input_size else None)
        if self.input_size is None:
            raise DiffreidError(f"{self.path}: the model does not fix its input size; pass --input-size HxW, e.g. 256x128")
        self.mean = np.asarray(mean, dtype=np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(1, 3, 1, 1)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Features of a batch of uint8 N×H×W×3 RGB images at `input_size`."""
        x = images.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        x = (x - self.mean) / self.std
        if self.fixed_batch is None:
            return self.session.run(None, {self.input_name: x})[0]
        outputs = []
        for start in range(0, len(x), self.fixed_batch):
            chunk = x[start:start + self.fixed_batch]
            pad = self.fixed_batch - len(chunk)
            if pad:
                chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), np.float32)])
            outputs.append(self.session.run(None, {self.input_name: chunk})[0][: self.fixed_batch - pad])
        return np.concatenate(outputs)
