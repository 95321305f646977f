"""One path for every config (YAML presets, run configs, `--set`): values typed and checked by the
config classes' own annotations, errors that name the field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diffreid.config import GenerateConfig, TrainConfig, build_config, config_values, load_train_config
from diffreid.errors import DiffreidError


def test_values_are_typed_by_the_fields():
    config = build_config(GenerateConfig, {"generator": "g", "out": "o", "identities": [3, np.int64(4)],
                                           "guidance": 2, "captions": None})
    assert config.generator == Path("g") and config.identities == (3, 4) and config.guidance == 2
    assert config.captions is None


@pytest.mark.parametrize("values, message", [
    ({"per_identity": "ten"}, "per_identity: expected int, not 'ten'"),
    ({"per_identity": True}, "per_identity: expected int, not True"),
    ({"identities": [1, "x"]}, r"identities\[1\]: expected int, not 'x'"),
    ({"guidance": None}, "guidance: expected float, not None"),
    ({"per_identiy": 3}, "unknown option.*per_identiy"),
])
def test_a_wrong_value_names_its_field(values, message):
    with pytest.raises(DiffreidError, match=message):
        build_config(GenerateConfig, {"generator": "g", "out": "o", **values})


def test_a_part_of_a_config_is_checked_without_its_required_fields():
    assert config_values(GenerateConfig, {"steps": 10}, partial=True) == {"steps": 10}
    with pytest.raises(DiffreidError, match="missing option.*generator, out"):
        build_config(GenerateConfig, {"steps": 10})
    with pytest.raises(DiffreidError, match=r"input_size: expected tuple\[int, int\], not \[256\]"):
        config_values(TrainConfig, {"input_size": [256]}, partial=True)


def test_training_presets_go_the_same_way():
    config = load_train_config("cpu-tiny", {"data": ["market1501:x"], "out": "o"})
    assert config.data == ("market1501:x",) and config.out == Path("o") and config.input_size == (64, 32)
    with pytest.raises(DiffreidError, match="lr: expected float, not 'fast'"):
        load_train_config("cpu-tiny", {"data": ["market1501:x"], "out": "o", "lr": "fast"})
