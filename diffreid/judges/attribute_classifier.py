"""An attribute classifier for procedural persons: the judge of prompt fidelity and diversity.

(Its counterpart on real people, trained on PETA's labels, is `peta_judge`; both are an
`AttributeNet` trained by `fit`.)

Procedural persons come with exact attributes (`attributes.json`), so a classifier
trained on them reads a generated image's clothing colours and types back. It answers
two questions about a generator: does it draw what the prompt asks (prompt fidelity),
and which attribute values do its images show that their identity's input images lack
(Diversity Injection).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn
from torchvision.transforms.v2 import functional as TF
from tqdm import tqdm

from diffreid.artifacts import atomic_path, write_json_atomic
from diffreid.data import load_dataset
from diffreid.errors import DiffreidError
from diffreid.reid.backbones import create_backbone
from diffreid.reid.init import resolve_init
from diffreid.reid.onnx_model import IMAGENET_MEAN, IMAGENET_STD
from diffreid.reid.transforms import train_transform
from diffreid.training.metrics import Metrics

log = logging.getLogger(__name__)
ATTRIBUTES = (("upper", "colour"), ("upper", "type"), ("upper", "pattern"), ("lower", "colour"),
              ("lower", "type"), ("bag", "type"), ("hat", "type"))
INPUT_SIZE = (128, 64)


def attribute_name(part: str, field: str) -> str:
    return f"{part} {field}"


def read_labels(attributes: dict) -> dict[str, str]:
    """{'upper colour': 'red', ...} of one identity's attribute record."""
    return {attribute_name(p, f): attributes.get(p, {}).get(f, "none") for p, f in ATTRIBUTES}


def judge_backbones() -> list[str]:
    """The backbones that take the judge's input size (the transformers are built for 256 x 128 only)."""
    from diffreid.reid.backbones import list_backbones
    from diffreid.reid.backbones.timm_models import SWIN, VIT

    return [name for name in list_backbones() if name not in {*SWIN, *VIT}]


class AttributeNet(nn.Module):
    """A backbone (ResNet-18 by default; MobileNetV2 from its ImageNet weights learns colours faster)
    with one linear head per attribute."""

    def __init__(self, vocabulary: dict[str, list[str]], backbone: str = "resnet18", pretrained: Path | None = None):
        super().__init__()
        self.vocabulary = vocabulary
        self.backbone_name = backbone
        self.backbone = create_backbone(backbone, pretrained)
        self.heads = nn.ModuleDict({name.replace(" ", "_"): nn.Linear(self.backbone.feature_dim, len(values))
                                    for name, values in vocabulary.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone(x)
        return {name: self.heads[name.replace(" ", "_")](features) for name in self.vocabulary}

    @torch.no_grad()
    def predict(self, images: list[Image.Image], batch_size: int = 64) -> list[dict[str, str]]:
        self.eval()
        predictions: list[dict[str, str]] = []
        for start in range(0, len(images), batch_size):
            batch = torch.stack([_prepare(image) for image in images[start:start + batch_size]])
            logits = self(batch)
            for i in range(len(batch)):
                predictions.append({name: self.vocabulary[name][int(logits[name][i].argmax())] for name in logits})
        return predictions

    def save(self, folder: Path, **about) -> Path:
        """model.safetensors, vocabulary.json and classifier.json (the backbone, and `about`: what it learned from)."""
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "model.safetensors") as tmp:
            save_file({k: v.contiguous() for k, v in self.state_dict().items()}, tmp)
        write_json_atomic(folder / "vocabulary.json", self.vocabulary)
        write_json_atomic(folder / "classifier.json", {"backbone": self.backbone_name, **about})
        return folder


def load_attribute_classifier(folder: str | Path) -> AttributeNet:
    folder = Path(folder)
    if not (folder / "vocabulary.json").is_file():
        raise DiffreidError(f"{folder}: not an attribute classifier (no vocabulary.json); train one with "
                            "train_attribute_classifier")
    settings = folder / "classifier.json"
    backbone = json.loads(settings.read_text(encoding="utf-8"))["backbone"] if settings.is_file() else "resnet18"
    net = AttributeNet(json.loads((folder / "vocabulary.json").read_text(encoding="utf-8")), backbone)
    net.load_state_dict(load_file(folder / "model.safetensors"))
    return net.eval()


def _prepare(image: Image.Image) -> torch.Tensor:
    x = TF.to_dtype(TF.to_image(image.convert("RGB")), torch.float32, scale=True)
    return TF.normalize(TF.resize(x, list(INPUT_SIZE), antialias=True), IMAGENET_MEAN, IMAGENET_STD)


def labelled_images(spec: str, splits: tuple[str, ...]) -> list[tuple[Path, dict[str, str]]]:
    """(image, attribute labels) of a procedural dataset's splits."""
    dataset = load_dataset(spec)
    path = Path(dataset.root) / "attributes.json"
    if not path.is_file():
        raise DiffreidError(f"{path}: missing; the attribute classifier learns from procedural persons "
                            "(`diffreid data synth` writes attributes.json)")
    table = {int(pid): attributes for pid, attributes in json.loads(path.read_text(encoding="utf-8")).items()}
    items = [(Path(r.path), read_labels(table[r.pid])) for split in splits for r in dataset.split(split)
             if r.pid in table]
    if not items:
        raise DiffreidError(f"{path}: names none of the identities in {spec}'s {', '.join(splits)} splits")
    return items


def train_attribute_classifier(specs: list[str], out: Path, epochs: int = 4, batch_size: int = 64,
                               lr: float = 1e-3, seed: int = 0, backbone: str = "resnet18",
                               init: str = "scratch") -> AttributeNet:
    """Train on the train splits of procedural datasets; report accuracy on their test identities.
    `init` as the trainer's (scratch, imagenet:FILE, a weights file)."""
    torch.manual_seed(seed)
    train = [item for spec in specs for item in labelled_images(spec, ("train",))]
    test = [item for spec in specs for item in labelled_images(spec, ("query", "gallery"))]
    vocabulary = {attribute_name(p, f): sorted({labels[attribute_name(p, f)] for _, labels in train + test})
                  for p, f in ATTRIBUTES}
    net = AttributeNet(vocabulary, backbone, resolve_init(init, backbone))
    targets = {name: torch.tensor([values.index(labels[name]) for _, labels in train])
               for name, values in vocabulary.items()}
    images = [TF.to_image(Image.open(path).convert("RGB")) for path, _ in train]
    fit(net, images, lambda logits, index: sum(F.cross_entropy(logits[name], targets[name][index])
                                               for name in vocabulary), epochs, batch_size, lr, out)
    net.save(out)
    accuracy = attribute_accuracy(net, test)
    write_json_atomic(out / "accuracy.json", {"test_images": len(test), "accuracy": accuracy})
    log.info("attribute classifier: test accuracy %s", {k: round(v, 3) for k, v in accuracy.items()})
    return net


def fit(net: AttributeNet, images: list[torch.Tensor], loss_of, epochs: int, batch_size: int, lr: float,
        out: Path) -> None:
    """Train `net` on uint8 images (augmented: flip, pad and crop), one-cycle AdamW;
    `loss_of(logits, index)` is the loss of the batch of images at `index`. The loss per epoch
    goes to `out`'s metrics.jsonl and curves.png."""
    augment = train_transform(INPUT_SIZE, pad=4, erasing=0.0)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * (len(images) // batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=max(1, steps))
    metrics = Metrics(out, "epoch")
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(len(images))
        bar = tqdm(range(len(images) // batch_size), desc=f"attributes {epoch + 1}/{epochs}")
        total = 0.0
        for step in bar:
            index = order[step * batch_size:(step + 1) * batch_size]
            loss = loss_of(net(torch.stack([augment(images[int(i)]) for i in index])), index)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        metrics.record({"epoch": epoch + 1, "loss_attributes": total / max(1, len(bar))})


def attribute_accuracy(net: AttributeNet, items: list[tuple[Path, dict[str, str]]]) -> dict[str, float]:
    predictions = net.predict([Image.open(path) for path, _ in items])
    return {name: sum(p[name] == labels[name] for p, (_, labels) in zip(predictions, items)) / max(1, len(items))
            for name in net.vocabulary}
