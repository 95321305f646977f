"""The command line takes its defaults from the stage configs and library signatures, so the two
cannot drift apart: a flag left out means the config's own default."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from diffreid.cli import build_parser
from diffreid.config import EvaluateConfig, FilterConfig, GenerateConfig, SettingConfig, SynthConfig

# command line (required arguments only) -> the config it fills; flags named as the fields
COMMANDS = [
    (["data", "synth", "--out", "o"], SynthConfig, {}),
    (["generate", "--generator", "g", "--out", "o"], GenerateConfig, {"no_injection": "injection"}),
    (["filter", "--generated", "g", "--scorer", "s=m", "--out", "o"], FilterConfig, {}),
    (["evaluate", "--model", "m", "--data", "d"], EvaluateConfig, {}),
    (["setting", "usl", "--data", "d", "--out", "o"], SettingConfig, {}),
]


@pytest.mark.parametrize("argv, config, negated", COMMANDS, ids=lambda v: v[0] if isinstance(v, list) else "")
def test_a_flag_left_out_is_the_configs_default(argv, config, negated):
    args = vars(build_parser().parse_args(argv))
    compared = 0
    for field in dataclasses.fields(config):
        if field.default is dataclasses.MISSING or field.name not in args:
            continue
        value = args[field.name]
        assert (tuple(value) if isinstance(value, list) else value) == field.default, field.name
        compared += 1
    for flag, field in negated.items():  # --no-X flags stand for a field that defaults to True
        assert args[flag] is False and getattr(config, field) is True
    assert compared >= 3  # the flags really are named as the fields


def test_judge_backbones_all_build_at_the_judges_input_size():
    """`attributes --backbone` offers every registered backbone that takes 128 x 64 (not the transformers)."""
    from diffreid.judges.attribute_classifier import INPUT_SIZE, AttributeNet, judge_backbones

    parser = build_parser()
    choices = next(a for a in parser._subparsers._group_actions[0].choices["attributes"]._actions
                   if a.dest == "backbone").choices
    assert choices == judge_backbones() and {"resnet18", "mobilenet_v2", "efficientnet_lite0"} <= set(choices)
    for name in choices:  # shapes only: on the meta device, no weights are made or run
        with torch.device("meta"):
            net = AttributeNet({"upper colour": ["black", "red"]}, name).eval()
            assert net(torch.zeros(1, 3, *INPUT_SIZE))["upper colour"].shape == (1, 2), name
    with torch.device("meta"), pytest.raises(AssertionError, match="doesn't match model"):
        AttributeNet({"upper colour": ["black", "red"]}, "swin_tiny")(torch.zeros(1, 3, *INPUT_SIZE))
