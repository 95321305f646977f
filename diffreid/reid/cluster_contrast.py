"""Unsupervised Re-ID by cluster contrast (Dai et al. 2021, "Cluster Contrast for Unsupervised
Person Re-Identification"): the USL setting, and the second half of UDA.

Each epoch: extract every training image's feature with the current model; cluster them
with DBSCAN on k-reciprocal Jaccard distances (neighbours from faiss, the same encodings
re-ranking uses); drop the outliers; start a cluster-level memory at the clusters'
centroids. Then train on PK batches of pseudo-identities with the contrastive loss of
each feature against all cluster centroids (temperature τ), and move each image's
cluster centroid towards it with momentum. No label is ever read.

The run directory keeps the RUN contract of `diffreid train` (the final clusters are its
classes, the final memory its cosine classifier), so `diffreid evaluate --model RUN`,
`export` and the filter take it like any run.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch.utils.data import DataLoader
from tqdm import tqdm

from diffreid.artifacts import atomic_path, write_json_atomic, write_manifest
from diffreid.config import TrainConfig, config_dict
from diffreid.data import load_dataset
from diffreid.data.records import Record
from diffreid.errors import DiffreidError
from diffreid.evaluation import jaccard_distances
from diffreid.reid.features import extract_features
from diffreid.reid.init import resolve_init
from diffreid.reid.model import ReidNet
from diffreid.reid.sampler import PKBatchSampler
from diffreid.reid.torch_model import TorchReidModel
from diffreid.reid.train_data import TrainImages, collate_skipping
from diffreid.reid.transforms import train_transform
from diffreid.runtime import training_accelerator
from diffreid.training.checkpoints import open_run
from diffreid.training.metrics import Metrics
from diffreid.training.state import TrainingState

log = logging.getLogger(__name__)


def pseudo_labels(features: np.ndarray, eps: float = 0.6, min_samples: int = 4, k1: int = 30,
                  k2: int = 6) -> np.ndarray:
    """DBSCAN cluster of each image (-1: outlier) on Jaccard distances."""
    from sklearn.cluster import DBSCAN

    distances = np.clip(jaccard_distances(features, k1, k2), 0, None)
    return DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed", n_jobs=-1).fit_predict(distances)


class ClusterMemory:
    """Cluster centroids, contrasted against (loss) and updated with momentum per image."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.05,
                 momentum: float = 0.1):
        count = int(labels.max()) + 1
        sums = torch.zeros(count, features.shape[1]).index_add_(0, labels, features)
        self.centroids = F.normalize(sums, dim=1)
        self.temperature, self.momentum = temperature, momentum

    def loss(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = F.normalize(features, dim=1) @ self.centroids.to(features).T / self.temperature
        return F.cross_entropy(logits, labels)

    @torch.no_grad()
    def update(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        for feature, label in zip(F.normalize(features.detach().float().cpu(), dim=1), labels.cpu()):
            self.centroids[label] = F.normalize(self.momentum * self.centroids[label] + (1 - self.momentum) * feature,
                                                dim=0)


def run_usl(config: TrainConfig, eps: float = 0.6, min_samples: int = 4, temperature: float = 0.05,
            momentum: float = 0.1) -> Path:
    """Cluster-contrast training on the train splits of `config.data`, labels unused."""
    values = config_dict(config) | {"method": "cluster-contrast", "eps": eps, "min_samples": min_samples,
                                    "temperature": temperature, "momentum": momentum}
    with open_run(config.out, values, ("epochs", "out", "num_workers", "eval_data", "eval_every"), "usl") as out:
        return _usl(config, out, eps, min_samples, temperature, momentum)


def _usl(config: TrainConfig, out: Path, eps: float, min_samples: int, temperature: float, momentum: float) -> Path:
    accelerator = training_accelerator(config.mixed_precision)  # one device for the model, batches and clustering
    if accelerator.num_processes > 1:
        raise DiffreidError("usl clusters every image in one process; launch it without torchrun / accelerate launch")
    records = [r for spec in config.data for r in load_dataset(spec).require("train").train]
    torch.manual_seed(config.seed)
    pretrained = resolve_init(config.init, config.backbone)
    model = ReidNet(config.backbone, 2, config.pooling, config.neck, config.nonlocal_blocks, config.last_stride,
                    pretrained=pretrained)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr,
                                 weight_decay=config.weight_decay)
    model, optimizer = accelerator.prepare(model, optimizer)
    state = TrainingState(out / "checkpoints", accelerator, "epoch", config.keep_checkpoints)
    start = state.resume()
    if start:
        log.info("resuming from epoch %d", start)
    metrics = Metrics(out, "epoch", done=start)
    transform = train_transform(config.input_size, config.flip, config.pad, config.random_erasing)
    labels, memory = None, None
    for epoch in range(start, config.epochs):
        labels, memory = _cluster(model, records, config, eps, min_samples, temperature, momentum, accelerator.device)
        kept = [Record(r.path, int(label), r.camid, "train") for r, label in zip(records, labels) if label >= 0]
        sampler = PKBatchSampler([r.pid for r in kept], config.batch_p, config.batch_k, seed=config.seed)
        sampler.set_epoch(epoch)
        loader = DataLoader(TrainImages(kept, transform), batch_sampler=sampler, num_workers=config.num_workers,
                            collate_fn=collate_skipping)
        model.train()
        losses = []
        steps = min(len(sampler), config.max_steps_per_epoch or len(sampler))
        for batch in tqdm(loader, total=steps, desc=f"usl epoch {epoch + 1}/{config.epochs}"):
            if len(losses) >= steps:
                break
            if batch is None:
                continue
            images, targets = (t.to(accelerator.device) for t in batch)
            with accelerator.autocast():
                features = model.head.bottleneck(model.pooled(images))  # the neck feature, as clustered
                loss = memory.loss(features, targets)
            optimizer.zero_grad()
            accelerator.backward(loss)
            optimizer.step()
            memory.update(features, targets)
            losses.append(loss.item())
        metrics.record({"epoch": epoch + 1, "clusters": int(labels.max()) + 1, "clustered": len(kept) / len(records),
                        "loss_contrast": float(np.mean(losses)) if losses else float("nan")})
        state.save(epoch + 1)
    if labels is None:  # resumed after the last epoch: the final clusters again
        labels, memory = _cluster(model, records, config, eps, min_samples, temperature, momentum, accelerator.device)
    _finish(out, model, memory, labels, records, config)
    return out


def _cluster(model, records, config, eps, min_samples, temperature, momentum, device: torch.device):
    """Pseudo-identities of the training images under the current model, and their memory."""
    model.eval()
    extractor = TorchReidModel(model, tuple(config.input_size), device, flip=False)
    features, kept = extract_features(extractor, records, tuple(config.input_size), desc="cluster features")
    if len(kept) != len(records):
        raise DiffreidError("unreadable training images: run `diffreid data check` and remove them")
    labels = pseudo_labels(features, eps, min_samples)
    if (labels >= 0).sum() == 0 or labels.max() < config.batch_p - 1:
        raise DiffreidError(f"DBSCAN (eps {eps}) found {int(labels.max()) + 1} clusters, fewer than batch_p "
                            f"{config.batch_p}; a smaller eps splits clusters (a larger one merges them), or lower batch_p")
    clustered = labels >= 0
    memory = ClusterMemory(torch.from_numpy(np.asarray(features)[clustered]), torch.from_numpy(labels[clustered]),
                           temperature, momentum)
    return labels, memory


def _finish(out: Path, model: ReidNet, memory: ClusterMemory, labels: np.ndarray, records, config) -> None:
    """The RUN contract: the final clusters as classes, the memory as a cosine classifier."""
    count = len(memory.centroids)
    final = ReidNet(config.backbone, max(2, count), config.pooling, config.neck, config.nonlocal_blocks,
                    config.last_stride)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("head.classifier")}
    centroids = memory.centroids if count >= 2 else torch.cat([memory.centroids, memory.centroids])
    final.load_state_dict({**state, "head.classifier.weight": centroids / memory.temperature})
    with atomic_path(out / "model.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in final.state_dict().items()}, tmp)
    spec = " + ".join(config.data)
    write_json_atomic(out / "classes.json", [{"dataset": spec, "pid": i, "pseudo": True} for i in range(max(2, count))])
    write_json_atomic(out / "clusters.json", {"clusters": count, "clustered": int((labels >= 0).sum()),
                                              "images": len(records),
                                              "labels": {str(r.path): int(l) for r, l in zip(records, labels)}})
    write_manifest(out, "usl", config_dict(config), counts={"images": len(records), "clusters": count})
    log.info("wrote %s (%d clusters)", out, count)
