"""small-resnet: under the 1M-parameter budget the issue sets, three stages at 28x28, 14x14 and 7x7, residual paths;
its preset, and how a preset picks its model. (Forward and backward through the task are covered for every
registered model in test_models.py.)"""

from __future__ import annotations

import json

import pytest
import torch

from lab28.models import create_model
from lab28.models.registry import count_parameters
from lab28.workloads.classify.config import PRESETS, config_from_dict, preset
from lab28.workloads.classify.small_resnet import ResidualBlock, SmallResNet


def test_small_resnet_is_under_one_million_parameters():
    net = create_model("small-resnet", workload="classify", dropout=0.2)
    assert isinstance(net, SmallResNet)
    assert count_parameters(net) == 888_682  # the figure the docs give
    assert count_parameters(net) < 1_000_000


def test_stages_run_at_28_14_and_7_pixels():
    net = SmallResNet().eval()
    x = torch.randn(2, 1, 28, 28)
    sizes = []
    for stage in net.features:
        x = stage(x)
        sizes.append(tuple(x.shape[1:]))
    assert sizes == [(32, 28, 28), (64, 14, 14), (192, 7, 7)]
    assert net.classifier(x).shape == (2, 10)


def test_residual_block_adds_its_input():
    block = ResidualBlock(8).eval()
    for p in block.body.parameters():  # a body that outputs zeros: the block must be the identity
        torch.nn.init.zeros_(p)
    x = torch.randn(3, 8, 7, 7)
    assert torch.equal(block(x), x)


def test_dropout_reaches_the_head_and_bad_values_are_refused():
    net = create_model("small-resnet", workload="classify", dropout=0.3)
    assert [m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)] == [0.3]
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        SmallResNet(dropout=1.0)


# -- the small-resnet preset ---------------------------------------------------------------------------------------
def _leaves(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def test_small_resnet_preset_is_best_longer_on_its_model():
    """The preset is `best`'s recipe (optimizer, augmentations, label smoothing, split) run for 100 epochs on
    small-resnet with a lighter head dropout and CutMix on half the images; nothing else differs."""
    best, long = _leaves(preset("best").to_dict()), _leaves(preset("small-resnet").to_dict())
    changed = {key: (best[key], long[key]) for key in best if best[key] != long[key]}
    assert changed == {
        "preset": ("best", "small-resnet"),
        "model.name": ("simple-cnn", "small-resnet"),
        "model.dropout": (0.4, 0.2),
        "train.epochs": (35, 100),
        "train.warmup_epochs": (2.0, 3.0),
        "train.early_stopping.patience": (100, 150),
        "augment.cutmix": (0.0, 0.5),
    }
    cfg = preset("small-resnet")
    cfg.validate()
    assert config_from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.train.early_stopping.patience > cfg.train.epochs  # the cosine tail is never cut off
    assert (cfg.augment.hflip, cfg.augment.translate, cfg.augment.erase, cfg.augment.vflip, cfg.augment.rotate) == (
        0.5, 1.0, 0.5, 0.0, 0.0)


def test_a_preset_trains_its_own_model_unless_one_is_named():
    assert [preset(name).model.name for name in PRESETS] == [
        "small-resnet" if name == "small-resnet" else "simple-cnn" for name in PRESETS]
    assert preset("small-resnet", model="gated-cnn").model.name == "gated-cnn"
    assert preset("best", model="small-resnet").model.name == "small-resnet"


def test_cli_and_api_select_the_preset_and_its_model():
    import argparse

    from lab28.api import train_config
    from lab28.workloads.classify.cli import add_train_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    assert config_from_args(parser.parse_args(["--preset", "small-resnet"]), "fashion-mnist").model.name == \
        "small-resnet"
    swapped = config_from_args(parser.parse_args(["--preset", "small-resnet", "--model", "simple-cnn"]), "kmnist")
    assert (swapped.model.name, swapped.train.epochs, swapped.data.dataset) == ("simple-cnn", 100, "kmnist")
    _, config, name = train_config("fashion-mnist", preset="small-resnet", epochs=2)
    assert (name, config.model.name, config.train.epochs) == ("small-resnet", "small-resnet", 2)


def test_a_suite_of_the_small_resnet_preset_trains_small_resnet_and_other_presets_the_seeds_three():
    import argparse

    from lab28.workloads.classify.cli import suite_runs
    from lab28.workloads.classify.config import preset
    from lab28.workloads.classify.models import FASHION_MODELS

    def names(preset_name, models=None):
        args = argparse.Namespace(preset=preset_name, models=models)
        return [name for name, _ in suite_runs(args, preset(preset_name))]

    assert names("small-resnet") == ["small-resnet"]
    assert names("best") == list(FASHION_MODELS)
    assert names("small-resnet", "simple-cnn,small-resnet") == ["simple-cnn", "small-resnet"]
