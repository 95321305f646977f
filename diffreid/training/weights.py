"""Reading weight files safely and fitting them to a backbone, with errors that say what differs."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from diffreid.errors import DiffreidError

# Classifier modules of the home libraries (torchvision, timm, torchreid): a checkpoint
# may carry one the backbone does not have (ImageNet's 1000 classes, a Re-ID training set's).
HEAD_NAMES = frozenset({"fc", "classifier", "head"})


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors in a .safetensors file or a torch checkpoint, without running pickled code.

    `torch.load(weights_only=True)` reads both the zip and the old (pre-1.6) serialisation;
    a training checkpoint's `state_dict` / `model` entry and DataParallel's `module.` prefix
    are unwrapped.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DiffreidError(f"{path}: weights file not found")
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise DiffreidError(f"{path}: holds pickled Python objects besides tensors, which are not loaded for "
                            f"safety; save `model.state_dict()` instead ({str(error).splitlines()[0]})") from None
    except Exception as error:  # safetensors and torch raise their own untyped errors
        raise DiffreidError(f"{path}: not a readable weights file ({error})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DiffreidError(f"{path}: expected a state dict (names to tensors), found {type(state).__name__}")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _without_heads(state: dict, expected: dict) -> dict:
    return {k: v for k, v in state.items() if k in expected or k.split(".")[0] not in HEAD_NAMES}


def mismatch(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> list[str]:
    """What keeps `state` from loading strictly where `expected` is: one line per tensor."""
    state = _without_heads(state, expected)
    problems = [f"missing {k}" for k in expected
                if k not in state and not k.endswith("num_batches_tracked")]  # absent in pre-0.4.1 files
    problems += [f"unexpected {k}" for k in state if k not in expected]
    problems += [f"{k} is {tuple(state[k].shape)}, expected {tuple(expected[k].shape)}"
                 for k in state if k in expected and state[k].shape != expected[k].shape]
    return problems


def load_weights(model: nn.Module, path: str | Path, name: str,
                 filter_fn: Callable[[dict, nn.Module], dict] | None = None) -> None:
    """Load `path` into `model` strictly (a classifier aside), or say what does not fit."""
    state = read_state_dict(path)
    if filter_fn is not None:
        state = filter_fn(state, model)
    expected = model.state_dict()
    problems = mismatch(state, expected)
    if problems:
        raise DiffreidError(f"{path}: not the weights of a {name} backbone ({len(problems)} tensors do not fit: "
                            f"{'; '.join(problems[:3])}{' ...' if len(problems) > 3 else ''})")
    model.load_state_dict(_without_heads(state, expected))
