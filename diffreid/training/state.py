"""Resume points of every trainer, kept by accelerate (`save_state` / `load_state`).

A checkpoint is the whole accelerate state of a run at a finished epoch or step: the prepared
models (`model.safetensors`, `model_1.safetensors`, ...), optimizers, learning-rate schedulers,
the loss scaler and the random states, plus what a trainer keeps beside them (e.g. EMA weights)
and `progress.json`. Everything is read back with `weights_only=True`. It is written under a
temporary name and renamed when complete, so a kill mid-write leaves the previous one as the
latest.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Protocol

import torch
from safetensors.torch import load_file, save_file

from diffreid.errors import DiffreidError
from diffreid.training.checkpoints import checkpoints


class Stateful(Protocol):
    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class TrainingState:
    """One run's checkpoints: `unit` counts what is done (epoch or step); `keep` the newest kept;
    `extras` are saved beside accelerate's objects, by name; `trainable_only` saves the models'
    trained parameters and buffers, not frozen ones (a LoRA beside its base UNet)."""

    def __init__(self, folder: Path, accelerator, unit: str = "epoch", keep: int = 2,
                 extras: dict[str, Stateful] | None = None, trainable_only: bool = False):
        self.folder, self.accelerator, self.unit, self.keep = Path(folder), accelerator, unit, keep
        self.extras, self.trainable_only = extras or {}, trainable_only
        accelerator.register_save_state_pre_hook(self._save_models)
        accelerator.register_load_state_pre_hook(self._load_models)

    def resume(self) -> int:
        """Load the newest checkpoint into the prepared objects; the epochs (or steps) it had done, 0 for none."""
        found = checkpoints(self.folder)
        if not found:
            return 0
        done, path = found[-1]
        if (path / "training_state.pt").is_file():
            raise DiffreidError(f"{path}: a checkpoint of an earlier diffreid (training_state.pt); finish the run "
                                "with the version that started it, or start it again with a new --out")
        try:
            self.accelerator.load_state(str(path), load_kwargs={"weights_only": True})
            for name, item in self.extras.items():
                item.load_state_dict(torch.load(path / f"{name}.pt", map_location="cpu", weights_only=True))
        except Exception as error:  # accelerate, safetensors and torch raise untyped errors
            raise DiffreidError(f"{path}: unreadable checkpoint ({error}); delete it to resume from the one before") \
                from None
        for scheduler in self.accelerator._schedulers:  # a schedule of a longer run (more epochs) takes effect now
            _apply_schedule(scheduler.scheduler)
        return done

    def save(self, done: int) -> Path:
        """Checkpoint after `done` epochs (or steps) and prune all but the newest `keep`; every process calls it."""
        final = self.folder / (f"epoch-{done:04d}" if self.unit == "epoch" else f"step-{done:06d}")
        tmp = self.folder / f".{final.name}.partial"
        main = self.accelerator.is_main_process
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(tmp), safe_serialization=True)
        if main:
            for name, item in self.extras.items():
                torch.save(item.state_dict(), tmp / f"{name}.pt")
            (tmp / "progress.json").write_text(json.dumps({self.unit: done}), encoding="utf-8")
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            for _, old in checkpoints(self.folder)[:-max(1, self.keep)]:
                shutil.rmtree(old, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        return final

    def _save_models(self, models, weights, output_dir) -> None:
        """accelerate's save hook: each model unwrapped (frozen parameters left out when asked), in place of its own."""
        weights.clear()
        if not self.accelerator.is_main_process:
            return
        for i, model in enumerate(models):
            module = self.accelerator.unwrap_model(model)
            frozen = {name for name, p in module.named_parameters() if not p.requires_grad} if self.trainable_only \
                else set()
            save_file({k: v.detach().contiguous().cpu() for k, v in module.state_dict().items() if k not in frozen},
                      Path(output_dir) / _model_file(i))

    def _load_models(self, models, input_dir) -> None:
        """accelerate's load hook: each model's file into the unwrapped model; only frozen parameters may be absent."""
        for i, model in enumerate(models):
            module = self.accelerator.unwrap_model(model)
            missing, unexpected = module.load_state_dict(load_file(Path(input_dir) / _model_file(i)), strict=False)
            frozen = {name for name, p in module.named_parameters() if not p.requires_grad}
            if unexpected or set(missing) - frozen:
                raise DiffreidError(f"{_model_file(i)} does not fit model {i} (missing {sorted(set(missing) - frozen)[:3]}, "
                                    f"unexpected {sorted(unexpected)[:3]})")
        models.clear()


def _model_file(index: int) -> str:
    return "model.safetensors" if index == 0 else f"model_{index}.safetensors"


def _apply_schedule(scheduler) -> None:
    """Set each group's rate from the restored schedule (a LambdaLR's), not the checkpoint's
    optimizer, so a resumed run that changed its length follows its new schedule at once."""
    for group, rate in zip(scheduler.optimizer.param_groups, scheduler.lr_lambdas):
        group["lr"] = group["initial_lr"] * rate(scheduler.last_epoch)
