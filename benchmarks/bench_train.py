"""Training and extraction speed of diffreid against a plain torchvision + PyTorch loop.

Both sides do the same work on the same procedural persons: a torchvision ResNet
(last stride 2 on both sides), the same batch (P×K images), image size, augmentations
(transforms v2: resize, flip, pad and crop, random erasing), Adam, and the same number
of data-loading workers. diffreid runs its real trainer (`diffreid.reid.trainer.run`,
with PK sampling, BNNeck, label-smoothed cross-entropy plus batch-hard triplet, per-epoch
checkpoints); the plain loop is ImageFolder-style reading, random batches, a ResNet with
its fc resized, cross-entropy. Training speed is the second epoch's images/second (the
first warms up); extraction is flip-averaged features of every image, batch 64:
`extract_features` with the run's model against a DataLoader loop on the same weights.
The sides alternate, the best of --repeats counts; the ratio is diffreid / plain.

    python benchmarks/bench_train.py [--identities 40] [--steps 20] [--backbone resnet18] [--size 128x64]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from diffreid.config import SynthConfig, load_train_config
from diffreid.data import load_dataset
from diffreid.data.records import relabel
from diffreid.data.synth import synthesize
from diffreid.reid.features import extract_features
from diffreid.reid.onnx_model import IMAGENET_MEAN, IMAGENET_STD
from diffreid.reid.run_model import load_run
from diffreid.reid.trainer import run as train
from diffreid.reid.transforms import train_transform


class Images(Dataset):
    def __init__(self, records, transform):
        self.records, self.transform = records, transform

    def __len__(self):
        return len(self.records)

    def __getitem__(self, index):
        record = self.records[index]
        with Image.open(record.path) as image:
            x = v2.functional.pil_to_tensor(image.convert("RGB"))
        return self.transform(x), record.pid


def plain_training(records, args, size) -> float:
    """images/s of the second epoch of a plain loop: random batches, ResNet, cross-entropy."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, args.backbone)(num_classes=len({r.pid for r in records})).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3.5e-4, weight_decay=5e-4)
    loader = DataLoader(Images(records, train_transform(size, pad=args.pad)), batch_size=args.p * args.k,
                        shuffle=True, num_workers=args.workers, drop_last=True)
    rate = 0.0
    for _ in range(2):
        start, seen = time.perf_counter(), 0
        for step, (x, labels) in enumerate(loader):
            if step == args.steps:
                break
            loss = F.cross_entropy(model(x), labels, label_smoothing=0.1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += len(labels)
        rate = seen / (time.perf_counter() - start)
    return rate


def diffreid_training(spec, out: Path, args, size) -> float:
    config = load_train_config("bot-r18-cpu", {
        "data": (spec,), "out": out, "backbone": args.backbone, "last_stride": None, "input_size": size,
        "epochs": 2, "batch_p": args.p, "batch_k": args.k, "pad": args.pad, "num_workers": args.workers,
        "max_steps_per_epoch": args.steps, "init": "scratch"})
    train(config)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return rows[-1]["images_per_second"]


def plain_extraction(module, records, size, workers) -> float:
    transform = v2.Compose([v2.Resize(size, antialias=True), v2.ToDtype(torch.float32, scale=True),
                            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    loader = DataLoader(Images(records, transform), batch_size=64, num_workers=workers)
    start, rows = time.perf_counter(), []
    with torch.inference_mode():
        for x, _ in loader:
            rows.append((module(x) + module(x.flip(3))) / 2)
    torch.cat(rows)
    return len(records) / (time.perf_counter() - start)


def diffreid_extraction(model, records, size) -> float:
    start = time.perf_counter()
    extract_features(model, records, size, batch_size=64)
    return len(records) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=40)
    parser.add_argument("--steps", type=int, default=20, help="batches per timed epoch")
    parser.add_argument("--backbone", default="resnet18", choices=("resnet18", "resnet50"))
    parser.add_argument("--size", default="128x64", help="HEIGHTxWIDTH")
    parser.add_argument("--p", type=int, default=8)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--pad", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        root = synthesize(SynthConfig(out=Path(tmp) / "persons", identities=args.identities, seed=0))
        spec = f"market1501:{root}"
        dataset = load_dataset(spec)
        train_rates, plain_train_rates, extract_rates, plain_extract_rates = [], [], [], []
        for repeat in range(args.repeats):
            out = Path(tmp) / f"run{repeat}"
            train_rates.append(diffreid_training(spec, out, args, size))
            plain_train_rates.append(plain_training(relabel(dataset.train), args, size))
            model = load_run(out, flip=True)
            records = dataset.query + dataset.gallery
            extract_rates.append(diffreid_extraction(model, records, size))
            plain_extract_rates.append(plain_extraction(model.module, records, size, args.workers))
    ours, plain = max(train_rates), max(plain_train_rates)
    print(f"{args.backbone} {size[0]}x{size[1]}, batch {args.p}x{args.k}, {torch.get_num_threads()} threads, "
          f"{args.workers} loader worker(s)")
    print(f"training:   diffreid {ours:.1f} img/s, plain loop {plain:.1f} img/s, ratio {ours / plain:.2f}x")
    ours, plain = max(extract_rates), max(plain_extract_rates)
    print(f"extraction: diffreid {ours:.1f} img/s, plain loop {plain:.1f} img/s, ratio {ours / plain:.2f}x "
          f"({len(records)} images, flip-averaged)")


if __name__ == "__main__":
    main()
