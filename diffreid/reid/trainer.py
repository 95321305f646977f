"""`diffreid train`: one readable training loop for every Re-ID preset, on accelerate.

accelerate runs the same loop on one CPU, one GPU with mixed precision, or several
processes (`accelerate launch` / `torchrun ... -m diffreid train`): the model is wrapped
for data parallelism and each rank draws its share of every PK batch.

A run is resumable with nothing lost: everything random is drawn from the seed and the
epoch (the sampler, each image's augmentation) and each finished epoch leaves a
checkpoint (accelerate's state: model, optimizer, schedule, scaler), so a killed run restarted with the same
command ends with the weights an uninterrupted run would have. RUN layout:
config.yaml, classes.json, checkpoints/, train.log, metrics.jsonl, curves.png,
model.safetensors (final), manifest.json.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Callable

import torch
import yaml
from safetensors.torch import save_file
from torch.utils.data import DataLoader
from tqdm import tqdm

from diffreid.artifacts import atomic_path, log_to_file, write_json_atomic, write_manifest, write_text_atomic
from diffreid.config import TrainConfig, config_dict
from diffreid.errors import DiffreidError
from diffreid.reid.init import resolve_init
from diffreid.reid.losses import TRIPLETS, CenterLoss, reid_loss
from diffreid.reid.model import ReidNet
from diffreid.reid.sampler import PKBatchSampler
from diffreid.reid.train_data import TrainImages, collate_skipping, load_train_set
from diffreid.reid.transforms import train_transform
from diffreid.registry import Registry
from diffreid.runtime import training_accelerator
from diffreid.training.checkpoints import check_same_run
from diffreid.training.metrics import Metrics, plot_curves
from diffreid.training.schedules import reid_schedule
from diffreid.training.state import TrainingState

log = logging.getLogger(__name__)

# Fields a resumed run may change; any other change means a different run.
RESUMABLE_CHANGES = {"epochs", "eval_data", "eval_every", "keep_checkpoints", "num_workers", "out", "preset",
                     "mixed_precision"}


OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry("optimizer")
OPTIMIZERS.register("adam")(torch.optim.Adam)
OPTIMIZERS.register("adamw")(torch.optim.AdamW)
OPTIMIZERS.register("sgd")(partial(torch.optim.SGD, momentum=0.9))


def _optimizer(config: TrainConfig, parameters) -> torch.optim.Optimizer:
    return OPTIMIZERS[config.optimizer]([p for p in parameters if p.requires_grad], lr=config.lr,
                                        weight_decay=config.weight_decay)


def _validate(config: TrainConfig) -> None:
    if config.triplet not in TRIPLETS:
        raise DiffreidError(f"unknown triplet loss {config.triplet!r}; expected one of {', '.join(TRIPLETS)}")
    if config.lr_schedule not in ("step", "cosine"):
        raise DiffreidError(f"unknown lr_schedule {config.lr_schedule!r}; expected step or cosine")
    if config.epochs < 1 or config.grad_accumulation < 1:
        raise DiffreidError("epochs and grad_accumulation must be at least 1")
    if config.eval_every and not config.eval_data:
        raise DiffreidError("eval_every needs eval_data (FORMAT:ROOT with query and gallery splits)")


def _evaluate(model: ReidNet, config: TrainConfig, classes: list[dict]) -> dict:
    """Rank-1 and mAP on eval_data's query / gallery with the model as it is now."""
    from diffreid.data import load_dataset
    from diffreid.evaluation.feature_metrics import evaluate_features
    from diffreid.reid.features import extract_features
    from diffreid.reid.run_model import TrainedReidModel

    dataset = load_dataset(config.eval_data).require("query", "gallery")
    device = next(model.parameters()).device
    extractor = TrainedReidModel(model, classes, config.input_size, device)
    q, query = extract_features(extractor, dataset.query, extractor.input_size, desc="eval query")
    g, gallery = extract_features(extractor, dataset.gallery, extractor.input_size, desc="eval gallery")
    result = evaluate_features(q, g, [r.pid for r in query], [r.pid for r in gallery], [r.camid for r in query],
                               [r.camid for r in gallery])
    model.train()
    return {"rank1": float(result["cmc"][0]), "mAP": float(result["mAP"])}


def run(config: TrainConfig) -> Path:
    """Train (or resume) the run in `config.out`; returns the run directory."""
    _validate(config)
    out = Path(config.out)
    accelerator = training_accelerator(config.mixed_precision)
    main = accelerator.is_main_process
    if main:
        out.mkdir(parents=True, exist_ok=True)
        check_same_run(out, config_dict(config), RESUMABLE_CHANGES, "train")
    accelerator.wait_for_everyone()
    handler = log_to_file(out / "train.log") if main else None
    try:
        return _train(config, out, accelerator)
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()


def _train(config: TrainConfig, out: Path, accelerator) -> Path:
    main = accelerator.is_main_process
    train_set = load_train_set(config.data, config.merge_generated)
    classes = train_set.classes
    if main:
        write_text_atomic(out / "config.yaml", yaml.safe_dump(config_dict(config), sort_keys=False))
        write_json_atomic(out / "classes.json", classes)
    torch.manual_seed(config.seed)
    model = ReidNet(config.backbone, len(classes), pooling=config.pooling, neck=config.neck,
                    nonlocal_blocks=config.nonlocal_blocks, last_stride=config.last_stride,
                    pretrained=resolve_init(config.init, config.backbone))
    center = CenterLoss(len(classes), model.backbone.feature_dim) if config.center_loss_weight > 0 else None
    optimizer = _optimizer(config, model.parameters())
    center_optimizer = torch.optim.SGD(center.parameters(), lr=config.center_lr) if center else None

    sampler = PKBatchSampler([r.pid for r in train_set.records], config.batch_p, config.batch_k, config.seed,
                             accelerator.process_index, accelerator.num_processes)
    images = TrainImages(train_set.records, train_transform(config.input_size, config.flip, config.pad,
                                                            config.random_erasing))
    loader = DataLoader(images, batch_sampler=sampler, num_workers=config.num_workers, collate_fn=collate_skipping)

    model, optimizer, schedule = accelerator.prepare(model, optimizer, reid_schedule(optimizer, config))
    if center is not None:
        center, center_optimizer = accelerator.prepare(center, center_optimizer)
    state = TrainingState(out / "checkpoints", accelerator, "epoch", config.keep_checkpoints)
    start_epoch = state.resume()
    if main and start_epoch:
        log.info("resuming from checkpoint %d (of %d epochs)", start_epoch, config.epochs)
    metrics = Metrics(out, "epoch", done=start_epoch, main=main)

    steps = len(sampler) if config.max_steps_per_epoch is None else min(len(sampler), config.max_steps_per_epoch)
    steps -= steps % config.grad_accumulation  # whole accumulation groups only, so epochs are self-contained
    if steps == 0:
        raise DiffreidError(f"an epoch has {len(sampler)} batches, fewer than grad_accumulation="
                            f"{config.grad_accumulation}; lower batch_p / grad_accumulation or add identities")
    if main:
        log.info("%d training images, %d identities; %d processes, batch %d×%d, %d steps per epoch, precision %s",
                 len(train_set.records), len(classes), accelerator.num_processes, config.batch_p, config.batch_k,
                 steps, accelerator.mixed_precision)

    for epoch in range(start_epoch, config.epochs):
        sampler.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        started = time.perf_counter()
        totals, correct, seen = _train_epoch(model, islice(loader, steps), steps, epoch, config, accelerator,
                                             (optimizer, center, center_optimizer))
        counts = accelerator.reduce(torch.tensor([*totals.values(), correct, seen], dtype=torch.float64,
                                                 device=accelerator.device), "sum").tolist()
        row = {"epoch": epoch + 1, "lr": lr, **{f"loss_{k}": v / counts[-1] for k, v in zip(totals, counts)},
               "train_accuracy": counts[-2] / counts[-1],
               "images_per_second": counts[-1] / (time.perf_counter() - started)}
        unwrapped = accelerator.unwrap_model(model)
        if main and config.eval_every and ((epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs):
            row.update(_evaluate(unwrapped, config, classes))
        schedule.step()
        metrics.record(row)
        state.save(epoch + 1)

    if main:
        _write_model(out, accelerator.unwrap_model(model), config, metrics.rows,
                     {"images": len(train_set.records), "identities": len(classes), "epochs": config.epochs,
                      "processes": accelerator.num_processes})
    accelerator.wait_for_everyone()
    return out


def _train_epoch(model, batches, steps: int, epoch: int, config: TrainConfig, accelerator,
                 optimizers) -> tuple[dict[str, float], int, int]:
    """One epoch's steps: each loss term summed over images, and the correct and seen counts (this process's)."""
    optimizer, center, center_optimizer = optimizers
    model.train()
    totals: dict[str, float] = {}
    correct = seen = 0
    bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not accelerator.is_main_process)
    for step, batch in enumerate(batches):
        bar.update(1)
        if batch is None:
            continue
        x, labels = (t.to(accelerator.device) for t in batch)
        sync = (step + 1) % config.grad_accumulation == 0
        context = nullcontext() if sync else accelerator.no_sync(model)
        with context, accelerator.autocast():
            outputs = model(x)
            terms = reid_loss(outputs, labels, label_smoothing=config.label_smoothing, triplet=config.triplet,
                              triplet_margin=config.triplet_margin, center_loss=center,
                              center_weight=config.center_loss_weight)
            accelerator.backward(terms["total"] / config.grad_accumulation)
        if sync:
            optimizer.step()
            optimizer.zero_grad()
            if center is not None:
                for parameter in center.parameters():  # BoT: centres learn at center_lr, not weight·center_lr
                    parameter.grad.data *= 1.0 / config.center_loss_weight
                center_optimizer.step()
                center_optimizer.zero_grad()
        for key, value in terms.items():
            totals[key] = totals.get(key, 0.0) + float(value.detach()) * len(labels)
        correct += int((outputs["logits"].argmax(1) == labels).sum())
        seen += len(labels)
        bar.set_postfix(loss=f"{float(terms['total'].detach()):.3f}")
    bar.close()
    return totals, correct, seen


def _write_model(out: Path, model, config: TrainConfig, rows: list[dict], counts: dict) -> None:
    with atomic_path(out / "model.safetensors") as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, tmp)
    if not (out / "curves.png").is_file() and rows:
        plot_curves(rows, out / "curves.png")
    write_manifest(out, "train", config_dict(config), counts=counts,
                   inputs={"data": " ".join(config.data), "init": config.init})
    log.info("wrote %s", out / "model.safetensors")

