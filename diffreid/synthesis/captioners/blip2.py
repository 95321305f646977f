"""BLIP-2 captions (transformers' Blip2ForConditionalGeneration), prompted to describe clothing.

The prompt is a text prefix the language model continues ("a photo of a person
wearing" -> " a black shirt and blue jeans"); the caption is the prompt plus that
continuation, so it reads as one sentence. Decoder-only language models (OPT) echo the
prompt's tokens in front of the generated ones, and those are cut by position rather
than by matching decoded text, which need not spell the prompt back exactly.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PIL import Image

from diffreid.config import CaptionConfig
from diffreid.data.records import Record
from diffreid.errors import DiffreidError
from diffreid.scaleout import local_device

log = logging.getLogger(__name__)


def _unavailable(source: str, reason: str) -> DiffreidError:
    return DiffreidError(
        f"cannot load a BLIP-2 model from {source!r}: {reason}. Pass --model a local folder holding a BLIP-2 "
        "checkpoint with its processor (saved with save_pretrained, e.g. `huggingface-cli download "
        f"{CaptionConfig.model} --local-dir DIR` on a machine with network access), or a hub id when the hub can be "
        "reached; "
        "without any model, `--captioner attributes` captions from attribute annotations"
    )


class Blip2Captioner:
    """Batched BLIP-2 captioning; fp16 on a GPU, fp32 on the CPU, greedy (`num_beams=1`) or beam search."""

    def __init__(self, source: str, prompt: str, num_beams: int, max_new_tokens: int, device: str | None = None):
        import torch
        from transformers import AutoConfig, AutoProcessor, Blip2ForConditionalGeneration

        if source.startswith((".", "/", "~")) and not Path(source).expanduser().is_dir():
            raise _unavailable(source, "no such folder")
        self.device = torch.device(device or local_device())
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        try:
            model_type = AutoConfig.from_pretrained(source).model_type
            if model_type != "blip-2":
                raise _unavailable(source, f"it holds a {model_type!r} model, not BLIP-2")
            self.processor = AutoProcessor.from_pretrained(source)
            self.model = Blip2ForConditionalGeneration.from_pretrained(source, dtype=self.dtype)
        except (OSError, ValueError) as error:
            raise _unavailable(source, str(error).splitlines()[0].rstrip(".")) from None
        self.model.to(self.device).eval()
        self.prompt, self.num_beams, self.max_new_tokens = prompt, num_beams, max_new_tokens

    def caption(self, records: list[Record]) -> list[str | None]:
        import torch

        images = [_open_rgb(record.path) for record in records]
        readable = [image for image in images if image is not None]
        if not readable:
            return [None] * len(records)
        inputs = self.processor(images=readable, text=[self.prompt] * len(readable), return_tensors="pt")
        inputs = inputs.to(self.device, dtype=self.dtype)  # casts the pixels only, not the token ids
        with torch.inference_mode():
            output = self.model.generate(**inputs, num_beams=self.num_beams, max_new_tokens=self.max_new_tokens,
                                         do_sample=False)
        if not self.model.language_model.config.is_encoder_decoder:
            output = output[:, inputs["input_ids"].shape[1]:]
        texts = iter(self.processor.batch_decode(output, skip_special_tokens=True))
        return [None if image is None else " ".join(f"{self.prompt}{next(texts)}".split()) for image in images]


def _open_rgb(path: Path) -> Image.Image | None:
    """The image, or None after a warning naming the file: one bad file must not stop the run."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError) as error:
        log.warning("%s: unreadable image skipped (%s); restore it from the dataset archive or delete it", path, error)
        return None
