"""The trainers' shared foundation: accelerate checkpoints, schedules and the metrics writer."""

import json

import pytest
import torch
from safetensors.torch import load_file

from diffreid.errors import DiffreidError
from diffreid.runtime import training_accelerator
from diffreid.training.metrics import Metrics
from diffreid.training.schedules import warmup_schedule
from diffreid.training.state import TrainingState


class _Counter:
    """An extra kept beside accelerate's objects (as base-train's EMA is)."""

    def __init__(self):
        self.value = torch.zeros(3)

    def state_dict(self):
        return {"value": self.value.clone()}

    def load_state_dict(self, state):
        self.value = state["value"]


def _run(folder, total=10, trainable_only=False, extras=None, keep=2):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    model[0].requires_grad_(False)  # a frozen part, like a base UNet under LoRA
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    accelerator = training_accelerator("no")
    model, optimizer, schedule = accelerator.prepare(model, optimizer,
                                                     warmup_schedule(optimizer, 3, total, min_rate=0.1))
    state = TrainingState(folder, accelerator, "step", keep=keep, extras=extras, trainable_only=trainable_only)
    return model, optimizer, schedule, state


def _train(model, optimizer, schedule, steps):
    for _ in range(steps):
        model(torch.ones(2, 4)).sum().backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()


def test_a_run_resumes_with_weights_optimizer_schedule_and_extras(tmp_path):
    counter = _Counter()
    model, optimizer, schedule, state = _run(tmp_path / "checkpoints", extras={"counter": counter}, keep=2)
    assert state.resume() == 0
    for done in (1, 2, 3):
        _train(model, optimizer, schedule, 1)
        counter.value += 1
        state.save(done)
    assert [p.name for p in sorted((tmp_path / "checkpoints").iterdir())] == ["step-000002", "step-000003"]
    assert json.loads((tmp_path / "checkpoints" / "step-000003" / "progress.json").read_text()) == {"step": 3}
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    lr, moments = optimizer.param_groups[0]["lr"], optimizer.state_dict()["state"][0]["exp_avg"].clone()
    _train(model, optimizer, schedule, 2)  # work after the last checkpoint, lost in a kill
    (tmp_path / "checkpoints" / ".step-000005.partial").mkdir()  # a kill mid-write leaves this behind

    fresh, fresh_counter = _run(tmp_path / "checkpoints", extras={"counter": _Counter()}), None
    model, optimizer, schedule, state = fresh
    fresh_counter = state.extras["counter"]
    assert state.resume() == 3
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    assert torch.equal(optimizer.state_dict()["state"][0]["exp_avg"], moments)
    assert optimizer.param_groups[0]["lr"] == lr and schedule.scheduler.last_epoch == 4
    assert torch.equal(fresh_counter.value, torch.full((3,), 3.0))


def test_trainable_only_saves_no_frozen_weights_and_checks_what_it_loads(tmp_path):
    model, optimizer, schedule, state = _run(tmp_path / "checkpoints", trainable_only=True)
    _train(model, optimizer, schedule, 1)
    path = state.save(1)
    assert set(load_file(path / "model.safetensors")) == {"1.weight", "1.bias"}
    _, _, _, again = _run(tmp_path / "checkpoints", trainable_only=True)
    assert again.resume() == 1
    from safetensors.torch import save_file

    save_file({"1.weight": torch.zeros(2, 4)}, path / "model.safetensors")  # a trained tensor missing
    _, _, _, broken = _run(tmp_path / "checkpoints", trainable_only=True)
    with pytest.raises(DiffreidError, match="step-000001: unreadable checkpoint.*missing.*1.bias"):
        broken.resume()


def test_a_checkpoint_of_the_old_format_is_refused_by_name(tmp_path):
    old = tmp_path / "checkpoints" / "epoch-0002"
    old.mkdir(parents=True)
    torch.save({"epoch": 2}, old / "training_state.pt")
    _, _, _, state = _run(tmp_path / "checkpoints")
    with pytest.raises(DiffreidError, match="epoch-0002: a checkpoint of an earlier diffreid.*new --out"):
        state.resume()


def test_a_resumed_run_made_longer_follows_its_new_schedule(tmp_path):
    model, optimizer, schedule, state = _run(tmp_path / "checkpoints", total=10)
    _train(model, optimizer, schedule, 6)
    state.save(6)
    model, optimizer, longer, state = _run(tmp_path / "checkpoints", total=20)
    state.resume()
    reference = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-2)
    expected = warmup_schedule(reference, 3, 20, min_rate=0.1)
    for _ in range(6):
        reference.step()
        expected.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(reference.param_groups[0]["lr"], rel=1e-12)


def test_warm_up_counts_from_one_and_decays_to_its_floor():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    constant = warmup_schedule(optimizer, 4)
    rates = []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        constant.step()
    assert rates == [min(1.0, (step + 1) / 4) for step in range(6)]  # the first step is not wasted at rate 0
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    cosine, rates = warmup_schedule(optimizer, 2, 10, min_rate=0.1), []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        cosine.step()
    assert rates[:2] == [0.5, 1.0] and rates == sorted(rates[:2]) + sorted(rates[2:], reverse=True)
    assert rates[-1] == pytest.approx(0.1)  # the last step at the floor


def test_metrics_keep_the_checkpointed_rows_and_draw_curves(tmp_path):
    metrics = Metrics(tmp_path, "step", curves="loss.png")
    for step in (10, 20, 30):
        metrics.record({"step": step, "loss_denoise": 1.0 / step})
    assert (tmp_path / "loss.png").is_file()
    resumed = Metrics(tmp_path, "step", curves="loss.png", done=20)  # step 30 was never checkpointed
    assert [row["step"] for row in resumed.rows] == [10, 20]
    resumed.record({"step": 30, "loss_denoise": 0.5})
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["loss_denoise"]) for r in rows] == [(10, 0.1), (20, 0.05), (30, 0.5)]
    Metrics(None, "epoch").record({"epoch": 1, "loss_x": 1.0})  # logs only
